"""The belief-form BP kernels against the division-free reference kernel."""

import numba
import numpy as np
import pytest

from lohard.bp import FactorGraph
from lohard.bp import _kernels as K
from lohard.csp import planted_instance
from lohard.predicates import Predicate


def _setup(graph, nu0):
    offsets, edges = graph._csr
    return dict(offsets=offsets, edges=edges, pos=graph._pos, flat=graph.clauses.reshape(-1),
                sat=graph._sat, maxdeg=K.max_degree(offsets))


def _messages(graph, rng, hard_fraction):
    """Random normalised messages; a fraction of rows exclude colour 0 (exact zeros).

    Only colour 0 is ever excluded, so no variable starts in a contradiction
    (the two kernels reset contradictions differently; they are compared apart).
    Some rows also carry a tiny entry (1e-200), so products span far more than
    the float64 range.
    """
    E, m = graph.num_edges, graph.m
    nu = rng.dirichlet(np.ones(m), size=E)
    nu[rng.random(E) < hard_fraction, 0] = 0.0
    tiny = rng.random(E) < hard_fraction
    nu[tiny, 0] = 0.0
    nu[tiny, 1] = 1e-200
    return nu / nu.sum(axis=1, keepdims=True)


def _flood_both(graph, nu0, damping, iters, parallel=False):
    s = _setup(graph, nu0)
    n, m, k = graph.n, graph.m, graph.k
    kind, par = int(graph.kernel), int(graph.parity)
    si, so = s["sat"]
    ref = np.ascontiguousarray(nu0[s["edges"]])  # variable-major rows pos[e]
    mu_ref = np.empty_like(ref)
    bel_ref = np.empty((n, m))
    new = nu0.copy()
    prod, zeros, bel = np.empty((n, m)), np.empty((n, m), dtype=np.int64), np.empty((n, m))
    out = []
    for _ in range(iters):
        ch_r, bad_r = K.reference_iterate(ref, mu_ref, bel_ref, graph.field, s["offsets"],
                                          s["pos"], k, m, damping, kind, par, graph.tables,
                                          graph.clause_table, si, so, s["maxdeg"])
        if parallel:
            ch, bad = K.flood_parallel(new, prod, zeros, bel, graph.field, s["offsets"],
                                       s["edges"], s["flat"], *K.shape_tuples(k, m), damping, kind,
                                       par,
                                       graph.tables, graph.clause_table, si, so,
                                       4 * numba.get_num_threads())
        else:
            ch, bad = K.flood_serial(new, prod, zeros, bel, graph.field, s["offsets"], s["edges"],
                                     s["flat"], *K.shape_tuples(k, m), damping, kind, par,
                                     graph.tables,
                                     graph.clause_table, si, so)
        out.append((ch_r, ch, bad_r, bad, ref[s["pos"]].copy(), new.copy(), bel_ref.copy(),
                    bel.copy()))
    return out


PREDS = [Predicate.nae(3, 3), Predicate.not_equal(5), Predicate.xor(3), Predicate.nae(4, 2)]


@pytest.mark.parametrize("pred", PREDS, ids=lambda p: p.name)
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("hard", [0.0, 0.2])
def test_flooding_matches_reference_kernel(pred, fast, hard):
    rng = np.random.default_rng(3)
    inst = planted_instance(300, pred, 2.0 * pred.k, rng=rng)
    field = rng.random((inst.n, pred.m)) + 0.05
    field[rng.random(inst.n) < hard, 0] = 0.0  # evidence excluding colour 0
    g = FactorGraph.from_instance(inst, field=field, fast_path=fast)
    nu0 = _messages(g, rng, hard)
    for ch_r, ch, bad_r, bad, nu_r, nu, b_r, b in _flood_both(g, nu0, 0.3, 6):
        assert np.all(np.isfinite(nu)) and np.all(np.isfinite(b))
        assert (bad == 0) == (bad_r == 0)
        if bad:
            break  # contradictions are reset differently by the two kernels
        np.testing.assert_allclose(nu, nu_r, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, b_r, rtol=0, atol=1e-12)
        assert abs(ch - ch_r) < 1e-12


