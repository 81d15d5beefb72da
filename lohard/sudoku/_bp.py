"""Belief propagation on the Sudoku factor graph, and BP-guided decoding (an ordering oracle).

Factor graph: one variable per blank cell with n values; one exact all-different factor
per row, column and box (not pairwise not-equal factors). Filled cells are fixed and
only remove their digit from their units, so a unit with r blanks is a perfect matching
between its blanks and its r missing digits, and its messages are the leave-one-out
permanents of the r x r matrix of incoming messages, computed exactly by dynamic
programming over subsets (O(r 2^r) per unit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lohard.sudoku import _kernels as K
from lohard.sudoku._encoding import valid_solutions
from lohard.sudoku._grid import topology
from lohard.sudoku._solver import as_puzzles

# Defaults: flooding updates with damping 0.5. Undamped flooding BP on Sudoku
# oscillates on some puzzles (messages between the three overlapping units of a box
# row chase each other); half damping removes that at the cost of a few iterations.
BP_DEFAULTS = {"damping": 0.5, "tol": 1e-6, "max_iter": 200}
SCORES = ("max", "margin")


@dataclass
class SudokuBP:
    """Outcome of :func:`bp_marginals`.

    Attributes
    ----------
    marginals : float64 array, shape (N, n)
        BP marginals b_c(v) (column v-1 for digit v); one-hot on filled cells.
    messages : float64 array, shape (N, 3, n)
        Unit-to-cell messages (row, column, box unit), reusable as a warm start.
    iterations : int
    converged : bool
    contradictions : int
        Units or cells whose messages vanished (set to uniform); 0 on a consistent
        position whose BP fixed point keeps every cell possible.
    """

    marginals: np.ndarray
    messages: np.ndarray
    iterations: int
    converged: bool
    contradictions: int
    options: dict = field(default_factory=dict)

    def argmax(self) -> np.ndarray:
        """int64 (N,): the most probable digit of every cell (1..n)."""
        return np.argmax(self.marginals, axis=1).astype(np.int64) + 1


def _check_opts(damping, tol, max_iter) -> tuple[float, float, int]:
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"damping must lie in [0, 1), got {damping}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter}")
    return float(damping), float(tol), int(max_iter)


def bp_marginals(puzzle, *, damping: float = BP_DEFAULTS["damping"],
                 tol: float = BP_DEFAULTS["tol"], max_iter: int = BP_DEFAULTS["max_iter"],
                 messages: np.ndarray | None = None, box: int | None = None) -> SudokuBP:
    r"""BP marginals of the blanks of a (partial) Sudoku grid.

    .. math::
        \mu_{c \to u}(v) &\propto \prod_{u' \ni c, u' \ne u} \nu_{u' \to c}(v), \\
        \nu_{u \to c}(v) &\propto \sum_{\text{bijections } \pi:\ \text{blanks}(u) \to
            \text{missing}(u),\ \pi(c) = v} \prod_{c' \ne c} \mu_{c' \to u}(\pi(c')),

    flooding schedule, damping :math:`\nu \leftarrow w \nu_{old} + (1-w) \nu_{new}`.

    Parameters
    ----------
    puzzle : int array, shape (N,)
        Digits, 0 for blanks.
    damping, tol, max_iter :
        Damping weight w, convergence threshold on the largest message change, and
        iteration cap (non-convergence is reported in the result, not raised).
    messages : float64 array, shape (N, 3, n), optional
        Warm start (e.g. from a previous call on a less filled grid); default uniform.

    Notes
    -----
    BP on this loopy graph is not exact; each unit update is (checked against brute
    force in the tests). One iteration costs O(sum over units of r 2^r), r the
    number of blanks in the unit (at most 27 * 9 * 512 for 9x9).
    """
    damping, tol, max_iter = _check_opts(damping, tol, max_iter)
    arr, b, single = as_puzzles(puzzle, box)
    if not single:
        raise ValueError("bp_marginals takes one puzzle")
    topo = topology(b)
    n, N = topo.n, topo.cells
    if messages is None:
        nu = np.full((N, 3, n), 1.0 / n)
    else:
        nu = np.array(messages, dtype=np.float64, order="C")
        if nu.shape != (N, 3, n):
            raise ValueError(f"messages must have shape (N, 3, n) = ({N}, 3, {n}), got "
                             f"{nu.shape}")
        if not np.all(np.isfinite(nu)) or np.any(nu < 0):
            raise ValueError("messages must be finite and >= 0")
    beliefs = np.empty((N, n))
    info = np.zeros(3, np.int64)
    K.bp_run(arr[0], nu, n, topo.units, topo.cell_units, topo.pc, damping, tol, max_iter,
             beliefs, info)
    if not (np.all(np.isfinite(beliefs)) and np.all(np.isfinite(nu))):
        raise FloatingPointError("Sudoku BP produced non-finite messages; this is a bug")
    return SudokuBP(beliefs, nu, int(info[0]), bool(info[1]), int(info[2]),
                    {"damping": damping, "tol": tol, "max_iter": max_iter})


@dataclass
class DecodeResult:
    """Outcome of :func:`bp_decode`.

    Attributes
    ----------
    grid : int64 array, shape (N,)
        The decoded grid.
    order : int64 array, shape (blanks,)
        Cells in the order they were unmasked.
    scores : float64 array, shape (blanks,)
        The oracle score of each unmasked cell when it was chosen.
    solved : bool
        The grid is a valid solution keeping the clues.
    first_error : int
        Step at which the first digit inconsistent with the puzzle's solution was
        written (-1 if none, or if no solution was given).
    nonconverged_steps, contradiction_steps : int
        Steps whose BP run did not converge / met a contradiction.
    """

    grid: np.ndarray
    order: np.ndarray
    scores: np.ndarray
    solved: bool
    first_error: int
    nonconverged_steps: int
    contradiction_steps: int


def _choose(p: np.ndarray, score: str) -> tuple[float, int]:
    """Row of ``p`` (marginals of the blanks) with the best score, and the score.

    Ties on the score -- frequent, since many marginals round to exactly 1.0 -- are
    broken by the log-odds log p1 - log p2 of the top two digits (+inf when only one
    digit is possible, e.g. a single), then by the lowest cell index.
    """
    top2 = np.sort(p, axis=1)[:, -2:]
    s = top2[:, 1] if score == "max" else top2[:, 1] - top2[:, 0]
    with np.errstate(divide="ignore"):
        odds = np.log(top2[:, 1]) - np.log(top2[:, 0])
    best = np.flatnonzero(s == s.max())
    j = int(best[np.argmax(odds[best])])
    return float(s[j]), j


def bp_decode(puzzle, *, score: str = "margin",
              value_fn: Callable[[np.ndarray, int, np.ndarray], int] | None = None,
              solution=None, damping: float = BP_DEFAULTS["damping"],
              tol: float = BP_DEFAULTS["tol"], max_iter: int = BP_DEFAULTS["max_iter"],
              box: int | None = None) -> DecodeResult:
    """Decode a puzzle one cell at a time in the order BP is most confident about.

    Each step: run BP (warm-started from the previous step), unmask the blank with the
    highest score -- ``"max"``: top marginal probability; ``"margin"``: top minus
    second probability (the paper's top-probability-margin oracle, Sec. 4.1) -- ties
    broken by the top-two log-odds, then the lowest cell index -- and write BP's most
    probable digit there, or
    ``value_fn(grid, cell, marginals)`` (so a model can supply the values, e.g. an
    MDM's prediction, while BP supplies the order).

    Parameters
    ----------
    puzzle : int array, shape (N,)
    score : {"margin", "max"}
    value_fn : callable, optional
        ``(grid int64 (N,), cell int, marginals float64 (N, n)) -> digit 1..n``.
    solution : int array, shape (N,), optional
        The puzzle's solution, to record the first wrong step.

    Returns
    -------
    DecodeResult
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    damping, tol, max_iter = _check_opts(damping, tol, max_iter)
    arr, b, single = as_puzzles(puzzle, box)
    if not single:
        raise ValueError("bp_decode takes one puzzle")
    grid = arr[0].copy()
    n = b * b
    sol = None
    if solution is not None:
        sol, _, _ = as_puzzles(solution, b)
        sol = sol[0]
    order, scores = [], []
    msgs = None
    nonconv = contra = 0
    first_error = -1
    while True:
        blanks = np.flatnonzero(grid == 0)
        if blanks.size == 0:
            break
        res = bp_marginals(grid, damping=damping, tol=tol, max_iter=max_iter, messages=msgs,
                           box=b)
        msgs = res.messages
        nonconv += not res.converged
        contra += res.contradictions > 0
        s, j = _choose(res.marginals[blanks], score)
        cell = int(blanks[j])
        if value_fn is None:
            v = int(np.argmax(res.marginals[cell])) + 1
        else:
            v = int(value_fn(grid.copy(), cell, res.marginals))
            if not 1 <= v <= n:
                raise ValueError(f"value_fn must return a digit in 1..{n}, got {v}")
        grid[cell] = v
        if sol is not None and first_error < 0 and sol[cell] != v:
            first_error = len(order)
        order.append(cell)
        scores.append(float(s))
    solved = bool(valid_solutions(grid, arr[0], box=b)[0])
    return DecodeResult(grid, np.asarray(order, dtype=np.int64), np.asarray(scores),
                        solved, first_error, nonconv, contra)


def bp_solve_rate(puzzles, solutions=None, *, score: str = "margin", progress: bool = False,
                  **bp_options) -> dict:
    """Fraction of puzzles that pure BP decoding solves, with per-puzzle details."""
    from tqdm.auto import tqdm

    arr, b, _ = as_puzzles(puzzles)
    sols = None if solutions is None else as_puzzles(solutions, b)[0]
    solved = np.zeros(arr.shape[0], dtype=bool)
    first = np.full(arr.shape[0], -1, dtype=np.int64)
    nonconv = np.zeros(arr.shape[0], dtype=np.int64)
    for i in tqdm(range(arr.shape[0]), disable=not progress, desc="BP decoding", unit="puzzle"):
        r = bp_decode(arr[i], score=score, solution=None if sols is None else sols[i], box=b,
                      **bp_options)
        solved[i] = r.solved
        first[i] = r.first_error
        nonconv[i] = r.nonconverged_steps
    return {"num": int(arr.shape[0]), "solved_fraction": float(solved.mean()),
            "solved": solved, "first_error": first, "nonconverged_steps": nonconv,
            "score": score}
