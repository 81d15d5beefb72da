"""Planted ensemble (Def. B.9), null model, and the Instance container."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lohard._util import RNGLike, as_generator, integer_array
from lohard.csp._kernels import accept_tuples, csr_by_variable
from lohard.predicates import Predicate

# Below this many distinct satisfying tuples we enumerate them and draw clauses
# without replacement exactly; above it, rejection sampling plus de-duplication.
_ENUMERATE_LIMIT = 2_000_000
# Rejection sampling works in chunks of this many candidates to bound memory.
_CHUNK = 4_000_000


@dataclass(frozen=True, eq=False)
class Instance:
    """A CSP instance: n variables, P clauses of arity k, one predicate.

    Parameters
    ----------
    n : int
        Number of variables N.
    predicate : Predicate
        The constraint g shared by every clause.
    clauses : int64 array, shape (P, k)
        Ordered k-tuples of distinct variables, one row per clause.
    sigma : int64 array, shape (n,), or None
        The planted assignment (colours 0..m-1); None for the null model.

    Notes
    -----
    Edge ``e = a * k + s`` joins clause ``a`` and its slot-``s`` variable
    ``clauses[a, s]``. ``var_offsets`` / ``var_edges`` give, for variable ``i``,
    its edges ``var_edges[var_offsets[i]:var_offsets[i+1]]`` (CSR, int64).
    The instance validates itself on construction: shapes, index ranges,
    distinct variables within a clause, and g(sigma_S) = 1 for planted ones.
    """

    n: int
    predicate: Predicate
    clauses: np.ndarray
    sigma: np.ndarray | None = None
    target_degree: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n = int(self.n)
        k = self.predicate.k
        if n < k:
            raise ValueError(f"need n >= k variables for k-ary clauses, got n = {n}, k = {k}")
        object.__setattr__(self, "n", n)
        c = np.ascontiguousarray(integer_array(self.clauses, "clauses"))
        if c.ndim != 2 or c.shape[1] != k:
            raise ValueError(f"clauses must have shape (P, k={k}), got {c.shape}")
        if c.size and (c.min() < 0 or c.max() >= n):
            raise ValueError(f"clause entries must be variable indices in [0, {n})")
        if k > 1 and c.shape[0]:
            srt = np.sort(c, axis=1)
            if np.any(srt[:, 1:] == srt[:, :-1]):
                raise ValueError("every clause must be a k-tuple of distinct variables")
        c.setflags(write=False)
        object.__setattr__(self, "clauses", c)
        if self.sigma is not None:
            s = np.ascontiguousarray(integer_array(self.sigma, "sigma"))
            if s.shape != (n,):
                raise ValueError(f"sigma must have shape (n,) = ({n},), got {s.shape}")
            if s.size and (s.min() < 0 or s.max() >= self.predicate.m):
                raise ValueError(f"sigma entries must be colours in [0, {self.predicate.m})")
            if c.shape[0] and not np.all(self.predicate.table[tuple(s[c].T)]):
                raise ValueError("sigma violates a clause: a planted instance needs g(sigma_S) = 1")
            s.setflags(write=False)
            object.__setattr__(self, "sigma", s)

    # -- sizes and the degree convention ----------------------------------------
    @property
    def k(self) -> int:
        return self.predicate.k

    @property
    def m(self) -> int:
        return self.predicate.m

    @property
    def num_clauses(self) -> int:
        return int(self.clauses.shape[0])

    @property
    def num_edges(self) -> int:
        return self.num_clauses * self.k

    @property
    def degree(self) -> float:
        """Realised degree d = (k-1) k P / N: mean number of clause-neighbours of a variable."""
        return (self.k - 1) * self.k * self.num_clauses / self.n

    @property
    def planted(self) -> bool:
        return self.sigma is not None

    # -- CSR by variable ---------------------------------------------------------
    @cached_property
    def _csr(self) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.empty(self.n + 1, dtype=np.int64)
        edges = np.empty(self.num_edges, dtype=np.int64)
        csr_by_variable(self.clauses.reshape(-1), self.n, offsets, edges)
        offsets.setflags(write=False)
        edges.setflags(write=False)
        return offsets, edges

    @property
    def var_offsets(self) -> np.ndarray:
        """int64 array, shape (n+1,): CSR offsets of each variable's edges."""
        return self._csr[0]

    @property
    def var_edges(self) -> np.ndarray:
        """int64 array, shape (k P,): edge ids grouped by variable."""
        return self._csr[1]

    def variable_degrees(self) -> np.ndarray:
        """int64 array, shape (n,): number of clauses each variable is in."""
        return np.diff(self.var_offsets)

    # -- export --------------------------------------------------------------------
    def to_networkx(self):
        """Bipartite factor graph: nodes ``("v", i)`` (bipartite=0) and ``("c", a)`` (bipartite=1).

        Variable nodes carry ``sigma`` when planted; each edge carries its ``slot``.
        """
        import networkx as nx

        g = nx.Graph()
        for i in range(self.n):
            attrs = {"bipartite": 0}
            if self.sigma is not None:
                attrs["sigma"] = int(self.sigma[i])
            g.add_node(("v", i), **attrs)
        g.add_nodes_from((("c", a) for a in range(self.num_clauses)), bipartite=1)
        for a, row in enumerate(self.clauses.tolist()):
            for s, i in enumerate(row):
                g.add_edge(("c", a), ("v", i), slot=s)
        return g

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "num_clauses": self.num_clauses,
            "degree": self.degree,
            "target_degree": self.target_degree,
            "predicate": self.predicate.to_dict(),
            "planted": self.planted,
        }


