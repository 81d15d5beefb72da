import numpy as np
import pytest

import lohard.sudoku as S
from lohard.sudoku import _kernels as K
from lohard.sudoku._grid import topology


def replay(puzzle, solution, order):
    """Fill the recorded cells in order; each placed digit must still be possible and
    agree with the solution. Returns the grid and, per step, whether the cell was a
    naked single / hidden single in the placement-only candidate state."""
    topo = topology(3)
    g = puzzle.astype(np.int64).copy()
    naked, hidden = [], []
    for c in order:
        assert g[c] == 0
        seen = {int(g[p]) for p in topo.peers[c]}
        cands = set(range(1, 10)) - seen
        v = int(solution[c])
        assert v in cands
        naked.append(len(cands) == 1)
        hid = False
        for u in topo.cell_units[c]:
            others = [x for x in topo.units[u] if x != c and g[x] == 0]
            if all(v in {int(g[p]) for p in topo.peers[x]} for x in others):
                hid = True
        hidden.append(hid)
        g[c] = v
    return g, np.array(naked), np.array(hidden)


def test_replay_gives_solution(mixed9):
    r = mixed9.ratings()
    for i in range(len(mixed9)):
        order = mixed9.orders[i][mixed9.orders[i] >= 0]
        blanks = np.flatnonzero(mixed9.puzzles[i] == 0)
        assert np.array_equal(np.sort(order), blanks)  # every blank exactly once
        g, naked, hidden = replay(mixed9.puzzles[i], mixed9.solutions[i], order)
        assert np.array_equal(g, mixed9.solutions[i])
        lab = mixed9.labels[i][order]
        assert (mixed9.labels[i][mixed9.puzzles[i] > 0] == 0).all()
        assert (lab >= 1).all()
        if mixed9.guesses[i] == 0 and lab.max() <= S.strategy_code("hidden single"):
            # singles only: every step is a single in the plain candidate state,
            # labelled by the single that placed it (naked tried first)
            assert naked[lab == 1].all()
            assert hidden[lab == 2].all() and not naked[lab == 2].any()
    assert r.easy.sum() == (mixed9.guesses == 0).sum()


def test_labels_are_necessary(mixed9):
    """A puzzle whose hardest label is X stalls without X and is solved with it."""
    tested = set()
    for i in range(len(mixed9)):
        h = int(mixed9.hardest[i])
        if mixed9.guesses[i] or h < 3 or h in tested:
            continue
        tested.add(h)
        p = mixed9.puzzles[i]
        below = S.rate(p, search=False, strategies=S.STRATEGIES[h - 1])
        assert below.status == "stuck"
        at = S.rate(p, search=False, strategies=S.STRATEGIES[h])
        assert at.status == "solved" and np.array_equal(at.solution, mixed9.solutions[i])
    assert tested == {3, 4, 5, 6, 7}, f"the sample lacks some strategies: {tested}"


def test_label_convention_pair_credit(mixed9):
    """Convention: the first placement after an elimination step carries its label."""
    for i in range(len(mixed9)):
        if mixed9.counts[i, K.NAKED_PAIR] and not mixed9.guesses[i]:
            order = mixed9.orders[i][mixed9.orders[i] >= 0]
            lab = mixed9.labels[i][order]
            assert (lab >= K.NAKED_PAIR).sum() >= 1
            assert mixed9.counts[i, 3:8].sum() >= (lab >= 3).sum()
            break
    else:
        pytest.fail("no naked-pair puzzle in the sample")


def test_hard_set(hard9):
    assert (hard9.guesses > 0).all()
    assert (S.count_solutions(hard9.puzzles) == 1).all()
    for i in range(len(hard9)):
        p = hard9.puzzles[i]
        assert S.rate(p, search=False).status == "stuck"
        r = S.rate(p)
        assert r.difficulty == "hard" and np.array_equal(r.solution, hard9.solutions[i])
        order = hard9.orders[i][hard9.orders[i] >= 0]
        lab = hard9.labels[i][order]
        assert (lab == K.GUESS).sum() == hard9.counts[i, K.GUESS] >= 1
        assert hard9.guesses[i] >= hard9.counts[i, K.GUESS]
        # the order up to the first guess is the strategy-only solver's order
        stalled = S.rate(p, search=False)
        k = int(np.argmax(lab == K.GUESS))
        assert np.array_equal(stalled.order, order[:k])


def test_stuck_reports_position():
    from lohard.sudoku._reference import KNOWN_PUZZLES

    p = S.parse_puzzle(KNOWN_PUZZLES["inkala"][0])
    r = S.rate(p, search=False)
    assert r.status == "stuck"
    blank = r.solution == 0
    assert blank.any() and (r.labels[blank] == -1).all()
    assert S.clue_conflicts(r.solution) == []


def test_generation_reproducible_and_chunk_independent():
    a = S.generate_puzzles(12, difficulty="easy", rng=5, jobs=1)
    b = S.generate_puzzles(12, difficulty="easy", rng=5, jobs=2)
    c = S.generate_puzzles(7, difficulty="easy", rng=5, start=5, jobs=1)
    for f in PuzzleArrays:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        np.testing.assert_array_equal(getattr(a, f)[5:], getattr(c, f))
    d = S.generate_puzzles(12, difficulty="easy", rng=6, jobs=1)
    assert not np.array_equal(a.puzzles, d.puzzles)
    assert (a.guesses == 0).all()
    assert S.valid_solutions(a.solutions, a.puzzles).all()


PuzzleArrays = ("puzzles", "solutions", "orders", "labels", "counts", "guesses", "attempts")


def test_4x4_generation_and_min_clues():
    s = S.generate_puzzles(30, difficulty="any", box=2, rng=0, jobs=1)
    assert s.puzzles.shape == (30, 16)
    assert (S.count_solutions(s.puzzles) == 1).all()
    assert S.valid_solutions(s.solutions, s.puzzles).all()
    m = S.generate_puzzles(10, difficulty="any", rng=0, min_clues=35, jobs=1)
    assert (m.clues >= 35).all() and (m.clues <= 36).all()
    with pytest.raises(ValueError, match="no hard puzzle"):
        S.generate_puzzles(2, difficulty="hard", box=2, rng=0, max_attempts=20, jobs=1)
