"""Every strategy on a hand-built candidate position where it applies."""

import numpy as np
import pytest

import lohard.sudoku as S
from lohard.sudoku import _kernels as K
from lohard.sudoku._grid import topology

N, n = 81, 9


def full():
    return np.ones((N, n), dtype=bool)


def setc(c, r, q, digits):
    c[r * n + q] = False
    for d in digits:
        c[r * n + q, d - 1] = True


def eliminated(before, after):
    """Set of (cell, digit) pairs removed."""
    return {(int(i), int(d) + 1) for i, d in zip(*np.nonzero(before & ~after), strict=True)}


def bits(c):
    return (c * (1 << np.arange(n))).sum(axis=1).astype(np.int64)


def test_naked_single():
    c = full()
    setc(c, 4, 4, [7])
    topo = topology(3)
    assert K.naked_single(np.zeros(N, np.int64), bits(c), topo.pc) == 40
    c2 = full()
    c2[50] = False  # a blank with no candidate: contradiction
    assert K.naked_single(np.zeros(N, np.int64), bits(c2), topo.pc) == -2
    assert K.naked_single(np.zeros(N, np.int64), bits(full()), topo.pc) == -1


def test_hidden_single():
    c = full()
    c[9:18, 6] = False  # digit 7 only at cell 13 in row 2 (0-based row 1)
    c[13, 6] = True
    topo = topology(3)
    out = np.zeros(2, np.int64)
    assert K.hidden_single(np.zeros(N, np.int64), bits(c), n, topo.units, out) == 1
    assert tuple(out) == (13, 7)
    c[13, 6] = False  # now digit 7 has no place in row 2
    assert K.hidden_single(np.zeros(N, np.int64), bits(c), n, topo.units, out) == -2


def test_naked_pair():
    c = full()
    setc(c, 0, 0, [1, 2])
    setc(c, 0, 5, [1, 2])
    ok, after = S.apply_strategy(c, "naked pair")
    assert ok
    assert eliminated(c, after) == {(q, d) for q in range(9) if q not in (0, 5) for d in (1, 2)}
    # the pair alone with nothing to remove does not apply
    ok2, after2 = S.apply_strategy(after, "naked pair")
    assert not ok2 and (after2 == after).all()


def test_naked_triple():
    c = full()
    setc(c, 0, 0, [1, 2])
    setc(c, 0, 4, [2, 3])
    setc(c, 0, 8, [1, 3])
    ok, after = S.apply_strategy(c, "naked triple")
    assert ok
    assert eliminated(c, after) == {(q, d) for q in range(9) if q not in (0, 4, 8)
                                    for d in (1, 2, 3)}
    assert not S.apply_strategy(c, "naked pair")[0]


def test_locked_candidate_pointing():
    c = full()
    for cell in (9, 10, 11, 18, 19, 20):  # box 1, rows 2-3: no 5
        c[cell, 4] = False
    ok, after = S.apply_strategy(c, "locked candidate")
    assert ok
    assert eliminated(c, after) == {(q, 5) for q in range(3, 9)}


def test_locked_candidate_claiming():
    c = full()
    for q in range(3, 9):  # row 1: 7 only in box 1
        c[q, 6] = False
    ok, after = S.apply_strategy(c, "locked candidate")
    assert ok
    assert eliminated(c, after) == {(cell, 7) for cell in (9, 10, 11, 18, 19, 20)}


def test_xy_wing():
    c = full()
    setc(c, 0, 0, [1, 2])   # pivot
    setc(c, 0, 4, [1, 3])   # pincer in the pivot's row
    setc(c, 4, 0, [2, 3])   # pincer in the pivot's column
    ok, after = S.apply_strategy(c, "xy-wing")
    assert ok
    assert eliminated(c, after) == {(40, 3)}  # r5c5 sees both pincers


def test_xy_wing_absent_without_common_digit():
    c = full()
    setc(c, 0, 0, [1, 2])
    setc(c, 0, 4, [1, 3])
    setc(c, 4, 0, [2, 4])
    assert not S.apply_strategy(c, "xy-wing")[0]


def test_unique_rectangle_type1():
    c = full()
    for cell in (0, 3, 9):  # r1c1, r1c4, r2c1: {1, 2}; boxes 1 and 2
        c[cell] = False
        c[cell, [0, 1]] = True
    c[12] = False
    c[12, [0, 1, 4]] = True  # r2c4: {1, 2, 5}
    ok, after = S.apply_strategy(c, "unique rectangle")
    assert ok
    assert eliminated(c, after) == {(12, 1), (12, 2)}