def test_parallel_flooding_bitwise_equals_serial():
    rng = np.random.default_rng(0)
    inst = planted_instance(2000, Predicate.nae(3, 3), 30.0, rng=rng)
    g = FactorGraph.from_instance(inst)
    nu0 = _messages(g, rng, 0.1)
    s = _setup(g, nu0)
    si, so = s["sat"]
    results = []
    for parallel in (False, True):
        nu = nu0.copy()
        prod, zeros = np.empty((g.n, 3)), np.empty((g.n, 3), dtype=np.int64)
        bel = np.empty((g.n, 3))
        for _ in range(3):
            args = (nu, prod, zeros, bel, g.field, s["offsets"], s["edges"], s["flat"],
                    *K.shape_tuples(3, 3),
                    0.3, 1, 0, g.tables, g.clause_table, si, so)
            ch = K.flood_parallel(*args, 7) if parallel else K.flood_serial(*args)
        results.append((nu, bel, ch))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_cavity_fallback_recovers_a_flushed_colour():
    # Both colours carry one exact zero (edges 0 and 1); on the other 21 edges
    # colour 1 is 1e-15, so its nonzero product (1e-315) is flushed next to
    # colour 0's. The cavity of edge 0 is colour 1 alone, which the products
    # have lost; the exact fallback must recover it.
    m, deg = 2, 23
    nu = np.empty((deg, m))
    nu[0] = (1.0, 0.0)
    nu[1] = (0.0, 1.0)
    nu[2:] = (1.0, 1e-15)
    nu /= nu.sum(axis=1, keepdims=True)
    field = np.ones((1, m))
    mu, direct = _cavities_one_variable(nu, field)
    np.testing.assert_array_equal(mu[0], [0.0, 1.0])
    np.testing.assert_allclose(mu, direct, atol=1e-12)
    # the fast division path alone has lost colour 1 for edge 0
    prod, zeros = np.empty((1, m)), np.empty((1, m), dtype=np.int64)
    K.product_range(0, 1, nu, field, np.array([0, deg]), np.arange(deg), (0,) * m, prod, zeros,
                    np.empty((1, m)))
    assert not K.cavity_row(prod, zeros, 0, nu, 0, m, np.empty((1, m)), 0)


def _cavities_one_variable(nu, field):
    """Kernel cavities of one variable holding every row of nu, and the direct products."""
    deg, m = nu.shape
    offsets = np.array([0, deg], dtype=np.int64)
    edges = np.arange(deg, dtype=np.int64)
    prod, zeros = np.empty((1, m)), np.empty((1, m), dtype=np.int64)
    mu, bel = np.empty_like(nu), np.empty((1, m))
    bad = K.cavities(nu, prod, zeros, bel, mu, field, offsets, edges,
                     np.zeros(deg, dtype=np.int64), (0,) * m)
    direct = np.empty_like(nu)
    bad_d = sum(K.direct_product(0, e, nu, field, offsets, edges, m, direct, e)
                for e in range(deg))
    bad_d += K.direct_product(0, -1, nu, field, offsets, edges, m, np.empty((1, m)), 0)
    assert bad == bad_d
    assert np.all(np.isfinite(mu)) and np.all(np.isfinite(bel))
    return mu, direct


def test_huge_products_stay_finite():
    # A colour with one exact zero and factors far larger than the others'
    # must not overflow to inf (it is capped), and no NaN appears.
    m, deg = 3, 60
    nu = np.tile([1.0, 1e-12, 1e-12], (deg, 1))
    nu[0] = (0.0, 0.5, 0.5)
    nu /= nu.sum(axis=1, keepdims=True)
    field = np.ones((1, m))
    prod, zeros = np.empty((1, m)), np.empty((1, m), dtype=np.int64)
    K.product_range(0, 1, nu, field, np.array([0, deg]), np.arange(deg), (0,) * m, prod, zeros,
                    np.empty((1, m)))
    assert np.all(np.isfinite(prod))
    mu, direct = _cavities_one_variable(nu, field)
    np.testing.assert_allclose(mu, direct, atol=1e-12)
