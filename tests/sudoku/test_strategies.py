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