def _ur_floor_and_roof(roof_extra):
    """Floor r1c1, r1c4 = {1, 2}; roof r2c1 (cell 9), r2c4 (cell 12) = {1, 2} + extras."""
    c = full()
    for cell in (0, 3):
        c[cell] = False
        c[cell, [0, 1]] = True
    for cell, extra in zip((9, 12), roof_extra, strict=True):
        c[cell] = False
        c[cell, [0, 1] + [d - 1 for d in extra]] = True
    return c


def test_unique_rectangle_type2():
    c = _ur_floor_and_roof(([5], [5]))
    ok, after = S.apply_strategy(c, "unique rectangle")
    assert ok
    # 5 leaves every other cell of row 2 (the roof cells' only common unit)
    assert eliminated(c, after) == {(cell, 5) for cell in range(9, 18) if cell not in (9, 12)}
    # roof extras that differ, or more than one extra: no type 2 (nor type 4 here)
    for extras in (([5], [6]), ([5, 6], [5, 6])):
        assert not S.apply_strategy(_ur_floor_and_roof(extras), "unique rectangle")[0]


def test_unique_rectangle_type3_pair():
    # roof extras {5} and {6}; r2c8 (cell 16) = {5, 6}: with the roof's "virtual cell" {5, 6}
    # a naked pair in row 2
    c = _ur_floor_and_roof(([5], [6]))
    setc(c, 1, 7, [5, 6])
    ok, after = S.apply_strategy(c, "unique rectangle")
    assert ok
    assert eliminated(c, after) == {(cell, d) for cell in (10, 11, 13, 14, 15, 17)
                                    for d in (5, 6)}
    # {5, 7} instead of {5, 6}: three digits with one cell, no pair
    c = _ur_floor_and_roof(([5], [6]))
    setc(c, 1, 7, [5, 7])
    assert not S.apply_strategy(c, "unique rectangle")[0]


def test_unique_rectangle_type3_triple():
    # roof extras {5, 6} (both roof cells); r2c7 = {5, 7}, r2c8 = {6, 7}: naked triple
    c = _ur_floor_and_roof(([5, 6], [5, 6]))
    setc(c, 1, 6, [5, 7])
    setc(c, 1, 7, [6, 7])
    ok, after = S.apply_strategy(c, "unique rectangle")
    assert ok
    assert eliminated(c, after) == {(cell, d) for cell in (10, 11, 13, 14, 17)
                                    for d in (5, 6, 7)}
    # a third helper cell would make four digits: nothing
    c = _ur_floor_and_roof(([5, 6], [5, 6]))
    setc(c, 1, 6, [5, 7])
    setc(c, 1, 7, [6, 8])
    assert not S.apply_strategy(c, "unique rectangle")[0]


