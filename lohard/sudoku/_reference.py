"""Plain-Python reference implementations (slow, simple): the checks for the Numba kernels."""

from __future__ import annotations

import itertools

import numpy as np


def count_solutions_py(puzzle, box: int = 3, limit: int = 2) -> int:
    """Number of completions of ``puzzle`` (capped at ``limit``): set-based DFS with MRV.

    Independent of the kernels: Python sets of candidates, recursion, no bit tricks.
    """
    b = int(box)
    n = b * b
    grid = [int(v) for v in np.asarray(puzzle).reshape(-1)]

    def peers_of(c: int) -> set[int]:
        r, q = divmod(c, n)
        out = {r * n + j for j in range(n)} | {i * n + q for i in range(n)}
        br, bq = (r // b) * b, (q // b) * b
        out |= {(br + i) * n + bq + j for i in range(b) for j in range(b)}
        out.discard(c)
        return out

    peers = [peers_of(c) for c in range(n * n)]
    for c, v in enumerate(grid):
        if v and any(grid[p] == v for p in peers[c]):
            return 0

    def rec() -> int:
        best, best_cands = -1, None
        for c, v in enumerate(grid):
            if v == 0:
                cands = set(range(1, n + 1)) - {grid[p] for p in peers[c]}
                if best_cands is None or len(cands) < len(best_cands):
                    best, best_cands = c, cands
                    if len(cands) <= 1:
                        break
        if best < 0:
            return 1
        total = 0
        for v in sorted(best_cands):
            grid[best] = v
            total += rec()
            grid[best] = 0
            if total >= limit:
                break
        return total

    return min(rec(), limit)


def all_grids_4x4() -> np.ndarray:
    """int64 array, shape (288, 16): every valid 4x4 Sudoku grid, by exhaustive search over
    the 24^4 choices of one permutation per row."""
    perms = np.array(list(itertools.permutations(range(1, 5))), dtype=np.int64)  # (24, 4)
    idx = np.array(list(itertools.product(range(24), repeat=4)), dtype=np.int64)  # (24^4, 4)
    grids = perms[idx]  # (M, 4 rows, 4 cols)
    ok = np.ones(grids.shape[0], dtype=bool)
    for q in range(4):
        col = np.sort(grids[:, :, q], axis=1)
        ok &= (col == np.arange(1, 5)).all(axis=1)
    for br in (0, 2):
        for bq in (0, 2):
            box = np.sort(grids[:, br:br + 2, bq:bq + 2].reshape(-1, 4), axis=1)
            ok &= (box == np.arange(1, 5)).all(axis=1)
    return grids[ok].reshape(-1, 16)


def unit_messages_py(W: np.ndarray) -> np.ndarray:
    """Leave-one-out permanents by summing over all r! bijections (r <= 7)."""
    r = W.shape[0]
    out = np.zeros((r, r))
    for perm in itertools.permutations(range(r)):
        for i in range(r):
            p = 1.0
            for j in range(r):
                if j != i:
                    p *= W[j, perm[j]]
            out[i, perm[i]] += p
    return out


#: Published puzzles with their solutions: Project Euler 96 grid 01 (naked singles
#: suffice) and A. Inkala's 2012 "hardest" puzzle (needs search).
KNOWN_PUZZLES = {
    "euler01": (
        "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3..",
        "483921657967345821251876493548132976729564138136798245372689514814253769695417382",
    ),
    "inkala": (
        "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..",
        "812753649943682175675491283154237896369845721287169534521974368438526917796318452",
    ),
}
