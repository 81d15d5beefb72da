"""The belief-form BP kernels against the division-free reference kernel."""

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


def _flood_state(graph, nu, nchunks):
    """Products, beliefs and partial products for the fused flooding kernels."""
    offsets, edges = graph._csr
    arrays, bad = K.flood_start(nu, graph.field, offsets, edges, graph.clauses.reshape(-1),
                                graph.clauses.shape[0], (0,) * graph.m, nchunks)
    names = ("prod", "zeros", "zflag", "bel", "part", "part_zeros", "part_flag", "redo")
    return dict(zip(names, arrays), bad0=bad, arrays=arrays)


def _flood(graph, nu, st, damping, parallel=False, nblocks=5):
    s = _setup(graph, nu)
    si, so = s["sat"]
    fn = K.flood_parallel if parallel else K.flood_serial
    return fn(nu, *st["arrays"], graph.field, s["offsets"], s["edges"], s["flat"],
              *K.shape_tuples(graph.k, graph.m), damping, int(graph.kernel), int(graph.parity),
              graph.tables, graph.clause_table, si, so, nblocks)


def _flood_both(graph, nu0, damping, iters, parallel=False, nchunks=3):
    """Flooding iterations of the reference and the fused kernels, side by side.

    Beliefs are compared before each update: the reference computes them at the
    start of its iteration, the fused kernel at the end of the previous one.
    """
    s = _setup(graph, nu0)
    n, m, k = graph.n, graph.m, graph.k
    kind, par = int(graph.kernel), int(graph.parity)
    si, so = s["sat"]
    ref = np.ascontiguousarray(nu0[s["edges"]])  # variable-major rows pos[e]
    mu_ref = np.empty_like(ref)
    bel_ref = np.empty((n, m))
    new = nu0.copy()
    st = _flood_state(graph, new, nchunks)
    out = []
    for _ in range(iters):
        bel = st["bel"].copy()
        ch_r, bad_r = K.reference_iterate(ref, mu_ref, bel_ref, graph.field, s["offsets"],
                                          s["pos"], k, m, damping, kind, par, graph.tables,
                                          graph.clause_table, si, so, s["maxdeg"])
        ch, bad = _flood(graph, new, st, damping, parallel)
        out.append((ch_r, ch, bad_r, bad, ref[s["pos"]].copy(), new.copy(), bel_ref.copy(), bel))
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
        np.testing.assert_allclose(b, b_r, rtol=0, atol=1e-12)
        if bad or bad_r:
            break  # contradictions are reset differently by the two kernels
        np.testing.assert_allclose(nu, nu_r, rtol=0, atol=1e-12)
        assert abs(ch - ch_r) < 1e-12


def _flood_runs(nchunks, parallel, iters=3):
    rng = np.random.default_rng(0)
    inst = planted_instance(2000, Predicate.nae(3, 3), 30.0, rng=rng)
    g = FactorGraph.from_instance(inst)
    nu = _messages(g, rng, 0.1)
    st = _flood_state(g, nu, nchunks)
    for _ in range(iters):
        ch = _flood(g, nu, st, 0.3, parallel, nblocks=7)
    return nu, st, ch


def test_parallel_flooding_bitwise_equals_serial():
    nu_s, st_s, ch_s = _flood_runs(5, parallel=False)
    nu_p, st_p, ch_p = _flood_runs(5, parallel=True)
    assert np.array_equal(nu_s, nu_p)
    assert np.array_equal(st_s["bel"], st_p["bel"])
    assert np.array_equal(st_s["prod"], st_p["prod"])
    assert np.array_equal(st_s["zeros"], st_p["zeros"])
    assert ch_s == ch_p


def test_flooding_chunking_changes_only_rounding():
    nu_1, st_1, ch_1 = _flood_runs(1, parallel=False)
    nu_5, st_5, ch_5 = _flood_runs(5, parallel=True)
    np.testing.assert_allclose(nu_1, nu_5, rtol=0, atol=1e-13)
    np.testing.assert_allclose(st_1["bel"], st_5["bel"], rtol=0, atol=1e-13)
    np.testing.assert_array_equal(st_1["zeros"], st_5["zeros"])


