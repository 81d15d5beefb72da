r"""Sudoku models (Sec. 4, Tables 2 and 5): an MDM decoded in adaptive orders, two ARM baselines.

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

Decoding one cell per step
--------------------------
Every decoder unmasks ``cells_per_step`` cells per forward pass (default one, so a
puzzle with b blanks takes b steps and the order of unmasking is a full ranking of the
blanks):

* ``"vanilla"``: the cells are chosen uniformly at random among the masked ones (the
  vanilla reverse process in the limit of many steps, where no two cells unmask at the
  same time);
* ``"top-prob"``: the highest :math:`\max_j p_\theta(x^i = j \mid x_t)`;
* ``"margin"``: the highest :math:`p(j_1) - p(j_2)` (top two values);

plus ``noise_scale`` times Gumbel noise on the adaptive scores (App. D.2: 0.5). The value
of a chosen cell is drawn from :math:`p_\theta(\cdot \mid x_t)` restricted to the digits
1..n at ``temperature`` (0: argmax). ``bp`` decoders take the order from belief
propagation (:func:`lohard.sudoku.bp_decode`) and the values from BP or the MDM.

Accuracy is the share of puzzles whose decoded grid is a full valid Sudoku keeping every
clue (:func:`lohard.sudoku.valid_solutions`). Order agreement is the Spearman rank
correlation, over a puzzle's blank cells, between the step at which a decoder unmasked
a cell and the step at which the strategy solver filled it.

References
----------
Kim et al. (ICML 2025), Sec. 4.1, Tables 2 and 5, App. D.2; Shah et al. (2024),
"Causal language modeling can elicit search and reasoning capabilities on logic puzzles".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lohard._util import atomic_write_json, provenance, to_jsonable
from lohard.mdm._config import MDMConfig, check_optimisation, model_config
from lohard.mdm._loss import loss_masks
from lohard.mdm._model import MaskedDiffusionTransformer
from lohard.mdm._pilearner import PiLearner, PiLearnerConfig
from lohard.mdm._sampling import DEFAULT_NOISE_SCALE, select_top_k
from lohard.mdm._train import (
    CKPT_NAME,
    RunningLoss,
    check_finite_parameters,
    check_stop_after,
    load_finite_weights,
    open_log,
    optimiser_step,
    read_state,
    select_device,
    write_state,
)
from lohard.sudoku import (
    PuzzleSet,
    arm_tokens,
    bp_decode,
    decode_arm_tokens,
    valid_solutions,
)
from lohard.sudoku._grid import check_box

#: Model kinds: the MDM, and the ARM on (row, column, value) triples.
KINDS = ("mdm", "arm")
#: Orders of the ARM's blank triples.
ARM_ORDERS = ("solver", "row-major")
#: MDM decoders (one cell per step by default).
MDM_DECODERS = ("vanilla", "top-prob", "margin")
#: BP-ordered decoders: BP order with BP's values, BP order with the MDM's values.
BP_DECODERS = ("bp", "bp-mdm")
#: ARM shapes: name -> (d_model, n_layers, n_heads). ``arm-6m`` matches the MDM's mdm-6m
#: width and depth (about 5M parameters; Shah et al.'s ARM has 42M).
ARM_SIZES: dict[str, tuple[int, int, int]] = {
    "arm-6m": (256, 6, 8),
    "arm-19m": (384, 8, 8),
    "tiny": (64, 2, 4),
}

CKPT_FORMAT = "lohard.mdm.sudoku-checkpoint"
CKPT_VERSION = 1


# Stream ids mixed into the root seed (one random stream per purpose).
_DATA, _MASK, _INIT = 0, 1, 2


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


# -- data ----------------------------------------------------------------------------------
def _seed_of(root: int, stream: int, step: int = 0) -> int:
    return int(np.random.SeedSequence([int(root), int(stream), int(step)])
               .generate_state(2, np.uint64)[0] >> np.uint64(1))


def puzzles_hash(ps: PuzzleSet) -> str:
    """SHA-256 of a puzzle set's puzzles, solutions and orders (resume checks)."""
    h = hashlib.sha256(f"box={ps.box}".encode())
    for a in (ps.puzzles, ps.solutions, ps.orders):
        h.update(np.ascontiguousarray(a.astype(np.int64)).tobytes())
    return h.hexdigest()


def relabel_digits(grids: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Apply digit permutations: digit d of row i becomes ``perms[i, d - 1]``; 0 stays 0.

    Parameters
    ----------
    grids : int array, shape (M, N)
    perms : int array, shape (M, n)
        Each row a permutation of 1..n.
    """
    g = np.asarray(grids, dtype=np.int64)
    table = np.concatenate([np.zeros((g.shape[0], 1), np.int64),
                            np.asarray(perms, np.int64)], axis=1)
    return np.take_along_axis(table, g, axis=1)


def training_batch(ps: PuzzleSet, cfg: SudokuTrainConfig, step: int) -> dict[str, np.ndarray]:
    """The batch of step ``step``: a function of ``(cfg.seed, step)`` and the puzzle set.

    Returns a dict with ``puzzles``, ``solutions`` (int64 (B, N)) and, for the ARM,
    ``tokens`` (int64 (B, 3N)) and ``prompt`` (int64 (B,)).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), _DATA, int(step)]))
    idx = rng.integers(0, len(ps), size=cfg.batch_size)
    p = ps.puzzles[idx].astype(np.int64)
    s = ps.solutions[idx].astype(np.int64)
    if cfg.augment:
        n = ps.box**2
        perms = rng.permuted(np.tile(np.arange(1, n + 1), (cfg.batch_size, 1)), axis=1)
        p, s = relabel_digits(p, perms), relabel_digits(s, perms)
    out = {"puzzles": p, "solutions": s}
    if cfg.kind == "arm":
        orders = ps.orders[idx] if cfg.arm_order == "solver" else None
        out["tokens"], out["prompt"] = arm_tokens(p, s, orders)
    return out


