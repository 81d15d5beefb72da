"""lohard._prefetch: a hint that compiles to a prefetch instruction and changes no value."""

import platform

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from lohard._prefetch import prefetch, prefetch_at


@njit
def _gather(x, y, idx):
    total = 0.0
    for q in range(idx.shape[0]):
        if q + 2 < idx.shape[0]:
            prefetch(x, idx[q + 2])
            prefetch_at(x, idx[q + 2], x.shape[1] - 1)
            prefetch(y, np.int32(idx[q + 2]))
        total += x[idx[q], 0] + y[idx[q]]
    return total


def test_prefetch_changes_no_value():
    rng = np.random.default_rng(0)
    x = rng.random((1000, 3))
    y = rng.random(1000)
    idx = rng.integers(0, 1000, size=500)
    assert _gather(x, y, idx) == sum(x[i, 0] + y[i] for i in idx)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 assembly")
def test_prefetch_compiles_to_a_prefetch_instruction():
    x = np.zeros((4, 3))
    _gather(x, np.zeros(4), np.arange(4))
    asm = _gather.inspect_asm(_gather.signatures[0])
    assert asm.count("prefetcht0") >= 3


def test_prefetch_rejects_what_is_not_an_array_row():
    @njit
    def bad(x):
        prefetch(x, 0)

    with pytest.raises(TypingError):
        bad(1.0)
