"""A strategy solver for Zebra puzzles that records the order in which it fixes cells.

State: for every item (attribute a, value v) the set of houses it may still occupy, a
bitmask ``dom[a][v]``; cell (a, h) may hold v iff bit h of ``dom[a][v]`` is set. Each
attribute is a permutation, so a fixed cell removes its house from the other values of
its attribute and its value from the other houses.

Strategies, simplest first (a person's order, as in Shah et al.'s solver):

1. ``naked-single``: a cell with one candidate value is fixed;
2. ``hidden-single``: a value with one candidate house is fixed there;
3. clue elimination (tag ``clue:<type>``): each clue removes the houses of its items
   that have no support, i.e. no placement of the clue's other items among their
   candidate houses that makes the clue true (generalised arc consistency for that
   clue). Cells a revision leaves with a single candidate are fixed at once, tagged
   with the clue type, and the solver returns to step 1;
4. ``guess`` (only when asked to search): when nothing applies, the unfixed cell with
   the fewest candidates is tried with each of its values in turn (depth-first), which
   also counts solutions.

Notes
-----
Every step removes only values no solution can take there, so a puzzle the strategies
fill without guessing has exactly one solution. Cost of one propagation pass: O(n m^2)
for the singles and O(C m^2) for C clues (``between``: O(m^3)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lohard.zebra._puzzle import CLUE_TYPES, Clue, Puzzle, check, relation

#: Strategy tags, in code order (code = index); clue elimination is tagged by clue type.
STRATEGIES = ("naked-single", "hidden-single", "guess") + tuple(f"clue:{k}" for k in CLUE_TYPES)
_NAKED, _HIDDEN, _GUESS = 0, 1, 2
_CLUE0 = 3
_CODE = {k: i for i, k in enumerate(CLUE_TYPES)}


class _Contradiction(Exception):
    """A candidate set became empty."""


def _bits(x: int):
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


_TABLES: dict[int, dict] = {}


def _tables(m: int) -> dict:
    """Per m: for each two-item type, ``fwd[h1]`` = mask of allowed h2 and ``bwd[h2]``."""
    t = _TABLES.get(m)
    if t is None:
        t = {}
        for kind in CLUE_TYPES:
            if kind in ("at", "not-at", "between"):
                continue
            fwd = [sum(1 << h2 for h2 in range(m) if relation(kind, (h1, h2)))
                   for h1 in range(m)]
            bwd = [sum(1 << h1 for h1 in range(m) if relation(kind, (h1, h2)))
                   for h2 in range(m)]
            t[kind] = (fwd, bwd)
        _TABLES[m] = t
    return t


class _State:
    """Candidate bitmasks, fixed cells and the record of the solving path."""

    __slots__ = ("m", "n", "dom", "cell", "order", "tags", "full")

    def __init__(self, m: int, n: int) -> None:
        self.m, self.n = m, n
        self.full = (1 << m) - 1
        self.dom = [[self.full] * m for _ in range(n)]
        self.cell = [[-1] * m for _ in range(n)]  # fixed value, -1: open
        self.order: list[int] = []  # fixed cells, a * m + h
        self.tags: list[int] = []

    def copy(self) -> _State:
        s = _State.__new__(_State)
        s.m, s.n, s.full = self.m, self.n, self.full
        s.dom = [row[:] for row in self.dom]
        s.cell = [row[:] for row in self.cell]
        s.order, s.tags = self.order[:], self.tags[:]
        return s

    @property
    def solved(self) -> bool:
        return len(self.order) == self.m * self.n

    def candidates(self, a: int, h: int) -> list[int]:
        bit = 1 << h
        return [v for v in range(self.m) if self.dom[a][v] & bit]

    def fix(self, a: int, h: int, v: int, tag: int) -> None:
        bit = 1 << h
        row = self.dom[a]
        if not row[v] & bit:
            raise _Contradiction
        for w in range(self.m):
            if w != v:
                row[w] &= ~bit
                if not row[w]:
                    raise _Contradiction
        row[v] = bit
        self.cell[a][h] = v
        self.order.append(a * self.m + h)
        self.tags.append(tag)

    def singles(self, attrs) -> list[tuple[int, int, int]]:
        """Every open cell (a, h, v) of the given attributes that is a naked or hidden
        single now (row-major; a cell once)."""
        m = self.m
        out = []
        for a in attrs:
            row, cell = self.dom[a], self.cell[a]
            seen = set()
            for h in range(m):
                if cell[h] < 0:
                    bit = 1 << h
                    cand = [v for v in range(m) if row[v] & bit]
                    if not cand:
                        raise _Contradiction
                    if len(cand) == 1:
                        out.append((a, h, cand[0]))
                        seen.add(h)
            for v in range(m):
                d = row[v]
                if d & (d - 1) == 0:
                    h = d.bit_length() - 1
                    if cell[h] < 0 and h not in seen:
                        out.append((a, h, v))
                        seen.add(h)
        return out

    def first_single(self, attrs=None) -> tuple[int, int, int, int] | None:
        """(a, h, v, tag) of the first naked single, else the first hidden single."""
        m = self.m
        rows = range(self.n) if attrs is None else attrs
        for a in rows:
            row, cell = self.dom[a], self.cell[a]
            for h in range(m):
                if cell[h] < 0:
                    bit = 1 << h
                    cand = -1
                    for v in range(m):
                        if row[v] & bit:
                            if cand >= 0:
                                cand = -2
                                break
                            cand = v
                    if cand == -1:
                        raise _Contradiction
                    if cand >= 0:
                        return a, h, cand, _NAKED
        for a in rows:
            row, cell = self.dom[a], self.cell[a]
            for v in range(m):
                d = row[v]
                if d & (d - 1) == 0:
                    h = d.bit_length() - 1
                    if cell[h] < 0:
                        return a, h, v, _HIDDEN
        return None


def _revise(s: _State, clue: Clue, tables: dict) -> bool:
    """Remove unsupported houses of the clue's items; True if something changed."""
    dom = s.dom
    kind = clue.kind
    args = clue.args
    if kind == "at" or kind == "not-at":
        a, v, h = args
        old = dom[a][v]
        new = old & (1 << h) if kind == "at" else old & ~(1 << h)
        if new == old:
            return False
        if not new:
            raise _Contradiction
        dom[a][v] = new
        return True
    if kind == "between":
        return _revise_between(s, args)
    a1, v1, a2, v2 = args
    fwd, bwd = tables[kind]
    same_attr = a1 == a2  # two values of one attribute never share a house
    changed = False
    while True:
        d1, d2 = dom[a1][v1], dom[a2][v2]
        n1 = 0
        for h in _bits(d1):
            ok = d2 & fwd[h]
            if same_attr:
                ok &= ~(1 << h)
            if ok:
                n1 |= 1 << h
        n2 = 0
        for h in _bits(d2):
            ok = n1 & bwd[h]
            if same_attr:
                ok &= ~(1 << h)
            if ok:
                n2 |= 1 << h
        if not n1 or not n2:
            raise _Contradiction
        if n1 == d1 and n2 == d2:
            return changed
        dom[a1][v1], dom[a2][v2] = n1, n2
        changed = True