def test_flooding_products_match_a_fresh_product_pass():
    # the products the fused pass leaves behind describe the updated messages
    nu, st, _ = _flood_runs(4, parallel=True)
    g_st = _flood_state(_graph_for_runs(), nu, 1)
    np.testing.assert_array_equal(st["zeros"], g_st["zeros"])
    np.testing.assert_allclose(st["bel"], g_st["bel"], rtol=0, atol=1e-14)
    assert np.all(st["part"] == 1.0) and np.all(st["part_zeros"] == 0)
    assert not st["part_flag"].any()
    np.testing.assert_array_equal(st["zflag"], g_st["zflag"])
    assert not st["redo"].any()


def _graph_for_runs():
    rng = np.random.default_rng(0)
    return FactorGraph.from_instance(planted_instance(2000, Predicate.nae(3, 3), 30.0, rng=rng))


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
                     np.zeros(deg, dtype=np.int64), np.arange(deg), (0,), (0,) * m)
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


def test_flooding_redoes_clauses_the_products_cannot_serve():
    # Variable 0 sits in 23 two-colouring clauses (0, j). Its incoming messages
    # are those of test_cavity_fallback_recovers_a_flushed_colour: the products
    # flush colour 1, which the cavity towards clause 0 needs, and towards
    # clauses 2..22 both colours are excluded (a true contradiction). The fused
    # pass must flag those 22 clauses and update them exactly afterwards, in
    # clause order, each with the direct leave-one-out product over the
    # messages as they stand at that moment.
    m, deg = 2, 23
    clauses = np.array([(0, j) for j in range(1, deg + 1)], dtype=np.int64)
    g = FactorGraph(deg + 1, m, clauses, np.array([[0.0, 1.0, 1.0, 0.0]]),
                    np.zeros(deg, dtype=np.int64), np.ones((deg + 1, m)))
    nu0 = np.full((2 * deg, m), 0.5)
    nu0[0] = (1.0, 0.0)
    nu0[2] = (0.0, 1.0)
    nu0[4::2] = (1.0, 1e-15)
    nu0 /= nu0.sum(axis=1, keepdims=True)
    s = _setup(g, nu0)
    si, so = s["sat"]
    st = _flood_state(g, nu0, 1)
    mid, redo = nu0.copy(), st["redo"].copy()
    _, _, nredo = K.clause_chunk(0, 0, deg, (0, 0), (0, 0), mid, st["prod"], st["zeros"],
                                 st["zflag"], st["part"].copy(), st["part_zeros"].copy(),
                                 st["part_flag"].copy(), redo, s["flat"], 0.3, 0, 0, g.tables,
                                 g.clause_table, si, so)
    assert nredo == 22 and not redo[1]
    expect = mid.copy()
    bad_expect = 0
    for a in np.flatnonzero(redo):
        _, b = K.clause_body_exact(a, 2, m, expect, g.field, s["offsets"], s["edges"], s["flat"],
                                   0.3, 0, 0, g.tables, g.clause_table, si, so, np.empty((2, m)),
                                   np.empty((2, m)))
        bad_expect += b
    assert not np.array_equal(expect, mid)  # the flagged clauses did change
    for parallel, nch in ((False, 1), (False, 3), (True, 3)):
        nu = nu0.copy()
        st = _flood_state(g, nu, nch)
        _, bad = _flood(g, nu, st, 0.3, parallel)
        assert bad >= bad_expect
        assert np.all(np.isfinite(nu)) and np.all(np.isfinite(st["bel"]))
        np.testing.assert_array_equal(nu, expect)
        fresh = _flood_state(g, nu, 1)
        np.testing.assert_array_equal(st["zeros"], fresh["zeros"])
        np.testing.assert_allclose(st["bel"], fresh["bel"], rtol=0, atol=1e-14)
        assert not st["redo"].any()
    assert expect[1, 1] > 0.3  # clause 0 told variable 1 that variable 0 is colour 1
