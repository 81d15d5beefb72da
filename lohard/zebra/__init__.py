"""Zebra (Einstein) puzzles: clues, a recording strategy solver, a generator, token layouts."""

from lohard.zebra._dataset import (
    ZebraGenConfig,
    ZebraSet,
    generate_dataset,
    generate_puzzles,
    load_puzzles,
)
from lohard.zebra._encoding import (
    VOCAB_SIZE,
    ZebraLayout,
    arm_tokens,
    clue_tokens,
    decode_arm_tokens,
    mdm_tokens,
    parse_clue_tokens,
    solution_tokens,
)
from lohard.zebra._generator import default_max_clues, generate, random_clue
from lohard.zebra._puzzle import (
    CLUE_ITEMS,
    CLUE_TYPES,
    MAX_SIZE,
    MIN_SIZE,
    Clue,
    Puzzle,
    brute_force_solutions,
    check,
    check_size,
    grid_errors,
    houses_of,
)
from lohard.zebra._solver import STRATEGIES, Solution, count_solutions, propagate_only, solve

__all__ = [
    "VOCAB_SIZE", "ZebraGenConfig", "ZebraLayout", "ZebraSet", "arm_tokens", "clue_tokens",
    "decode_arm_tokens", "generate_dataset", "generate_puzzles", "load_puzzles",
    "mdm_tokens", "parse_clue_tokens", "solution_tokens",
    "CLUE_ITEMS", "CLUE_TYPES", "MAX_SIZE", "MIN_SIZE", "STRATEGIES", "Clue", "Puzzle",
    "Solution", "brute_force_solutions", "check", "check_size", "count_solutions",
    "default_max_clues", "generate", "grid_errors", "houses_of", "propagate_only",
    "random_clue", "solve",
]
