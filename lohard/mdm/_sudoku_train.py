"""Sudoku training: the resumable training loop, checkpoints and the loaded model."""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from lohard._util import atomic_write_json, provenance, to_jsonable
from lohard.mdm._distributed import World, env_world, is_comm_error, joined
from lohard.mdm._loss import loss_masks
from lohard.mdm._sudoku_config import (
    _MASK,
    SudokuTrainConfig,
    _model_shape,
    _n_params,
    _seed_of,
    build_sudoku_model,
)
from lohard.mdm._sudoku_data import arm_sudoku_loss, mdm_sudoku_loss, puzzles_hash, training_batch
from lohard.mdm._train import (
    CKPT_NAME,
    RunningLoss,
    _rank_device,
    check_finite_parameters,
    check_stop_after,
    load_finite_weights,
    make_optimizer,
    open_log,
    read_state,
    recorder,
    run_steps,
    select_device,
    shared_resume_state,
    write_state,
)
from lohard.sudoku import (
    PuzzleSet,
)

CKPT_FORMAT = "lohard.mdm.sudoku-checkpoint"
CKPT_VERSION = 1

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
        Stop with a checkpoint after the first step that ends this long after this call
        started training (0 with a checkpoint: take no step); rerun with
        ``resume=True`` to continue. The final model does not depend on where it stopped.
    progress : bool
        tqdm bar.
    log : callable, optional
        Called with each log entry.

    Returns
    -------
    SudokuModel
        ``finished`` is False when stopped early.

    Notes
    -----
    Under ``torchrun`` the ranks train one model with DistributedDataParallel, as
    :func:`lohard.mdm.train` does: ``config.batch_size`` is the global batch, every rank
    draws it (and the MDM's masks) from the step's seeds and trains on its contiguous
    slice; the ARM's loss is divided by the global batch's target-token count over the
    number of ranks, so that the averaged gradient is the global batch's. Rank 0 reads
    and writes the files.
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
    world = env_world()
    world.rows(cfg.batch_size)  # a batch the ranks cannot share fails before the rendezvous
    device = _rank_device(cfg.device, world)
    with joined(world, device) as world:
        try:
            return _train_sudoku(cfg, puzzles, Path(out_dir), world=world, device=device,
                                 resume=resume, stop_after=stop_after,
                                 max_seconds=max_seconds, progress=progress, log=log)
        except Exception as err:
            if world.size > 1 and is_comm_error(err):
                raise world.lost(err, "training") from err
            raise


class _ForwardSteps(torch.nn.Module):
    """The ARM's teacher-forced pass as a module's ``forward``: DDP synchronises the
    gradients of what runs through its own ``forward`` only."""

    def __init__(self, arm: torch.nn.Module) -> None:
        super().__init__()
        self.arm = arm

    def forward(self, *args):
        return self.arm.forward_steps(*args)


def _train_sudoku(cfg: SudokuTrainConfig, puzzles: PuzzleSet, out: Path, *, world: World,
                  device: torch.device, resume: bool, stop_after, max_seconds,
                  progress: bool, log) -> SudokuModel:
    """:func:`train_sudoku` after the arguments are checked and the ranks have joined."""
    ckpt_path = out / CKPT_NAME
    use_amp = cfg.amp and device.type == "cuda"
    data_hash = puzzles_hash(puzzles)
    model = build_sudoku_model(cfg).to(device)
    opt, sched = make_optimizer(model, cfg)
    history: list[dict[str, Any]] = []
    start, seconds, gpu_seconds, devices, running_state = 0, 0.0, 0.0, [], {}

    state = shared_resume_state(world, ckpt_path, resume, _read)
    if state is not None:
        saved = SudokuTrainConfig(**state["config"]).to_dict()
        # The device may change between sessions (e.g. CPU then CUDA); nothing else may.
        diff = {k: (saved[k], v) for k, v in cfg.to_dict().items()
                if k not in ("device", "compile") and to_jsonable(saved[k]) != to_jsonable(v)}
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
    if world.is_main:
        ranks = {} if world.size == 1 else {"world_size": world.size}
        atomic_write_json(out / "config.json", {
            **provenance(cfg.to_dict(), cfg.seed), "model_shape": _model_shape(model),
            "n_params": _n_params(model), "device": str(device), "data_hash": data_hash,
            "train_puzzles": len(puzzles), "data_meta": puzzles.meta.get("config"), **ranks})
    end = cfg.steps if stop_after is None else min(cfg.steps, int(stop_after))
    t_session = time.perf_counter()

    def elapsed() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t_session

    def result(step: int) -> SudokuModel:
        dt = elapsed()
        model.eval()
        return SudokuModel(model=model, config=cfg, step=step, history=history,
                           data_hash=data_hash, train_seconds=seconds + dt,
                           gpu_seconds=gpu_seconds + (dt if device.type == "cuda" else 0.0),
                           device=",".join(devices), finished=step == cfg.steps,
                           path=ckpt_path)

    # Already at or past stop_after, or no time at all for a run that has a checkpoint:
    # nothing to do, the checkpoint stays.
    if end <= start or (max_seconds is not None and max_seconds <= 0 and state is not None):
        return result(start)
    gen = torch.Generator(device=device)
    if cfg.compile:
        # In place, block by block: the state dict keeps its keys, and the ARM's
        # forward_steps (not the module's __call__) runs compiled blocks too.
        for blk in model.blocks:
            blk.compile()
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    logf = open_log(out / "log.jsonl", history) if world.is_main else None

    record = recorder(logf, history, log if world.is_main else None)

    def save(step: int, running: RunningLoss) -> None:
        running.check(step)
        check_finite_parameters(model, f"step {step}")
        running_now = running.state()  # collective: every rank computes it
        if not world.is_main:
            return
        dt = elapsed()
        _save(ckpt_path, model=model, opt=opt, sched=sched, step=step, cfg=cfg,
              data_hash=data_hash, history=history, seconds=seconds + dt,
              gpu_seconds=gpu_seconds + (dt if device.type == "cuda" else 0.0),
              device=",".join(devices), running=running_now)

    rows = world.rows(cfg.batch_size)
    if cfg.kind == "mdm":
        step_model = world.wrap(model, device)
    elif world.size > 1:
        step_model = SimpleNamespace(forward_steps=world.wrap(_ForwardSteps(model), device),
                                     cfg=model.cfg)
    else:
        step_model = model

    def step_loss(step: int) -> torch.Tensor:
        batch = training_batch(puzzles, cfg, step)

        def part(key: str) -> torch.Tensor:
            return torch.from_numpy(batch[key][rows]).to(device, non_blocking=True)

        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
        with ctx:
            if cfg.kind == "mdm":
                gen.manual_seed(_seed_of(cfg.seed, _MASK, step))
                # The masks of the whole global batch, then this rank's rows.
                mask, weight = loss_masks(cfg.batch_size, batch["puzzles"].shape[1],
                                          kind="elbo", schedule="linear", generator=gen,
                                          device=device)
                return mdm_sudoku_loss(step_model, part("puzzles"), part("solutions"),
                                       masks=(mask[rows], weight[rows]))
            n_targets = None
            if world.size > 1:
                length = batch["tokens"].shape[1]
                total = max(1, int(np.clip(length - batch["prompt"], 0, None).sum()))
                n_targets = total / world.size
            return arm_sudoku_loss(step_model, part("tokens"), part("prompt"),
                                   n_targets=n_targets)

    try:
        done = run_steps(model, opt, sched, start=start, end=end, steps=cfg.steps,
                         step_loss=step_loss, grad_clip=cfg.grad_clip,
                         log_every=cfg.log_every, ckpt_every=cfg.ckpt_every, record=record,
                         save=save, clock=lambda: seconds + elapsed(), device=device,
                         running_state=running_state, max_seconds=max_seconds,
                         progress=progress and world.is_main, desc=f"train {cfg.name}",
                         world=world)
        world.barrier()  # every rank returns once rank 0 has written the last checkpoint
    finally:
        if logf is not None:
            logf.close()
    return result(done)
