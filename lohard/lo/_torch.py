"""Torch datasets streaming masked L&O samples (imported lazily: needs the ``torch`` extra)."""

from __future__ import annotations

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "lohard.lo's torch datasets need PyTorch; install it with `pip install lohard[torch]`"
    ) from err

from lohard.lo._distribution import LODistribution
from lohard.lo._masking import apply_mask, forward_mask, protocol_mask, schedule_by_name

MASKINGS = ("forward", "protocol")


def _draw(dist: LODistribution, n: int, masking: str, schedule, ell, gen: np.random.Generator):
    tokens = dist.sample(n, rng=gen)
    if masking == "forward":
        t = gen.random(n)
        mask = forward_mask(n, dist.length, t, schedule=schedule, rng=gen)
    else:
        t = np.full(n, np.nan)
        lo, hi = ell
        mask = protocol_mask(dist, n, gen.integers(lo, hi + 1, size=n), rng=gen)
    return tokens, mask, t


def _item(dist, tokens, mask, t) -> dict:
    return {
        "tokens": torch.from_numpy(tokens),
        "input": torch.from_numpy(apply_mask(tokens, mask, dist.mask_id)),
        "mask": torch.from_numpy(mask),
        "t": torch.tensor(t, dtype=torch.float64),
    }


def _check(dist, masking, schedule, ell, num_samples, seed):
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (the root of a numpy SeedSequence), "
                         f"got {seed!r}")
    if masking not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}")
    schedule_by_name(schedule)
    lo, hi = ell
    if not 0 <= lo <= hi <= dist.n_latent:
        raise ValueError(f"ell range must satisfy 0 <= lo <= hi <= N = {dist.n_latent}, "
                         f"got {ell}")
    if int(num_samples) != num_samples or num_samples < 0:
        raise ValueError(f"num_samples must be an integer >= 0, got {num_samples}")


class LOMaskedDataset(Dataset):
    """Map-style dataset: item i is one sample and mask drawn from child seed i.

    Item i is generated from ``SeedSequence(seed).spawn``'s i-th child, so it is
    the same whatever the worker count, order or batch size.

    Parameters
    ----------
    dist : LODistribution
    num_samples : int
    seed : int
        Root of the per-item seeds.
    masking : {"forward", "protocol"}
        ``"forward"``: t ~ U(0, 1), mask from q_{t|0} with ``schedule``.
        ``"protocol"``: the App. C.2.1 mask with l uniform in ``ell`` (inclusive).
    schedule : "linear" or "cosine"
    ell : (int, int)
        Range of l for ``"protocol"`` (default (1, N - 1), as in App. C.2.1).

    Items are dicts of ``tokens`` (int64, (L,)), ``input`` (tokens with the mask
    id at masked positions), ``mask`` (bool, (L,)) and ``t`` (float64; NaN for
    the protocol masking).
    """

    def __init__(self, dist: LODistribution, num_samples: int, *, seed: int = 0,
                 masking: str = "forward", schedule: str = "linear",
                 ell: tuple[int, int] | None = None) -> None:
        ell = (1, dist.n_latent - 1) if ell is None else tuple(ell)
        _check(dist, masking, schedule, ell, num_samples, seed)
        self.dist, self.num_samples, self.seed = dist, int(num_samples), int(seed)
        self.masking, self.schedule, self.ell = masking, schedule, ell

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index %= self.num_samples
        child = np.random.SeedSequence(self.seed, spawn_key=(index,))
        gen = np.random.default_rng(child)
        tokens, mask, t = _draw(self.dist, 1, self.masking, self.schedule, self.ell, gen)
        return _item(self.dist, tokens[0], mask[0], t[0])


class LOMaskedIterableDataset(IterableDataset):
    """Streaming dataset: chunks of samples, chunk c drawn from child seed c.

    The stream is cut into chunks of ``chunk_size`` samples; chunk c is drawn
    (vectorised) from ``SeedSequence(seed).spawn``'s c-th child and worker w of
    W yields chunks w, w + W, ... So the multiset of samples depends only on
    the seed, never on the number of DataLoader workers.

    Parameters are those of :class:`LOMaskedDataset`, plus ``chunk_size``.
    Call :meth:`set_epoch` to move to a fresh, equally reproducible stream.
    """

    def __init__(self, dist: LODistribution, num_samples: int, *, seed: int = 0,
                 masking: str = "forward", schedule: str = "linear",
                 ell: tuple[int, int] | None = None, chunk_size: int = 256) -> None:
        ell = (1, dist.n_latent - 1) if ell is None else tuple(ell)
        _check(dist, masking, schedule, ell, num_samples, seed)
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.dist, self.num_samples, self.seed = dist, int(num_samples), int(seed)
        self.masking, self.schedule, self.ell = masking, schedule, ell
        self.chunk_size = int(chunk_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's stream (epoch e uses root SeedSequence(seed, spawn_key=(e,)))."""
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        nchunks = -(-self.num_samples // self.chunk_size)
        children = np.random.SeedSequence(self.seed, spawn_key=(self.epoch,)).spawn(nchunks)
        for c in range(wid, nchunks, nw):
            size = min(self.chunk_size, self.num_samples - c * self.chunk_size)
            gen = np.random.default_rng(children[c])
            tokens, mask, t = _draw(self.dist, size, self.masking, self.schedule, self.ell, gen)
            for r in range(size):
                yield _item(self.dist, tokens[r], mask[r], t[r])
