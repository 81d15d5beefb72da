import itertools

import numpy as np
import pytest

from lohard.bp import BPConvergenceWarning, FactorGraph, overlap, run_bp
from lohard.csp import Instance, planted_instance
from lohard.predicates import Predicate

PREDS = [Predicate.nae(3, 3), Predicate.not_equal(4), Predicate.xor(3), Predicate.xor(4, 1),
         Predicate.nae(4, 2)]


def exact_marginals(graph: FactorGraph) -> np.ndarray:
    """Brute-force marginals of prod_a g_a(x_a) prod_i field_i(x_i) by enumeration."""
    n, m, k = graph.n, graph.m, graph.k
    marg = np.zeros((n, m))
    for x in itertools.product(range(m), repeat=n):
        x = np.array(x)
        w = np.prod(graph.field[np.arange(n), x])
        for a in range(graph.clauses.shape[0]):
            idx = 0
            for s in range(k):
                idx = idx * m + x[graph.clauses[a, s]]
            w *= graph.tables[graph.clause_table[a], idx]
        marg[np.arange(n), x] += w
    return marg / marg.sum(axis=1, keepdims=True)


def tree_instance(pred, rng):
    """A random factor tree: each new clause attaches to one existing variable."""
    k = pred.k
    clauses, nxt = [], 1
    for _ in range(3):
        anchor = int(rng.integers(0, nxt))
        row = [anchor] + list(range(nxt, nxt + k - 1))
        rng.shuffle(row)
        clauses.append(row)
        nxt += k - 1
    return np.array(clauses), nxt


