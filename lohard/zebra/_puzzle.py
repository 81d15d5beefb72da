r"""Zebra puzzles: sizes, clues and their truth functions.

A puzzle has ``m`` entities (houses ``0..m-1``, left to right) and ``n`` attributes; each
attribute is a permutation of its ``m`` values over the houses. A solution is an int
grid of shape ``(n, m)``: ``grid[a, h]`` is the value of attribute ``a`` in house ``h``.

A clue is a relation between the houses of one to three *items*, an item being a value
``(a, v)`` of an attribute. Its arguments are flat integers: items as ``a, v`` pairs,
then (for ``at`` and ``not-at``) a house. With :math:`H(a, v)` the house holding value
``v`` of attribute ``a``:

==============  =====================  =============================================
type            arguments              true when
==============  =====================  =============================================
``at``          a, v, h                :math:`H(a,v) = h`
``not-at``      a, v, h                :math:`H(a,v) \ne h`
``same``        a1, v1, a2, v2         :math:`H_1 = H_2` (a1 != a2)
``not-same``    a1, v1, a2, v2         :math:`H_1 \ne H_2` (a1 != a2)
``left-of``     a1, v1, a2, v2         :math:`H_1 < H_2` (somewhere left)
``right-of``    a1, v1, a2, v2         :math:`H_1 > H_2`
``next-left``   a1, v1, a2, v2         :math:`H_1 + 1 = H_2` (immediately left)
``beside``      a1, v1, a2, v2         :math:`|H_1 - H_2| = 1`
``not-beside``  a1, v1, a2, v2         :math:`|H_1 - H_2| \ne 1` (items distinct)
``between``     a1, v1, a2, v2, a3, v3 :math:`H_1 < H_2 < H_3` or :math:`H_3 < H_2 < H_1`
==============  =====================  =============================================

References
----------
Shah, Dziugaite, Sedghi, Xu (2024), "Causal language modeling can elicit search and
reasoning capabilities on logic puzzles" (the clue set of their Zebra data);
Kim et al. (ICML 2025), Sec. 4.1, Table 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Supported numbers of entities (houses) and attributes (the paper's sizes reach 6 x 6).
MIN_SIZE, MAX_SIZE = 2, 6

#: Clue types, in code order (the code is the index); see the module docstring.
CLUE_TYPES = ("at", "not-at", "same", "not-same", "left-of", "right-of", "next-left",
              "beside", "not-beside", "between")
#: Items (attribute, value) each clue type relates.
CLUE_ITEMS = {"at": 1, "not-at": 1, "same": 2, "not-same": 2, "left-of": 2, "right-of": 2,
              "next-left": 2, "beside": 2, "not-beside": 2, "between": 3}
#: Clue types whose two items must belong to different attributes (otherwise the clue is
#: false, ``same``, or says nothing, ``not-same``).
_DISTINCT_ATTRS = ("same", "not-same")
#: Most integer arguments of a clue (``between``: three items).
MAX_ARGS = 6


def check_size(m: int, n: int) -> tuple[int, int]:
    """``(m, n)`` as ints, if both lie in the supported range 2..6.

    Raises ValueError worded in the condition: every size in range has uniquely
    solvable puzzles (``at`` clues alone pin any solution); one house or one attribute
    is no puzzle, and beyond 6 the token layout and the solver are not sized.
    """
    for name, val, what in (("m", m, "entities"), ("n", n, "attributes")):
        if isinstance(val, bool) or int(val) != val:
            raise ValueError(f"{name} ({what}) must be an integer, got {val!r}")
        if not MIN_SIZE <= int(val) <= MAX_SIZE:
            raise ValueError(f"{name} {what} must lie in {MIN_SIZE}..{MAX_SIZE}, got {val}")
    return int(m), int(n)


@dataclass(frozen=True)
class Clue:
    """One clue: a type from :data:`CLUE_TYPES` and its integer arguments.

    Attributes
    ----------
    kind : str
    args : tuple of int
        Items as ``(a, v)`` pairs, then a house for ``at``/``not-at``.
    """

    kind: str
    args: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in CLUE_ITEMS:
            raise ValueError(f"unknown clue type {self.kind!r}; choose one of "
                             f"{', '.join(CLUE_TYPES)}")
        object.__setattr__(self, "args", tuple(int(x) for x in self.args))
        want = 2 * CLUE_ITEMS[self.kind] + (1 if self.kind in ("at", "not-at") else 0)
        if len(self.args) != want:
            raise ValueError(f"a {self.kind!r} clue takes {want} arguments, got "
                             f"{len(self.args)}")

    @property
    def code(self) -> int:
        return CLUE_TYPES.index(self.kind)

    @property
    def items(self) -> list[tuple[int, int]]:
        """The (attribute, value) items, in argument order."""
        k = CLUE_ITEMS[self.kind]
        return [(self.args[2 * i], self.args[2 * i + 1]) for i in range(k)]

    @property
    def house(self) -> int | None:
        """The house of an ``at``/``not-at`` clue (None otherwise)."""
        return self.args[2] if self.kind in ("at", "not-at") else None

    def validate(self, m: int, n: int) -> None:
        """Raise ValueError if an argument is out of range for an m x n puzzle, or the
        items are not distinct (or share an attribute where the type forbids it)."""
        for a, v in self.items:
            if not (0 <= a < n and 0 <= v < m):
                raise ValueError(f"clue {self}: item (attribute {a}, value {v}) is outside an "
                                 f"{m}-entity, {n}-attribute puzzle")
        if self.house is not None and not 0 <= self.house < m:
            raise ValueError(f"clue {self}: house {self.house} is outside 0..{m - 1}")
        items = self.items
        if len(set(items)) != len(items):
            raise ValueError(f"clue {self}: an item appears twice")
        if self.kind in _DISTINCT_ATTRS and items[0][0] == items[1][0]:
            raise ValueError(f"clue {self}: a {self.kind!r} clue relates two attributes")

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(map(str, self.args))})"

    def to_row(self) -> np.ndarray:
        """int64 array, shape (1 + MAX_ARGS,): code, then arguments padded with -1."""
        out = np.full(1 + MAX_ARGS, -1, np.int64)
        out[0] = self.code
        out[1:1 + len(self.args)] = self.args
        return out

    @classmethod
    def from_row(cls, row) -> Clue:
        """Inverse of :meth:`to_row`."""
        r = [int(x) for x in row]
        if not 0 <= r[0] < len(CLUE_TYPES):
            raise ValueError(f"clue code {r[0]} is not one of 0..{len(CLUE_TYPES) - 1}")
        kind = CLUE_TYPES[r[0]]
        k = 2 * CLUE_ITEMS[kind] + (1 if kind in ("at", "not-at") else 0)
        return cls(kind, tuple(r[1:1 + k]))


def houses_of(grid) -> np.ndarray:
    """int64 array, shape (n, m): ``H[a, v]``, the house of value v of attribute a."""
    g = np.asarray(grid, np.int64)
    out = np.empty_like(g)
    rows = np.arange(g.shape[0])[:, None]
    out[rows, g] = np.arange(g.shape[1])[None, :]
    return out


def relation(kind: str, h: tuple[int, ...]) -> bool:
    """The truth of a clue type on the houses of its items (and its house, last)."""
    if kind == "at":
        return h[0] == h[1]
    if kind == "not-at":
        return h[0] != h[1]
    if kind == "same":
        return h[0] == h[1]
    if kind == "not-same":
        return h[0] != h[1]
    if kind == "left-of":
        return h[0] < h[1]
    if kind == "right-of":
        return h[0] > h[1]
    if kind == "next-left":
        return h[0] + 1 == h[1]
    if kind == "beside":
        return abs(h[0] - h[1]) == 1
    if kind == "not-beside":
        return abs(h[0] - h[1]) != 1
    if kind == "between":
        return h[0] < h[1] < h[2] or h[2] < h[1] < h[0]
    raise ValueError(f"unknown clue type {kind!r}")


def check(clue: Clue, grid) -> bool:
    """Whether a clue holds on a full solution grid (int array, shape (n, m))."""
    H = houses_of(grid)
    hs = tuple(int(H[a, v]) for a, v in clue.items)
    if clue.house is not None:
        hs = hs + (clue.house,)
    return relation(clue.kind, hs)


def grid_errors(grid, m: int, n: int) -> list[str]:
    """What keeps ``grid`` from being an (n, m) solution grid (empty list: nothing)."""
    g = np.asarray(grid)
    if g.shape != (n, m):
        return [f"a solution grid has shape (n, m) = ({n}, {m}), got {g.shape}"]
    out = []
    for a in range(n):
        if sorted(int(x) for x in g[a]) != list(range(m)):
            out.append(f"attribute {a} is not a permutation of 0..{m - 1}: "
                       f"{[int(x) for x in g[a]]}")
    return out


@dataclass
class Puzzle:
    """A Zebra puzzle: size and clues, with its solution when known.

    Attributes
    ----------
    m, n : int
        Entities (houses) and attributes, each in 2..6.
    clues : tuple of Clue
    solution : int64 array, shape (n, m), or None
    """

    m: int
    n: int
    clues: tuple[Clue, ...]
    solution: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.m, self.n = check_size(self.m, self.n)
        self.clues = tuple(self.clues)
        for c in self.clues:
            if not isinstance(c, Clue):
                raise TypeError(f"clues must be Clue objects, got {type(c).__name__}")
            c.validate(self.m, self.n)
        if self.solution is not None:
            self.solution = np.asarray(self.solution, np.int64)
            errs = grid_errors(self.solution, self.m, self.n)
            if errs:
                raise ValueError("; ".join(errs))

    def satisfied_by(self, grid) -> bool:
        """Every clue holds on ``grid``."""
        return all(check(c, grid) for c in self.clues)

    def describe(self) -> str:
        """The clues in words (attribute letters A.., values 1..m, houses 1..m)."""
        def item(a, v):
            return f"{chr(65 + a)}{v + 1}"

        lines = []
        for c in self.clues:
            its = [item(a, v) for a, v in c.items]
            house = "" if c.house is None else str(c.house + 1)
            x, y = its[0], its[-1]
            lines.append({"at": f"{x} is in house {house}",
                          "not-at": f"{x} is not in house {house}",
                          "same": f"{x} and {y} are in the same house",
                          "not-same": f"{x} and {y} are in different houses",
                          "left-of": f"{x} is somewhere left of {y}",
                          "right-of": f"{x} is somewhere right of {y}",
                          "next-left": f"{x} is immediately left of {y}",
                          "beside": f"{x} is next to {y}",
                          "not-beside": f"{x} is not next to {y}",
                          "between": f"{its[len(its) // 2]} is between {x} and {y}"}[c.kind])
        return "\n".join(lines)


def brute_force_solutions(puzzle: Puzzle, *, limit: int | None = None) -> list[np.ndarray]:
    """Every grid satisfying the clues, by enumerating all :math:`(m!)^n` grids.

    For tests only (6^4 grids at 3 x 4, 24^3 = 13,824 at 4 x 3); attributes are
    enumerated one at a time and a clue is checked as soon as all its items are placed.

    Notes
    -----
    Exact; cost :math:`O((m!)^n)` in the worst case.
    """
    from itertools import permutations

    m, n = puzzle.m, puzzle.n
    if math.factorial(m) ** n > 2_000_000:
        raise ValueError(f"brute force over (m!)^n grids is for small sizes, got m = {m}, "
                         f"n = {n}")
    perms = [np.array(p, np.int64) for p in permutations(range(m))]
    by_last = [[c for c in puzzle.clues if max(a for a, _ in c.items) == k] for k in range(n)]
    out: list[np.ndarray] = []
    H = np.zeros((n, m), np.int64)
    grid = np.zeros((n, m), np.int64)

    def rec(a: int) -> bool:
        for p in perms:
            grid[a] = p
            H[a, p] = np.arange(m)
            ok = True
            for c in by_last[a]:
                hs = tuple(int(H[x, v]) for x, v in c.items)
                if c.house is not None:
                    hs = hs + (c.house,)
                if not relation(c.kind, hs):
                    ok = False
                    break
            if not ok:
                continue
            if a == n - 1:
                out.append(grid.copy())
                if limit is not None and len(out) >= limit:
                    return True
            elif rec(a + 1):
                return True
        return False

    rec(0)
    return out
