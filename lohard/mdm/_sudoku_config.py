r"""Sudoku models (Sec. 4, Tables 2 and 5): run configuration and shapes of the MDM and the ARMs.

Models
------
* **MDM** (:class:`~lohard.mdm.MaskedDiffusionTransformer`) on the layout of
  :func:`lohard.sudoku.mdm_tokens`: ``N`` clue tokens (0 = blank) then ``N`` solution
  tokens. Only the solution tokens of *blank* cells are ever masked, in training and in
  decoding: the solution token of a clue cell is the clue itself. The decoder therefore
  cannot change a clue, and training sees exactly the masks decoding meets (a subset of
  :func:`lohard.sudoku.mdm_loss_mask`). Vocabulary: 0..n (0 only in the clue half), mask
  id n + 1. A learned absolute position table is added to RoPE by default: which cells
  share a row, column or box depends on absolute positions.
* **ARM** (:class:`~lohard.mdm._pilearner.PiLearner` read left to right, i.e. a causal
  transformer with learned position embeddings) on the ``(row, column, value)`` layout of
  :func:`lohard.sudoku.arm_tokens`: clue triples row-major (the prompt), then the blank
  cells' triples in the *solver's order* (the "with ordering" baseline of Shah et al.
  2024) or in *row-major* order. It is trained on the blank triples and, at test time,
  generates them greedily; each slot is restricted to its token type (row, column,
  value), nothing more. A triple naming a cell twice (a clue included) is malformed:
  the first value stays, so clues are never changed, and the grid is not a solution.

Training objective of the MDM (continuous-time ELBO, linear schedule, Prop. 2.1)
restricted to the blank cells B of each puzzle:

.. math::

    \mathcal L = \mathbb E_{t \sim U(0,1]} \frac{1}{t\,|B|} \sum_{i \in B}
    \mathbf 1[x_t^i = \mathrm{mask}] \bigl(-\log p_\theta(x_0^i \mid x_t)\bigr),
    \qquad P(x_t^i = \mathrm{mask}) = t \text{ independently for } i \in B.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from lohard.mdm._config import MDMConfig, check_optimisation, model_config
from lohard.mdm._model import MaskedDiffusionTransformer
from lohard.mdm._pilearner import PiLearner, PiLearnerConfig
from lohard.sudoku._grid import check_box

#: Model kinds: the MDM, and the ARM on (row, column, value) triples.
KINDS = ("mdm", "arm")
#: Orders of the ARM's blank triples.
ARM_ORDERS = ("solver", "row-major")
#: MDM decoders (one cell per step by default).
#: width and depth (about 5M parameters; Shah et al.'s ARM has 42M).
ARM_SIZES: dict[str, tuple[int, int, int]] = {
    "arm-6m": (256, 6, 8),
    "arm-19m": (384, 8, 8),
    "cpu-1m": (128, 4, 4),  # the width and depth of the MDM's cpu-1m (CPU-scale 9x9 tables)
    "cpu-4l": (64, 4, 4),  # the MDM's cpu-4l (CPU-scale Zebra table)
    "tiny": (64, 2, 4),
}

# Stream ids mixed into the root seed (one random stream per purpose).
_DATA, _MASK, _INIT = 0, 1, 2


def _seed_of(root: int, stream: int, step: int = 0) -> int:
    return int(np.random.SeedSequence([int(root), int(stream), int(step)])
               .generate_state(2, np.uint64)[0] >> np.uint64(1))


# -- configuration -------------------------------------------------------------------------
@dataclass
class SudokuTrainConfig:
    """One Sudoku training run; saved in every checkpoint and result file.

    Attributes
    ----------
    kind : {"mdm", "arm"}
    arm_order : {"solver", "row-major"}
        Order of the ARM's blank triples (ignored for the MDM).
    box : int
        Box size b (2: 4x4, 3: 9x9).
    model : str
        MDM: a :data:`lohard.mdm.MODEL_CONFIGS` name (default ``mdm-6m``, the paper's 6M
        MDM); ARM: an :data:`ARM_SIZES` name.
    model_overrides : dict
        MDM config fields to override (defaults add ``learned_pos=True`` and
        ``max_seq_len = 2N``).
    steps, batch_size : int
    lr, min_lr : float
        Peak and final learning rate of the cosine schedule.
    warmup_steps : int
        Linear warm-up from 0 to ``lr``.
    betas, weight_decay, grad_clip :
        AdamW settings (decay on matrices only) and the gradient clipping norm.
    augment : bool
        Relabel the digits of every training puzzle by a fresh random permutation (9!
        relabellings per puzzle). Its difficulty is unchanged; the solver order is kept
        as rated, which is the relabelled puzzle's order up to ties the rater breaks by
        digit (the order differs for about 1 puzzle in 5, with Spearman rho 0.9994 on
        average against a fresh rating; measured on 300 easy 9x9 puzzles).
    seed : int
        Root seed: initialisation, batches, relabellings and masks.
    device : {"auto", "cpu", "cuda"}
    amp : bool
        bf16 autocast on CUDA (ignored on CPU).
    compile : bool
        Train through ``torch.compile`` (the same numbers up to float reordering; about
        1.3x the tokens/s on the CPU after a compilation of about a minute). Like the
        device, it may change when a run is resumed.
    log_every, ckpt_every : int
        Steps between log lines and between checkpoints (one is always written at the end).
    """

    kind: str = "mdm"
    arm_order: str = "solver"
    box: int = 3
    model: str = "mdm-6m"
    model_overrides: dict = field(default_factory=dict)
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3  # small models on short schedules take a higher peak than App. C.1
    min_lr: float = 1e-4
    warmup_steps: int = 200
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    log_every: int = 50
    ckpt_every: int = 500

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.arm_order not in ARM_ORDERS:
            raise ValueError(f"arm_order must be one of {', '.join(ARM_ORDERS)}, got "
                             f"{self.arm_order!r}")
        self.box = check_box(self.box)
        if self.kind == "arm" and self.model not in ARM_SIZES:
            raise ValueError(f"an ARM's model must be one of {', '.join(ARM_SIZES)}, got "
                             f"{self.model!r}")
        check_optimisation(self, ("steps", "batch_size"),
                           ("warmup_steps", "log_every", "ckpt_every"))

    @property
    def name(self) -> str:
        """Short run name: ``mdm``, ``arm-solver`` or ``arm-row-major``."""
        return "mdm" if self.kind == "mdm" else f"arm-{self.arm_order}"

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def mdm_sudoku_config(cfg: SudokuTrainConfig) -> MDMConfig:
    """The resolved MDM shape of a run: ``cfg.model`` with learned positions and L = 2N."""
    over = {"max_seq_len": 2 * cfg.box**4, "learned_pos": True, **cfg.model_overrides}
    return model_config(cfg.model, **over)


def arm_sudoku_config(cfg: SudokuTrainConfig) -> PiLearnerConfig:
    """The resolved ARM shape of a run (vocabulary 3n + 1, length 3N)."""
    d, layers, heads = ARM_SIZES[cfg.model]
    n = cfg.box**2
    return PiLearnerConfig(vocab_size=3 * n + 1, length=3 * cfg.box**4, d_model=d,
                           n_layers=layers, n_heads=heads)


def build_sudoku_model(cfg: SudokuTrainConfig) -> torch.nn.Module:
    """A fresh model for ``cfg``, initialised from ``cfg.seed`` (global torch RNG untouched
    for the ARM; the MDM's init draws from a fork of the global RNG)."""
    if cfg.kind == "mdm":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_of(cfg.seed, _INIT))
            return MaskedDiffusionTransformer(mdm_sudoku_config(cfg), cfg.box**2 + 1)
    return PiLearner(arm_sudoku_config(cfg), seed=_seed_of(cfg.seed, _INIT))


def _model_shape(model) -> dict:
    if isinstance(model, PiLearner):
        return dataclasses.asdict(model.cfg)
    return model.config.to_dict()


def _n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))