@pytest.mark.parametrize("pred", PREDS, ids=lambda p: p.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bp_exact_on_trees_fast_and_generic(pred, seed):
    # On a tree BP is exact; tolerance 1e-9 covers convergence to tol=1e-13.
    rng = np.random.default_rng(seed)
    clauses, n = tree_instance(pred, rng)
    field = rng.random((n, pred.m)) + 0.1
    inst = Instance(n, pred, clauses)
    g_fast = FactorGraph.from_instance(inst, field=field)
    g_gen = FactorGraph.from_instance(inst, field=field, fast_path=False)
    ref = exact_marginals(g_gen)
    for g in (g_fast, g_gen):
        for sched in ("parallel", "random-sequential"):
            r = run_bp(g, schedule=sched, damping=0.0, tol=1e-13, max_iter=200, rng=seed)
            assert r.converged
            np.testing.assert_allclose(r.beliefs, ref, atol=1e-9)


@pytest.mark.parametrize("pred", PREDS, ids=lambda p: p.name)
def test_fast_path_equals_generic_kernel_step_by_step(pred):
    # Same messages after every iteration from the same start (rounding only: 1e-12).
    inst = planted_instance(60, pred, 8.0, rng=4)
    a = run_bp(inst, schedule="parallel", damping=0.2, max_iter=7, warn=False, rng=5,
               tol=1e-300)
    b = run_bp(inst, schedule="parallel", damping=0.2, max_iter=7, warn=False, rng=5,
               tol=1e-300, fast_path=False)
    np.testing.assert_allclose(a.nu, b.nu, atol=1e-12)
    np.testing.assert_allclose(a.beliefs, b.beliefs, atol=1e-12)


def test_bp_close_to_exact_on_small_loopy_instance():
    # A sparse loopy instance (10 variables, ~8 clauses): BP is approximate.
    # Measured max error for these seeds is below 0.05; we allow 0.1.
    pred = Predicate.nae(3, 3)
    for seed in (0, 1):
        inst = planted_instance(10, pred, 5.0, rng=seed)
        rng = np.random.default_rng(seed)
        field = 1 + 0.5 * rng.random((10, 3))
        g = FactorGraph.from_instance(inst, field=field)
        ref = exact_marginals(g)
        r = run_bp(g, damping=0.3, tol=1e-10, max_iter=2000, rng=seed)
        assert r.converged
        assert np.abs(r.beliefs - ref).max() < 0.1


def test_serial_and_parallel_kernels_identical():
    inst = planted_instance(3000, Predicate.nae(3, 3), 40, rng=1)
    a = run_bp(inst, schedule="parallel", damping=0.5, max_iter=5, warn=False, rng=2,
               parallel=False)
    b = run_bp(inst, schedule="parallel", damping=0.5, max_iter=5, warn=False, rng=2,
               parallel=True)
    np.testing.assert_array_equal(a.nu, b.nu)
    np.testing.assert_array_equal(a.history, b.history)


def test_planted_recovery_above_ks_and_not_below():
    pred = Predicate.nae(3, 3)
    hi = planted_instance(4000, pred, 90, rng=3)
    r = run_bp(hi, rng=4, max_iter=200)
    assert r.overlap(hi.sigma).normalised > 0.95
    lo = planted_instance(4000, pred, 40, rng=3)
    r = run_bp(lo, rng=4, max_iter=60, warn=False)
    assert r.overlap(lo.sigma).normalised < 0.15
    assert np.all(np.isfinite(r.beliefs))


def test_hard_contradictions_never_give_nan():
    # Two clamped variables force contradictory evidence through an XOR clause.
    pred = Predicate.xor(2)
    inst = Instance(3, pred, np.array([[0, 1], [1, 2], [0, 2]]))
    field = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    r = run_bp(inst, field=field, schedule="parallel", damping=0.0, max_iter=20, warn=False,
               rng=0)
    assert np.all(np.isfinite(r.beliefs)) and np.all(np.isfinite(r.nu))
    assert r.contradictions > 0


def test_nonconvergence_warns():
    inst = planted_instance(2000, Predicate.nae(3, 3), 64, rng=0)
    with pytest.warns(BPConvergenceWarning, match="did not converge"):
        run_bp(inst, max_iter=2, rng=0)


@pytest.mark.parametrize(
    "kwargs, msg",
    [({"damping": 1.0}, "damping"), ({"damping": -0.1}, "damping"),
     ({"schedule": "async"}, "schedule"), ({"init": "zeros"}, "init"),
     ({"max_iter": 0}, "max_iter"), ({"init": "uniform", "noise": 0.5}, "noise")],
)
def test_bad_options(kwargs, msg):
    inst = planted_instance(30, Predicate.nae(3, 3), 5, rng=0)
    with pytest.raises(ValueError, match=msg):
        run_bp(inst, rng=0, **kwargs)


def test_overlap_permutation_and_normalisation():
    sig = np.array([0, 1, 2, 0, 1, 2])
    est = (sig + 1) % 3
    ov = overlap(est, sig)
    assert ov.raw == 1.0 and ov.normalised == 1.0
    np.testing.assert_array_equal(ov.permutation[est], sig)
    ov = overlap(np.zeros(6, dtype=int), sig, m=3)
    assert ov.raw == pytest.approx(1 / 3) and ov.normalised == pytest.approx(0.0)
    with pytest.raises(ValueError, match="NaN"):
        overlap(np.full((6, 3), np.nan), sig)


def test_planted_init_noise_is_a_mixing_weight_in_0_1():
    inst = planted_instance(30, Predicate.nae(3, 3), 5, rng=0)
    for bad in (2.0, 1.0001):
        with pytest.raises(ValueError, match=r"noise must lie in \[0, 1\], got"):
            run_bp(inst, init="planted", noise=bad, warn=False, rng=0)
    res = run_bp(inst, init="planted", noise=1.0, max_iter=1, warn=False, rng=0)
    assert np.all(res.nu >= 0)


def test_integer_arguments_are_not_truncated():
    inst = planted_instance(30, Predicate.nae(3, 3), 5, rng=0)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1, got 2.7"):
        run_bp(inst, max_iter=2.7, warn=False, rng=0)
    assert run_bp(inst, max_iter=3.0, tol=1e-300, warn=False, rng=0).iterations == 3
    with pytest.raises(ValueError, match="sigma must hold integers, got 0.7"):
        Instance(5, Predicate.nae(3, 3), np.zeros((0, 3)), np.array([0.7, 1.2, 0, 1, 2]))
    with pytest.raises(ValueError, match="clauses must hold integers"):
        Instance(5, Predicate.nae(3, 3), np.array([[0, 1, 2.5]]))
    with pytest.raises(ValueError, match="sigma must hold integers"):
        overlap(np.array([0, 1, 2]), np.array([0.5, 1.2, 2.9]))
    with pytest.raises(ValueError, match="estimate must hold integers"):
        overlap(np.array([0.5, 1.0, 2.0]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="sigma must hold integers"):
        run_bp(inst, init="planted", sigma=inst.sigma + 0.5, warn=False, rng=0)
    # integer-valued floats are whole numbers and stay accepted
    assert overlap(np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2])).raw == 1.0
    assert Instance(5, Predicate.nae(3, 3), np.zeros((0, 3)), np.array([0.0, 1, 2, 0, 1])).n == 5
