"""Training loop: fresh L&O samples each step, AdamW + cosine, exact resume from checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lohard._util import DataError, atomic_write, atomic_write_json, provenance, to_jsonable
from lohard.lo._distribution import LODistribution, load_distribution, nae_sat
from lohard.mdm._config import MDMConfig, TrainConfig, model_config
from lohard.mdm._distributed import SINGLE, World, env_world, is_comm_error, joined
from lohard.mdm._loss import loss_masks, mdm_loss
from lohard.mdm._model import MaskedDiffusionTransformer, build_model

#: TrainConfig fields a resumed run may change: they do not touch the arithmetic.
RESUMABLE_CHANGES = ("device", "compile", "log_every", "ckpt_every")

#: Checkpoint file format; bump the version on any incompatible change.
CKPT_FORMAT = "lohard.mdm.checkpoint"
CKPT_VERSION = 1
CKPT_NAME = "checkpoint.pt"

_NAE_SPEC = re.compile(r"^nae-sat-(\d+)-(\d+)(-t)?$")
# Stream ids mixed into the root seed: each randomness source gets its own stream.
_DATA, _MASK, _EVAL_DATA, _EVAL_MASK, _INIT = 0, 1, 2, 3, 4


# -- devices, distributions ----------------------------------------------------------------
def select_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` (CUDA if available, else CPU), ``"cpu"`` or ``"cuda[:i]"``.

    Raises
    ------
    ValueError
        If CUDA is requested but ``torch.cuda.is_available()`` is False.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch.cuda.is_available() is "
                             f"False (torch {torch.__version__}, CUDA build "
                             f"{torch.version.cuda}); use device='cpu' or 'auto'")
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def resolve_distribution(spec: str | os.PathLike | LODistribution, *,
                         seed: int = 0) -> LODistribution:
    """The data distribution named by ``spec``.

    Parameters
    ----------
    spec : str, path or LODistribution
        ``"nae-sat-N-P"``: L&O-NAE-SAT with N latents and P observations, triples
        drawn from ``seed``; ``"nae-sat-N-P-t"`` adds the App. C.2.1 trailing token.
        Otherwise the path of a distribution or samples ``.npz`` (lohard.lo).
    seed : int
        Structure seed of ``nae-sat-N-P``.

    Returns
    -------
    LODistribution
    """
    if isinstance(spec, LODistribution):
        return spec
    text = str(spec)
    match = _NAE_SPEC.match(text)
    if match:
        n, p = int(match.group(1)), int(match.group(2))
        return nae_sat(n, p, trailing_token=bool(match.group(3)), rng=seed)
    if not Path(text).exists():
        raise ValueError(f"unknown distribution {text!r}: give nae-sat-N-P[-t] or the path "
                         f"of a saved distribution .npz")
    return load_distribution(text)


def distribution_hash(dist: LODistribution) -> str:
    """SHA-256 of the distribution's structure (header and arrays, not provenance)."""
    h = hashlib.sha256()
    h.update(json.dumps(to_jsonable(dist.header()), sort_keys=True).encode())
    for key, arr in sorted(dist.to_arrays().items()):
        a = np.ascontiguousarray(arr)
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _dist_bytes(dist: LODistribution) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = dist.save(Path(tmp) / "dist.npz")
        return path.read_bytes()


def _dist_from_bytes(data: bytes) -> LODistribution:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dist.npz"
        path.write_bytes(data)
        return load_distribution(path)


# -- per-step randomness -------------------------------------------------------------------
def _seed_of(root: int, stream: int, step: int = 0) -> int:
    return int(np.random.SeedSequence([int(root), stream, int(step)]).generate_state(1)[0])


