r"""Zebra models (Table 3): configuration, seeded batches, losses and resumable training.

Models, on the layouts of :mod:`lohard.zebra._encoding`:

* **MDM** (:class:`~lohard.mdm.MaskedDiffusionTransformer`, learned positions on top of
  RoPE): clue prompt then the ``N = n m`` solution tokens; only the solution is ever
  masked. Objective (continuous-time ELBO, linear schedule, Prop. 2.1), per solution
  token:

  .. math::

      \mathcal L = \mathbb E_{t \sim U(0,1]} \frac{1}{t\,N} \sum_{i \le N}
      \mathbf 1[x_t^i = \mathrm{mask}] \bigl(-\log p_\theta(x_0^i \mid x_t)\bigr),

  a cell's softmax taken over the m items of its attribute (what decoding reads).
* **ARM** (:class:`~lohard.mdm._pilearner.PiLearner` read left to right): the prompt,
  then (attribute, house, item) triples in the solver's order or row-major order;
  teacher-forced cross-entropy on the triples (:func:`arm_sudoku_loss`, shared with
  Sudoku).

Augmentation (``augment``): each sampled puzzle gets a random relabelling of every
attribute's values, a random order of the attributes and a random order of its clues;
the solution and the solver's order (cells move with their attribute) follow. The
strategies do not depend on labels, attribute order or clue order, so the moved order is
still a strategy path (each cell deducible at its step by the same strategy); but a
fresh solve of the transformed puzzle breaks ties by its own scan order and gives
another path for 198 of 200 4 x 4 puzzles (measured), as with Sudoku's relabelling.

The training loop is :func:`lohard.mdm._train.run_steps` with its checkpoints, logs and
time budget, as for Sudoku (single process).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lohard._util import DataError, atomic_write_json, provenance, to_jsonable
from lohard.mdm._config import check_optimisation, model_config
from lohard.mdm._loss import loss_masks
from lohard.mdm._model import MaskedDiffusionTransformer
from lohard.mdm._pilearner import PiLearner, PiLearnerConfig
from lohard.mdm._sudoku_config import (
    ARM_ORDERS,
    ARM_SIZES,
    KINDS,
    _model_shape,
    _n_params,
    _seed_of,
)
from lohard.mdm._sudoku_data import arm_sudoku_loss
from lohard.mdm._sudoku_train import SudokuModel
from lohard.mdm._train import (
    CKPT_NAME,
    check_finite_parameters,
    check_stop_after,
    load_finite_weights,
    make_optimizer,
    open_log,
    read_state,
    recorder,
    run_steps,
    select_device,
    write_state,
)
from lohard.zebra import ZebraLayout, ZebraSet, arm_tokens, check_size, mdm_tokens
from lohard.zebra._encoding import N_ITEMS

CKPT_FORMAT = "lohard.mdm.zebra-checkpoint"
CKPT_VERSION = 1
# Random streams mixed into the root seed.
_DATA, _MASK, _INIT = 0, 1, 2


@dataclass
class ZebraTrainConfig:
    """One Zebra training run; saved in every checkpoint and result file.

    Attributes
    ----------
    kind : {"mdm", "arm"}
    arm_order : {"solver", "row-major"}
        Order of the ARM's triples (ignored for the MDM).
    m, n, max_clues : int
        Puzzle size and clue slots (the layout; a model fits one size only).
    model : str
        MDM: a :data:`lohard.mdm.MODEL_CONFIGS` name; ARM: a Sudoku ``ARM_SIZES`` name.
    model_overrides : dict
        MDM config fields to override (defaults: learned positions, max_seq_len = P + N).
    steps, batch_size, lr, min_lr, warmup_steps, betas, weight_decay, grad_clip :
        AdamW with warm-up and cosine decay, as for Sudoku.
    augment : bool
        Relabel values, reorder attributes and clues per sample (module docstring).
    seed : int
    device : {"auto", "cpu", "cuda"}
    amp : bool
        bf16 autocast on CUDA.
    log_every, ckpt_every : int
    """

    kind: str = "mdm"
    arm_order: str = "solver"
    m: int = 4
    n: int = 4
    max_clues: int = 16
    model: str = "cpu-1m"
    model_overrides: dict = field(default_factory=dict)
    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
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
        self.m, self.n = check_size(self.m, self.n)
        ZebraLayout(self.m, self.n, self.max_clues)
        if self.kind == "arm" and self.model not in ARM_SIZES:
            raise ValueError(f"an ARM's model must be one of {', '.join(ARM_SIZES)}, got "
                             f"{self.model!r}")
        check_optimisation(self, ("steps", "batch_size"),
                           ("warmup_steps", "log_every", "ckpt_every"))

    @property
    def name(self) -> str:
        return "mdm" if self.kind == "mdm" else f"arm-{self.arm_order}"

    @property
    def layout(self) -> ZebraLayout:
        return ZebraLayout(self.m, self.n, self.max_clues)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_zebra_model(cfg: ZebraTrainConfig) -> torch.nn.Module:
    """A fresh model for ``cfg`` initialised from ``cfg.seed`` (global RNG untouched)."""
    lay = cfg.layout
    if cfg.kind == "mdm":
        over = {"max_seq_len": lay.mdm_length, "learned_pos": True, **cfg.model_overrides}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_of(cfg.seed, _INIT))
            return MaskedDiffusionTransformer(model_config(cfg.model, **over), lay.vocab_size)
    d, layers, heads = ARM_SIZES[cfg.model]
    pc = PiLearnerConfig(vocab_size=lay.vocab_size, length=lay.arm_length, d_model=d,
                         n_layers=layers, n_heads=heads)
    return PiLearner(pc, seed=_seed_of(cfg.seed, _INIT))


# -- data ----------------------------------------------------------------------------------
def augment_batch(sols, clues, n_clues, orders, rng: np.random.Generator):
    """Relabel values, permute attributes and shuffle clue order, per row.

    Parameters
    ----------
    sols : int array (B, n, m); clues : int array (B, C, 7); n_clues : (B,);
    orders : int array (B, n m)

    Returns the transformed ``(sols, clues, orders)`` (int64; clues keep their count).
    """
    s = np.asarray(sols, np.int64)
    B, n, m = s.shape
    vperm = rng.permuted(np.tile(np.arange(m), (B, n, 1)), axis=2)  # (B, n, m): old -> new
    aperm = rng.permuted(np.tile(np.arange(n), (B, 1)), axis=1)  # (B, n): old -> new attr
    bi = np.arange(B)[:, None, None]
    new_vals = np.take_along_axis(vperm, s, axis=2)  # relabelled, still at old attribute
    out = np.empty_like(s)
    out[bi, aperm[:, :, None], np.arange(m)[None, None, :]] = new_vals
    c = np.asarray(clues, np.int64).copy()
    C = c.shape[1]
    rows = np.arange(B)[:, None]
    code = c[:, :, 0]
    items = np.where(code >= 0, N_ITEMS[np.clip(code, 0, None)], 0)
    for j in range(3):
        a, v = c[:, :, 1 + 2 * j], c[:, :, 2 + 2 * j]
        valid = items > j
        a0, v0 = np.where(valid, a, 0), np.where(valid, v, 0)
        c[:, :, 1 + 2 * j] = np.where(valid, aperm[rows, a0], a)
        c[:, :, 2 + 2 * j] = np.where(valid, vperm[rows, a0, v0], v)
    key = np.where(np.arange(C)[None] < np.asarray(n_clues)[:, None], rng.random((B, C)), 2.0)
    c = np.take_along_axis(c, np.argsort(key, axis=1)[:, :, None], axis=1)
    o = np.asarray(orders, np.int64)
    o = aperm[rows, o // m] * m + o % m
    return out, c, o


def training_batch(ps: ZebraSet, cfg: ZebraTrainConfig, step: int) -> dict[str, np.ndarray]:
    """Step ``step``'s batch, a function of ``(cfg.seed, step)`` and the set: ``tokens``
    (MDM: (B, P + N); ARM: (B, P + 3N))."""
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), _DATA, int(step)]))
    idx = rng.integers(0, len(ps), size=cfg.batch_size)
    s, c, k, o = ps.solutions[idx], ps.clues[idx], ps.n_clues[idx], ps.orders[idx]
    if cfg.augment:
        s, c, o = augment_batch(s, c, k, o, rng)
    lay = cfg.layout
    if cfg.kind == "mdm":
        return {"tokens": mdm_tokens(c, k, s, lay)}
    return {"tokens": arm_tokens(c, k, s, lay, o if cfg.arm_order == "solver" else None)}


def cell_logits(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Logits of each solution cell's m candidate items.

    Parameters
    ----------
    logits : float tensor, shape (B, N, V)
        The model's logits at the solution positions.
    ids : int64 tensor, shape (N, m)
        :func:`lohard.zebra._encoding.cell_item_ids`.

    Returns
    -------
    float tensor, shape (B, N, m): column v is value v of the cell's attribute.
    """
    return torch.gather(logits, 2, ids[None].expand(logits.shape[0], -1, -1))


