"""Fast paths against the truth table, and the Bethe free entropy of instances."""

import itertools

import numpy as np
import pytest

from lohard.cavity import _kernels as K
from lohard.cavity import bethe_free_entropy, instance_free_entropy_gap
from lohard.cavity._popdyn import PredicateArrays
from lohard.csp import Instance, planted_instance
from lohard.predicates import Predicate


def _dirichlet(gen, k, m, sharp):
    msg = gen.dirichlet(np.full(m, sharp), size=k)
    return np.ascontiguousarray(msg)


@pytest.mark.parametrize("k,m", [(2, 3), (2, 5), (3, 2), (3, 3), (4, 3)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nae_fast_path_matches_truth_table(k, m, seed):
    pred = Predicate.nae(k, m) if k > 2 else Predicate.not_equal(m)
    fast = PredicateArrays.of(pred)
    assert fast.code == K.NAE
    gen = np.random.default_rng(seed)
    # sharp (0.05) Dirichlet messages are nearly one-hot: the regime where 1 - prod cancels
    for sharp in (1.0, 0.05):
        msg = _dirichlet(gen, k, m, sharp)
        a, b, scratch = np.empty(m), np.empty(m), np.empty(m)
        for s in range(k):
            K.clause_hat(fast.code, fast.sat, k, m, s, msg, a, scratch)
            K.clause_hat(0, fast.sat, k, m, s, msg, b, scratch)
            # both are sums of at most m^k products of numbers in [0, 1]
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        assert K.clause_z(fast.code, fast.sat, k, m, msg) == pytest.approx(
            K.clause_z(0, fast.sat, k, m, msg), rel=1e-12, abs=1e-15)


def test_nae_fast_path_keeps_precision_near_one_hot():
    """1 - prod mu must not cancel: with mu = (1 - eps, eps) the answer is ~eps, not 0."""
    pred = Predicate.not_equal(2)
    arr = PredicateArrays.of(pred)
    eps = 1e-18
    msg = np.array([[1.0 - eps, eps], [0.5, 0.5]])
    out, scratch = np.empty(2), np.empty(2)
    K.clause_hat(arr.code, arr.sat, 2, 2, 1, msg, out, scratch)
    assert out[0] == pytest.approx(eps, rel=1e-12)
    assert out[1] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("k,m", [(3, 2), (3, 3), (4, 4)])
@pytest.mark.parametrize("eps", [1e-3, 1e-9, 1e-17])
def test_nae_fast_path_near_one_hot_on_a_shared_colour(k, m, eps):
    """All other messages nearly one-hot on colour 0: p(0) ~ 1 takes the cancellation-free sum."""
    pred = Predicate.nae(k, m)
    arr = PredicateArrays.of(pred)
    msg = np.full((k, m), eps / (m - 1))
    msg[:, 0] = 1.0 - eps
    gen = np.random.default_rng(0)
    msg[0] = gen.dirichlet(np.ones(m))  # a generic row as well
    a, b, scratch = np.empty(m), np.empty(m), np.empty(m)
    for s in range(k):
        K.clause_hat(arr.code, arr.sat, k, m, s, msg, a, scratch)
        K.clause_hat(0, arr.sat, k, m, s, msg, b, scratch)
        # the truth table sums only nonnegative products: its relative error is ~1e-16
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
        assert np.all(a > 0)


def test_randint_is_uniform():
    """Frequencies of the fast index draw against 1/n (chi-square, 5 sigma bound)."""
    from numba import njit

    @njit
    def draws(rng, n, size, out):
        for _ in range(size):
            out[K.randint(rng, n)] += 1

    for n in (2, 3, 7, 1000):
        counts = np.zeros(n, dtype=np.int64)
        size = 200 * n if n > 10 else 100_000
        draws(np.random.default_rng(n), n, size, counts)
        expected = size / n
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        # chi-square with n - 1 dof: mean n - 1, sd sqrt(2 (n - 1))
        assert abs(chi2 - (n - 1)) < 5 * np.sqrt(2 * (n - 1)) + 5
        assert counts.min() > 0


def _bethe_reference(inst, mu):
    """Plain numpy evaluation of the standard variable + clause - edge Bethe expression."""
    pred, k, m = inst.predicate, inst.k, inst.m
    mu = mu / mu.sum(axis=1, keepdims=True)
    nu = np.zeros_like(mu)
    logz_a = 0.0
    for a, row in enumerate(inst.clauses):
        za = 0.0
        for y in itertools.product(range(m), repeat=k):
            if pred.table[y]:
                p = np.prod([mu[a * k + t, y[t]] for t in range(k)])
                za += p
                for s in range(k):
                    nu[a * k + s, y[s]] += p / mu[a * k + s, y[s]]
        logz_a += np.log(za)
    phi = 0.0
    for i in range(inst.n):
        edges = [a * k + s for a, row in enumerate(inst.clauses) for s in range(k) if row[s] == i]
        phi += np.log(np.prod(nu[edges], axis=0).sum()) if edges else np.log(m)
    return phi - (k - 1) * logz_a


@pytest.mark.parametrize("pred", [Predicate.nae(3, 3), Predicate.not_equal(4), Predicate.xor(3)])
def test_bethe_matches_reference_and_is_scale_invariant(pred):
    inst = planted_instance(12, pred, 3.0, rng=3)
    gen = np.random.default_rng(4)
    mu = gen.uniform(0.1, 1.0, size=(inst.num_edges, pred.m))
    got = bethe_free_entropy(inst, mu)
    assert got.contradictions == 0
    assert got.phi == pytest.approx(_bethe_reference(inst, mu), rel=1e-10, abs=1e-10)
    scaled = mu * gen.uniform(0.5, 3.0, size=(inst.num_edges, 1))
    assert bethe_free_entropy(inst, scaled).phi == pytest.approx(got.phi, rel=1e-12, abs=1e-12)


def test_bethe_uniform_is_annealed_value():
    pred = Predicate.nae(3, 3)
    inst = planted_instance(400, pred, 12.0, rng=0)
    got = bethe_free_entropy(inst, np.ones((inst.num_edges, 3)))
    exact = inst.n * np.log(3) + inst.num_clauses * np.log(pred.gamma)
    assert got.phi == pytest.approx(exact, rel=1e-12)


def test_bethe_is_exact_on_a_tree():
    """On a tree factor graph the Bethe free entropy at the BP fixed point is log Z."""
    pred = Predicate.nae(3, 2)
    clauses = np.array([[0, 1, 2], [2, 3, 4], [1, 5, 6]])
    inst = Instance(7, pred, clauses, sigma=np.array([0, 1, 0, 1, 1, 0, 0]))
    z = sum(all(pred.table[tuple(np.array(x)[c])] for c in clauses)
            for x in itertools.product(range(2), repeat=7))
    gen = np.random.default_rng(0)
    from lohard.bp import run_bp

    res = run_bp(inst, init="random", tol=1e-13, max_iter=200, rng=gen)
    assert res.converged
    assert bethe_free_entropy(inst, res.mu).phi == pytest.approx(np.log(z), rel=1e-9)


def test_instance_gap_uniform_start_is_annealed():
    pred = Predicate.nae(3, 3)
    inst = planted_instance(2000, pred, 20.0, rng=1)
    out = instance_free_entropy_gap(
        inst, bp_options={"schedule": "random-sequential", "damping": 0.0, "noise": 0.0,
                          "max_iter": 100}, rng=0)
    # below d_sp (~50) both starts end at the uniform point: gap 0 to rounding
    assert out["phi_uniform"] == pytest.approx(out["phi_annealed"], abs=1e-9)
    assert abs(out["gap"]) < 1e-6
    assert out["converged_uniform"]


def test_bethe_rejects_bad_messages():
    inst = planted_instance(30, Predicate.nae(3, 3), 3.0, rng=0)
    with pytest.raises(ValueError, match="shape"):
        bethe_free_entropy(inst, np.ones((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        bethe_free_entropy(inst, np.full((inst.num_edges, 3), np.nan))
