"""Sudoku: puzzle generation and human-strategy rating, token layouts, and BP as an ordering oracle.

Full grids come from a randomised solver (``generate_puzzles``); ``random_symmetry`` draws
the validity-preserving transforms (band, row, stack and column permutations, transpose,
digit relabelling), which keep uniqueness and the easy/hard rating, for augmentation.

No torch here: the MDM/ARM models that use these data live in ``lohard.mdm``.
"""

from lohard.sudoku._bp import (
    BP_DEFAULTS,
    DecodeResult,
    SudokuBP,
    bp_decode,
    bp_marginals,
    bp_solve_rate,
)
from lohard.sudoku._dataset import (
    DIFFICULTIES,
    FORMAT_VERSION,
    PUZZLES_FORMAT,
    GeneratorConfig,
    PuzzleSet,
    generate_dataset,
    generate_puzzles,
    load_puzzles,
)
from lohard.sudoku._encoding import (
    ContradictoryCluesError,
    MultipleSolutionsError,
    NoSolutionError,
    PuzzleFormatError,
    arm_tokens,
    arm_vocab_size,
    clue_conflicts,
    decode_arm_tokens,
    format_puzzle,
    grid_errors,
    mdm_loss_mask,
    mdm_tokens,
    parse_puzzle,
    split_mdm_tokens,
    valid_solutions,
)
from lohard.sudoku._grid import BOX_SIZES, Symmetry, Topology, random_symmetry, topology
from lohard.sudoku._solver import (
    HUMAN_STRATEGIES,
    STRATEGIES,
    Rating,
    Ratings,
    apply_strategy,
    count_solutions,
    rate,
    rate_puzzles,
    solve,
    strategy_code,
)

__all__ = [
    "BOX_SIZES",
    "Topology",
    "topology",
    "Symmetry",
    "random_symmetry",
    "STRATEGIES",
    "HUMAN_STRATEGIES",
    "strategy_code",
    "count_solutions",
    "solve",
    "rate",
    "rate_puzzles",
    "Rating",
    "Ratings",
    "apply_strategy",
    "GeneratorConfig",
    "PuzzleSet",
    "generate_puzzles",
    "generate_dataset",
    "load_puzzles",
    "DIFFICULTIES",
    "PUZZLES_FORMAT",
    "FORMAT_VERSION",
    "PuzzleFormatError",
    "ContradictoryCluesError",
    "NoSolutionError",
    "MultipleSolutionsError",
    "parse_puzzle",
    "format_puzzle",
    "clue_conflicts",
    "grid_errors",
    "valid_solutions",
    "mdm_tokens",
    "split_mdm_tokens",
    "mdm_loss_mask",
    "arm_tokens",
    "arm_vocab_size",
    "decode_arm_tokens",
    "bp_marginals",
    "bp_decode",
    "bp_solve_rate",
    "SudokuBP",
    "DecodeResult",
    "BP_DEFAULTS",
]