def _batch(dist: LODistribution, n: int, root: int, stream: int, step: int,
           device: torch.device, rows: slice = slice(None)) -> torch.Tensor:
    """Rows ``rows`` of the batch of ``n`` sequences drawn from ``[root, stream, step]``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(root), stream, int(step)]))
    return torch.from_numpy(dist.sample(n, rng=rng)[rows]).to(device, non_blocking=True)


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to min_lr / lr at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr / cfg.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# -- checkpoints ---------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : MaskedDiffusionTransformer
        In eval mode, on the requested device.
    dist : LODistribution
        The training distribution (stored in the checkpoint).
    model_config : MDMConfig
    train_config : TrainConfig
    step : int
        Optimiser steps taken.
    seed : int
    dist_hash : str
    history : list of dict
        Logged train / eval losses.
    path : Path
    state : dict
        The raw checkpoint (optimiser, scheduler and RNG states).
    """

    model: MaskedDiffusionTransformer
    dist: LODistribution
    model_config: MDMConfig
    train_config: TrainConfig
    step: int
    seed: int
    dist_hash: str
    history: list = field(default_factory=list)
    path: Path | None = None
    state: dict = field(default_factory=dict, repr=False)


def _save_checkpoint(path: Path, *, model, opt, sched, step, mcfg, tcfg, dist, dist_hash,
                     history, running=None) -> Path:
    state = {
        "format": CKPT_FORMAT, "format_version": CKPT_VERSION,
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "step": int(step),
        "model_config": mcfg.to_dict(), "train_config": tcfg.to_dict(), "seed": tcfg.seed,
        "rng": {"torch_cpu": torch.get_rng_state(),
                "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                else []},
        "distribution_npz": torch.frombuffer(bytearray(_dist_bytes(dist)), dtype=torch.uint8),
        "distribution_hash": dist_hash,
        "distribution": to_jsonable(dist.header()),
        "history": to_jsonable(history), "running_loss": running or {},
        "provenance": provenance({"train": tcfg.to_dict(), "model": mcfg.to_dict()},
                                 tcfg.seed),
    }
    return write_state(path, state)


def write_state(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save`` a checkpoint dict to ``path`` atomically."""

    def writer(tmp: str) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())

    return atomic_write(path, writer)


def load_torch_file(path: Path, what: str, map_location="cpu"):
    """``torch.load`` (tensors and plain data only) of a checkpoint file; an empty,
    truncated or corrupt file becomes a ValueError that names it and says so."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, IndexError, pickle.UnpicklingError) as err:
        # torch.load's messages run long; the first 120 characters say which failure.
        why = (str(err).splitlines() or [""])[0][:120]
        kind = "empty" if path.stat().st_size == 0 else "truncated, corrupt or not a checkpoint"
        raise DataError(f"{path} is {kind} ({type(err).__name__}: {why}): not a readable "
                         f"lohard {what} checkpoint; if it is a run's checkpoint, delete it to "
                         f"start that run again") from err


def read_state(path: str | os.PathLike, *, fmt: str = CKPT_FORMAT, version: int = CKPT_VERSION,
               what: str = "MDM") -> dict:
    """Load a checkpoint dict (file, or run folder holding ``checkpoint.pt``) and check it.

    Raises ``ValueError`` if it is missing, not of format ``fmt``, or of another
    format version; ``what`` names the checkpoint kind in the message.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CKPT_NAME
    if not path.exists():
        raise DataError(f"no checkpoint at {path}")
    state = load_torch_file(path, what)
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise DataError(f"{path} is not a lohard {what} checkpoint")
    if state.get("format_version") != version:
        raise DataError(f"{path} has checkpoint format version {state.get('format_version')}"
                         f", this lohard reads version {version}")
    return state


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                    dist: LODistribution | None = None) -> Checkpoint:
    """Load a checkpoint written by :func:`train`.

    Parameters
    ----------
    path : str or path
        The checkpoint file, or the run folder holding ``checkpoint.pt``.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to put the model.
    dist : LODistribution, optional
        If given, it must be the training distribution (same structure hash).

    Returns
    -------
    Checkpoint

    Raises
    ------
    ValueError
        Not a checkpoint, a different format version, a stored distribution whose
        hash does not match, or ``dist`` differing from the training distribution.
    """
    state = read_state(path)
    stored = _dist_from_bytes(state["distribution_npz"].numpy().tobytes())
    h = distribution_hash(stored)
    if h != state["distribution_hash"]:
        raise ValueError(f"{path}: the stored distribution's hash {h[:12]} does not match the "
                         f"recorded {state['distribution_hash'][:12]} (corrupt checkpoint)")
    if dist is not None and distribution_hash(dist) != h:
        raise ValueError(f"{path} was trained on a different distribution: checkpoint "
                         f"{stored!r} (hash {h[:12]}), given {dist!r} (hash "
                         f"{distribution_hash(dist)[:12]})")
    mcfg = MDMConfig(**state["model_config"])
    tcfg = TrainConfig(**state["train_config"])
    model = build_model(mcfg, stored)
    load_finite_weights(model, state["model"], path)
    model.to(select_device(device)).eval()
    return Checkpoint(model=model, dist=stored, model_config=mcfg, train_config=tcfg,
                      step=int(state["step"]), seed=int(state["seed"]), dist_hash=h,
                      history=list(state.get("history", [])),
                      path=Path(path), state=state)


# -- training ------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : MaskedDiffusionTransformer
        The trained model (uncompiled module), in eval mode.
    dist : LODistribution
    step : int
        Steps taken in total (including resumed ones).
    history : list of dict
        ``{"step", "train_loss"}`` log entries and ``{"step", "eval_loss"}`` entries.
    checkpoint : Path
    finished : bool
        False when stopped early by ``stop_after`` or ``max_seconds``.
    """

    model: MaskedDiffusionTransformer
    dist: LODistribution
    step: int
    history: list
    checkpoint: Path
    finished: bool


@torch.no_grad()
def evaluate(model, dist: LODistribution, cfg: TrainConfig, device: torch.device,
             use_amp: bool = False) -> float:
    """Held-out loss (nats per token) on a fixed set: ``cfg.eval_size`` sequences and masks
    drawn from the eval streams of ``cfg.seed`` (the same set at every call).

    Parameters
    ----------
    model : MaskedDiffusionTransformer
    dist : LODistribution
    cfg : TrainConfig
    device : torch.device
    use_amp : bool

    Returns
    -------
    float
    """
    was = model.training
    model.eval()
    gen = torch.Generator(device=device)
    gen.manual_seed(_seed_of(cfg.seed, _EVAL_MASK))
    tokens = _batch(dist, cfg.eval_size, cfg.seed, _EVAL_DATA, 0, device)
    total = torch.zeros((), device=device)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else _null()
    for lo in range(0, tokens.shape[0], cfg.batch_size):
        with ctx:
            per = mdm_loss(model, tokens[lo:lo + cfg.batch_size], kind=cfg.loss,
                           schedule=cfg.schedule, generator=gen, reduction="none", check=False)
        total += per.sum()
    model.train(was)
    return float(total) / tokens.shape[0]


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def optimiser_step(model: torch.nn.Module, loss: torch.Tensor, opt, sched,
                   grad_clip: float) -> None:
    """Backward pass, gradient-norm clipping, one optimiser and schedule step, gradients cleared."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


class RunningLoss:
    """Mean training loss since the last :meth:`read`, summed on the device, and a flag
    that every loss so far was finite.

    :meth:`read` and :meth:`check` are the training loop's only host syncs; both raise
    ``FloatingPointError`` once a loss was not finite. :meth:`state` goes into
    checkpoints, so that a resumed run logs the same means as an uninterrupted one.

    With several ranks (``world``) each adds its own slice's loss; :meth:`read`,
    :meth:`check` and :meth:`state` are then collective and give the mean over the ranks,
    i.e. the global batch's loss (the mean is linear, so every rank may start from the
    same global ``state``).
    """

    def __init__(self, device: torch.device, state: dict | None = None,
                 world: World = SINGLE) -> None:
        state = state or {}
        self.world = world
        self.total = torch.tensor(float(state.get("total", 0.0)), device=device)
        self.count = int(state.get("count", 0))
        self.finite = torch.ones((), dtype=torch.bool, device=device)

    def add(self, loss: torch.Tensor) -> None:
        loss = loss.detach()
        self.total += loss
        self.count += 1
        self.finite &= torch.isfinite(loss)

    def check(self, step: int) -> None:
        """Raise if any loss up to ``step`` was not finite (the run diverged)."""
        if not bool(self.world.all_true(self.finite)):
            raise FloatingPointError(f"the training loss was not finite at some step up to "
                                     f"{step}: the run diverged (lower the learning rate)")

    def read(self, step: int) -> float:
        value = float(self.world.mean(self.total)) / self.count
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss is {value} at step {step}")
        self.check(step)
        self.total.zero_()
        self.count = 0
        return value

    def state(self) -> dict:
        return {"total": float(self.world.mean(self.total)), "count": self.count}


def check_finite_parameters(model: torch.nn.Module, where: str) -> None:
    """Raise ``FloatingPointError`` naming the first parameter holding NaN or inf."""
    flags = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).cpu()
    if not bool(flags.all()):
        names = [n for n, _ in model.named_parameters()]
        bad = names[int((~flags).nonzero()[0])]
        raise FloatingPointError(f"{where}: parameter {bad!r} holds non-finite values "
                                 f"(the run diverged)")


def load_finite_weights(model: torch.nn.Module, weights: dict, path) -> None:
    """``model.load_state_dict(weights)``; ValueError if a stored parameter is NaN or inf."""
    model.load_state_dict(weights)
    try:
        check_finite_parameters(model, str(path))
    except FloatingPointError as err:
        raise ValueError(f"{err}; refusing to load it") from None


def check_stop_after(stop_after) -> None:
    """``stop_after`` (total steps to stop at) is None or an integer >= 1."""
    if stop_after is not None and (int(stop_after) != stop_after or stop_after < 1):
        raise ValueError(f"stop_after must be an integer >= 1 (total steps), got {stop_after}")


def open_log(path: Path, history: list):
    """``log.jsonl`` for appending, first rewritten (atomically) to hold exactly ``history``:
    entries logged after the last checkpoint of an interrupted run are dropped, so a
    resumed run's log equals an uninterrupted one's."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(
        "".join(json.dumps(to_jsonable(e)) + "\n" for e in history), encoding="utf-8"))
    return open(path, "a", encoding="utf-8")


