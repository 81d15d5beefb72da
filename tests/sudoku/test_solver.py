import numpy as np
import pytest

import lohard.sudoku as S
from lohard.sudoku._reference import KNOWN_PUZZLES, count_solutions_py

EULER01, EULER01_SOL = KNOWN_PUZZLES["euler01"]
INKALA, INKALA_SOL = KNOWN_PUZZLES["inkala"]


def grid_of(s: str) -> np.ndarray:
    return S.parse_puzzle(s, check="none")


def test_4x4_has_288_grids(grids4):
    assert grids4.shape == (288, 16)
    assert len({tuple(g) for g in grids4}) == 288
    assert S.valid_solutions(grids4).all()
    # the kernel counts the same number of completions of the empty grid
    assert S.count_solutions(np.zeros(16, np.int64), limit=10_000) == 288


def test_4x4_counts_match_enumeration(grids4):
    """Random clue subsets of random grids: kernel count == number of matching grids."""
    rng = np.random.default_rng(0)
    puzzles, expect = [], []
    for _ in range(400):
        g = grids4[rng.integers(288)]
        keep = rng.random(16) < rng.uniform(0, 0.7)
        p = np.where(keep, g, 0)
        puzzles.append(p)
        expect.append(int(((grids4 == p) | (p == 0)).all(axis=1).sum()))
    puzzles = np.array(puzzles)
    got = S.count_solutions(puzzles, limit=10_000, jobs=1)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(S.count_solutions(puzzles, limit=2, jobs=1),
                                  np.minimum(expect, 2))
    # inconsistent clues have no completion
    bad = np.zeros(16, np.int64)
    bad[0] = bad[1] = 3
    assert S.count_solutions(bad, limit=5) == 0


def test_known_9x9_solutions():
    for puz, sol in ((EULER01, EULER01_SOL), (INKALA, INKALA_SOL)):
        p = grid_of(puz)
        assert S.count_solutions(p) == 1
        assert S.format_puzzle(S.solve(p)) == sol
        assert S.grid_errors(grid_of(sol), p) == []
        r = S.rate(p)
        assert r.status == "solved" and S.format_puzzle(r.solution) == sol
    assert S.rate(grid_of(EULER01)).difficulty == "easy"
    assert S.rate(grid_of(INKALA)).difficulty == "hard"


def test_count_against_python_reference(mixed9):
    """Minimal puzzles have one solution; removing any further clue gives >= 2."""
    rng = np.random.default_rng(1)
    for i in range(6):
        p = mixed9.puzzles[i].astype(np.int64)
        assert count_solutions_py(p) == 1 == S.count_solutions(p)
        clue = rng.choice(np.flatnonzero(p))
        q = p.copy()
        q[clue] = 0
        assert count_solutions_py(q) == 2 == S.count_solutions(q)
    assert (S.count_solutions(mixed9.puzzles, jobs=1) == 1).all()


def test_two_solutions_detected():
    # a solved grid with a deadly rectangle {a, b} blanked has exactly two solutions
    sol = grid_of(EULER01_SOL)
    # rows 1, 2 (0-based 0, 1), find columns c1 < c2 in different boxes with swapped pairs
    n = 9
    found = None
    for c1 in range(n):
        for c2 in range(c1 + 1, n):
            if c1 // 3 == c2 // 3:
                continue
            for r1 in range(n):
                for r2 in range(r1 + 1, n):
                    if r1 // 3 != r2 // 3:
                        continue
                    a, b = sol[r1 * n + c1], sol[r1 * n + c2]
                    if sol[r2 * n + c1] == b and sol[r2 * n + c2] == a:
                        found = (r1, r2, c1, c2)
    assert found is not None
    r1, r2, c1, c2 = found
    p = sol.copy()
    for r in (r1, r2):
        for c in (c1, c2):
            p[r * n + c] = 0
    assert S.count_solutions(p, limit=10) == 2
    assert count_solutions_py(p, limit=10) == 2
    with pytest.raises(S.MultipleSolutionsError):
        S.solve(p)
    with pytest.raises(S.MultipleSolutionsError):
        S.parse_puzzle(S.format_puzzle(p))


def test_parallel_equals_serial(mixed9):
    a = S.count_solutions(mixed9.puzzles[:50], jobs=1)
    b = S.count_solutions(mixed9.puzzles[:50], jobs=2)
    np.testing.assert_array_equal(a, b)
    ra = S.rate_puzzles(mixed9.puzzles[:50], jobs=1)
    rb = S.rate_puzzles(mixed9.puzzles[:50], jobs=2)
    for f in ("status", "guesses", "values", "orders", "labels", "counts"):
        np.testing.assert_array_equal(getattr(ra, f), getattr(rb, f))


def test_bad_inputs():
    with pytest.raises(ValueError, match="0..9"):
        S.count_solutions(np.full(81, 10))
    with pytest.raises(ValueError, match="b\\^4 cells"):
        S.count_solutions(np.zeros(80, np.int64))
    with pytest.raises(ValueError, match="limit"):
        S.count_solutions(np.zeros(16, np.int64), limit=0)
    with pytest.raises(ValueError, match="jobs"):
        S.count_solutions(np.zeros((2, 16), np.int64), jobs=0)
    with pytest.raises(ValueError, match="unknown strategy"):
        S.rate(grid_of(EULER01), strategies="x-wing")