def expected_clauses(n: int, k: int, degree: float) -> float:
    """Mean clause count P = d N / (k (k-1)) under lohard's degree convention."""
    return degree * n / (k * (k - 1))


def count_satisfying_tuples(predicate: Predicate, sigma: np.ndarray | None, n: int) -> int:
    """Exact number of ordered k-tuples of distinct variables with g(sigma_S) = 1.

    For the null model (``sigma=None``) every ordered tuple of distinct variables counts.
    """
    k = predicate.k
    if sigma is None:
        return math.perm(n, k)
    counts = np.bincount(sigma, minlength=predicate.m)
    total = 0
    for x in predicate.satisfying.tolist():
        mult = np.bincount(np.asarray(x), minlength=predicate.m)
        term = 1
        for c in range(predicate.m):
            term *= math.perm(int(counts[c]), int(mult[c])) if mult[c] <= counts[c] else 0
        total += term
    return total


def _check_params(n: int, predicate: Predicate, degree: float) -> None:
    if not isinstance(predicate, Predicate):
        raise TypeError(f"predicate must be a lohard Predicate, got {type(predicate)!r}")
    if int(n) != n:
        raise ValueError(f"n must be an integer, got {n}")
    if n < predicate.k:
        raise ValueError(
            f"need n >= k variables for k-ary clauses, got n = {n}, k = {predicate.k}"
        )
    if not np.isfinite(degree) or degree < 0:
        raise ValueError(f"degree must be a finite number >= 0, got {degree}")