# -- losses --------------------------------------------------------------------------------
def mdm_sudoku_inputs(puzzles: torch.Tensor, grid: torch.Tensor, mask_id: int) -> torch.Tensor:
    """MDM input ``[clues | solution half]``: blank cells of ``grid`` (0) become the mask id.

    Parameters
    ----------
    puzzles : int64 tensor, shape (B, N)
        The clues (0 = blank).
    grid : int64 tensor, shape (B, N)
        The solution half so far (0 = still masked); clue cells hold their clue.
    """
    return torch.cat([puzzles, torch.where(grid > 0, grid, mask_id)], dim=1)


def mdm_sudoku_loss(model, puzzles: torch.Tensor, solutions: torch.Tensor, *,
                    generator: torch.Generator | None = None,
                    reduction: str = "mean") -> torch.Tensor:
    """One Monte Carlo estimate of the blank-cell ELBO (module docstring), nats per blank.

    Parameters
    ----------
    model : MaskedDiffusionTransformer
        Vocabulary n + 1 (digits 0..n), mask id n + 1.
    puzzles, solutions : int64 tensors, shape (B, N)
    generator : torch.Generator, optional
        Draws t and the masks (on the tensors' device).
    reduction : {"mean", "none"}

    Returns
    -------
    float32 tensor, shape () or (B,)
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    b, n_cells = puzzles.shape
    blank = puzzles == 0
    n_blank = blank.sum(dim=1)
    if bool((n_blank == 0).any()):
        raise ValueError("every puzzle needs at least one blank cell to be masked")
    mask, weight = loss_masks(b, n_cells, kind="elbo", schedule="linear", generator=generator,
                              device=puzzles.device)
    mask &= blank
    grid = torch.where(mask, 0, solutions)
    logits = model(mdm_sudoku_inputs(puzzles, grid, model.mask_id))[:, n_cells:].float()
    nll = F.cross_entropy(logits.reshape(b * n_cells, -1), solutions.reshape(-1),
                          reduction="none").view(b, n_cells)
    per = weight * torch.where(mask, nll, 0.0).sum(dim=1) / n_blank
    return per.mean() if reduction == "mean" else per


def _arm_step_inputs(tokens: torch.Tensor, bos_id: int):
    b, length = tokens.shape
    dev = tokens.device
    inp = torch.cat([torch.full((b, 1), bos_id, dtype=torch.long, device=dev),
                     tokens[:, :-1]], dim=1)
    pos = torch.arange(length, device=dev)
    in_pos = torch.cat([torch.tensor([length], device=dev), pos[:-1]]).expand(b, -1)
    return inp, in_pos, pos.expand(b, -1)


def arm_sudoku_loss(model: PiLearner, tokens: torch.Tensor, prompt: torch.Tensor, *,
                    reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (nats per token) of the blank triples, teacher-forced.

    Parameters
    ----------
    model : PiLearner
        Read in the identity order: step t predicts ``tokens[:, t]`` from ``tokens[:, :t]``.
    tokens : int64 tensor, shape (B, 3N)
    prompt : int64 tensor, shape (B,)
        Tokens of the clue triples; only positions ``>= prompt`` enter the loss.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    logits = model.forward_steps(*_arm_step_inputs(tokens, model.cfg.bos_id)).float()
    nll = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")
    target = torch.arange(tokens.shape[1], device=tokens.device)[None] >= prompt[:, None]
    per_tok = torch.where(target, nll, 0.0)
    if reduction == "none":
        return per_tok.sum(dim=1) / target.sum(dim=1).clamp_min(1)
    return per_tok.sum() / target.sum().clamp_min(1)


# -- checkpoints ---------------------------------------------------------------------------
@dataclass
class SudokuModel:
    """A trained (or loaded) Sudoku model.

    Attributes
    ----------
    model : MaskedDiffusionTransformer or PiLearner
        In eval mode.
    config : SudokuTrainConfig
    step : int
        Optimiser steps taken.
    history : list of dict
        Log entries ``{"step", "train_loss", "lr", "seconds"}``.
    data_hash : str
        :func:`puzzles_hash` of the training set.
    train_seconds : float
        Wall time of the training loop, summed over resumed sessions.
    gpu_seconds : float
        The part of ``train_seconds`` spent on a CUDA device.
    device : str
        Device(s) trained on.
    finished : bool
        ``step == config.steps``.
    path : Path or None
    """

    model: torch.nn.Module
    config: SudokuTrainConfig
    step: int
    history: list = field(default_factory=list)
    data_hash: str = ""
    train_seconds: float = 0.0
    gpu_seconds: float = 0.0
    device: str = "cpu"
    finished: bool = False
    path: Path | None = None

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def name(self) -> str:
        return self.config.name

    def summary(self) -> dict:
        """JSON-ready description (config, shape, steps, seed, times)."""
        return {"name": self.name, "config": self.config.to_dict(),
                "model_shape": _model_shape(self.model), "n_params": _n_params(self.model),
                "step": self.step, "steps": self.config.steps, "seed": self.config.seed,
                "finished": self.finished, "train_seconds": self.train_seconds,
                "gpu_seconds": self.gpu_seconds, "device": self.device,
                "data_hash": self.data_hash,
                "final_train_loss": next((h["train_loss"] for h in reversed(self.history)
                                          if "train_loss" in h), None)}


def _save(path: Path, *, model, opt, sched, step, cfg, data_hash, history, seconds,
          gpu_seconds, device, running=None) -> Path:
    state = {
        "format": CKPT_FORMAT, "format_version": CKPT_VERSION,
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "step": int(step), "config": cfg.to_dict(),
        "model_shape": _model_shape(model), "seed": cfg.seed, "data_hash": data_hash,
        "history": to_jsonable(history), "running_loss": running or {},
        "train_seconds": float(seconds),
        "gpu_seconds": float(gpu_seconds), "device": device,
        "provenance": provenance(cfg.to_dict(), cfg.seed),
    }
    return write_state(path, state)


def _read(path: str | os.PathLike) -> dict:
    return read_state(path, fmt=CKPT_FORMAT, version=CKPT_VERSION, what="Sudoku")


def load_sudoku_model(path: str | os.PathLike, *,
                      device: str | torch.device = "cpu") -> SudokuModel:
    """Load a checkpoint written by :func:`train_sudoku` (file or run folder)."""
    state = _read(path)
    cfg = SudokuTrainConfig(**state["config"])
    model = build_sudoku_model(cfg)
    load_finite_weights(model, state["model"], path)
    model.to(select_device(device)).eval()
    return SudokuModel(model=model, config=cfg, step=int(state["step"]),
                       history=list(state.get("history", [])), data_hash=state["data_hash"],
                       train_seconds=float(state["train_seconds"]),
                       gpu_seconds=float(state["gpu_seconds"]), device=state["device"],
                       finished=int(state["step"]) == cfg.steps, path=Path(path))


def _lr_factor(step: int, cfg: SudokuTrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to min_lr / lr at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr / cfg.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# -- training ------------------------------------------------------------------------------
def train_sudoku(config: SudokuTrainConfig, puzzles: PuzzleSet, out_dir: str | os.PathLike, *,
                 resume: bool = False, stop_after: int | None = None,
                 max_seconds: float | None = None, progress: bool = True,
                 log=None) -> SudokuModel:
    """Train a Sudoku MDM or ARM on a puzzle set (resumable, exact on resume).

    Step s draws its puzzles and digit relabellings from ``SeedSequence([seed, 0, s])``
    and its masks from a torch generator seeded from ``[seed, 1, s]``, so a resumed run
    takes exactly the steps an uninterrupted one would (bitwise equal on CPU).

    Parameters
    ----------
    config : SudokuTrainConfig
    puzzles : PuzzleSet
        Training puzzles with the solver's orders (:func:`lohard.sudoku.load_puzzles` or
        :func:`lohard.sudoku.generate_puzzles`); its box must be ``config.box``.
    out_dir : str or path
        Run folder: ``checkpoint.pt`` (atomic), ``config.json``, ``log.jsonl``.
    resume : bool
        Continue ``out_dir/checkpoint.pt``; its config and data hash must match. Without
        it an existing checkpoint is an error (no silent overwrite).
    stop_after : int, optional
        Stop with a checkpoint after this many total steps (schedule of ``config.steps``).
    max_seconds : float, optional
        Stop with a checkpoint once this session has trained this long; rerun with
        ``resume=True`` to continue. The final model does not depend on where it stopped.
    progress : bool
        tqdm bar.
    log : callable, optional
        Called with each log entry.

    Returns
    -------
    SudokuModel
        ``finished`` is False when stopped early.
    """
    cfg = config
    check_stop_after(stop_after)
    if puzzles.box != cfg.box:
        raise ValueError(f"the puzzles have box b = {puzzles.box}, the config asks for "
                         f"b = {cfg.box}")
    if len(puzzles) == 0:
        raise ValueError("the training set holds no puzzle")
    if int((puzzles.puzzles == 0).sum(axis=1).min()) == 0:
        raise ValueError("every training puzzle needs at least one blank cell")
    out = Path(out_dir)
    ckpt_path = out / CKPT_NAME
    device = select_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    data_hash = puzzles_hash(puzzles)
    model = build_sudoku_model(cfg).to(device)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr,
                            betas=cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
    history: list[dict[str, Any]] = []
    start, seconds, gpu_seconds, devices, running_state = 0, 0.0, 0.0, [], {}
    if ckpt_path.exists() and not resume:
        raise ValueError(f"{ckpt_path} exists; pass resume=True (--resume) to continue it, or "
                         f"choose another output folder")
    if resume and ckpt_path.exists():
        state = _read(ckpt_path)
        saved = SudokuTrainConfig(**state["config"]).to_dict()
        # The device may change between sessions (e.g. CPU then CUDA); nothing else may.
        diff = {k: (saved[k], v) for k, v in cfg.to_dict().items()
                if k != "device" and to_jsonable(saved[k]) != to_jsonable(v)}
        if diff:
            raise ValueError(f"{ckpt_path} was trained with another config; differing fields "
                             f"(checkpoint, asked): {diff}")
        if state["data_hash"] != data_hash:
            raise ValueError(f"{ckpt_path} was trained on other puzzles (hash "
                             f"{state['data_hash'][:12]}, given {data_hash[:12]})")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
        history = list(state.get("history", []))
        seconds, gpu_seconds = float(state["train_seconds"]), float(state["gpu_seconds"])
        devices = [d for d in str(state["device"]).split(",") if d]
        running_state = state.get("running_loss") or {}
    if str(device) not in devices:
        devices.append(str(device))
    atomic_write_json(out / "config.json", {
        **provenance(cfg.to_dict(), cfg.seed), "model_shape": _model_shape(model),
        "n_params": _n_params(model), "device": str(device), "data_hash": data_hash,
        "train_puzzles": len(puzzles), "data_meta": puzzles.meta.get("config")})
    end = cfg.steps if stop_after is None else min(cfg.steps, int(stop_after))
    gen = torch.Generator(device=device)
    out.mkdir(parents=True, exist_ok=True)
    logf = open_log(out / "log.jsonl", history)

    def record(entry: dict) -> None:
        history.append(entry)
        logf.write(json.dumps(to_jsonable(entry)) + "\n")
        logf.flush()
        if log is not None:
            log(entry)

    t_session = time.perf_counter()

    def elapsed() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t_session

    def save(step: int) -> None:
        running.check(step)
        check_finite_parameters(model, f"step {step}")
        dt = elapsed()
        _save(ckpt_path, model=model, opt=opt, sched=sched, step=step, cfg=cfg,
              data_hash=data_hash, history=history, seconds=seconds + dt,
              gpu_seconds=gpu_seconds + (dt if device.type == "cuda" else 0.0),
              device=",".join(devices), running=running.state())

    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=f"train {cfg.name}",
               dynamic_ncols=True)
    model.train()
    running = RunningLoss(device, running_state)
    done = start
    try:
        for step in range(start, end):
            # No device sync here: the deadline may overshoot by the queued steps.
            if max_seconds is not None and time.perf_counter() - t_session >= max_seconds:
                break
            batch = training_batch(puzzles, cfg, step)
            ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
            with ctx:
                if cfg.kind == "mdm":
                    gen.manual_seed(_seed_of(cfg.seed, _MASK, step))
                    p = torch.from_numpy(batch["puzzles"]).to(device, non_blocking=True)
                    s = torch.from_numpy(batch["solutions"]).to(device, non_blocking=True)
                    loss = mdm_sudoku_loss(model, p, s, generator=gen)
                else:
                    tok = torch.from_numpy(batch["tokens"]).to(device, non_blocking=True)
                    pr = torch.from_numpy(batch["prompt"]).to(device, non_blocking=True)
                    loss = arm_sudoku_loss(model, tok, pr)
            optimiser_step(model, loss, opt, sched, cfg.grad_clip)
            running.add(loss)
            done = step + 1
            if cfg.log_every and (done % cfg.log_every == 0 or done == cfg.steps):
                value = running.read(done)
                record({"step": done, "train_loss": value, "lr": sched.get_last_lr()[0],
                        "seconds": seconds + elapsed()})
                bar.set_postfix(loss=f"{value:.4f}")
            bar.update(1)
            if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done != end:
                save(done)
        if done > start or not ckpt_path.exists():
            save(done)
    finally:
        bar.close()
        logf.close()
    dt = elapsed()
    model.eval()
    return SudokuModel(model=model, config=cfg, step=done, history=history,
                       data_hash=data_hash, train_seconds=seconds + dt,
                       gpu_seconds=gpu_seconds + (dt if device.type == "cuda" else 0.0),
                       device=",".join(devices), finished=done == cfg.steps, path=ckpt_path)


# -- decoding ------------------------------------------------------------------------------
@dataclass
class SudokuDecode:
    """Decoded grids and the order in which their cells were filled.

    Attributes
    ----------
    method : str
    grids : int64 array, shape (M, N)
        Decoded grids (0 where a malformed ARM sequence left a cell blank).
    steps : int64 array, shape (M, N)
        Step (0-based forward pass) at which each blank cell was filled; -1 for clues
        and for cells left blank.
    solved : bool array, shape (M,)
        :func:`lohard.sudoku.valid_solutions`: full valid grid keeping every clue.
    well_formed : bool array, shape (M,)
        ARM only: every triple well formed and every cell named once (True otherwise).
    seconds : float
    options : dict
    """

    method: str
    grids: np.ndarray
    steps: np.ndarray
    solved: np.ndarray
    well_formed: np.ndarray
    seconds: float = 0.0
    options: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float(self.solved.mean()) if self.solved.size else float("nan")


def _as_puzzle_array(puzzles, box: int) -> np.ndarray:
    p = np.asarray(puzzles.puzzles if isinstance(puzzles, PuzzleSet) else puzzles)
    p = p.astype(np.int64)
    if p.ndim == 1:
        p = p[None]
    N = box**4
    if p.ndim != 2 or p.shape[1] != N:
        raise ValueError(f"puzzles must have shape (M, N) = (M, {N}) for box b = {box}, got "
                         f"{p.shape}")
    if p.min(initial=0) < 0 or p.max(initial=0) > box**2:
        raise ValueError(f"puzzle digits must lie in 0..n = 0..{box**2}")
    return p


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _gumbel(shape, generator, device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device).clamp_min(1e-20)
    return -torch.log(-torch.log(u))


def _digit_logp(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p over the digits 1..n (column v-1 for digit v), value 0 excluded."""
    x = logits[..., 1:].float()
    if bool(torch.isnan(x).any()):
        raise FloatingPointError("the model gave NaN logits (non-finite weights or inputs)")
    return torch.log_softmax(x / (temperature if temperature > 0 else 1.0), dim=-1)