def _revise_between(s: _State, args) -> bool:
    a1, v1, a2, v2, a3, v3 = args
    dom = s.dom
    changed = False
    while True:
        d1, d2, d3 = dom[a1][v1], dom[a2][v2], dom[a3][v3]
        n1 = n2 = n3 = 0
        l1, l2, l3 = list(_bits(d1)), list(_bits(d2)), list(_bits(d3))
        for h2 in l2:
            for h1 in l1:
                for h3 in l3:
                    if h1 < h2 < h3 or h3 < h2 < h1:
                        n1 |= 1 << h1
                        n2 |= 1 << h2
                        n3 |= 1 << h3
        if not (n1 and n2 and n3):
            raise _Contradiction
        if (n1, n2, n3) == (d1, d2, d3):
            return changed
        dom[a1][v1], dom[a2][v2], dom[a3][v3] = n1, n2, n3
        changed = True


def _propagate(s: _State, clues: list[Clue], tables: dict) -> bool:
    """Apply the strategies until the puzzle is solved or they stall (True: solved).

    Raises _Contradiction when the clues admit no completion of the state.
    """
    while not s.solved:
        single = s.first_single()
        if single is not None:
            s.fix(*single)
            continue
        fixed_any = changed_any = False
        for c in clues:
            if _revise(s, c, tables):
                changed_any = True
                attrs = sorted({a for a, _ in c.items})
                tag = _CLUE0 + _CODE[c.kind]
                # Cells this revision determined are fixed now, credited to the clue; what
                # their fixing implies is left to the singles.
                for a, h, v in s.singles(attrs):
                    if s.cell[a][h] < 0:
                        s.fix(a, h, v, tag)
                        fixed_any = True
                if fixed_any:
                    break
        if not changed_any:
            return False  # no strategy applies: stuck
    # The last cells may have been fixed by singles after the clues were last revised.
    if not all(check(c, s.cell) for c in clues):
        raise _Contradiction
    return True