def test_unique_rectangle_type3_in_the_roofs_box():
    # roof r1c1 (cell 0), r2c1 (cell 9) share column 1 and box 1; floor r1c4, r2c4
    c = full()
    for cell in (3, 12):
        setc(c, cell // n, cell % n, [1, 2])
    setc(c, 0, 0, [1, 2, 5])
    setc(c, 1, 0, [1, 2, 6])
    setc(c, 2, 2, [5, 6])  # r3c3 (cell 20): box 1 only
    ok, after = S.apply_strategy(c, "unique rectangle")
    assert ok
    assert eliminated(c, after) == {(cell, d) for cell in (1, 2, 10, 11, 18, 19)
                                    for d in (5, 6)}


def test_unique_rectangle_type4():
    c = _ur_floor_and_roof(([5], [6]))
    c[[10, 11, 13, 14, 15, 16, 17], 0] = False  # in row 2, digit 1 fits only in the roof
    ok, after = S.apply_strategy(c, "unique rectangle")
    assert ok
    assert eliminated(c, after) == {(9, 2), (12, 2)}
    c[16, 0] = True  # one more place for 1 in row 2: nothing follows
    assert not S.apply_strategy(c, "unique rectangle")[0]


def test_unique_rectangle_diagonal_floor_is_not_type2():
    c = full()
    for cell in (0, 12):  # floor on a diagonal: r1c1, r2c4
        c[cell] = False
        c[cell, [0, 1]] = True
    for cell in (3, 9):
        c[cell] = False
        c[cell, [0, 1, 4]] = True
    assert not S.apply_strategy(c, "unique rectangle")[0]


def test_unique_rectangle_needs_two_boxes():
    c = full()
    # rows 1 and 5, columns 1 and 5: four boxes, not a unique rectangle
    for cell in (0, 4, 36):
        c[cell] = False
        c[cell, [0, 1]] = True
    c[40] = False
    c[40, [0, 1, 4]] = True
    assert not S.apply_strategy(c, "unique rectangle")[0]
    # a filled corner is not part of a rectangle either
    c2 = full()
    for cell in (0, 3, 9):
        c2[cell] = False
        c2[cell, [0, 1]] = True
    c2[12] = False
    c2[12, [0, 1, 4]] = True
    vals = np.zeros(N, np.int64)
    vals[9] = 1
    assert not S.apply_strategy(c2, "unique rectangle", values=vals)[0]


def test_apply_strategy_rejects_singles():
    with pytest.raises(ValueError, match="elimination"):
        S.apply_strategy(full(), "naked single")


def test_unique_rectangle_never_removes_the_solution(mixed9, hard9):
    # On puzzles with one solution, every unique-rectangle elimination (any type) keeps
    # the solution's digit: applied over and over from the position where the weaker
    # strategies stall, with the candidates the placed digits leave.
    topo = topology(3)
    applied = 0
    for puzzles, solutions in ((mixed9.puzzles, mixed9.solutions),
                               (hard9.puzzles, hard9.solutions)):
        for p, sol in zip(puzzles, solutions, strict=True):
            vals = S.rate(p, search=False, strategies="xy-wing").solution
            if (vals > 0).all():
                continue
            cand = np.zeros((N, n), dtype=bool)
            for c in np.flatnonzero(vals == 0):
                cand[c] = True
                cand[c, vals[topo.peers[c]][vals[topo.peers[c]] > 0] - 1] = False
            for _ in range(40):
                ok, cand = S.apply_strategy(cand, "unique rectangle", values=vals)
                if not ok:
                    break
                applied += 1
                blank = np.flatnonzero(vals == 0)
                assert cand[blank, sol[blank] - 1].all()
    assert applied >= 5, applied


def _rectangles_with_line_roof(vals, cand):
    """(pair, roof cell, roof cell) of every rectangle of blanks over two boxes whose floor
    is exactly one pair and whose roof, on one row or column, holds more than it."""
    for r1 in range(n):
        for r2 in range(r1 + 1, n):
            for c1 in range(n):
                for c2 in range(c1 + 1, n):
                    if (r1 // 3 == r2 // 3) == (c1 // 3 == c2 // 3):
                        continue
                    cells = [r1 * n + c1, r1 * n + c2, r2 * n + c1, r2 * n + c2]
                    if vals[cells].any():
                        continue
                    for m in {int(cand[c]) for c in cells if bin(cand[c]).count("1") == 2}:
                        roof = [c for c in cells if cand[c] != m]
                        if len(roof) == 2 and all((cand[c] & m) == m for c in cells) \
                                and (roof[0] // n == roof[1] // n or roof[0] % n == roof[1] % n):
                            yield m, roof[0], roof[1]


def test_unique_rectangle_type3_keeps_the_solution_on_real_puzzles():
    # From the positions where the strategies up to XY-wing stall on 400 hard puzzles,
    # every type-3 elimination on every rectangle keeps the solution's digits; it must
    # apply somewhere (about one hard puzzle in 40 has one).
    topo = topology(3)
    hard = S.generate_puzzles(400, difficulty="hard", rng=11, jobs=1)
    fired = 0
    for p, sol in zip(hard.puzzles, hard.solutions, strict=True):
        vals = S.rate(p, search=False, strategies="xy-wing").solution.astype(np.int64)
        cand = np.zeros(N, np.int64)
        for c in np.flatnonzero(vals == 0):
            seen = vals[topo.peers[c]]
            cand[c] = ((1 << n) - 1) & ~np.bitwise_or.reduce(1 << (seen[seen > 0] - 1))
        blank = np.flatnonzero(vals == 0)
        for m, x, y in _rectangles_with_line_roof(vals, cand):
            after = cand.copy()
            if K._ur_type3(after, n, vals, topo.units, topo.cell_units, topo.pc, m, x, y):
                fired += 1
                assert ((after[blank] >> (sol[blank] - 1)) & 1).all()
    assert fired >= 3, fired