def _draw_clauses(n, predicate, sigma, num, rng) -> np.ndarray:
    """Draw ``num`` distinct ordered k-tuples of distinct variables, uniform among allowed ones."""
    k = predicate.k
    avail = count_satisfying_tuples(predicate, sigma, n)
    if num > avail:
        raise ValueError(
            f"degree too high for n = {n}: {num} clauses requested but only {avail} distinct "
            f"{'satisfying ' if sigma is not None else ''}ordered {k}-tuples exist, so clauses "
            "cannot be drawn without repeats; lower the degree or raise n"
        )
    if num == 0:
        return np.zeros((0, k), dtype=np.int64)
    table_flat = predicate.table.reshape(-1)
    m_code = predicate.m if sigma is not None else 0
    sig = sigma if sigma is not None else np.zeros(n, dtype=np.int64)
    if avail <= _ENUMERATE_LIMIT:
        # Exact: enumerate every allowed tuple and choose ``num`` without replacement.
        allowed = np.array(list(itertools.permutations(range(n), k)), dtype=np.int64)
        ok = np.empty(allowed.shape[0], dtype=np.bool_)
        accept_tuples(allowed, sig, table_flat, m_code, ok)
        allowed = allowed[ok]
        pick = np.sort(rng.choice(allowed.shape[0], size=num, replace=False))
        return allowed[pick][rng.permutation(num)]
    # Rejection sampling of uniform ordered tuples, then de-duplication. Encoding a
    # tuple as one integer makes np.unique fast; it needs n^k < 2^63.
    encodable = k * math.log2(n) < 62
    accept_rate = avail / n**k
    out: list[np.ndarray] = []
    have = 0
    while have < num:
        need = num - have
        draw = min(_CHUNK, int(need / accept_rate * 1.05) + 64)
        cand = rng.integers(0, n, size=(draw, k), dtype=np.int64)
        ok = np.empty(draw, dtype=np.bool_)
        accept_tuples(cand, sig, table_flat, m_code, ok)
        out.append(cand[ok])
        allc = np.concatenate(out) if len(out) > 1 else out[0]
        if encodable:
            code = np.zeros(allc.shape[0], dtype=np.int64)
            for s in range(k):
                code = code * n + allc[:, s]
            _, first = np.unique(code, return_index=True)
        else:
            _, first = np.unique(allc, axis=0, return_index=True)
        # Keep first occurrences in draw order: the clauses kept are the earliest draws.
        first.sort()
        allc = allc[first]
        out = [allc]
        have = allc.shape[0]
    return np.ascontiguousarray(out[0][:num])


def planted_instance(
    n: int, predicate: Predicate, degree: float, *, rng: RNGLike = None
) -> Instance:
    r"""Sample the planted ensemble (Def. B.9) at degree d.

    sigma is uniform in {0..m-1}^n. The clause count is
    :math:`P \sim \mathrm{Poisson}(d N / (k (k-1)))`, and the clauses are ``P``
    distinct ordered k-tuples of distinct variables, uniform among those with
    :math:`g(\sigma_S) = 1`. This is the Poisson form of including each
    satisfying tuple independently with probability :math:`\phi / N^{k-1}`.

    Parameters
    ----------
    n : int
        Number of variables N (>= k).
    predicate : Predicate
        The clause predicate g.
    degree : float
        Target degree d = (k-1) k P / N (mean number of other variables sharing
        a clause with a variable), >= 0.
    rng : Generator, int or None, keyword-only
        Randomness; fully determines sigma and the clauses.

    Returns
    -------
    Instance
        With ``sigma`` set and ``target_degree = degree``.

    Notes
    -----
    Cost is O(P k) expected for rejection sampling plus an O(P log P) sort for
    de-duplication; N = 10^6 at d = 64 (about 10^7 clauses) takes seconds.
    Raises ValueError when P exceeds the number of distinct satisfying tuples.
    """
    _check_params(n, predicate, degree)
    gen = as_generator(rng)
    sigma = gen.integers(0, predicate.m, size=n, dtype=np.int64)
    num = int(gen.poisson(expected_clauses(n, predicate.k, degree)))
    clauses = _draw_clauses(n, predicate, sigma, num, gen)
    return Instance(n, predicate, clauses, sigma, target_degree=float(degree))


def null_instance(n: int, predicate: Predicate, degree: float, *, rng: RNGLike = None) -> Instance:
    r"""Sample the null (unplanted) model at degree d.

    Each clause gets its own local assignment: a fresh uniform
    :math:`\tau^{(a)}` for which the tuple is accepted only if
    :math:`g(\tau^{(a)}_S) = 1`. Because that acceptance does not depend on
    which variables ``S`` are, the clauses are simply uniform ordered k-tuples
    of distinct variables, with no common planted solution. ``P`` is Poisson
    with the same mean as in :func:`planted_instance`.

    Returns
    -------
    Instance
        With ``sigma=None``.
    """
    _check_params(n, predicate, degree)
    gen = as_generator(rng)
    num = int(gen.poisson(expected_clauses(n, predicate.k, degree)))
    clauses = _draw_clauses(n, predicate, None, num, gen)
    return Instance(n, predicate, clauses, None, target_degree=float(degree))
