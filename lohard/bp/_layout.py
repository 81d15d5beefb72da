"""Memory layout of a factor graph for BP (private): a locality-friendly internal numbering.

BP works on an internal copy of the graph whose variables are renumbered in
breadth-first order and whose clauses are sorted by their first-visited
variable, so that the clauses of a variable, and the variables first reached
from them, sit next to each other in memory. Every array that crosses the
public API is mapped between the user's numbering and the internal one here,
so callers never see the internal numbering.

Internal clause ``a'`` is user clause ``clause_order[a']``, with its slots in
the user's order (factor tables are indexed by slot); internal edge
``a' * k + s`` is user edge ``clause_order[a'] * k + s``. Internal variable
``v`` is user variable ``perm[v]``; user variable ``i`` is internal ``inv[i]``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from lohard._prefetch import prefetch, prefetch_at
from lohard.bp._kernels import _AHEAD  # how far ahead the random-row loops prefetch
from lohard.csp._kernels import csr_by_variable

# Graphs with fewer edges than this keep the user's numbering: their BP state fits
# in a core's L2 cache (about 1 MB at E = 2^15, m = 3), so a new layout saves
# nothing and costs O(E) to build. Tests lower it to 0 to exercise the renumbering.
RENUMBER_MIN_EDGES = 1 << 15


class Layout(NamedTuple):
    """The internal numbering of a factor graph and its arrays in that numbering.

    perm, inv : int64 arrays, shape (n,)
        Internal variable v is user variable perm[v]; inv is the inverse permutation.
    clause_order : int64 array, shape (P,)
        Internal clause a' is user clause clause_order[a'].
    clause_pos : int64 array, shape (P,)
        Inverse of clause_order: user clause a is internal clause clause_pos[a].
    clauses : int64 array, shape (P, k)
        Internal variables of the internal clauses.
    clause_table : int64 array, shape (P,)
        Table of each internal clause.
    offsets, edges : int64 arrays, shapes (n + 1,), (E,)
        Edges of each internal variable (CSR over ``clauses``), in increasing order.
    identity : bool
        True when the internal numbering is the user's (all maps are the identity).
    """

    perm: np.ndarray
    inv: np.ndarray
    clause_order: np.ndarray
    clause_pos: np.ndarray
    clauses: np.ndarray
    clause_table: np.ndarray
    offsets: np.ndarray
    edges: np.ndarray
    identity: bool

    # -- user -> internal -------------------------------------------------------------
    def variables_in(self, x: np.ndarray) -> np.ndarray:
        """Rows of a per-variable array (n, ...) in internal order."""
        return x if self.identity else np.ascontiguousarray(x[self.perm])

    def edges_in(self, x: np.ndarray) -> np.ndarray:
        """Rows of a per-edge array (E, m), user edge order, in internal edge order."""
        if self.identity:
            return x
        out = np.empty_like(x)
        gather_clause_rows(x, self.clause_order, self.clauses.shape[1], out)
        return out

    # -- internal -> user -------------------------------------------------------------
    def variables_out(self, x: np.ndarray) -> np.ndarray:
        """Rows of a per-variable array (n, ...) in user order."""
        return x if self.identity else np.ascontiguousarray(x[self.inv])

    def edges_out(self, x: np.ndarray) -> np.ndarray:
        """Rows of a per-edge array (E, m), internal edge order, in user edge order."""
        if self.identity:
            return x
        out = np.empty_like(x)
        gather_clause_rows(x, self.clause_pos, self.clauses.shape[1], out)
        return out


def identity_layout(clauses: np.ndarray, clause_table: np.ndarray, offsets: np.ndarray,
                    edges: np.ndarray) -> Layout:
    """The user's own numbering, as a Layout (no copies)."""
    n = offsets.shape[0] - 1
    ar_n = np.arange(n, dtype=np.int64)
    ar_p = np.arange(clauses.shape[0], dtype=np.int64)
    return Layout(ar_n, ar_n, ar_p, ar_p, clauses, clause_table, offsets, edges, True)


def locality_layout(clauses: np.ndarray, clause_table: np.ndarray, n: int, num_tables: int,
                    user_csr: tuple[np.ndarray, np.ndarray] | None = None) -> Layout:
    """Breadth-first internal numbering of variables and clauses.

    Parameters
    ----------
    clauses : int64 array, shape (P, k)
        User clauses.
    clause_table : int64 array, shape (P,)
        Table of each user clause.
    n : int
        Number of variables.
    num_tables : int
        Number of distinct tables (with one, ``clause_table`` is all zeros in any order).
    user_csr : (offsets, edges), optional
        The user graph's CSR by variable, if already at hand (else built here).

    Notes
    -----
    Cuthill-McKee order without its degree sort: variables are numbered in the
    order a breadth-first search of the factor graph reaches them (each
    connected component from its lowest-numbered user variable), and clauses in
    the order the search first meets them, which is the order of their
    lowest-numbered internal variable. A variable's clauses are then adjacent,
    and so are the variables they introduce. O(E) time; deterministic.
    Measured on planted NAE(3,3) at d = 64, N = 10^5 (E = 3.2e6), under load:
    search 75 ms, the two CSRs 25 ms each, renumbering 13 ms; one flooding
    iteration 80 ms. (Building the internal CSR inside the search too was slower:
    142 vs 125 ms.) The search writes the renumbered clauses as it meets them:
    1.42 -> 1.14 s for search and renumbering at N = 10^6, idle machine. The whole
    build there took 2.2-3.3 s; it makes a flooding iteration 18 % faster (1.25 ->
    1.03 s), so it pays for itself within about 10 iterations (the sweep gains 2 %).
    """
    P, k = clauses.shape
    flat = clauses.reshape(-1)
    if user_csr is None:
        offsets = np.empty(n + 1, dtype=np.int64)
        edges = np.empty(P * k, dtype=np.int64)
        csr_by_variable(flat, n, offsets, edges)
    else:
        offsets, edges = user_csr
    perm = np.empty(n, dtype=np.int64)
    inv = np.empty(n, dtype=np.int64)
    order = np.empty(P, dtype=np.int64)
    pos = np.empty(P, dtype=np.int64)
    new_clauses = np.empty((P, k), dtype=np.int64)
    bfs_order(offsets, edges, flat, (0,) * k, perm, inv, order, pos, new_clauses.reshape(-1))
    del offsets, edges
    offsets = np.empty(n + 1, dtype=np.int64)
    edges = np.empty(P * k, dtype=np.int64)
    csr_by_variable(new_clauses.reshape(-1), n, offsets, edges)
    new_table = clause_table if num_tables == 1 else np.ascontiguousarray(clause_table[order])
    # read-only like a FactorGraph's own arrays, so both layouts use the same compiled kernels
    new_clauses.setflags(write=False)
    new_table.setflags(write=False)
    return Layout(perm, inv, order, pos, new_clauses, new_table, offsets, edges, False)


