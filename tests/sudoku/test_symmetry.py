"""Sudoku symmetries: valid grids to valid grids, one solution to one solution."""

import numpy as np
import pytest

import lohard.sudoku as S
from lohard.sudoku._reference import all_grids_4x4


def test_4x4_images_are_valid_grids_and_the_group_has_its_size():
    grids = all_grids_4x4()
    valid = {g.tobytes() for g in grids}
    rng = np.random.default_rng(0)
    cell_perms = set()
    for _ in range(3000):
        sym = S.random_symmetry(2, rng=rng)
        cell_perms.add(sym.cells.tobytes())
        assert all(g.tobytes() in valid for g in sym.apply(grids[rng.integers(288, size=8)]))
    # band and in-band row orders (2! * 2!^2), the same for columns, and a transpose
    assert len(cell_perms) == 8 * 8 * 2


def test_9x9_puzzles_keep_one_solution_and_their_rating(mixed9):
    rng = np.random.default_rng(1)
    for p, sol, guesses in zip(mixed9.puzzles[:60], mixed9.solutions[:60],
                               mixed9.guesses[:60], strict=True):
        sym = S.random_symmetry(3, rng=rng)
        tp, ts = sym.apply(p), sym.apply(sol)
        assert S.valid_solutions(ts[None], tp[None]).all()
        assert S.count_solutions(tp[None])[0] == 1
        assert (S.solve(tp) == ts).all()
        # strategies alone suffice for the image exactly when they do for the original
        assert (S.rate(tp).guesses == 0) == (guesses == 0)


def test_inverse_and_batches():
    sym = S.random_symmetry(3, rng=5)
    grids = np.random.default_rng(2).integers(0, 10, size=(4, 3, 81))
    out = sym.apply(grids)
    assert out.shape == grids.shape
    assert (sym.inverse().apply(out) == grids).all()
    assert not (out == grids).all()
    assert ((out == 0) == (grids[..., sym.cells] == 0)).all()  # blanks stay blank


def test_seed_determines_the_symmetry():
    a, b = S.random_symmetry(3, rng=7), S.random_symmetry(3, rng=7)
    assert (a.cells == b.cells).all() and (a.digits == b.digits).all()
    c = S.random_symmetry(3, rng=8)
    assert not ((a.cells == c.cells).all() and (a.digits == c.digits).all())


def test_bad_input():
    sym = S.random_symmetry(2, rng=0)
    with pytest.raises(ValueError, match="n\\^2 = 16 cells"):
        sym.apply(np.zeros(81, dtype=np.int64))
    with pytest.raises(ValueError, match="0..4"):
        sym.apply(np.full(16, 5))
    with pytest.raises(ValueError, match="box size"):
        S.random_symmetry(5, rng=0)
