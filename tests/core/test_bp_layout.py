"""BP's internal locality layout: a permutation, exact round trips, and no effect on results."""

import numpy as np
import pytest

from lohard.bp import FactorGraph, _layout, run_bp
from lohard.csp import Instance, planted_instance
from lohard.predicates import Predicate


def _multi_table_graph(seed):
    """A generic graph: 3 random soft tables on k = 3, m = 3, a field, two components."""
    rng = np.random.default_rng(seed)
    n, m, k, P = 40, 3, 3, 50
    clauses = np.array([rng.choice(n // 2, size=k, replace=False) for _ in range(P)])
    clauses[P // 2:] += n // 2  # a second component on variables 20..39
    tables = rng.random((3, m**k)) + 0.05
    return FactorGraph(n, m, clauses, tables, rng.integers(0, 3, size=P), rng.random((n, m)) + 0.1)


def _graphs():
    rng = np.random.default_rng(0)
    yield FactorGraph.from_instance(planted_instance(300, Predicate.nae(3, 3), 12.0, rng=1))
    yield FactorGraph.from_instance(planted_instance(200, Predicate.xor(4, 1), 6.0, rng=2))
    yield _multi_table_graph(3)
    # isolated variables (5, 6, 7 are in no clause) and a variable in one clause only
    inst = Instance(8, Predicate.not_equal(3), np.array([[0, 1], [1, 2], [3, 4], [2, 0]]))
    yield FactorGraph.from_instance(inst, field=rng.random((8, 3)) + 0.1)


@pytest.mark.parametrize("graph", list(_graphs()), ids=lambda g: f"n{g.n}k{g.k}m{g.m}")
def test_layout_is_a_permutation_and_maps_round_trip_exactly(graph):
    n, P, k = graph.n, graph.clauses.shape[0], graph.k
    L = _layout.locality_layout(graph.clauses, graph.clause_table, n, graph.tables.shape[0])
    assert not L.identity
    np.testing.assert_array_equal(np.sort(L.perm), np.arange(n))
    np.testing.assert_array_equal(L.inv[L.perm], np.arange(n))
    np.testing.assert_array_equal(np.sort(L.clause_order), np.arange(P))
    np.testing.assert_array_equal(L.clause_pos[L.clause_order], np.arange(P))
    # internal clause a' is user clause order[a'] with its variables renamed, slots kept
    np.testing.assert_array_equal(L.perm[L.clauses], graph.clauses[L.clause_order])
    np.testing.assert_array_equal(L.clause_table, graph.clause_table[L.clause_order])
    # clauses come in the order of their first (lowest) internal variable
    first = L.clauses.min(axis=1)
    assert np.all(np.diff(first) >= 0)
    # the CSR lists each internal variable's edges, in increasing order
    flat = L.clauses.reshape(-1)
    for v in range(n):
        got = L.edges[L.offsets[v]:L.offsets[v + 1]]
        np.testing.assert_array_equal(got, np.flatnonzero(flat == v))
    # round trips are exact, and the maps move rows where the numbering says
    rng = np.random.default_rng(1)
    x = rng.random((n, 3))
    np.testing.assert_array_equal(L.variables_out(L.variables_in(x)), x)
    np.testing.assert_array_equal(L.variables_in(x)[L.inv], x)
    y = rng.random((P * k, 2))
    yi = L.edges_in(y)
    np.testing.assert_array_equal(L.edges_out(yi), y)
    a = rng.integers(0, P, size=10)
    s = rng.integers(0, k, size=10)
    np.testing.assert_array_equal(yi[L.clause_pos[a] * k + s], y[a * k + s])


def test_breadth_first_order_gives_a_scrambled_path_bandwidth_two():
    # A path 0-1-...-199 under a random relabelling: in the user's numbering
    # neighbours are ~n/3 apart; breadth-first from any vertex, at most 2.
    n = 200
    lab = np.random.default_rng(0).permutation(n)
    clauses = np.stack([lab[:-1], lab[1:]], axis=1)
    inst = Instance(n, Predicate.not_equal(2), clauses)
    g = FactorGraph.from_instance(inst)
    L = _layout.locality_layout(g.clauses, g.clause_table, n, 1)
    assert np.abs(np.diff(g.clauses, axis=1)).max() > 50
    assert np.abs(np.diff(L.clauses, axis=1)).max() <= 2


def test_small_graphs_keep_the_user_numbering_and_large_ones_do_not():
    small = FactorGraph.from_instance(planted_instance(100, Predicate.nae(3, 3), 6.0, rng=0))
    assert small.num_edges < _layout.RENUMBER_MIN_EDGES and small._layout.identity
    big = FactorGraph.from_instance(planted_instance(2000, Predicate.nae(3, 3), 64.0, rng=0))
    assert big.num_edges >= _layout.RENUMBER_MIN_EDGES and not big._layout.identity


def _run_both(monkeypatch, problem, **kw):
    """run_bp with the locality layout and with the user's numbering (same seed)."""
    monkeypatch.setattr(_layout, "RENUMBER_MIN_EDGES", 0)
    fresh = (lambda: problem()) if callable(problem) else (lambda: problem)
    p = fresh()
    g = p if isinstance(p, FactorGraph) else FactorGraph.from_instance(p)
    assert not g._layout.identity and np.any(g._layout.perm != np.arange(g.n))
    a = run_bp(p, warn=False, **kw)
    monkeypatch.setattr(_layout, "RENUMBER_MIN_EDGES", 10**18)
    b = run_bp(fresh(), warn=False, **kw)
    return a, b


CASES = [
    # (name, problem factory, run_bp options)
    ("nae33-flood-noise", lambda: planted_instance(400, Predicate.nae(3, 3), 30.0, rng=1),
     dict(schedule="parallel", damping=0.3, init="uniform", noise=0.02, max_iter=25)),
    ("nae33-seq-noise", lambda: planted_instance(400, Predicate.nae(3, 3), 30.0, rng=1),
     dict(schedule="random-sequential", init="uniform", noise=0.02, max_iter=25)),
    ("nae33-seq-planted", lambda: planted_instance(400, Predicate.nae(3, 3), 30.0, rng=2),
     dict(init="planted", noise=0.1, max_iter=10)),
    ("xor3-flood-random", lambda: planted_instance(300, Predicate.xor(3), 5.0, rng=3),
     dict(schedule="parallel", init="random", max_iter=15)),
    ("noteq4-seq-field", lambda: planted_instance(150, Predicate.not_equal(4), 6.0, rng=4),
     dict(init="uniform", noise=0.05, max_iter=20,
          field=np.random.default_rng(5).random((150, 4)) + 0.2)),
    ("soft-tables-flood", lambda: _multi_table_graph(6),
     dict(schedule="parallel", init="uniform", noise=0.05, max_iter=20)),
    ("soft-tables-seq", lambda: _multi_table_graph(7),
     dict(schedule="random-sequential", init="random", max_iter=20)),
]


@pytest.mark.parametrize("name, problem, opts", CASES, ids=[c[0] for c in CASES])
def test_renumbering_changes_no_result_beyond_rounding(monkeypatch, name, problem, opts):
    # Same seed, same draws on the same user edges, same sequential order of user
    # clauses: only the order of floating-point products differs (1e-16 per step),
    # so after <= 25 iterations everything agrees to 1e-12.
    a, b = _run_both(monkeypatch, problem, rng=11, tol=1e-300, **opts)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.beliefs, b.beliefs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.nu, b.nu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.mu, b.mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.history, b.history, rtol=0, atol=1e-12)
    assert a.contradictions == b.contradictions
    np.testing.assert_array_equal(a.assignment(), b.assignment())


def test_given_messages_are_read_in_the_users_edge_order(monkeypatch):
    inst = planted_instance(300, Predicate.nae(3, 3), 20.0, rng=8)
    nu0 = np.random.default_rng(9).dirichlet(np.ones(3), size=inst.num_edges)
    a, b = _run_both(monkeypatch, inst, nu0=nu0, schedule="parallel", max_iter=1, damping=0.5,
                     tol=1e-300, rng=0)
    np.testing.assert_allclose(a.nu, b.nu, rtol=0, atol=1e-15)
    # one undamped-by-half step from nu0: the returned messages are still half nu0
    assert np.all(a.nu >= 0.5 * nu0 / nu0.sum(axis=1, keepdims=True) - 1e-15)


def _reference_bfs(clauses, n):
    """Breadth-first numbering in plain Python (the definition in locality_layout's notes)."""
    clauses = np.asarray(clauses)
    by_var = [[] for _ in range(n)]
    for a, row in enumerate(clauses):
        for v in row:
            by_var[v].append(a)
    perm, order, seen_v, seen_c = [], [], set(), set()
    for start in range(n):
        if start in seen_v:
            continue
        seen_v.add(start)
        queue = [start]
        while queue:
            v = queue.pop(0)
            perm.append(v)
            for a in by_var[v]:
                if a in seen_c:
                    continue
                seen_c.add(a)
                order.append(a)
                for u in clauses[a]:
                    if u not in seen_v:
                        seen_v.add(u)
                        queue.append(u)
    return np.array(perm), np.array(order)


@pytest.mark.parametrize("graph", list(_graphs()), ids=lambda g: f"n{g.n}k{g.k}m{g.m}")
def test_prefetching_layout_kernels_match_plain_python(graph):
    # the kernels prefetch ahead (lohard._prefetch); that must change no entry
    n, P = graph.n, graph.clauses.shape[0]
    L = _layout.locality_layout(graph.clauses, graph.clause_table, n, graph.tables.shape[0])
    perm, order = _reference_bfs(graph.clauses, n)
    np.testing.assert_array_equal(L.perm, perm)
    np.testing.assert_array_equal(L.clause_order, order)
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    np.testing.assert_array_equal(L.clauses, inv[graph.clauses[order]])
    np.testing.assert_array_equal(L.inv, inv)
    np.testing.assert_array_equal(L.clause_pos[order], np.arange(P))
    # the CSR of the user graph: edges grouped by variable, stable within one
    from lohard.csp._kernels import csr_by_variable
    flat = np.ascontiguousarray(graph.clauses, dtype=np.int64).reshape(-1)
    offsets = np.empty(n + 1, dtype=np.int64)
    edges = np.empty(flat.size, dtype=np.int64)
    csr_by_variable(flat, n, offsets, edges)
    np.testing.assert_array_equal(edges, np.argsort(flat, kind="stable"))
    counts = np.bincount(flat, minlength=n)
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum(counts)]))
    assert P == order.size