@njit(cache=True)
def bfs_order(offsets, edges, clauses_flat, kt, perm, inv, order, pos, new_flat):
    """Breadth-first numbering of the factor graph's variables and clauses (see locality_layout).

    Fills ``perm`` (internal -> user variable), ``inv`` (its inverse), ``order``
    (internal -> user clause), ``pos`` (its inverse) and ``new_flat`` (the internal
    clauses, flat: ``inv`` of the user clause's variables). ``kt`` is a tuple of
    length k: k is then a compile-time constant and ``edge // k`` a multiplication.

    A clause is renumbered when the search first meets it: its row and the ``inv``
    entries of its variables are in the cache then, and every variable of it has its
    number once the clause's own loop is done (a separate pass over random rows took
    0.76 s at N = 10^6, and the inverse of ``order`` 0.1 s more).
    """
    k = len(kt)
    n = offsets.shape[0] - 1
    P = order.shape[0]
    for i in range(n):
        inv[i] = -1
    seen = np.zeros(P, dtype=np.bool_)
    head = 0
    tail = 0
    nc = 0
    for start in range(n):
        if inv[start] >= 0:
            continue
        inv[start] = tail
        perm[tail] = start
        tail += 1
        while head < tail:
            # Each step reads rows at random places; prefetch them along the queue,
            # which is known ahead: the CSR row of the variable 3 on, its edge list
            # 2 on, its clauses and their flags 1 on (1.7 -> 1.3 s at N = 10^6).
            if head + 3 < tail:
                prefetch(offsets, perm[head + 3])
            if head + 2 < tail:
                u = perm[head + 2]
                for j in range(offsets[u], offsets[u + 1], 8):  # 8 int64 per cache line
                    prefetch(edges, j)
            if head + 1 < tail:
                u = perm[head + 1]
                for j in range(offsets[u], offsets[u + 1]):
                    a = edges[j] // k
                    prefetch(seen, a)
                    prefetch(clauses_flat, a * k)
            v = perm[head]
            head += 1
            for j in range(offsets[v], offsets[v + 1]):
                a = edges[j] // k
                if seen[a]:
                    continue
                seen[a] = True
                order[nc] = a
                pos[a] = nc
                for s in range(k):
                    u = clauses_flat[a * k + s]
                    if inv[u] < 0:
                        inv[u] = tail
                        perm[tail] = u
                        tail += 1
                    new_flat[nc * k + s] = inv[u]
                nc += 1


@njit(cache=True)
def gather_clause_rows(x, src_clause, k, out):
    """out[a * k + s] = x[src_clause[a] * k + s]: per-edge rows moved clause by clause."""
    m = x.shape[1]
    P = src_clause.shape[0]
    for a in range(P):
        if a + _AHEAD < P:  # the rows are read at random places: prefetch both ends
            ahead = src_clause[a + _AHEAD] * k
            prefetch(x, ahead)
            prefetch_at(x, ahead + k - 1, m - 1)
        src = src_clause[a] * k
        dst = a * k
        for s in range(k):
            for c in range(m):
                out[dst + s, c] = x[src + s, c]


@njit(cache=True)
def clause_problem(clauses, n):
    """What is wrong with a (P, k) clause array over n variables (no sort, no temporary).

    1: an entry is not a variable index in [0, n) (reported first, wherever it is);
    2: a clause repeats a variable; 0: neither.
    """
    P, k = clauses.shape
    flat = clauses.reshape(-1)
    top = np.uint64(n)
    for e in range(flat.shape[0]):
        if np.uint64(flat[e]) >= top:  # a negative index wraps to a huge one
            return 1
    for a in range(P):
        for s in range(1, k):
            v = clauses[a, s]
            for t in range(s):
                if clauses[a, t] == v:
                    return 2
    return 0


@njit(cache=True)
def field_problem(field):
    """What is wrong with an (n, m) array of unary weights, in one pass.

    1: an entry is not finite or is negative (reported first); 2: a row is all 0; 0: neither.
    """
    zero_row = False
    for i in range(field.shape[0]):
        tot = 0.0
        for c in range(field.shape[1]):
            v = field[i, c]
            if not (0.0 <= v < np.inf):  # NaN fails both comparisons
                return 1
            tot += v
        zero_row = zero_row or tot == 0.0
    return 2 if zero_row else 0