def make_optimizer(model: torch.nn.Module, cfg):
    """AdamW with decoupled weight decay on matrices only, and the warm-up + cosine schedule
    of :func:`_lr_factor`; ``cfg`` has lr, min_lr, betas, weight_decay, warmup_steps, steps.
    Shared by every lohard training run (L&O MDMs, Sudoku MDMs and ARMs)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    # The fused CUDA kernel does one launch for all parameters (same update rule).
    on_cuda = next(model.parameters()).is_cuda
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=on_cuda or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
    return opt, sched


def run_steps(model: torch.nn.Module, opt, sched, *, start: int, end: int, steps: int,
              step_loss, grad_clip: float, log_every: int, ckpt_every: int, record, save,
              clock, device: torch.device, running_state: dict | None = None,
              after_step=None, keep=(), max_seconds: float | None = None,
              progress: bool = True, desc: str = "train", world: World = SINGLE) -> int:
    """The optimisation loop every lohard training run goes through.

    What differs between runs is passed in: ``step_loss(step)`` returns the loss of step
    ``step`` (its batch and masks drawn from that step's seeds), ``record(entry)`` logs,
    ``save(step, running)`` checkpoints, ``clock()`` gives the ``seconds`` of a log entry,
    ``after_step(done)`` runs after each step's log line (e.g. a held-out evaluation).

    Parameters
    ----------
    start, end, steps : int
        Steps already taken, the step to stop at, and the schedule's total.
    log_every, ckpt_every : int
        A log entry every ``log_every`` steps and at ``steps`` (0: none); a checkpoint
        every ``ckpt_every`` steps (0: none), after each step in ``keep``, and always at
        the end.
    max_seconds : float, optional
        Stop after the first step that ends this long after the loop started.
    world : World
        The ranks of a data-parallel run: ``step_loss`` returns this rank's slice's
        loss, the logged means are over all ranks (:class:`RunningLoss`), and ``save``
        runs on every rank (its collectives), writing on rank 0 only.

    Returns
    -------
    int
        The steps taken in all (``end``, or fewer when stopped by ``max_seconds``).
    """
    bar = tqdm(total=steps, initial=start, disable=not progress, desc=desc, dynamic_ncols=True)
    model.train()
    running = RunningLoss(device, running_state, world)
    t0 = time.perf_counter()
    done = start
    try:
        for step in range(start, end):
            loss = step_loss(step)
            optimiser_step(model, loss, opt, sched, grad_clip)
            running.add(loss)
            done = step + 1
            if log_every and (done % log_every == 0 or done == steps):
                value = running.read(done)
                record({"step": done, "train_loss": value, "lr": sched.get_last_lr()[0],
                        "seconds": clock()})
                bar.set_postfix(loss=f"{value:.4f}")
            if after_step is not None:
                after_step(done)
            if done != end and (done in keep or (ckpt_every and done % ckpt_every == 0)):
                save(done, running)
            bar.update(1)
            # With several ranks, rank 0's clock decides for all: they must stop together.
            if max_seconds is not None and world.share(
                    lambda: time.perf_counter() - t0 >= max_seconds):
                break
        save(done, running)
    finally:
        bar.close()
    return done


def recorder(logf, history: list, log=None):
    """The log-entry writer of a training run: appends each entry to ``history``, writes it
    as one JSON line to ``logf`` (flushed; None on ranks other than 0) and passes it to
    ``log`` if given."""
    def record(entry: dict) -> None:
        history.append(entry)
        if logf is not None:
            logf.write(json.dumps(to_jsonable(entry)) + "\n")
            logf.flush()
        if log is not None:
            log(entry)

    return record


def snapshot_path(out_dir: str | os.PathLike, step: int) -> Path:
    """Where :func:`train` keeps the copy of the checkpoint taken after ``step`` steps."""
    return Path(out_dir) / f"checkpoint_step{int(step)}.pt"


def train(config: TrainConfig, out_dir: str | os.PathLike, *, resume: bool = False,
          stop_after: int | None = None, max_seconds: float | None = None,
          progress: bool = True, log=None, snapshots=()) -> TrainResult:
    """Train an MDM on fresh samples of an L&O distribution.

    Step s uses a batch drawn from ``SeedSequence([seed, 0, s])`` and masks from a
    torch generator seeded from ``[seed, 1, s]``: the run is a function of the seed,
    and a resumed run takes exactly the steps an uninterrupted one would (bitwise
    equal parameters on CPU).

    Parameters
    ----------
    config : TrainConfig
    out_dir : str or path
        Run folder: ``checkpoint.pt`` (atomic), ``config.json`` and ``log.jsonl``.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` if it exists (else start fresh); its
        distribution (hash), model config and every training setting except those in
        ``RESUMABLE_CHANGES`` (device, compile, log_every, ckpt_every) must agree with
        ``config``. ``log.jsonl`` is rewritten from the checkpoint's history. Without
        ``resume`` an existing checkpoint is an error (no silent overwrite).
    stop_after : int, optional
        Stop (with a checkpoint) once this many total steps are done, keeping the
        schedule of ``config.steps``: simulates preemption. A checkpoint already at or
        past it is left as it is.
    max_seconds : float, optional
        Wall-clock budget of this call: after the first step that ends past it,
        save a checkpoint and return with ``finished=False`` (resume continues
        exactly). For runs that must fit a fixed slot, e.g. a lent GPU.
    progress : bool
        tqdm progress bar.
    log : callable, optional
        Called with each history entry (e.g. ``print``).
    snapshots : sequence of int
        Also keep a copy of the checkpoint after each of these steps, as
        ``checkpoint_step<s>.pt`` (:func:`snapshot_path`): a less-trained model of the
        same run, e.g. to measure against the final one as the paper's proxy.

    Returns
    -------
    TrainResult
        On every rank of a data-parallel run; the history of ranks other than 0 holds
        the train losses but no held-out losses.

    Notes
    -----
    Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), every rank calls
    ``train`` with the same arguments and they train one model with
    DistributedDataParallel (NCCL on CUDA, gloo on the CPU; ``lohard.mdm._distributed``).
    ``config.batch_size`` is the global batch: every rank draws the whole batch and its
    masks from the step's seeds, as one process does, and trains on its contiguous
    slice of ``batch_size / WORLD_SIZE`` rows. The loss is the slice's mean and DDP
    averages the gradients over the ranks, so each step is the single-process step (up
    to float rounding) whatever the number of ranks, and a run may be resumed with
    another. Rank 0 alone reads the checkpoint (and sends it to the others), writes
    every file and runs the evaluations; ``log`` is called on rank 0 only. All ranks
    return once rank 0 has written the last checkpoint.

    Raises
    ------
    ValueError
        Model config not fitting the data (length, vocabulary), CUDA requested but
        absent, checkpoint from another distribution/config, or existing checkpoint
        without ``resume``; with several ranks also a ``batch_size`` not divisible by
        their number, or a rendezvous not complete within ``LOHARD_RDZV_TIMEOUT``.
    ConnectionError
        (``PeerLost``) another rank stopped during the run; the last checkpoint stays.
    FloatingPointError
        The run diverged: a non-finite training or held-out loss, or non-finite
        parameters at a checkpoint (no checkpoint holding them is written).
    """
    cfg = config
    check_stop_after(stop_after)
    keep = set()
    for x in snapshots:
        if isinstance(x, bool) or int(x) != x or not 1 <= x <= cfg.steps:
            raise ValueError(f"snapshots must be integer steps in [1, steps = {cfg.steps}], "
                             f"got {list(snapshots)}")
        keep.add(int(x))
    world = env_world()
    world.rows(cfg.batch_size)  # a batch the ranks cannot share fails before the rendezvous
    device = _rank_device(cfg.device, world)
    with joined(world, device) as world:
        try:
            return _train(cfg, Path(out_dir), world=world, device=device, keep=keep,
                          resume=resume, stop_after=stop_after, max_seconds=max_seconds,
                          progress=progress, log=log)
        except Exception as err:
            if world.size > 1 and is_comm_error(err):
                raise world.lost(err, "training") from err
            raise


def _rank_device(spec: str, world: World) -> torch.device:
    """The device of this rank: ``select_device(spec)``, and with several ranks on CUDA
    the GPU of the local rank; a missing GPU's error names the rank and host."""
    if world.size == 1:
        return select_device(spec)
    try:
        device = select_device(spec)
    except ValueError as err:
        raise ValueError(f"{world.where}: {err}") from None
    return world.cuda_device() if device.type == "cuda" else device


def shared_resume_state(world: World, ckpt_path: Path, resume: bool, reader) -> dict | None:
    """The checkpoint a run resumes from (None for a fresh run), read by rank 0 with
    ``reader`` and shared with every rank (the other machines need not see its disk), so
    that every rank runs the same checks. Refuses an existing checkpoint without
    ``resume``."""

    def read() -> dict | None:
        if ckpt_path.exists() and not resume:
            raise ValueError(f"{ckpt_path} exists; pass resume=True (--resume) to continue it, "
                             f"or choose another output folder")
        return reader(ckpt_path) if resume and ckpt_path.exists() else None

    return world.share(read)


def _train(cfg: TrainConfig, out: Path, *, world: World, device: torch.device, keep: set,
           resume: bool, stop_after, max_seconds, progress: bool, log) -> TrainResult:
    """:func:`train` after the arguments are checked and the ranks have joined."""
    ckpt_path = out / CKPT_NAME
    dist = resolve_distribution(cfg.dist, seed=cfg.dist_seed)
    dist_hash = distribution_hash(dist)
    mcfg = model_config(cfg.model, **cfg.model_overrides)
    use_amp = cfg.amp and device.type == "cuda"

    torch.manual_seed(_seed_of(cfg.seed, _INIT))
    model = build_model(mcfg, dist).to(device)
    opt, sched = make_optimizer(model, cfg)
    history: list[dict[str, Any]] = []
    start = 0
    running_state: dict = {}

    state = shared_resume_state(world, ckpt_path, resume, read_state)
    if state is not None:
        if state["distribution_hash"] != dist_hash:
            raise ValueError(f"{ckpt_path} was trained on a different distribution (hash "
                             f"{state['distribution_hash'][:12]}) than {cfg.dist!r} with "
                             f"dist_seed {cfg.dist_seed} (hash {dist_hash[:12]})")
        if state["model_config"] != mcfg.to_dict():
            raise ValueError(f"{ckpt_path} holds model config {state['model_config']}, but the "
                             f"run asks for {mcfg.to_dict()}")
        if int(state["seed"]) != cfg.seed:
            raise ValueError(f"{ckpt_path} was trained with seed {state['seed']}, the run asks "
                             f"for seed {cfg.seed}")
        if int(state["train_config"]["steps"]) != cfg.steps:
            raise ValueError(f"{ckpt_path} follows a schedule of "
                             f"{state['train_config']['steps']} steps; resume with the same "
                             f"steps (got {cfg.steps})")
        saved = TrainConfig(**state["train_config"]).to_dict()
        diff = {k: (saved[k], v) for k, v in cfg.to_dict().items()
                if k not in RESUMABLE_CHANGES and to_jsonable(saved[k]) != to_jsonable(v)}
        if diff:
            raise ValueError(f"{ckpt_path} was trained with other settings; a resumed run must "
                             f"keep them (only {', '.join(RESUMABLE_CHANGES)} may change). "
                             f"Differing fields (checkpoint, asked): {diff}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch_cpu"])
        if device.type == "cuda" and state["rng"]["torch_cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["torch_cuda"])
        start = int(state["step"])
        history = list(state.get("history", []))
        running_state = state.get("running_loss") or {}
    if world.is_main:
        ranks = {} if world.size == 1 else {"world_size": world.size}
        atomic_write_json(out / "config.json", {
            **provenance({"train": cfg.to_dict(), "model": mcfg.to_dict()}, cfg.seed),
            "distribution": dist.header(), "distribution_hash": dist_hash,
            "n_params": model.n_params, "device": str(device), **ranks})

    end = cfg.steps if stop_after is None else min(cfg.steps, int(stop_after))
    if end <= start:  # already at or past stop_after: nothing to do, the checkpoint stays
        model.eval()
        return TrainResult(model=model, dist=dist, step=start, history=history,
                           checkpoint=ckpt_path, finished=start == cfg.steps)
    ddp = world.wrap(model, device)
    step_model = torch.compile(ddp) if cfg.compile else ddp
    gen = torch.Generator(device=device)
    logf = open_log(out / "log.jsonl", history) if world.is_main else None

    record = recorder(logf, history, log if world.is_main else None)

    def save(step: int, running: RunningLoss) -> None:
        running.check(step)
        check_finite_parameters(model, f"step {step}")
        running_now = running.state()  # collective: every rank computes it
        if not world.is_main:
            return
        _save_checkpoint(ckpt_path, model=model, opt=opt, sched=sched, step=step, mcfg=mcfg,
                         tcfg=cfg, dist=dist, dist_hash=dist_hash, history=history,
                         running=running_now)
        if step in keep:
            atomic_write(snapshot_path(out, step), lambda tmp: shutil.copyfile(ckpt_path, tmp))

    rows = world.rows(cfg.batch_size)

    def step_loss(step: int) -> torch.Tensor:
        tokens = _batch(dist, cfg.batch_size, cfg.seed, _DATA, step, device, rows)
        gen.manual_seed(_seed_of(cfg.seed, _MASK, step))
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else _null()
        with ctx:
            # The masks of the whole global batch, then this rank's rows: the draws of
            # one process, whatever the number of ranks.
            mask, weight = loss_masks(cfg.batch_size, dist.length, kind=cfg.loss,
                                      schedule=cfg.schedule, generator=gen, device=device)
            return mdm_loss(step_model, tokens, kind=cfg.loss, schedule=cfg.schedule,
                            check=False, masks=(mask[rows], weight[rows]))

    def after_step(done: int) -> None:
        if world.is_main and cfg.eval_every and cfg.eval_size and (
                done % cfg.eval_every == 0 or done == cfg.steps):
            value = evaluate(model, dist, cfg, device, use_amp)
            if not math.isfinite(value):
                raise FloatingPointError(f"held-out loss is {value} at step {done}: the "
                                         f"run diverged (lower the learning rate)")
            record({"step": done, "eval_loss": value})

    t0 = time.perf_counter()
    try:
        end = run_steps(model, opt, sched, start=start, end=end, steps=cfg.steps,
                        step_loss=step_loss, grad_clip=cfg.grad_clip,
                        log_every=cfg.log_every, ckpt_every=cfg.ckpt_every, record=record,
                        save=save, clock=lambda: time.perf_counter() - t0, device=device,
                        running_state=running_state, after_step=after_step, keep=keep,
                        max_seconds=max_seconds, progress=progress and world.is_main,
                        desc="train-mdm", world=world)
        world.barrier()  # every rank returns once rank 0 has written the last checkpoint
    finally:
        if logf is not None:
            logf.close()
    model.eval()
    return TrainResult(model=model, dist=dist, step=end, history=history,
                       checkpoint=ckpt_path, finished=end == cfg.steps)
