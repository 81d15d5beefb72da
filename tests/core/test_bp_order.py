"""The sweep's clause order: the same draws as NumPy's permutation, and the same BP runs."""

import numpy as np
import pytest

from lohard.bp import _bp, run_bp
from lohard.bp import _order as O
from lohard.csp import planted_instance
from lohard.predicates import Predicate


def _numpy_order(gen, clause_pos):
    return clause_pos[gen.permutation(clause_pos.shape[0])]


@pytest.mark.parametrize("P", [0, 1, 2, 3, 17, O._BLOCK - 1, O._BLOCK, O._BLOCK + 1,
                               3 * O._BLOCK + 5, 50_000])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_order_and_generator_state_match_numpy(P, seed):
    clause_pos = np.random.default_rng(99).permutation(P).astype(np.int64)
    g_np, g_k = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(2):  # twice: the state the first call leaves must match too
        assert np.array_equal(O.sweep_order(g_k, clause_pos), _numpy_order(g_np, clause_pos))
    # the generator is left where NumPy leaves it (32-bit buffered draws included)
    assert g_k.integers(0, 2**31, size=3).tolist() == g_np.integers(0, 2**31, size=3).tolist()
    assert g_k.random() == g_np.random()


def test_order_is_written_into_the_given_buffer_and_permutes_clause_pos():
    clause_pos = np.arange(1000, dtype=np.int64)[::-1].copy()
    out = np.empty(1000, dtype=np.int64)
    got = O.sweep_order(np.random.default_rng(3), clause_pos, out)
    assert got is out
    assert np.array_equal(np.sort(out), np.arange(1000))
    assert not np.array_equal(out, clause_pos)


def test_numpy_fallback_gives_the_same_order(monkeypatch):
    clause_pos = np.random.default_rng(1).permutation(5000).astype(np.int64)
    fast = O.sweep_order(np.random.default_rng(8), clause_pos)
    monkeypatch.setattr(O, "random_interval", None)
    assert np.array_equal(O.sweep_order(np.random.default_rng(8), clause_pos), fast)


def test_random_sequential_bp_is_unchanged_by_the_fast_order(monkeypatch):
    inst = planted_instance(3000, Predicate.nae(3, 3), 66.0, rng=4)
    fast = run_bp(inst, max_iter=15, warn=False, rng=5)

    def numpy_order(gen, clause_pos, out):
        out[:] = _numpy_order(gen, clause_pos)
        return out

    monkeypatch.setattr(_bp, "sweep_order", numpy_order)
    slow = run_bp(inst, max_iter=15, warn=False, rng=5)
    assert np.array_equal(fast.beliefs, slow.beliefs)
    assert np.array_equal(fast.history, slow.history)