def _clause_problem_reference(clauses, n):
    if clauses.size and (clauses.min() < 0 or clauses.max() >= n):
        return 1
    srt = np.sort(clauses, axis=1)
    return 2 if np.any(srt[:, 1:] == srt[:, :-1]) else 0


def _field_problem_reference(field):
    if not np.all(np.isfinite(field)) or np.any(field < 0):
        return 1
    return 2 if np.any(field.sum(axis=1) == 0) else 0


@pytest.mark.parametrize("seed", range(40))
def test_one_pass_checks_agree_with_numpy(seed):
    """The fused validation of FactorGraph against the plain NumPy checks it replaced."""
    gen = np.random.default_rng(seed)
    n, k, P = 12, int(gen.integers(1, 5)), int(gen.integers(0, 30))
    clauses = np.array([gen.permutation(n)[:k] for _ in range(P)], dtype=np.int64).reshape(P, k)
    for _ in range(int(gen.integers(0, 3))):  # faults: a repeat, or an index out of range
        if P:
            a, s = gen.integers(P), gen.integers(k)
            clauses[a, s] = gen.choice([clauses[a, (s + 1) % k], -1, n, n + 5])
    assert _layout.clause_problem(clauses, n) == _clause_problem_reference(clauses, n)
    field = gen.random((6, 3))
    for _ in range(int(gen.integers(0, 3))):
        i = gen.integers(6)
        fault = gen.integers(3)
        if fault == 0:
            field[i] = 0.0
        else:
            field[i, gen.integers(3)] = gen.choice([np.nan, np.inf, -np.inf, -0.5])
    assert _layout.field_problem(field) == _field_problem_reference(field)


@pytest.mark.parametrize("clauses, field, msg", [
    ([[0, 1, 5]], None, r"factor variables must be indices in \[0, 5\)"),
    ([[0, -1, 2]], None, r"factor variables must be indices in \[0, 5\)"),
    ([[0, 1, 1], [0, 1, 9]], None, r"indices in \[0, 5\)"),  # the range is reported first
    ([[0, 1, 1]], None, "the variables of a factor must be distinct"),
    ([[0, 1, 2]], "nan", "field weights must be finite and >= 0"),
    ([[0, 1, 2]], "neg", "field weights must be finite and >= 0"),
    ([[0, 1, 2]], "zero", "a variable's field is identically zero"),
])
def test_factor_graph_names_the_violated_condition(clauses, field, msg):
    pred = Predicate.nae(3, 2)
    fld = np.ones((5, 2))
    if field == "nan":
        fld[3, 1] = np.nan
    elif field == "neg":
        fld[2, 0] = -1.0
    elif field == "zero":
        fld[4] = 0.0
    with pytest.raises(ValueError, match=msg):
        FactorGraph(5, 2, np.array(clauses), pred.table.reshape(1, -1).astype(float),
                    np.zeros(len(clauses), dtype=np.int64), fld)
