"""Numba kernels for instance construction (private)."""

from numba import njit

from lohard._prefetch import prefetch

# How far ahead the random-access loops prefetch (see lohard._prefetch).
_AHEAD = 16


@njit(cache=True)
def csr_by_variable(clauses_flat, n, offsets, edges):
    """Counting sort of edges e = a*k + s by their variable ``clauses_flat[e]``.

    Fills ``offsets`` (int64, n+1) and ``edges`` (int64, E); within a variable,
    edges are in increasing order, so the result is deterministic. The counts and
    the slots written are at random places: they are prefetched _AHEAD edges on
    (1.3 -> 1.0 s for the second sort of the layout at N = 10^6, E = 3.2e7).
    """
    E = clauses_flat.shape[0]
    for i in range(n + 1):
        offsets[i] = 0
    for e in range(E):
        if e + _AHEAD < E:
            prefetch(offsets, clauses_flat[e + _AHEAD] + 1)
        offsets[clauses_flat[e] + 1] += 1
    for i in range(n):
        offsets[i + 1] += offsets[i]
    fill = offsets[:n].copy()
    for e in range(E):
        if e + 2 * _AHEAD < E:
            prefetch(fill, clauses_flat[e + 2 * _AHEAD])
        if e + _AHEAD < E:
            prefetch(edges, fill[clauses_flat[e + _AHEAD]])
        v = clauses_flat[e]
        edges[fill[v]] = e
        fill[v] += 1


@njit(cache=True)
def accept_tuples(cand, sigma, table_flat, m, out_ok):
    """Mark candidate tuples (rows of ``cand``) that have distinct entries and g(sigma_S) = 1.

    With ``m == 0`` the predicate is ignored (null model): only distinctness counts.
    """
    P, k = cand.shape
    for a in range(P):
        ok = True
        for s in range(k):
            for t in range(s):
                if cand[a, s] == cand[a, t]:
                    ok = False
        if ok and m > 0:
            idx = 0
            for s in range(k):
                idx = idx * m + sigma[cand[a, s]]
            ok = table_flat[idx] == 1
        out_ok[a] = ok