def _check_decode_opts(method, cells_per_step, noise_scale, temperature, batch_size):
    if method not in MDM_DECODERS:
        raise ValueError(f"unknown MDM decoder {method!r}; choose one of "
                         f"{', '.join(MDM_DECODERS)}")
    if int(cells_per_step) != cells_per_step or cells_per_step < 1:
        raise ValueError(f"cells_per_step must be an integer >= 1, got {cells_per_step}")
    if not (noise_scale >= 0 and math.isfinite(noise_scale)):
        raise ValueError(f"noise_scale must be finite and >= 0, got {noise_scale}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be finite and >= 0 (0: argmax), got {temperature}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")


@torch.no_grad()
def mdm_decode(model: MaskedDiffusionTransformer, puzzles, *, method: str = "margin",
               cells_per_step: int = 1, noise_scale: float = DEFAULT_NOISE_SCALE,
               temperature: float = 1.0, batch_size: int = 1024, seed: int = 0,
               amp: bool = True) -> SudokuDecode:
    """Fill the blanks of Sudoku puzzles with an MDM, in a vanilla or adaptive order.

    Parameters
    ----------
    model : MaskedDiffusionTransformer
        Trained on the Sudoku layout (vocabulary n + 1).
    puzzles : int array, shape (M, N), or PuzzleSet
    method : {"vanilla", "top-prob", "margin"}
        How the cells to unmask are chosen (module docstring).
    cells_per_step : int
        Cells unmasked per forward pass (the last step takes what is left).
    noise_scale : float
        Coefficient of the Gumbel noise on the adaptive scores (App. D.2: 0.5; 0: none).
    temperature : float
        Of the value draws over the digits (0: argmax).
    batch_size : int
    seed : int
        Seeds the torch generator (on the model's device); the output is a function of
        the seed, the batch size and the device.
    amp : bool
        bf16 autocast on CUDA.

    Returns
    -------
    SudokuDecode
        Clue cells are never written: only masked solution tokens are ever replaced.
    """
    _check_decode_opts(method, cells_per_step, noise_scale, temperature, batch_size)
    n = model.vocab_size - 1
    box = int(round(math.sqrt(n)))
    p_all = _as_puzzle_array(puzzles, box)
    M, N = p_all.shape
    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    grids = np.zeros((M, N), np.int64)
    steps = np.full((M, N), -1, np.int64)
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    try:
        for lo in range(0, M, batch_size):
            p = torch.from_numpy(p_all[lo:lo + batch_size]).to(device)
            g, st = _mdm_decode_batch(model, p, method, int(cells_per_step), float(noise_scale),
                                      float(temperature), gen, use_amp)
            grids[lo:lo + batch_size] = g.cpu().numpy()
            steps[lo:lo + batch_size] = st.cpu().numpy()
    finally:
        model.train(was)
    solved = valid_solutions(grids, p_all, box=box)
    return SudokuDecode(method, grids, steps, solved, np.ones(M, bool),
                        time.perf_counter() - t0,
                        {"cells_per_step": int(cells_per_step), "noise": "gumbel",
                         "noise_scale": float(noise_scale) if method != "vanilla" else 0.0,
                         "temperature": float(temperature), "seed": int(seed),
                         "batch_size": int(batch_size)})


