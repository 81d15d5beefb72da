"""The random-sequential sweep's clause order, drawn fast (private).

Each sweep visits the clauses in the order ``gen.permutation(P)``, in the user's
numbering, which BP then maps to its internal numbering (``clause_pos[p]``). At
N = 10^6 (P = 1.1e7) NumPy's permutation and that gather took 0.47 + 0.38 s of a
3.6 s sweep: both are a random memory access per clause. :func:`sweep_order` does
both in one pass, with prefetch, and draws exactly the same numbers from ``gen``:

* A Fisher-Yates shuffle moves entries by position whatever they hold, so
  shuffling a copy of ``clause_pos`` with the draws that turn ``arange(P)`` into
  ``p`` gives ``clause_pos[p]``: no gather.
* The draws are NumPy's: for i = P - 1 down to 1, j = ``random_interval(i)`` (a
  masked rejection sampler on the bit generator's 32- or 64-bit output), then
  swap entries i and j. Numba's ``Generator.shuffle`` uses the same sampler on the
  same bit generator state, and so does this kernel (Numba's own
  ``random_interval``); the draws are made a block ahead of the swaps, which
  changes nothing since nothing else reads the generator in between, and the
  entries at the drawn positions are prefetched.

``tests/core/test_bp_order.py`` checks the result and the generator's state
afterwards against NumPy for many sizes and seeds. If the Numba internal is ever
missing, :func:`sweep_order` falls back to NumPy (same result, slower).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lohard._prefetch import prefetch

try:  # a Numba internal (numba >= 0.56): the sampler behind Numba's Generator.shuffle
    from numba.np.random.random_methods import random_interval
except ImportError:  # pragma: no cover - depends on the installed Numba
    random_interval = None

# Draws made ahead of the swaps, and how far ahead the swapped entries are prefetched.
_BLOCK = 1024
_AHEAD = 16


if random_interval is not None:

    @njit(cache=True)
    def _shuffle_copy(gen, src, out):
        """out = src[gen.permutation(src.shape[0])], drawing what NumPy draws."""
        P = src.shape[0]
        for q in range(P):
            out[q] = src[q]
        js = np.empty(_BLOCK, dtype=np.int64)
        bg = gen.bit_generator
        i = P - 1
        while i >= 1:
            nb = min(_BLOCK, i)  # positions i, i - 1, ..., i - nb + 1 (all >= 1)
            for t in range(nb):
                js[t] = np.int64(random_interval(bg, i - t))
            for t in range(nb):
                if t + _AHEAD < nb:
                    prefetch(out, js[t + _AHEAD])
                j = js[t]
                a = i - t
                tmp = out[j]
                out[j] = out[a]
                out[a] = tmp
            i -= nb


def sweep_order(gen: np.random.Generator, clause_pos: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
    """``clause_pos[gen.permutation(P)]`` as int64, into ``out`` if given.

    Draws from ``gen`` exactly what ``gen.permutation(P)`` draws, so runs stay
    reproducible and equal to earlier versions of lohard.
    """
    P = clause_pos.shape[0]
    if out is None:
        out = np.empty(P, dtype=np.int64)
    if random_interval is None:
        out[:] = clause_pos[gen.permutation(P)]
        return out
    _shuffle_copy(gen, np.ascontiguousarray(clause_pos, dtype=np.int64), out)
    return out
