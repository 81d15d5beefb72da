"""Data-parallel training over the ranks torchrun starts: process group, batch slices, rank 0.

A run started by ``torchrun`` (or with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` set by hand) trains one model on every rank with
:class:`torch.nn.parallel.DistributedDataParallel`. Every rank draws the same global batch
from ``(seed, step)``, exactly as one process does, and keeps its contiguous slice
(:meth:`World.rows`); DDP averages the slices' gradients, so a step is the single-process
step up to float rounding, whatever the number of ranks. Without ``WORLD_SIZE`` (or with
``WORLD_SIZE=1``) nothing here does anything: :data:`SINGLE` is a one-rank world whose
collectives are the identity.
"""

from __future__ import annotations

import datetime
import inspect
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")

#: Environment variable: seconds a rank waits for the rendezvous (all ranks joined).
ENV_RDZV_TIMEOUT = "LOHARD_RDZV_TIMEOUT"
#: Environment variable: seconds a collective operation (gradient all-reduce) may wait.
ENV_COLLECTIVE_TIMEOUT = "LOHARD_COLLECTIVE_TIMEOUT"
#: Short, so that a wrong or unreachable address fails in a minute, not in torch's 30.
RDZV_TIMEOUT_S = 60.0
#: Long: the other ranks wait in the next step's gradient all-reduce while rank 0
#: evaluates and writes a checkpoint, which can take minutes for a large model.
COLLECTIVE_TIMEOUT_S = 1800.0


class PeerLost(ConnectionError):
    """Another rank stopped (crashed, was killed, lost the network) during a collective
    operation. An ``OSError``, so the CLI reports it as one line with status 2."""


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {text!r}")
    return value


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        if default is None:
            raise ValueError(f"{name} is not set: start the ranks with torchrun, or set "
                             f"WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT")
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


@dataclass(frozen=True)
class World:
    """The ranks of one training run and this process's place among them.

    Attributes
    ----------
    rank, size : int
        This process's global rank and the number of ranks (``RANK``, ``WORLD_SIZE``).
    local_rank : int
        Rank on this machine (``LOCAL_RANK``): the CUDA device it trains on.
    group : ProcessGroup or None
        The group of the collectives (None while not joined, or with one rank).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    group: Any = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes checkpoints, logs and evaluations."""
        return self.rank == 0

    @property
    def where(self) -> str:
        """``"rank r of n on host"``, for messages."""
        return f"rank {self.rank} of {self.size} on {socket.gethostname()}"

    def rows(self, batch_size: int) -> slice:
        """This rank's contiguous slice of a global batch of ``batch_size`` rows.

        Raises
        ------
        ValueError
            If ``batch_size`` is not a multiple of the number of ranks (the slices
            must be equal for the averaged gradient to be the global batch's).
        """
        if batch_size % self.size:
            raise ValueError(f"the global batch size {batch_size} is not divisible by the "
                             f"{self.size} ranks (WORLD_SIZE): every rank takes an equal "
                             f"slice; choose a multiple of {self.size}")
        b = batch_size // self.size
        return slice(self.rank * b, (self.rank + 1) * b)

    def cuda_device(self) -> torch.device:
        """``cuda:local_rank``, made current (NCCL and DDP use the current device)."""
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise ValueError(f"{self.where}: local rank {self.local_rank} needs CUDA device "
                             f"{self.local_rank}, this machine has {count}; start at most "
                             f"{count} ranks per machine (--nproc_per_node)")
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    # -- collectives (the identity with one rank) ------------------------------------------
    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over the ranks (a new tensor; ``t`` itself with one rank)."""
        if self.size == 1:
            return t
        out = t.detach().clone()
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM, group=self.group)
        return out / self.size

    def all_true(self, flag: torch.Tensor) -> torch.Tensor:
        """A bool scalar: ``flag`` holds on every rank."""
        if self.size == 1:
            return flag
        out = flag.to(torch.int32)
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.MIN, group=self.group)
        return out.bool()

    def share(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0 and its result (or the exception it raised) sent to every
        rank, so that all ranks go on, or fail with the same error, together."""
        if self.size == 1:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = (True, fn())
            except Exception as err:  # noqa: BLE001 -- re-raised on every rank below
                box[0] = (False, err)
        torch.distributed.broadcast_object_list(box, src=0, group=self.group)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier(group=self.group)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (``model`` itself with one rank).

        The wrapper also answers ``mask_id`` and ``vocab_size``, which the losses read.
        Buffers are not broadcast at each forward: the model's only buffers are the
        constant RoPE tables.
        """
        if self.size == 1:
            return model
        ddp_class = torch.nn.parallel.DistributedDataParallel
        # torch >= 2.13 names the option forward_sync_buffers (broadcast_buffers warns).
        no_sync = ("forward_sync_buffers" if "forward_sync_buffers"
                   in inspect.signature(ddp_class).parameters else "broadcast_buffers")
        ddp = ddp_class(model, device_ids=[device.index] if device.type == "cuda" else None,
                        process_group=self.group, **{no_sync: False})
        for name in ("mask_id", "vocab_size"):
            if hasattr(model, name):
                setattr(ddp, name, getattr(model, name))
        return ddp

    def lost(self, err: BaseException, what: str) -> PeerLost:
        """The error a failed collective becomes: which rank, what it was doing, what next."""
        why = _first_sentence(err)
        return PeerLost(f"{self.where} lost contact with the other ranks during {what} "
                        f"({why}); another rank has probably stopped, see its output. Rank 0 "
                        f"writes checkpoints atomically: rerun with --resume to continue from "
                        f"the last one")


def _first_sentence(err: BaseException) -> str:
    """The gist of a torch.distributed error: its first sentence, without the leading
    ``[source.cc:line]`` gloo puts there."""
    text = (str(err).strip().splitlines() or [""])[0]
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", text)
    return (text.split(". ")[0].rstrip(".") or type(err).__name__)[:200]


#: One process, no process group: every collective is the identity.
SINGLE = World()


def is_comm_error(err: BaseException) -> bool:
    """Whether ``err`` came from a collective operation (a lost or timed-out peer)."""
    if isinstance(err, getattr(torch.distributed, "DistError", ())):
        return True
    # gloo raises plain RuntimeErrors naming its transport ("Connection reset by peer").
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        key in text for key in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset"))


def env_world() -> World:
    """This process's rank and the number of ranks, from torchrun's environment variables
    (one rank when ``WORLD_SIZE`` is unset); no process group is created yet.

    Raises
    ------
    ValueError
        If the variables are not integers or are inconsistent.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        return World(rank=rank, size=size, local_rank=_env_int("LOCAL_RANK", rank))
    size = _env_int("WORLD_SIZE", 1)
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {size}")
    if size == 1:
        return SINGLE
    rank = _env_int("RANK")
    if not 0 <= rank < size:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE - 1 = {size - 1}], got {rank}")
    local = _env_int("LOCAL_RANK", rank)
    if local < 0:
        raise ValueError(f"LOCAL_RANK must be >= 0, got {local}")
    return World(rank=rank, size=size, local_rank=local)


