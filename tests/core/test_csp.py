import itertools
import math

import numpy as np
import pytest

from lohard.csp import Instance, null_instance, planted_instance
from lohard.csp._instance import count_satisfying_tuples
from lohard.predicates import Predicate

NAE = Predicate.nae(3, 3)


def test_planted_clauses_satisfied_distinct_and_deterministic():
    a = planted_instance(500, NAE, 30, rng=7)
    b = planted_instance(500, NAE, 30, rng=7)
    np.testing.assert_array_equal(a.clauses, b.clauses)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    assert np.all(NAE.table[tuple(a.sigma[a.clauses].T)] == 1)
    assert len({tuple(r) for r in a.clauses.tolist()}) == a.num_clauses
    assert not np.array_equal(planted_instance(500, NAE, 30, rng=8).clauses[:5], a.clauses[:5])


def test_clause_count_is_poisson_with_degree_convention():
    # P ~ Poisson(d N / (k (k-1))): mean 1000 here; 40 draws give a mean within
    # 5 standard errors (5 * sqrt(1000/40) ~ 25) and a variance ratio near 1.
    counts = [planted_instance(300, NAE, 20, rng=s).num_clauses for s in range(40)]
    assert abs(np.mean(counts) - 1000) < 25
    assert 0.5 < np.var(counts, ddof=1) / 1000 < 1.6
    inst = planted_instance(300, NAE, 20, rng=1)
    assert inst.degree == pytest.approx(6 * inst.num_clauses / 300)


def test_clause_draws_are_uniform_over_satisfying_tuples():
    # Fixed sigma on n = 6; every satisfying ordered tuple should be drawn equally
    # often. Chi-square with df = S-1 against its 1 - 1e-4 quantile.
    from scipy.stats import chi2

    from lohard.csp._instance import _draw_clauses

    sig = np.array([0, 0, 1, 1, 2, 2])
    rng = np.random.default_rng(3)
    counts = {}
    for _ in range(400):
        for r in _draw_clauses(6, NAE, sig, 5, rng).tolist():
            counts[tuple(r)] = counts.get(tuple(r), 0) + 1
    allowed = [t for t in itertools.permutations(range(6), 3) if NAE(sig[list(t)])]
    assert set(counts) <= set(allowed)
    obs = np.array([counts.get(t, 0) for t in allowed])
    exp = obs.sum() / len(allowed)
    stat = ((obs - exp) ** 2 / exp).sum()
    assert stat < chi2.ppf(1 - 1e-4, len(allowed) - 1)


def test_count_satisfying_tuples_brute_force():
    sig = np.array([0, 0, 1, 2, 1, 0])
    brute = sum(NAE(sig[list(t)]) for t in itertools.permutations(range(6), 3))
    assert count_satisfying_tuples(NAE, sig, 6) == brute
    assert count_satisfying_tuples(NAE, None, 6) == math.perm(6, 3)


def test_null_model_has_no_common_solution_structure():
    inst = null_instance(2000, NAE, 60, rng=3)
    assert inst.sigma is None and inst.num_clauses > 0
    # Uniform tuples: a random colouring violates about 1 - gamma = 1/9 of them.
    sig = np.random.default_rng(0).integers(0, 3, 2000)
    viol = 1 - NAE.table[tuple(sig[inst.clauses].T)].mean()
    assert abs(viol - 1 / 9) < 0.02


def test_csr_and_networkx_export():
    inst = planted_instance(40, NAE, 6, rng=2)
    off, edges = inst.var_offsets, inst.var_edges
    flat = inst.clauses.reshape(-1)
    for i in range(inst.n):
        assert np.all(flat[edges[off[i]:off[i + 1]]] == i)
    g = inst.to_networkx()
    assert g.number_of_nodes() == inst.n + inst.num_clauses
    assert g.number_of_edges() == inst.num_edges
    assert g.nodes[("v", 0)]["sigma"] == inst.sigma[0]


def test_bad_input():
    with pytest.raises(ValueError, match="n >= k"):
        planted_instance(2, NAE, 1.0, rng=0)
    with pytest.raises(ValueError, match="degree must be"):
        planted_instance(10, NAE, -1.0, rng=0)
    with pytest.raises(ValueError, match="without repeats"):
        planted_instance(6, NAE, 500.0, rng=0)
    with pytest.raises(ValueError, match="distinct"):
        Instance(5, NAE, np.array([[0, 0, 1]]))
    with pytest.raises(ValueError, match="violates"):
        Instance(5, NAE, np.array([[0, 1, 2]]), sigma=np.zeros(5, dtype=int))