def _mdm_decode_batch(model, p, method, cells_per_step, noise_scale, temperature, gen,
                      use_amp):
    device = p.device
    grid = p.clone()
    steps = torch.full_like(p, -1)
    amp_ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
    N = p.shape[1]
    j = 0
    while True:
        masked = grid == 0
        count = masked.sum(dim=1)
        if not bool(count.any()):
            break
        with amp_ctx:
            logits = model(mdm_sudoku_inputs(p, grid, model.mask_id))[:, N:]
        logp = _digit_logp(logits, temperature)
        if temperature > 0:
            values = (logp + _gumbel(logp.shape, gen, device)).argmax(dim=-1) + 1
        else:
            values = logp.argmax(dim=-1) + 1
        if method == "vanilla":
            score = torch.rand(grid.shape, generator=gen, device=device)
        else:
            # The oracle scores the model's own distribution (temperature 1).
            probs = _digit_logp(logits, 1.0).exp()
            top2 = probs.topk(2, dim=-1).values
            score = top2[..., 0] if method == "top-prob" else top2[..., 0] - top2[..., 1]
            if noise_scale > 0:
                score = score + noise_scale * _gumbel(score.shape, gen, device)
        k = count.clamp(max=cells_per_step)
        chosen = select_top_k(score, masked, k)
        grid = torch.where(chosen, values, grid)
        steps = torch.where(chosen, j, steps)
        j += 1
    return grid, steps


