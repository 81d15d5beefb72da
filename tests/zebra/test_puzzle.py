"""Clue truth functions, sizes, and the solver against brute force."""

from itertools import permutations, product

import numpy as np
import pytest

from lohard.zebra import (
    CLUE_TYPES,
    Clue,
    Puzzle,
    brute_force_solutions,
    check,
    check_size,
    generate,
    houses_of,
    random_clue,
    solve,
)
from lohard.zebra._puzzle import relation


def test_clue_truth_functions_on_a_hand_grid():
    # attribute 0: houses hold values 2, 0, 1; attribute 1: 0, 1, 2
    g = np.array([[2, 0, 1], [0, 1, 2]])
    assert check(Clue("at", (0, 2, 0)), g)
    assert not check(Clue("at", (0, 2, 1)), g)
    assert check(Clue("not-at", (0, 2, 1)), g)
    assert check(Clue("same", (0, 0, 1, 1)), g)
    assert not check(Clue("same", (0, 0, 1, 0)), g)
    assert check(Clue("not-same", (0, 0, 1, 0)), g)
    assert check(Clue("left-of", (0, 2, 1, 2)), g)
    assert not check(Clue("left-of", (1, 2, 0, 2)), g)
    assert check(Clue("right-of", (1, 2, 0, 2)), g)
    assert check(Clue("next-left", (0, 2, 0, 0)), g)
    assert not check(Clue("next-left", (0, 0, 0, 2)), g)  # 0 is right of 2
    assert check(Clue("beside", (0, 0, 0, 2)), g)
    assert not check(Clue("beside", (0, 2, 0, 1)), g)  # houses 0 and 2
    assert check(Clue("not-beside", (0, 2, 0, 1)), g)
    assert check(Clue("between", (0, 2, 1, 1, 0, 1)), g)  # houses 0 < 1 < 2
    assert check(Clue("between", (0, 1, 1, 1, 0, 2)), g)  # reversed
    assert not check(Clue("between", (0, 0, 0, 2, 0, 1)), g)  # house 0 is not between


def test_relations_match_their_definitions_exhaustively():
    for h1, h2 in product(range(6), repeat=2):
        assert relation("left-of", (h1, h2)) == (h1 < h2)
        assert relation("next-left", (h1, h2)) == (h2 - h1 == 1)
        assert relation("beside", (h1, h2)) == (abs(h1 - h2) == 1)
        assert relation("right-of", (h1, h2)) == relation("left-of", (h2, h1))
        assert relation("not-beside", (h1, h2)) != relation("beside", (h1, h2))


def test_random_clues_are_true():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m, n = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        g = np.stack([rng.permutation(m) for _ in range(n)])
        c = random_clue(g, rng)
        if c is None:
            continue
        c.validate(m, n)
        assert check(c, g), c


def test_houses_of_inverts_the_grid():
    g = np.array([[1, 2, 0], [0, 2, 1]])
    H = houses_of(g)
    for a in range(2):
        for v in range(3):
            assert g[a, H[a, v]] == v


@pytest.mark.parametrize("m,n", [(1, 3), (7, 3), (3, 1), (3, 7), (0, 0)])
def test_sizes_out_of_range_are_refused(m, n):
    with pytest.raises(ValueError, match=r"must lie in 2\.\.6"):
        check_size(m, n)
    with pytest.raises(ValueError, match=r"must lie in 2\.\.6"):
        generate(m, n, rng=0)


def test_impossible_clue_budget_is_a_clear_error():
    # a 4 x 4 puzzle needs more than one clue: no puzzle fits, the error says so
    with pytest.raises(ValueError, match="max_clues = 1"):
        generate(4, 4, rng=0, max_clues=1, max_attempts=3)


def test_bad_clues_are_refused():
    with pytest.raises(ValueError, match="unknown clue type"):
        Clue("above", (0, 0, 0, 1))
    with pytest.raises(ValueError, match="takes 4 arguments"):
        Clue("same", (0, 0, 1))
    with pytest.raises(ValueError, match="outside"):
        Puzzle(3, 3, (Clue("at", (0, 3, 0)),))
    with pytest.raises(ValueError, match="relates two attributes"):
        Puzzle(3, 3, (Clue("same", (0, 0, 0, 1)),))


def _all_grids(m, n):
    perms = list(permutations(range(m)))
    for rows in product(perms, repeat=n):
        yield np.array(rows)


@pytest.mark.parametrize("m,n", [(2, 2), (3, 2), (2, 3), (3, 3)])
def test_brute_force_enumerator_counts_every_grid(m, n):
    # No clues: (m!)^n solutions, the enumerator's own check.
    import math

    sols = brute_force_solutions(Puzzle(m, n, ()))
    assert len(sols) == math.factorial(m) ** n
    assert len({s.tobytes() for s in sols}) == len(sols)


@pytest.mark.parametrize("m,n,seed", [(3, 3, s) for s in range(15)] + [(4, 3, s) for s in
                                                                         range(6)]
                         + [(2, 4, 0), (3, 4, 1)])
def test_generated_puzzles_are_unique_by_brute_force(m, n, seed):
    p = generate(m, n, rng=seed)
    sols = brute_force_solutions(p)
    assert len(sols) == 1
    assert np.array_equal(sols[0], p.solution)
    s = solve(p)
    assert s.unique and s.guesses == 0 and np.array_equal(s.grid, p.solution)
    # the order fixes every cell once, each with a named strategy
    assert sorted(s.order.tolist()) == list(range(m * n))
    assert len(s.strategies) == m * n
    # minimal for the strategies: dropping any clue leaves them stuck
    for i in range(len(p.clues)):
        q = Puzzle(m, n, p.clues[:i] + p.clues[i + 1:])
        assert not solve(q, guess=False).solved


def test_solver_counts_match_brute_force_on_random_clue_sets():
    # Few random clues: often several solutions, sometimes none (clues from two grids).
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(80):
        m, n = 3, int(rng.integers(2, 4))
        g1 = np.stack([rng.permutation(m) for _ in range(n)])
        g2 = np.stack([rng.permutation(m) for _ in range(n)])
        clues = []
        for g in (g1, g1, g1, g2):
            c = random_clue(g, rng)
            if c is not None:
                clues.append(c)
        p = Puzzle(m, n, tuple(clues))
        want = len(brute_force_solutions(p))
        got = solve(p, limit=10_000).n_solutions
        assert got == want, (clues, got, want)
        seen.add(min(want, 2))
        if want:
            s = solve(p)
            assert p.satisfied_by(s.grid)
    assert seen == {0, 1, 2}  # the check covered all three cases


def test_each_clue_type_is_used_by_the_generator():
    kinds = set()
    for seed in range(40):
        kinds |= {c.kind for c in generate(4, 4, rng=seed).clues}
    assert kinds == set(CLUE_TYPES)


def test_solver_records_strategies_and_guesses():
    p = generate(5, 4, rng=3)
    s = solve(p)
    assert s.guesses == 0
    assert all(t in ("naked-single", "hidden-single") or t.startswith("clue:")
               for t in s.strategies)
    # no clues at all: the solver must guess, and finds more than one solution
    s = solve(Puzzle(3, 2, ()))
    assert s.n_solutions == 2 and s.guesses > 0 and "guess" in s.strategies