def mdm_zebra_loss(model, tokens: torch.Tensor, ids: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """One Monte Carlo estimate of the solution ELBO (module docstring), nats per cell.

    Parameters
    ----------
    tokens : int64 tensor, shape (B, P + N)
    ids : int64 tensor, shape (N, m)
        Candidate items per cell: the softmax runs over a cell's m values.
    """
    b, length = tokens.shape
    n_cells, m = ids.shape
    mask, weight = loss_masks(b, n_cells, kind="elbo", schedule="linear", generator=generator,
                              device=tokens.device)
    sol = tokens[:, length - n_cells:]
    x = torch.cat([tokens[:, :length - n_cells], torch.where(mask, model.mask_id, sol)], 1)
    logits = cell_logits(model(x)[:, length - n_cells:].float(), ids)
    target = (sol - ids[:, 0]).reshape(-1)  # the value: item id minus the cell's first id
    nll = F.cross_entropy(logits.reshape(-1, m), target, reduction="none").view(b, n_cells)
    return (weight * torch.where(mask, nll, 0.0).sum(dim=1) / n_cells).mean()


# -- checkpoints ---------------------------------------------------------------------------
@dataclass
class ZebraModel(SudokuModel):
    """A trained (or loaded) Zebra model: ``model`` in eval mode and its run record (the
    fields and summary of :class:`lohard.mdm._sudoku_train.SudokuModel`; ``config`` is a
    :class:`ZebraTrainConfig`)."""

    def check_size(self, ps: ZebraSet) -> None:
        """Raise ValueError unless the puzzles have the model's size and clue slots."""
        c = self.config
        if (ps.m, ps.n, ps.max_clues) != (c.m, c.n, c.max_clues):
            raise ValueError(f"the model was trained on {c.m} x {c.n} puzzles with "
                             f"{c.max_clues} clue slots; these are {ps.m} x {ps.n} with "
                             f"{ps.max_clues}")


def load_zebra_model(path: str | os.PathLike, *,
                     device: str | torch.device = "cpu") -> ZebraModel:
    """Load a checkpoint written by :func:`train_zebra` (file or run folder)."""
    state = read_state(path, fmt=CKPT_FORMAT, version=CKPT_VERSION, what="Zebra")
    try:
        cfg = ZebraTrainConfig(**state["config"])
    except (TypeError, ValueError) as err:
        raise DataError(f"{path} has an unreadable Zebra config ({err})") from err
    model = build_zebra_model(cfg)
    load_finite_weights(model, state["model"], path)
    model.to(select_device(device)).eval()
    return ZebraModel(model, cfg, int(state["step"]), list(state.get("history", [])),
                      data_hash=state["data_hash"],
                      train_seconds=float(state["train_seconds"]),
                      gpu_seconds=float(state.get("gpu_seconds", 0.0)),
                      device=state["device"], finished=int(state["step"]) == cfg.steps,
                      path=Path(path))


def train_zebra(config: ZebraTrainConfig, puzzles: ZebraSet, out_dir: str | os.PathLike, *,
                resume: bool = False, stop_after: int | None = None,
                max_seconds: float | None = None, progress: bool = True,
                log=None) -> ZebraModel:
    """Train a Zebra MDM or ARM (resumable, exact on resume on the CPU).

    Step s draws its puzzles and augmentations from ``SeedSequence([seed, 0, s])`` and
    the MDM's masks from a torch generator seeded from ``[seed, 1, s]``.

    Parameters
    ----------
    config : ZebraTrainConfig
    puzzles : ZebraSet
        Of the config's size and clue slots.
    out_dir : path
        Run folder: ``checkpoint.pt`` (atomic), ``config.json``, ``log.jsonl``.
    resume : bool
        Continue ``out_dir/checkpoint.pt`` (same config except the device, same data);
        without it an existing checkpoint is an error.
    stop_after, max_seconds :
        Stop early with a checkpoint (total steps; seconds of this call's training).
    """
    cfg = config
    check_stop_after(stop_after)
    if (puzzles.m, puzzles.n, puzzles.max_clues) != (cfg.m, cfg.n, cfg.max_clues):
        raise ValueError(f"the puzzles are {puzzles.m} x {puzzles.n} with {puzzles.max_clues} "
                         f"clue slots, the config asks for {cfg.m} x {cfg.n} with "
                         f"{cfg.max_clues}")
    if len(puzzles) == 0:
        raise ValueError("the training set holds no puzzle")
    out = Path(out_dir)
    ckpt = out / CKPT_NAME
    device = select_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    data_hash = puzzles.digest()
    model = build_zebra_model(cfg).to(device)
    opt, sched = make_optimizer(model, cfg)
    history: list[dict[str, Any]] = []
    start, seconds, gpu_before, running_state = 0, 0.0, 0.0, {}
    if ckpt.exists():
        if not resume:
            raise ValueError(f"{ckpt} exists; pass resume=True to continue it")
        state = read_state(ckpt, fmt=CKPT_FORMAT, version=CKPT_VERSION, what="Zebra")
        saved = ZebraTrainConfig(**state["config"]).to_dict()
        diff = {k: (saved[k], v) for k, v in cfg.to_dict().items()
                if k != "device" and to_jsonable(saved[k]) != to_jsonable(v)}
        if diff:
            raise ValueError(f"{ckpt} was trained with another config; differing fields "
                             f"(checkpoint, asked): {diff}")
        if state["data_hash"] != data_hash:
            raise ValueError(f"{ckpt} was trained on other puzzles")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, history = int(state["step"]), list(state.get("history", []))
        seconds, running_state = float(state["train_seconds"]), state.get("running_loss") or {}
        gpu_before = float(state.get("gpu_seconds", 0.0))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", {
        **provenance(cfg.to_dict(), cfg.seed), "model_shape": _model_shape(model),
        "n_params": _n_params(model), "device": str(device), "data_hash": data_hash,
        "train_puzzles": len(puzzles), "data_meta": puzzles.meta.get("config")})
    end = cfg.steps if stop_after is None else min(cfg.steps, int(stop_after))
    t0 = time.perf_counter()

    def gpu_seconds() -> float:
        """GPU time over all sessions: this call's, on CUDA, plus the checkpoint's."""
        return gpu_before + (time.perf_counter() - t0 if device.type == "cuda" else 0.0)

    def result(step: int) -> ZebraModel:
        model.eval()
        return ZebraModel(model, cfg, step, history, data_hash=data_hash,
                          train_seconds=seconds + time.perf_counter() - t0,
                          gpu_seconds=gpu_seconds(), device=str(device),
                          finished=step == cfg.steps, path=ckpt)

    if end <= start or (max_seconds is not None and max_seconds <= 0 and start > 0):
        return result(start)
    gen = torch.Generator(device=device)
    lay = cfg.layout
    ids = torch.from_numpy(lay.cell_item_ids).to(device)
    logf = open_log(out / "log.jsonl", history)
    record = recorder(logf, history, log)

    def save(step: int, running) -> None:
        running.check(step)
        check_finite_parameters(model, f"step {step}")
        write_state(ckpt, {
            "format": CKPT_FORMAT, "format_version": CKPT_VERSION,
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "step": int(step), "config": cfg.to_dict(),
            "model_shape": _model_shape(model), "seed": cfg.seed, "data_hash": data_hash,
            "history": to_jsonable(history), "running_loss": running.state(),
            "train_seconds": seconds + time.perf_counter() - t0,
            "gpu_seconds": gpu_seconds(), "device": str(device),
            "provenance": provenance(cfg.to_dict(), cfg.seed)})

    def step_loss(step: int) -> torch.Tensor:
        tokens = torch.from_numpy(training_batch(puzzles, cfg, step)["tokens"]).to(device)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else \
            torch.autocast("cpu", enabled=False)
        with ctx:
            if cfg.kind == "mdm":
                gen.manual_seed(_seed_of(cfg.seed, _MASK, step))
                return mdm_zebra_loss(model, tokens, ids, generator=gen)
            prompt = torch.full((tokens.shape[0],), lay.prompt_length, device=device)
            return arm_sudoku_loss(model, tokens, prompt)

    try:
        done = run_steps(model, opt, sched, start=start, end=end, steps=cfg.steps,
                         step_loss=step_loss, grad_clip=cfg.grad_clip,
                         log_every=cfg.log_every, ckpt_every=cfg.ckpt_every, record=record,
                         save=save, clock=lambda: seconds + time.perf_counter() - t0,
                         device=device, running_state=running_state,
                         max_seconds=max_seconds, progress=progress,
                         desc=f"train zebra {cfg.name}")
    finally:
        logf.close()
    return result(done)
