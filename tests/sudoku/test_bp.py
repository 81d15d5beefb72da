import numpy as np
import pytest

import lohard.sudoku as S
from lohard.bp import FactorGraph, run_bp
from lohard.sudoku import _kernels as K
from lohard.sudoku._grid import topology
from lohard.sudoku._reference import KNOWN_PUZZLES, unit_messages_py


@pytest.mark.parametrize("r", [1, 2, 3, 5, 6])
def test_unit_messages_match_brute_force(r):
    rng = np.random.default_rng(r)
    pc = topology(3).pc
    for _ in range(3):
        W = rng.random((r, r))
        W[rng.random((r, r)) < 0.2] = 0.0  # hard zeros too
        got = np.zeros((9, 9))
        K.unit_messages(W.copy(), r, pc, got)
        # exact sums of products: equal to rounding (1e-12 relative)
        np.testing.assert_allclose(got[:r, :r], unit_messages_py(W), rtol=1e-12, atol=1e-15)


def alldiff_graph(puzzle):
    """The 4x4 Sudoku as a generic lohard.bp FactorGraph (4-ary all-different tables)."""
    topo = topology(2)
    idx = np.indices((4,) * 4).reshape(4, -1).T
    table = np.array([len(set(row)) == 4 for row in idx], dtype=float)
    field = np.ones((16, 4))
    for c in np.flatnonzero(puzzle):
        field[c] = 0.0
        field[c, puzzle[c] - 1] = 1.0
    return FactorGraph(16, 4, topo.units, table[None], np.zeros(12, np.int64), field)


def test_matches_generic_bp_on_4x4():
    """Same flooding iterates as lohard.bp's generic truth-table BP (no damping)."""
    s = S.generate_puzzles(5, difficulty="any", box=2, rng=3, jobs=1)
    for p in s.puzzles.astype(np.int64):
        g = alldiff_graph(p)
        for iters in (1, 2, 4):
            ref = run_bp(g, schedule="parallel", damping=0.0, init="uniform", noise=0.0,
                         max_iter=iters, tol=1e-300, warn=False)
            got = S.bp_marginals(p, damping=0.0, max_iter=iters, tol=1e-300)
            blank = p == 0
            np.testing.assert_allclose(got.marginals[blank], ref.beliefs[blank], atol=1e-12)


def test_singles_puzzle_converges_to_solution(mixed9):
    puz, sol = KNOWN_PUZZLES["euler01"]
    cases = [(S.parse_puzzle(puz), S.parse_puzzle(sol))]
    for i in range(len(mixed9)):
        if mixed9.guesses[i] == 0 and mixed9.hardest[i] <= 2 and len(cases) < 4:
            cases.append((mixed9.puzzles[i].astype(np.int64), mixed9.solutions[i]))
    s4 = S.generate_puzzles(3, difficulty="any", box=2, rng=1, jobs=1)
    cases += [(s4.puzzles[i].astype(np.int64), s4.solutions[i]) for i in range(3)]
    for p, sol in cases:
        res = S.bp_marginals(p)
        assert res.converged and res.contradictions == 0
        n = res.marginals.shape[1]
        onehot = np.eye(n)[np.asarray(sol, dtype=np.int64) - 1]
        # singles are exact deductions for BP with exact unit factors: one-hot limit
        np.testing.assert_allclose(res.marginals, onehot, atol=1e-9)


def test_decode_solves_singles_and_uses_value_fn():
    puz, sol = KNOWN_PUZZLES["euler01"]
    p, sol = S.parse_puzzle(puz), S.parse_puzzle(sol)
    r = S.bp_decode(p, solution=sol)
    assert r.solved and r.first_error == -1
    assert np.array_equal(np.sort(r.order), np.flatnonzero(p == 0))
    calls = []

    def always_one(grid, cell, marg):
        calls.append(cell)
        assert grid[cell] == 0 and marg.shape == (81, 9)
        return 1

    bad = S.bp_decode(p, value_fn=always_one, solution=sol, max_iter=20)
    assert not bad.solved and len(calls) == (p == 0).sum() and bad.first_error >= 0
    with pytest.raises(ValueError, match="1..9"):
        S.bp_decode(p, value_fn=lambda g, c, m: 0)
    with pytest.raises(ValueError, match="score"):
        S.bp_decode(p, score="entropy")
    with pytest.raises(ValueError, match="damping"):
        S.bp_marginals(p, damping=1.0)


def test_solve_rate_summary():
    s = S.generate_puzzles(3, difficulty="easy", rng=2, jobs=1)
    out = S.bp_solve_rate(s.puzzles, s.solutions)
    assert out["num"] == 3 and 0.0 <= out["solved_fraction"] <= 1.0
    assert out["solved"].shape == (3,)
