"""Masking: the forward process q_{t|0}, fixed-size and restricted masks, App. C.2.1 masks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lohard._util import RNGLike, as_generator


@dataclass(frozen=True)
class NoiseSchedule:
    """A masking schedule alpha_t: the probability a token is still unmasked at time t.

    Attributes
    ----------
    name : str
    alpha : callable, float array -> float array
        alpha_t on [0, 1], decreasing, alpha_0 = 1 and alpha_1 = 0.
    dalpha : callable
        Its derivative alpha'_t (<= 0), used by the continuous-time loss weight
        alpha'_t / (1 - alpha_t).
    """

    name: str
    alpha: Callable[[np.ndarray], np.ndarray]
    dalpha: Callable[[np.ndarray], np.ndarray]

    def loss_weight(self, t: np.ndarray) -> np.ndarray:
        """The weight alpha'_t / (1 - alpha_t) of Prop. 2.1 (negative), for t in (0, 1].

        At t = 0 nothing is masked (alpha_0 = 1) and the weight is infinite, so
        t outside (0, 1] (or NaN) is a ValueError.
        """
        t = np.asarray(t, dtype=np.float64)
        if not np.all((t > 0) & (t <= 1)):
            raise ValueError(f"the loss weight alpha'_t / (1 - alpha_t) needs t in (0, 1], "
                             f"got t = {t[~((t > 0) & (t <= 1))].reshape(-1)[0]}")
        return self.dalpha(t) / (1.0 - self.alpha(t))


LINEAR = NoiseSchedule("linear", lambda t: 1.0 - np.asarray(t, dtype=np.float64),
                       lambda t: -np.ones_like(np.asarray(t, dtype=np.float64)))
COSINE = NoiseSchedule("cosine", lambda t: np.cos(0.5 * math.pi * np.asarray(t, dtype=np.float64)),
                       lambda t: -0.5 * math.pi * np.sin(0.5 * math.pi * np.asarray(t,
                                                                                   dtype=float)))
SCHEDULES = {"linear": LINEAR, "cosine": COSINE}


def schedule_by_name(name: str | NoiseSchedule) -> NoiseSchedule:
    """``"linear"`` (alpha_t = 1 - t) or ``"cosine"`` (alpha_t = cos(pi t / 2))."""
    if isinstance(name, NoiseSchedule):
        return name
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def _check_shape(n: int, length: int) -> tuple[int, int]:
    if int(n) != n or n < 0:
        raise ValueError(f"batch size n must be an integer >= 0, got {n}")
    if int(length) != length or length < 1:
        raise ValueError(f"sequence length L must be an integer >= 1, got {length}")
    return int(n), int(length)


def _per_sequence(values, n: int, what: str, dtype=None) -> np.ndarray:
    """``values`` broadcast to shape (n,): a scalar, or one value per sequence."""
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] not in (1, n)):
        raise ValueError(f"{what} must be one value or one per sequence, shape (n,) = ({n},), "
                         f"got shape {arr.shape}")
    return np.broadcast_to(arr, (n,))


def forward_mask(n: int, length: int, t, *, schedule: str | NoiseSchedule = "linear",
                 rng: RNGLike = None) -> np.ndarray:
    """Masks of the forward process q_{t|0}: each position masked w.p. 1 - alpha_t.

    Parameters
    ----------
    n, length : int
        Batch size and sequence length L.
    t : float or float array, shape (n,)
        Times in [0, 1], one per sequence or shared.
    schedule : "linear", "cosine" or NoiseSchedule
    rng : Generator, int or None

    Returns
    -------
    bool array, shape (n, L): True where masked.
    """
    n, length = _check_shape(n, length)
    sched = schedule_by_name(schedule)
    tt = _per_sequence(t, n, "t", np.float64)
    if np.any(~np.isfinite(tt)) or np.any(tt < 0) or np.any(tt > 1):
        raise ValueError("t must lie in [0, 1]")
    alpha = np.asarray(sched.alpha(tt), dtype=np.float64)
    gen = as_generator(rng)
    return gen.random((n, length)) >= alpha[:, None]


def fixed_size_mask(n: int, length: int, size, *, positions=None,
                    rng: RNGLike = None) -> np.ndarray:
    """Masks of exactly ``size`` positions, uniform among ``positions``, per sequence.

    Parameters
    ----------
    n, length : int
    size : int or int array, shape (n,)
        Number of masked positions per sequence, 0 <= size <= len(positions).
    positions : int array, shape (Q,), optional
        Candidate positions (default: all of 0..L-1); distinct, inside the sequence.
    rng : Generator, int or None

    Returns
    -------
    bool array, shape (n, L)
    """
    n, length = _check_shape(n, length)
    pos = np.arange(length, dtype=np.int64) if positions is None else np.asarray(
        positions, dtype=np.int64).reshape(-1)
    if pos.size and (pos.min() < 0 or pos.max() >= length):
        raise ValueError(f"mask positions must lie inside the sequence [0, {length}), got "
                         f"[{pos.min()}, {pos.max()}]")
    if np.unique(pos).size != pos.size:
        raise ValueError("mask positions must be distinct")
    sz = _per_sequence(size, n, "mask size")
    if sz.size and (np.any(sz != np.floor(sz)) or sz.min() < 0 or sz.max() > pos.size):
        raise ValueError(f"mask size must be an integer in [0, {pos.size}], got {size}")
    sz = sz.astype(np.int64)
    gen = as_generator(rng)
    # The ranks of i.i.d. uniform keys are a uniform random permutation per row.
    ranks = np.argsort(np.argsort(gen.random((n, pos.size)), axis=1), axis=1)
    out = np.zeros((n, length), dtype=bool)
    out[:, pos] = ranks < sz[:, None]
    return out


def latent_mask(dist, n: int, size, *, rng: RNGLike = None) -> np.ndarray:
    """Masks of ``size`` latent positions only: bool array, shape (n, L)."""
    return fixed_size_mask(n, dist.length, size, positions=dist.latent_positions, rng=rng)


def observation_mask(dist, n: int, size, *, rng: RNGLike = None) -> np.ndarray:
    """Masks of ``size`` observation positions only: bool array, shape (n, L)."""
    return fixed_size_mask(n, dist.length, size, positions=dist.observed_positions, rng=rng)


def protocol_obs_count(dist, n_masked_latents) -> np.ndarray:
    """Observations masked with l latents in App. C.2.1: l P / N, rounded half up."""
    ell = np.asarray(n_masked_latents, dtype=np.int64)
    return (2 * ell * dist.n_obs + dist.n_latent) // (2 * dist.n_latent)


def protocol_mask(dist, n: int, n_masked_latents, *, rng: RNGLike = None) -> np.ndarray:
    """The App. C.2.1 masks: l uniform latents and l P / N uniform observations.

    Parameters
    ----------
    dist : LODistribution
    n : int
    n_masked_latents : int or int array, shape (n,)
        l in [0, N]; the paper uses l in [1, N - 1]. The observation count l P / N
        is rounded half up when it is not an integer (e.g. N = 40, P = 260).
    rng : Generator, int or None

    Returns
    -------
    bool array, shape (n, L); trailing constant tokens are never masked.
    """
    n, _ = _check_shape(n, dist.length)
    ell = _per_sequence(n_masked_latents, n, "l")
    if ell.size and (np.any(ell != np.floor(ell)) or ell.min() < 0 or ell.max() > dist.n_latent):
        raise ValueError(f"l must be an integer in [0, N = {dist.n_latent}], got "
                         f"{n_masked_latents}")
    gen = as_generator(rng)
    ml = latent_mask(dist, n, ell.astype(np.int64), rng=gen)
    mo = observation_mask(dist, n, protocol_obs_count(dist, ell), rng=gen)
    return ml | mo


def apply_mask(tokens: np.ndarray, mask: np.ndarray, mask_id: int) -> np.ndarray:
    """Return a copy of ``tokens`` with masked positions set to ``mask_id``.

    Parameters
    ----------
    tokens : int array, shape (n, L)
    mask : bool array, shape (n, L) or (L,)
    mask_id : int
    """
    t = np.asarray(tokens)
    mk = np.asarray(mask)
    if mk.dtype != bool:
        raise ValueError(f"mask must be a bool array, got dtype {mk.dtype}")
    if mk.shape[-1] != t.shape[-1]:
        raise ValueError(f"mask covers {mk.shape[-1]} positions but the sequence has "
                         f"{t.shape[-1]}: a mask must lie inside the sequence")
    out = np.array(t, dtype=np.int64, copy=True)
    out[np.broadcast_to(mk, out.shape)] = mask_id
    return out
