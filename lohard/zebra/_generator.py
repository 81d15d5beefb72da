"""Seeded generation of Zebra puzzles the strategy solver fills without guessing.

Shah et al. (2024) style: draw a random solution, add random true clues until the
solver pins every cell, then drop clues in a random order while the rest still does.
The strategies are sound (:mod:`lohard.zebra._solver`), so every puzzle has exactly
one solution, and no clue can be dropped without the strategies stalling.
"""

from __future__ import annotations

import numpy as np

from lohard._util import RNGLike, as_generator, require_int
from lohard.zebra._puzzle import CLUE_TYPES, Clue, Puzzle, check_size, houses_of
from lohard.zebra._solver import (
    _Contradiction,
    _propagate,
    _revise,
    _State,
    _tables,
    propagate_only,
)


def default_max_clues(m: int, n: int) -> int:
    """The clue slots of the token layout at size (m, n): ``m n``.

    Generated puzzles stay well below (the largest counts in 200 puzzles per size: 7 at
    3 x 3, 12 at 4 x 4, 20 at 5 x 5, 30 at 6 x 6); a puzzle with more is redrawn.
    """
    m, n = check_size(m, n)
    return m * n


def random_clue(grid: np.ndarray, rng: np.random.Generator, *,
                kinds: tuple[str, ...] = CLUE_TYPES) -> Clue | None:
    """A uniformly drawn clue type from ``kinds`` with random items, true on ``grid``.

    None when the type cannot be true at this size (``between`` needs m >= 3,
    ``not-beside`` m >= 3 across houses or n >= 2 in one house).
    """
    n, m = grid.shape
    kind = kinds[int(rng.integers(len(kinds)))]

    def item(a: int, h: int) -> tuple[int, int]:
        return a, int(grid[a, h])

    if kind in ("at", "not-at"):
        a, h = int(rng.integers(n)), int(rng.integers(m))
        if kind == "at":
            return Clue(kind, (*item(a, h), h))
        other = [x for x in range(m) if x != h]
        return Clue(kind, (*item(a, h), int(rng.choice(other))))
    if kind == "between":
        if m < 3:
            return None
        hs = np.sort(rng.choice(m, size=3, replace=False))
        if rng.random() < 0.5:
            hs = hs[::-1]
        attrs = rng.integers(n, size=3)
        return Clue(kind, sum((item(int(a), int(h)) for a, h in zip(attrs, hs, strict=True)),
                              ()))
    # Two items: draw houses (h1, h2) with the relation, then attributes.
    pairs = [(h1, h2) for h1 in range(m) for h2 in range(m)
             if _two_item_true(kind, h1, h2)]
    h1, h2 = pairs[int(rng.integers(len(pairs)))]
    if kind in ("same", "not-same") or h1 == h2:
        a1, a2 = (int(x) for x in rng.choice(n, size=2, replace=False))
    else:
        a1, a2 = int(rng.integers(n)), int(rng.integers(n))
    return Clue(kind, (*item(a1, h1), *item(a2, h2)))


def _two_item_true(kind: str, h1: int, h2: int) -> bool:
    from lohard.zebra._puzzle import relation

    return relation(kind, (h1, h2))


def generate(m: int, n: int, *, rng: RNGLike = None, max_clues: int | None = None,
             kinds: tuple[str, ...] = CLUE_TYPES, max_attempts: int = 1000) -> Puzzle:
    """A uniquely solvable m x n Zebra puzzle the strategies solve without guessing.

    Parameters
    ----------
    m, n : int
        Entities (houses) and attributes, each in 2..6.
    rng : numpy Generator, int or None
    max_clues : int, optional
        A puzzle with more clues is redrawn (default :func:`default_max_clues`).
    kinds : tuple of str
        Clue types to draw from (uniformly).
    max_attempts : int
        Solutions drawn before giving up.

    Returns
    -------
    Puzzle
        With its ``solution``; the clues in the random order they were drawn.

    Notes
    -----
    Cost: the adding phase propagates incrementally; the dropping phase runs the solver
    once per clue (O(C) solves of O(C m^2 + n m^3) each).
    """
    m, n = check_size(m, n)
    gen = as_generator(rng)
    cap = default_max_clues(m, n) if max_clues is None else require_int(max_clues, "max_clues",
                                                                         minimum=1)
    kinds = tuple(kinds)
    for k in kinds:
        if k not in CLUE_TYPES:
            raise ValueError(f"unknown clue type {k!r}; choose from {', '.join(CLUE_TYPES)}")
    if not kinds:
        raise ValueError("kinds must name at least one clue type")
    tables = _tables(m)
    for _ in range(require_int(max_attempts, "max_attempts", minimum=1)):
        grid = np.stack([gen.permutation(m) for _ in range(n)]).astype(np.int64)
        clues = _add_clues(grid, gen, kinds, tables, m, n)
        if clues is None:
            continue
        clues = _drop_clues(clues, gen, m, n)
        if len(clues) <= cap:
            return Puzzle(m, n, tuple(clues), grid)
    raise ValueError(f"no {m} x {n} puzzle with at most max_clues = {cap} clues in "
                     f"{max_attempts} attempts: such puzzles are rare or impossible at this "
                     f"size; raise max_clues")


def _add_clues(grid, gen, kinds, tables, m, n) -> list[Clue] | None:
    s = _State(m, n)
    clues: list[Clue] = []
    # An informative clue exists while a cell is open (an "at" clue), so this ends; the
    # bound only guards against a clue set that draws no usable type.
    for _ in range(100 * m * n):
        c = random_clue(grid, gen, kinds=kinds)
        if c is None:
            continue
        probe = s.copy()
        if not _revise(probe, c, tables):
            continue  # says nothing new at this point
        clues.append(c)
        try:
            if _propagate(s, clues, tables):
                assert np.array_equal(np.array(s.cell), grid), "strategies are unsound"
                return clues
        except _Contradiction:  # impossible for true clues; guards the solver's soundness
            raise AssertionError(f"true clues contradict each other: {clues}") from None
    return None


def _drop_clues(clues: list[Clue], gen, m: int, n: int) -> list[Clue]:
    keep = list(clues)
    for i in gen.permutation(len(clues)):
        c = clues[int(i)]
        trial = [x for x in keep if x is not c]
        if propagate_only(Puzzle(m, n, tuple(trial)))[0]:
            keep = trial
    return keep


def solution_houses(puzzle: Puzzle) -> np.ndarray:
    """``H[a, v]`` of the puzzle's solution (int64, shape (n, m))."""
    if puzzle.solution is None:
        raise ValueError("the puzzle carries no solution")
    return houses_of(puzzle.solution)