def arm_prompts(puzzles, *, box: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The clue triples of :func:`lohard.sudoku.arm_tokens` (row-major), zero-padded.

    Returns ``(tokens int64 (M, 3N), prompt_length int64 (M,))``.
    """
    p = _as_puzzle_array(puzzles, box)
    n = box**2
    M, N = p.shape
    tokens = np.zeros((M, 3 * N), np.int64)
    prompt = 3 * (p != 0).sum(axis=1)
    for i in range(M):
        cells = np.flatnonzero(p[i])
        r, c = np.divmod(cells, n)
        tokens[i, 0:3 * cells.size:3] = n + 1 + r
        tokens[i, 1:3 * cells.size:3] = 2 * n + 1 + c
        tokens[i, 2:3 * cells.size:3] = p[i, cells]
    return tokens, prompt


@torch.no_grad()
def arm_decode(model: PiLearner, puzzles, *, box: int | None = None, batch_size: int = 1024,
               amp: bool = True) -> SudokuDecode:
    """Generate the blank triples of Sudoku puzzles greedily with a triple ARM.

    Each generated slot is restricted to its token type (row, column or value by its
    position in the triple) and takes the argmax. No other constraint is imposed: a
    triple may name a filled cell (the sequence is then malformed and the grid unsolved;
    the clue is kept).

    Parameters
    ----------
    model : PiLearner
        Trained by :func:`train_sudoku` with ``kind="arm"``.
    puzzles : int array, shape (M, N), or PuzzleSet
    box : int, optional
        Inferred from the model's length 3N.
    batch_size : int
    amp : bool

    Returns
    -------
    SudokuDecode
    """
    length = model.cfg.length
    b = int(round((length // 3) ** 0.25)) if box is None else check_box(box)
    if 3 * b**4 != length or model.cfg.vocab_size != 3 * b**2 + 1:
        raise ValueError(f"the ARM's length {length} and vocabulary {model.cfg.vocab_size} do "
                         f"not fit box b = {b} (need 3N = {3 * b**4}, 3n + 1 = {3 * b * b + 1})")
    n = b * b
    p_all = _as_puzzle_array(puzzles, b)
    M, N = p_all.shape
    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    tokens_all, prompt_all = arm_prompts(p_all, box=b)
    # Allowed ids per slot type: 0 row, 1 column, 2 value.
    allowed = torch.zeros(3, 3 * n + 1, dtype=torch.bool, device=device)
    allowed[0, n + 1:2 * n + 1] = True
    allowed[1, 2 * n + 1:3 * n + 1] = True
    allowed[2, 1:n + 1] = True
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    out_tokens = np.zeros_like(tokens_all)
    try:
        for lo in range(0, M, batch_size):
            x = torch.from_numpy(tokens_all[lo:lo + batch_size]).to(device)
            pr = torch.from_numpy(prompt_all[lo:lo + batch_size]).to(device)
            inp_all, in_pos_all, tgt_all = _arm_step_inputs(x, model.cfg.bos_id)
            ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
            nan_seen = torch.zeros((), dtype=torch.bool, device=device)
            for t in range(int(pr.min()), length):
                # Step t reads tokens 0..t-1 (and BOS) and predicts token t.
                inp = torch.cat([inp_all[:, :1], x[:, :t]], dim=1)
                with ctx:
                    logits = model.forward_steps(inp, in_pos_all[:, :t + 1],
                                                 tgt_all[:, :t + 1])[:, t].float()
                nan_seen |= torch.isnan(logits).any()  # checked once per batch, no sync
                logits = logits.masked_fill(~allowed[t % 3], -math.inf)
                pred = logits.argmax(dim=-1)
                x[:, t] = torch.where(t >= pr, pred, x[:, t])
            if bool(nan_seen):
                raise FloatingPointError("the ARM gave NaN logits (non-finite weights or inputs)")
            out_tokens[lo:lo + batch_size] = x.cpu().numpy()
    finally:
        model.train(was)
    grids, ok = decode_arm_tokens(out_tokens, box=b)
    # A clue named again by a generated triple keeps the clue (decode_arm_tokens keeps the
    # first occurrence); the guard below makes that explicit.
    grids = np.where(p_all > 0, p_all, grids)
    steps = np.full((M, N), -1, np.int64)
    for i in range(M):
        tri = out_tokens[i, prompt_all[i]:].reshape(-1, 3)
        r, c = tri[:, 0] - (n + 1), tri[:, 1] - (2 * n + 1)
        for j, (rr, cc) in enumerate(zip(r, c, strict=True)):
            if 0 <= rr < n and 0 <= cc < n:
                cell = rr * n + cc
                if p_all[i, cell] == 0 and steps[i, cell] < 0:
                    steps[i, cell] = j
    solved = valid_solutions(grids, p_all, box=b) & ok
    return SudokuDecode("arm", grids, steps, solved, ok, time.perf_counter() - t0,
                        {"greedy": True, "slot_types": True, "batch_size": int(batch_size),
                         "tokens": out_tokens})


class _LockstepValues:
    """MDM values for many concurrent :func:`lohard.sudoku.bp_decode` runs, one batched
    forward pass per round: each run (a thread) posts its grid and cell and waits; the
    last to post runs the model for everybody."""

    def __init__(self, model, puzzles: np.ndarray, temperature: float, seed: int,
                 use_amp: bool, offset: int) -> None:
        self.model = model
        self.puzzles = puzzles
        self.temperature = temperature
        self.use_amp = use_amp
        self.rngs = [np.random.default_rng(np.random.SeedSequence([int(seed), offset + i]))
                     for i in range(puzzles.shape[0])]
        self.cv = threading.Condition()
        self.active = puzzles.shape[0]
        self.pending: dict[int, tuple[np.ndarray, int]] = {}
        self.results: dict[int, np.ndarray] = {}
        self.error: BaseException | None = None

    def _run(self) -> None:
        ids = sorted(self.pending)
        device = _model_device(self.model)
        p = torch.from_numpy(self.puzzles[ids]).to(device)
        g = torch.from_numpy(np.stack([self.pending[i][0] for i in ids])).to(device)
        cells = torch.tensor([self.pending[i][1] for i in ids], device=device)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else nullcontext()
        with torch.no_grad(), ctx:
            logits = self.model(mdm_sudoku_inputs(p, g, self.model.mask_id))
        N = p.shape[1]
        rows = logits[torch.arange(len(ids), device=device), N + cells]
        logp = _digit_logp(rows, self.temperature).cpu().double().numpy()
        for i, lp in zip(ids, logp, strict=True):
            self.results[i] = lp
        self.pending.clear()

    def value_fn(self, i: int):
        def fn(grid: np.ndarray, cell: int, marginals: np.ndarray) -> int:
            with self.cv:
                self.pending[i] = (grid.astype(np.int64), int(cell))
                while i not in self.results:
                    if self.error is not None:
                        raise RuntimeError("another BP-MDM decoding thread failed") \
                            from self.error
                    if len(self.pending) == self.active:
                        try:
                            self._run()
                        except BaseException as err:
                            self.error = err
                            self.cv.notify_all()
                            raise
                        self.cv.notify_all()
                    else:
                        self.cv.wait()
                lp = self.results.pop(i)
            if self.temperature > 0:
                pr = np.exp(lp - lp.max())
                return int(self.rngs[i].choice(lp.size, p=pr / pr.sum())) + 1
            return int(np.argmax(lp)) + 1
        return fn

    def finished(self) -> None:
        with self.cv:
            self.active -= 1
            if self.active and len(self.pending) == self.active:
                try:
                    self._run()
                except BaseException as err:
                    self.error = err
                    raise
                finally:
                    self.cv.notify_all()


def _bp_one(p: np.ndarray, score: str, box: int):
    r = bp_decode(p, score=score, box=box)
    return r.grid, r.order


def bp_oracle_decode(puzzles, *, model: MaskedDiffusionTransformer | None = None,
                     box: int | None = None, score: str = "margin", temperature: float = 1.0,
                     seed: int = 0, batch_size: int = 256, jobs: int = 1,
                     amp: bool = True, progress: bool = False) -> SudokuDecode:
    """Decode in the order belief propagation is most confident about (an ordering oracle).

    Each step runs BP on the current grid (:func:`lohard.sudoku.bp_decode`), unmasks the
    blank with the best BP ``score`` and writes BP's most probable digit (``model`` None:
    method ``"bp"``) or a digit drawn from the MDM's prediction at that cell given the
    current grid (method ``"bp-mdm"``, through ``bp_decode``'s ``value_fn``).

    Parameters
    ----------
    puzzles : int array, shape (M, N), or PuzzleSet
    model : MaskedDiffusionTransformer, optional
    box : int, optional
        Required without a model (inferred from the model otherwise, else from N).
    score : {"margin", "max"}
        BP's oracle score.
    temperature : float
        Of the MDM's value draws (0: argmax); puzzle i draws from its own stream
        ``SeedSequence([seed, i])``, so results do not depend on thread timing.
    seed : int
    batch_size : int
        Puzzles decoded concurrently (threads) with a model: one forward pass per round.
    jobs : int
        Processes for pure BP decoding (joblib; 1: serial).
    amp : bool
    progress : bool

    Returns
    -------
    SudokuDecode
    """
    if model is not None:
        b = int(round(math.sqrt(model.vocab_size - 1)))
    elif box is not None:
        b = check_box(box)
    else:
        N = np.asarray(puzzles.puzzles if isinstance(puzzles, PuzzleSet) else puzzles).shape[-1]
        b = int(round(N ** 0.25))
    p_all = _as_puzzle_array(puzzles, b)
    M, N = p_all.shape
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be finite and >= 0 (0: argmax), got {temperature}")
    grids = np.zeros((M, N), np.int64)
    steps = np.full((M, N), -1, np.int64)
    t0 = time.perf_counter()
    bar = tqdm(total=M, disable=not progress, desc="bp" if model is None else "bp-mdm",
               unit="puzzle", dynamic_ncols=True)

    def store(i, grid, order):
        grids[i] = grid
        steps[i, order] = np.arange(order.size)

    try:
        if model is None:
            if jobs == 1:
                for i in range(M):
                    store(i, *_bp_one(p_all[i], score, b))
                    bar.update(1)
            else:
                from joblib import Parallel, delayed

                chunk = max(1, batch_size)
                for lo in range(0, M, chunk):
                    res = Parallel(n_jobs=jobs)(delayed(_bp_one)(p_all[i], score, b)
                                                for i in range(lo, min(M, lo + chunk)))
                    for k, (g, o) in enumerate(res):
                        store(lo + k, g, o)
                    bar.update(len(res))
        else:
            device = _model_device(model)
            was = model.training
            model.eval()
            try:
                for lo in range(0, M, batch_size):
                    hi = min(M, lo + batch_size)
                    lock = _LockstepValues(model, p_all[lo:hi], float(temperature), seed,
                                           amp and device.type == "cuda", lo)
                    results: dict[int, Any] = {}

                    def work(k, lock=lock, results=results, lo=lo):
                        try:
                            results[k] = bp_decode(p_all[lo + k], score=score,
                                                   value_fn=lock.value_fn(k), box=b)
                        except BaseException as err:  # reported by the main thread
                            results[k] = err
                        finally:
                            lock.finished()

                    threads = [threading.Thread(target=work, args=(k,), daemon=True)
                               for k in range(hi - lo)]
                    for th in threads:
                        th.start()
                    for th in threads:
                        th.join()
                    for k in range(hi - lo):
                        r = results[k]
                        if isinstance(r, BaseException):
                            raise RuntimeError(f"BP-MDM decoding of puzzle {lo + k} failed") \
                                from r
                        store(lo + k, r.grid, r.order)
                    bar.update(hi - lo)
            finally:
                model.train(was)
    finally:
        bar.close()
    solved = valid_solutions(grids, p_all, box=b)
    return SudokuDecode("bp" if model is None else "bp-mdm", grids, steps, solved,
                        np.ones(M, bool), time.perf_counter() - t0,
                        {"score": score, "temperature": float(temperature) if model else 0.0,
                         "seed": int(seed)})


# -- metrics -------------------------------------------------------------------------------
def solver_steps(orders, puzzles) -> np.ndarray:
    """int64 (M, N): the step at which the strategy solver filled each blank (-1: clue).

    Parameters
    ----------
    orders : int array, shape (M, N)
        The rater's orders (cells, then -1 padding), e.g. ``PuzzleSet.orders``.
    puzzles : int array, shape (M, N)
    """
    o = np.asarray(orders, np.int64)
    p = np.asarray(puzzles, np.int64)
    if o.ndim == 1:
        o, p = o[None], p[None]
    if o.shape != p.shape:
        raise ValueError(f"orders and puzzles must have the same shape, got {o.shape} and "
                         f"{p.shape}")
    steps = np.full(o.shape, -1, np.int64)
    for i in range(o.shape[0]):
        cells = o[i][o[i] >= 0]
        if not np.array_equal(np.sort(cells), np.flatnonzero(p[i] == 0)):
            raise ValueError(f"orders[{i}] is not a permutation of puzzle {i}'s blank cells")
        steps[i, cells] = np.arange(cells.size)
    return steps


def spearman(a, b) -> float:
    """Spearman rank correlation of two 1-D arrays (average ranks for ties).

    NaN when fewer than two values or when either side is constant.
    """
    from scipy.stats import rankdata

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if a.size < 2:
        return float("nan")
    ra, rb = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def order_agreement(steps_a, steps_b) -> np.ndarray:
    """Per-puzzle Spearman correlation of two decoding orders over their common cells.

    Parameters
    ----------
    steps_a, steps_b : int arrays, shape (M, N)
        Step at which each cell was filled, -1 for clues or unfilled cells (e.g.
        :attr:`SudokuDecode.steps` and :func:`solver_steps`).

    Returns
    -------
    float64 array, shape (M,)
        NaN where fewer than two cells were filled by both.
    """
    a = np.asarray(steps_a, np.int64)
    b = np.asarray(steps_b, np.int64)
    if a.shape != b.shape:
        raise ValueError(f"step arrays must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim == 1:
        a, b = a[None], b[None]
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        both = (a[i] >= 0) & (b[i] >= 0)
        out[i] = spearman(a[i, both], b[i, both])
    return out


def proportion_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (default 95%)."""
    if n <= 0:
        return float("nan"), float("nan")
    ph = k / n
    den = 1 + z * z / n
    mid = (ph + z * z / (2 * n)) / den
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    """Pooled two-proportion z statistic of k1/n1 against k2/n2 (positive: first larger)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"need n1, n2 >= 1, got {n1}, {n2}")
    pool = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0 if k1 * n2 == k2 * n1 else math.copysign(math.inf, k1 / n1 - k2 / n2)
    return (k1 / n1 - k2 / n2) / se


def summarize_decode(dec: SudokuDecode, solver: np.ndarray | None = None) -> dict:
    """Accuracy (with Wilson 95% interval) and order agreement with the solver, as a dict."""
    k, n = int(dec.solved.sum()), int(dec.solved.size)
    lo, hi = proportion_ci(k, n)
    out = {"method": dec.method, "num": n, "solved": k,
           "accuracy": k / n if n else float("nan"), "ci95": [lo, hi],
           "well_formed": float(dec.well_formed.mean()) if n else float("nan"),
           "seconds": dec.seconds,
           "options": {key: v for key, v in dec.options.items() if key != "tokens"}}
    if solver is not None:
        rho = order_agreement(dec.steps, solver)
        good = np.isfinite(rho)
        out["order_spearman_mean"] = float(rho[good].mean()) if good.any() else float("nan")
        out["order_spearman_sem"] = (float(rho[good].std(ddof=1) / math.sqrt(good.sum()))
                                     if good.sum() > 1 else float("nan"))
        out["order_spearman_n"] = int(good.sum())
    return out


def evaluate_sudoku(sm: SudokuModel, test: PuzzleSet, *, decoders=None,
                    noise_scale: float = DEFAULT_NOISE_SCALE, temperature: float = 1.0,
                    cells_per_step: int = 1, seed: int = 0, batch_size: int = 1024,
                    bp_limit: int | None = None, jobs: int = 1,
                    progress: bool = False) -> tuple[dict, dict[str, SudokuDecode]]:
    """Decode a test set with every decoder of a model; accuracies and order agreements.

    Parameters
    ----------
    sm : SudokuModel
    test : PuzzleSet
        Test puzzles with their solver orders.
    decoders : list of str, optional
        MDM: from :data:`MDM_DECODERS` + :data:`BP_DECODERS` (default all), plus
        ``"top-prob-nonoise"`` / ``"margin-nonoise"`` (noise_scale 0); ARM: ``["arm"]``.
    bp_limit : int, optional
        Decode only the first ``bp_limit`` puzzles with the BP decoders (BP runs on CPU).
    jobs : int
        Processes for pure BP decoding.

    Returns
    -------
    results : dict
        decoder -> :func:`summarize_decode` dict.
    decodes : dict
        decoder -> :class:`SudokuDecode`.
    """
    if test.box != sm.config.box:
        raise ValueError(f"the test puzzles have box b = {test.box}, the model b = "
                         f"{sm.config.box}")
    solver = solver_steps(test.orders, test.puzzles)
    if sm.kind == "arm":
        decoders = ["arm"] if decoders is None else list(decoders)
        if decoders != ["arm"]:
            raise ValueError(f"an ARM has the single decoder 'arm', got {decoders}")
    elif decoders is None:
        decoders = list(MDM_DECODERS) + list(BP_DECODERS)
    results, decodes = {}, {}
    for name in decoders:
        if sm.kind == "arm":
            dec = arm_decode(sm.model, test.puzzles, box=test.box, batch_size=batch_size)
            dec.method = sm.name
        elif name in MDM_DECODERS or name.endswith("-nonoise"):
            base = name.removesuffix("-nonoise")
            dec = mdm_decode(sm.model, test.puzzles, method=base,
                             cells_per_step=cells_per_step,
                             noise_scale=0.0 if name.endswith("-nonoise") else noise_scale,
                             temperature=temperature, batch_size=batch_size, seed=seed)
            dec.method = name
        elif name in BP_DECODERS:
            m = len(test) if bp_limit is None else min(len(test), int(bp_limit))
            dec = bp_oracle_decode(test.puzzles[:m], model=sm.model if name == "bp-mdm" else
                                   None, box=test.box, temperature=temperature, seed=seed,
                                   jobs=jobs, progress=progress)
        else:
            raise ValueError(f"unknown decoder {name!r}; choose from "
                             f"{', '.join(MDM_DECODERS + BP_DECODERS)} (MDM) or 'arm'")
        m = dec.solved.size
        results[name] = summarize_decode(dec, solver[:m])
        decodes[name] = dec
    return results, decodes


__all__ = [
    "KINDS", "ARM_ORDERS", "MDM_DECODERS", "BP_DECODERS", "ARM_SIZES",
    "SudokuTrainConfig", "SudokuModel", "SudokuDecode",
    "mdm_sudoku_config", "arm_sudoku_config", "build_sudoku_model",
    "puzzles_hash", "relabel_digits", "training_batch",
    "mdm_sudoku_inputs", "mdm_sudoku_loss", "arm_sudoku_loss",
    "train_sudoku", "load_sudoku_model",
    "mdm_decode", "arm_prompts", "arm_decode", "bp_oracle_decode",
    "solver_steps", "spearman", "order_agreement", "proportion_ci", "two_proportion_z",
    "summarize_decode", "evaluate_sudoku",
]