@contextmanager
def joined(world: World, device: torch.device) -> Iterator[World]:
    """Join the process group of ``world`` for the duration of the block.

    NCCL on CUDA devices, gloo on the CPU. The rendezvous waits at most
    ``LOHARD_RDZV_TIMEOUT`` seconds (default 60) for every rank; collectives at most
    ``LOHARD_COLLECTIVE_TIMEOUT`` (default 1800). The group is destroyed on the way out,
    also after an error. With one rank, or inside a process group the caller set up
    (which the caller then also destroys), it only yields.

    Yields
    ------
    World
        ``world`` with its ``group`` set.

    Raises
    ------
    ValueError
        ``MASTER_ADDR`` / ``MASTER_PORT`` unset, or the rendezvous at that address not
        complete within the timeout (unreachable address, a rank that never started).
    """
    if world.size == 1:
        yield world
        return
    dist = torch.distributed
    if not dist.is_available():
        raise ValueError(f"WORLD_SIZE={world.size} asks for {world.size} ranks, but this "
                         f"torch {torch.__version__} has no torch.distributed")
    if dist.is_initialized():
        yield world
        return
    rdzv = _env_seconds(ENV_RDZV_TIMEOUT, RDZV_TIMEOUT_S)
    coll = _env_seconds(ENV_COLLECTIVE_TIMEOUT, COLLECTIVE_TIMEOUT_S)
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not addr or not port:
        raise ValueError(f"WORLD_SIZE={world.size} but MASTER_ADDR / MASTER_PORT are not set: "
                         f"start the ranks with torchrun (or set both)")
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, init_method="env://", rank=world.rank,
                                world_size=world.size,
                                timeout=datetime.timedelta(seconds=rdzv))
    except dist.DistError as err:
        why = _first_sentence(err)
        raise ValueError(f"{world.where} could not complete the rendezvous at {addr}:{port} "
                         f"within {rdzv:g} s ({ENV_RDZV_TIMEOUT}): {why}; check the address "
                         f"and port, and that all {world.size} ranks were started") from None
    try:
        # The default group keeps the short timeout; the training's collectives use a
        # group of all ranks with the long one.
        group = dist.new_group(backend=backend, timeout=datetime.timedelta(seconds=coll))
        yield World(rank=world.rank, size=world.size, local_rank=world.local_rank,
                    group=group)
    finally:
        dist.destroy_process_group()
