"""Exact solution counting and the human-strategy rater (public API over the kernels)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numba
import numpy as np

from lohard.sudoku import _kernels as K
from lohard.sudoku._grid import box_from_cells, check_box, topology


class NoSolutionError(ValueError):
    """The clues are consistent cell by cell but admit no full grid."""


class MultipleSolutionsError(ValueError):
    """The puzzle has more than one solution (``count`` is a lower bound, usually 2)."""

    def __init__(self, message: str, count: int = 2):
        super().__init__(message)
        self.count = int(count)

#: Strategy names by code, in the order the rater tries them (simplest first).
STRATEGIES = ("clue", "naked single", "hidden single", "naked pair", "naked triple",
              "locked candidate", "xy-wing", "unique rectangle", "guess")
#: The seven strategies of Shah et al. (2024) that define the easy set.
HUMAN_STRATEGIES = STRATEGIES[1:8]
_STATUS = {K.SOLVED: "solved", K.STUCK: "stuck", K.NO_SOLUTION: "no solution"}


def strategy_code(name: str) -> int:
    """Code of a strategy name (``"naked single"`` ... ``"unique rectangle"``, ``"guess"``)."""
    key = str(name).strip().lower().replace("_", " ").replace("-", " ")
    for code, s in enumerate(STRATEGIES):
        if s.replace("-", " ") == key:
            return code
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES[1:])}")


@contextlib.contextmanager
def numba_threads(jobs: int | None):
    """Run the enclosed kernels on ``jobs`` Numba threads (None: leave as is; -1: all)."""
    if jobs is None:
        yield numba.get_num_threads()
        return
    jobs = int(jobs)
    if jobs == -1:
        jobs = numba.config.NUMBA_NUM_THREADS
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1 or -1 (all cores), got {jobs}")
    jobs = min(jobs, numba.config.NUMBA_NUM_THREADS)
    old = numba.get_num_threads()
    numba.set_num_threads(jobs)
    try:
        yield jobs
    finally:
        numba.set_num_threads(old)


def as_puzzles(puzzles, box: int | None = None) -> tuple[np.ndarray, int, bool]:
    """Coerce one puzzle (N,) or a batch (M, N) to int64 (M, N); returns (array, b, single).

    A 2-D array is always a batch of flattened grids (a (16, 16) array is sixteen 4x4
    puzzles); one n x n grid is passed as ``grid.reshape(-1)``, or as (M, n, n) batches.
    """
    arr = np.asarray(puzzles)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"a Sudoku grid holds integers 0..n, got dtype {arr.dtype}")
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim == 3 and arr.shape[1] == arr.shape[2]:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2:
        raise ValueError(f"puzzles must have shape (N,) or (M, N), got {np.shape(puzzles)}")
    hint = (" (a 2-D array is a batch (M, N) of flattened grids: pass one n x n grid as "
            "grid.reshape(-1))" if np.ndim(puzzles) == 2 else "")
    try:
        b = box_from_cells(arr.shape[1]) if box is None else check_box(box)
    except ValueError as err:
        raise ValueError(f"{err}{hint}") from None
    n = b * b
    if arr.shape[1] != n * n:
        raise ValueError(f"a {n}x{n} grid has {n * n} cells, got {arr.shape[1]}{hint}")
    if arr.size and (arr.min() < 0 or arr.max() > n):
        raise ValueError(f"cell values must lie in 0..{n} (0 = blank), got "
                         f"{arr.min()}..{arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64), b, single


def count_solutions(puzzles, *, limit: int = 2, box: int | None = None,
                    jobs: int | None = None):
    """Number of solutions of each puzzle, capped at ``limit`` (exact bitmask DFS).

    Parameters
    ----------
    puzzles : int array, shape (N,) or (M, N)
        Digits 1..n, 0 for a blank; ``N = n^2``, ``n = b^2``.
    limit : int
        Search stops at this many solutions; 2 decides uniqueness.
    jobs : int, optional
        Numba threads (1: serial kernel). Results do not depend on it.

    Returns
    -------
    int or int64 array, shape (M,)
        0 for inconsistent clues (or no completion), else ``min(#solutions, limit)``.

    Notes
    -----
    Depth-first search over blanks, branching on the blank with the fewest candidates
    (row/column/box bitmasks), so the cost per node is O(N).
    """
    arr, b, single = as_puzzles(puzzles, box)
    if int(limit) != limit or limit < 1:
        raise ValueError(f"limit must be an integer >= 1, got {limit}")
    topo = topology(b)
    nsol = np.empty(arr.shape[0], np.int64)
    sols = np.zeros_like(arr)
    with numba_threads(jobs) as t:
        fn = K.count_batch_parallel if t > 1 and arr.shape[0] > 1 else K.count_batch_serial
        fn(arr, topo.n, topo.cell_units, topo.pc, int(limit), nsol, sols)
    return int(nsol[0]) if single else nsol


def solve(puzzle, *, box: int | None = None) -> np.ndarray:
    """The solution of a puzzle with exactly one solution (ValueError otherwise)."""
    arr, b, single = as_puzzles(puzzle, box)
    if not single:
        raise ValueError("solve takes one puzzle; use count_solutions for a batch")
    topo = topology(b)
    sol = np.zeros(arr.shape[1], np.int64)
    work = arr[0].copy()
    cnt = K.count_solutions(work, topo.n, topo.cell_units, topo.pc, 2, False,
                            np.zeros(1, np.uint64), sol)
    if cnt == 0:
        raise NoSolutionError("the puzzle has no solution")
    if cnt > 1:
        raise MultipleSolutionsError("the puzzle has more than one solution", count=cnt)
    return sol


@dataclass
class Ratings:
    """Output of :func:`rate_puzzles` for M puzzles of N cells.

    Attributes
    ----------
    status : int64 array, shape (M,)
        0 solved, 1 stuck (strategies stalled, search off), 2 no solution.
    guesses : int64 array, shape (M,)
        Guessed digits, wrong ones included (0: the strategies alone solve it).
    values : int64 array, shape (M, N)
        Solved grid (or the stalled position).
    orders : int64 array, shape (M, N)
        The solver's order: cells in the order they were filled, then -1 padding.
    labels : int64 array, shape (M, N)
        Strategy code of each cell (:data:`STRATEGIES`): 0 for clues, the hardest
        strategy used since the previous placement for a filled cell (an elimination
        chain is credited to the first placement after it), 8 for a guessed cell,
        -1 for cells left blank.
    counts : int64 array, shape (M, 9)
        Applications of each strategy on the successful path.
    """

    status: np.ndarray
    guesses: np.ndarray
    values: np.ndarray
    orders: np.ndarray
    labels: np.ndarray
    counts: np.ndarray
    box: int = 3
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.status.shape[0])

    @property
    def solved(self) -> np.ndarray:
        return self.status == K.SOLVED

    @property
    def easy(self) -> np.ndarray:
        """Solved by the seven strategies alone (no guess)."""
        return self.solved & (self.guesses == 0)

    @property
    def hardest(self) -> np.ndarray:
        """int64 (M,): the hardest strategy code used on the successful path."""
        return self.labels.max(axis=1)

    def rating(self, i: int) -> Rating:
        return Rating(
            status=_STATUS[int(self.status[i])], guesses=int(self.guesses[i]),
            solution=self.values[i].copy(),
            order=self.orders[i][self.orders[i] >= 0].copy(), labels=self.labels[i].copy(),
            counts={STRATEGIES[k]: int(self.counts[i, k]) for k in range(1, K.NUM_CODES)},
            box=self.box)


@dataclass
class Rating:
    """The rating of one puzzle (see :class:`Ratings` for the fields' meaning)."""

    status: str
    guesses: int
    solution: np.ndarray
    order: np.ndarray
    labels: np.ndarray
    counts: dict
    box: int = 3

    @property
    def difficulty(self) -> str:
        if self.status != "solved":
            return self.status
        return "easy" if self.guesses == 0 else "hard"

    @property
    def hardest(self) -> str:
        return STRATEGIES[int(self.labels.max())] if self.labels.max() >= 0 else "none"

    def to_dict(self) -> dict:
        n = self.box * self.box
        return {
            "status": self.status, "difficulty": self.difficulty, "guesses": self.guesses,
            "hardest": self.hardest, "counts": self.counts,
            "solution": "".join(_SYMBOLS[v] for v in self.solution),
            "order": [[int(c) // n, int(c) % n] for c in self.order],
            "labels": [STRATEGIES[v] if v >= 0 else None for v in self.labels[self.order]],
        }


_SYMBOLS = ".123456789ABCDEFG"


def rate_puzzles(puzzles, *, search: bool = True, strategies: str = "unique rectangle",
                 box: int | None = None, jobs: int | None = None) -> Ratings:
    """Rate puzzles with the human strategies, simplest first, then guesses.

    Parameters
    ----------
    puzzles : int array, shape (N,) or (M, N)
    search : bool
        When the strategies stall, guess the blank with the fewest candidates (first in
        row-major order, digits in increasing order) and backtrack on contradictions;
        otherwise report the stalled position (status 1).
    strategies : str
        The hardest strategy allowed; strategies are tried in the order of
        :data:`STRATEGIES`: naked single, hidden single, naked pair, naked triple,
        locked candidate (pointing and claiming), XY-wing, unique rectangle (types 1 to 4).
    jobs : int, optional
        Numba threads (1: serial kernel); results do not depend on it.

    Notes
    -----
    The unique-rectangle deduction assumes the puzzle has one solution; check it with
    :func:`count_solutions` first (``lohard.sudoku.parse_puzzle`` does).

    References
    ----------
    Kim et al. (ICML 2025), App. D.2; Shah et al. (2024) for the strategy list.
    """
    arr, b, _ = as_puzzles(puzzles, box)
    code = strategy_code(strategies)
    if not 1 <= code <= K.UNIQUE_RECTANGLE:
        raise ValueError("strategies must name one of the seven human strategies")
    topo = topology(b)
    M, N = arr.shape
    values = np.empty((M, N), np.int64)
    orders = np.empty((M, N), np.int64)
    labels = np.empty((M, N), np.int64)
    counts = np.empty((M, K.NUM_CODES), np.int64)
    infos = np.empty((M, 2), np.int64)
    with numba_threads(jobs) as t:
        fn = K.rate_batch_parallel if t > 1 and M > 1 else K.rate_batch_serial
        fn(arr, topo.n, topo.b, *topo.kernel_args(), code, bool(search), values, orders, labels,
           counts, infos)
    return Ratings(infos[:, 0].copy(), infos[:, 1].copy(), values, orders, labels, counts, b,
                   {"search": bool(search), "strategies": STRATEGIES[code]})


def rate(puzzle, *, search: bool = True, strategies: str = "unique rectangle",
         box: int | None = None) -> Rating:
    """Rate one puzzle (see :func:`rate_puzzles`)."""
    arr, b, single = as_puzzles(puzzle, box)
    if not single:
        raise ValueError("rate takes one puzzle; use rate_puzzles for a batch")
    return rate_puzzles(arr, search=search, strategies=strategies, box=b, jobs=1).rating(0)


def apply_strategy(candidates, strategy: str, *, values=None, box: int | None = None):
    """Apply one instance of an elimination strategy to a candidate position.

    Parameters
    ----------
    candidates : int or bool array, shape (N, n) or int64 (N,)
        Candidate sets of the blanks: a boolean (cell, digit-1) table or bitmasks.
    strategy : str
        ``"naked pair"``, ``"naked triple"``, ``"locked candidate"``, ``"xy-wing"`` or
        ``"unique rectangle"``.
    values : int array, shape (N,), optional
        Filled cells (their candidates are ignored); default all blank.

    Returns
    -------
    applied : bool
    candidates : bool array, shape (N, n)
        The candidate table after the eliminations.
    """
    cand = np.asarray(candidates)
    if cand.ndim == 2:
        N, n = cand.shape
        bits = (cand.astype(bool) * (1 << np.arange(n))).sum(axis=1).astype(np.int64)
    else:
        N = cand.shape[0]
        bits = cand.astype(np.int64).copy()
    b = box_from_cells(N)
    topo = topology(b)
    n = topo.n
    vals = np.zeros(N, np.int64) if values is None else np.asarray(values, np.int64).copy()
    bits[vals != 0] = 0
    code = strategy_code(strategy)
    if not K.NAKED_PAIR <= code <= K.UNIQUE_RECTANGLE:
        raise ValueError(f"{strategy!r} is not an elimination strategy")
    applied = K.apply_elimination(code, vals, bits, n, b, *topo.kernel_args())
    table = ((bits[:, None] >> np.arange(n)) & 1).astype(bool)
    return bool(applied), table