@dataclass
class Solution:
    """What :func:`solve` found.

    Attributes
    ----------
    grid : int64 array, shape (n, m)
        The first solution found (-1 in cells left open when there is none).
    order : int64 array, shape (k,)
        Cells ``a * m + h`` in the order the solver fixed them on the path to ``grid``.
    strategies : list of str
        The strategy of each fixed cell (:data:`STRATEGIES`).
    n_solutions : int
        Solutions found, counting up to ``limit`` (0: contradictory clues).
    guesses : int
        Guesses on the path to ``grid`` (0: the strategies alone solve it).
    solved : bool
        A solution was found.
    """

    grid: np.ndarray
    order: np.ndarray
    strategies: list = field(default_factory=list)
    n_solutions: int = 0
    guesses: int = 0
    solved: bool = False

    @property
    def unique(self) -> bool:
        return self.n_solutions == 1

    @property
    def strategy_codes(self) -> np.ndarray:
        return np.array([STRATEGIES.index(t) for t in self.strategies], np.int64)


def _grid(s: _State) -> np.ndarray:
    return np.array(s.cell, np.int64)


def propagate_only(puzzle: Puzzle) -> tuple[bool, _State]:
    """Run the strategies without guessing: (solved, final state). Contradictory clues
    give (False, state)."""
    s = _State(puzzle.m, puzzle.n)
    try:
        return _propagate(s, list(puzzle.clues), _tables(puzzle.m)), s
    except _Contradiction:
        return False, s


def solve(puzzle: Puzzle, *, limit: int = 2, guess: bool = True) -> Solution:
    """Solve a Zebra puzzle with the strategies, guessing only when they stall.

    Parameters
    ----------
    puzzle : Puzzle
    limit : int
        Stop counting solutions at this many (2 decides uniqueness).
    guess : bool
        False: stop where the strategies stall (``solved`` False, ``n_solutions`` 0 if
        the state is not complete).

    Returns
    -------
    Solution
        ``order`` and ``strategies`` describe the path to the first solution found.
    """
    if int(limit) < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    tables = _tables(puzzle.m)
    clues = list(puzzle.clues)
    found: list[_State] = []
    guesses_at: list[int] = []

    def search(s: _State, depth: int) -> None:
        try:
            done = _propagate(s, clues, tables)
        except _Contradiction:
            return
        if done:
            if not found:
                guesses_at.append(depth)
            found.append(s)
            return
        if not guess:
            if not found:
                found.append(s)
            return
        # The open cell with the fewest candidates (first in row-major order on ties).
        best = None
        for a in range(s.n):
            for h in range(s.m):
                if s.cell[a][h] < 0:
                    k = len(s.candidates(a, h))
                    if best is None or k < best[0]:
                        best = (k, a, h)
        _, a, h = best
        for v in s.candidates(a, h):
            t = s.copy()
            try:
                t.fix(a, h, v, _GUESS)
            except _Contradiction:
                continue
            search(t, depth + 1)
            if sum(1 for f in found if f.solved) >= limit:
                return

    search(_State(puzzle.m, puzzle.n), 0)
    sols = [f for f in found if f.solved]
    if sols:
        first = sols[0]
        return Solution(_grid(first), np.array(first.order, np.int64),
                        [STRATEGIES[t] for t in first.tags], len(sols), guesses_at[0], True)
    if found:  # guess=False and stalled: the partial path
        st = found[0]
        return Solution(_grid(st), np.array(st.order, np.int64),
                        [STRATEGIES[t] for t in st.tags], 0, 0, False)
    return Solution(np.full((puzzle.n, puzzle.m), -1, np.int64), np.zeros(0, np.int64), [],
                    0, 0, False)


def count_solutions(puzzle: Puzzle, *, limit: int = 2) -> int:
    """Solutions of a puzzle, counted up to ``limit`` (propagation plus search)."""
    return solve(puzzle, limit=limit).n_solutions
