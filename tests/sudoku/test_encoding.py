import numpy as np
import pytest

import lohard.sudoku as S
from lohard.sudoku._reference import KNOWN_PUZZLES

PUZ, SOL = KNOWN_PUZZLES["euler01"]


def test_parse_roundtrip_and_blanks():
    g = S.parse_puzzle(PUZ)
    assert g.shape == (81,) and g.dtype == np.int64
    assert S.format_puzzle(g) == PUZ
    assert np.array_equal(S.parse_puzzle(PUZ.replace(".", "0")), g)
    rows = "\n".join(PUZ[i:i + 9] for i in range(0, 81, 9))
    assert np.array_equal(S.parse_puzzle(rows), g)
    assert S.parse_puzzle("1234341221434321", check="consistent").shape == (16,)


def test_parse_errors():
    with pytest.raises(S.PuzzleFormatError, match="81 symbols"):
        S.parse_puzzle(PUZ[:-1])
    with pytest.raises(S.PuzzleFormatError, match="81 symbols"):
        S.parse_puzzle(PUZ + ".")
    with pytest.raises(S.PuzzleFormatError, match="'x' at row 1, column 1"):
        S.parse_puzzle("x" + PUZ[1:])
    with pytest.raises(S.PuzzleFormatError, match="row 9"):
        S.parse_puzzle(PUZ[:-1] + "A")
    with pytest.raises(S.PuzzleFormatError, match="16 symbols"):
        S.parse_puzzle(PUZ, box=2)
    bad = "33" + PUZ[2:]  # digit 3 twice in row 1 (and the original 3 at c3 too)
    with pytest.raises(S.ContradictoryCluesError, match="digit 3 appears twice in row 1"):
        S.parse_puzzle(bad)
    col = list(PUZ)
    col[9] = "."
    col[18] = "9"  # r3c1 = 9 while r2c1 was 9: moved -> fine; put another 9 in column 1
    col[27] = "9"
    with pytest.raises(S.ContradictoryCluesError, match="column 1"):
        S.parse_puzzle("".join(col))
    with pytest.raises(S.MultipleSolutionsError):
        S.parse_puzzle("1..." "..1." "...." ".1..")
    minimal = S.generate_puzzles(1, difficulty="any", rng=3, jobs=1).puzzles[0].astype(int)
    minimal[np.flatnonzero(minimal)[0]] = 0
    with pytest.raises(S.MultipleSolutionsError) as exc:
        S.parse_puzzle(S.format_puzzle(minimal))
    assert exc.value.count == 2
    assert S.parse_puzzle(S.format_puzzle(minimal), check="consistent").shape == (81,)


def test_no_solution_error():
    # r1c9 must be 9 (row 1 holds 1..8) but column 9 already has a 9: no clue repeats
    g = np.zeros(81, np.int64)
    g[0:8] = [1, 2, 3, 4, 5, 6, 7, 8]
    g[9 * 4 + 8] = 9
    with pytest.raises(S.NoSolutionError):
        S.parse_puzzle(S.format_puzzle(g))


def test_grid_validity():
    sol = S.parse_puzzle(SOL)
    puz = S.parse_puzzle(PUZ)
    assert S.grid_errors(sol, puz) == []
    assert S.valid_solutions(np.stack([sol, sol]), np.stack([puz, puz])).all()
    swapped = sol.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    errs = S.grid_errors(swapped)
    # same row and box: only the two columns break
    assert sorted(e.split(" lacks")[0] for e in errs) == ["column 1", "column 2"]
    assert not S.valid_solutions(swapped)[0]
    # rows, columns and boxes all fine but a clue changed: relabel digits 1 <-> 2
    relab = np.where(sol == 1, 2, np.where(sol == 2, 1, sol))
    assert S.valid_solutions(relab)[0]
    assert not S.valid_solutions(relab, puz)[0]
    assert any("changes clue" in e for e in S.grid_errors(relab, puz))
    blank = sol.copy()
    blank[5] = 0
    assert not S.valid_solutions(blank)[0]
    assert "1 cell(s) are blank" in S.grid_errors(blank)


def test_mdm_tokens():
    s = S.generate_puzzles(3, rng=0, jobs=1)
    t = s.mdm_tokens()
    assert t.shape == (3, 162)
    assert np.array_equal(t[:, :81], s.puzzles) and np.array_equal(t[:, 81:], s.solutions)
    p, q = S.split_mdm_tokens(t)
    assert np.array_equal(p, s.puzzles) and np.array_equal(q, s.solutions)
    m = S.mdm_loss_mask()
    assert m.shape == (162,) and m[81:].all() and not m[:81].any()
    with pytest.raises(ValueError, match="full grids"):
        S.mdm_tokens(s.puzzles, s.puzzles)


def test_arm_tokens_orders():
    s = S.generate_puzzles(4, rng=1, jobs=1)
    tok, prompt = s.arm_tokens("solver")
    assert tok.shape == (4, 243) and S.arm_vocab_size() == 28
    assert np.array_equal(prompt, 3 * s.clues)
    grids, ok = S.decode_arm_tokens(tok)
    assert ok.all() and np.array_equal(grids, s.solutions)
    for i in range(4):
        tri = tok[i].reshape(-1, 3)
        cells = (tri[:, 0] - 10) * 9 + (tri[:, 1] - 19)
        k = int(s.clues[i])
        assert np.array_equal(cells[:k], np.flatnonzero(s.puzzles[i]))
        assert np.array_equal(cells[k:], s.orders[i][s.orders[i] >= 0])
    tok2, _ = s.arm_tokens("row-major")
    tri = tok2[0].reshape(-1, 3)
    cells = (tri[:, 0] - 10) * 9 + (tri[:, 1] - 19)
    assert np.array_equal(cells[int(s.clues[0]):], np.flatnonzero(s.puzzles[0] == 0))
    bad = tok.copy()
    bad[0, -3:] = bad[0, -6:-3]  # a cell named twice, another missing
    _, ok = S.decode_arm_tokens(bad)
    assert not ok[0] and ok[1:].all()
    with pytest.raises(ValueError, match="permutation"):
        S.arm_tokens(s.puzzles, s.solutions, np.full((4, 81), -1))


def test_solutions_must_keep_the_clues():
    p = np.zeros((1, 81), np.int64)
    p[0, 0] = 1
    s = np.full((1, 81), 2, np.int64)
    with pytest.raises(ValueError, match="contradicts a clue"):
        S.mdm_tokens(p, s)
    with pytest.raises(ValueError, match="contradicts a clue"):
        S.arm_tokens(p, s)
