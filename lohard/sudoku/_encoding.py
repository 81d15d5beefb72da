"""Puzzle strings, grid validity, and the token layouts of the MDM and ARM models.

Token layouts
-------------
MDM (Sec. 4, Table 2): a sequence of ``2N`` tokens (``N = n^2``, 162 for 9x9):

* positions ``0..N-1``: the clues in row-major order, digit 1..n, 0 for a blank;
* positions ``N..2N-1``: the solution in row-major order, digit 1..n.

Only the solution positions are ever masked (:func:`mdm_loss_mask`); the clue tokens are
the conditioning. The MDM picks its own mask token id (e.g. ``n + 1``).

ARM with order supervision (Table 2, Shah et al. 2024): a sequence of ``3N`` tokens,
one ``(row, column, value)`` triple per cell:

* first the clues, in row-major order (the prompt, ``3 * clues`` tokens);
* then the blanks, in the solver's order (:attr:`Ratings.orders`) or in row-major order.

Token ids: 0 = padding (unused in a full sequence), values ``1..n``, row ``r``
(0-based) is ``n + 1 + r``, column ``c`` is ``2n + 1 + c``; the vocabulary has
``3n + 1`` ids (28 for 9x9).
"""

from __future__ import annotations

import numpy as np

from lohard.sudoku._grid import box_from_cells, check_box, topology
from lohard.sudoku._solver import (
    _SYMBOLS,
    MultipleSolutionsError,
    NoSolutionError,
    as_puzzles,
    count_solutions,
)


class PuzzleFormatError(ValueError):
    """A puzzle string has the wrong length or a symbol that is not a digit or blank."""


class ContradictoryCluesError(ValueError):
    """Two clues put the same digit twice in a row, column or box."""


# -- puzzle strings ---------------------------------------------------------------------
def parse_puzzle(text: str, *, box: int | None = None, check: str = "unique") -> np.ndarray:
    """Parse a puzzle string into an int64 grid of shape (N,).

    Parameters
    ----------
    text : str
        ``N`` symbols in row-major order: ``1``-``9`` (then ``A``-``G`` for 16x16) for
        clues, ``.`` or ``0`` for blanks. Whitespace anywhere is ignored, so a grid
        written one row per line parses too.
    box : int, optional
        Box size b; inferred from the length (16, 81 or 256 symbols) when omitted.
    check : {"unique", "consistent", "none"}
        "unique" (default) also counts solutions and raises
        :class:`MultipleSolutionsError` or :class:`NoSolutionError`; "consistent" only
        rejects clues that repeat a digit in a unit; "none" checks the format only.

    Raises
    ------
    PuzzleFormatError
        Wrong length, or a symbol outside the digits and blanks.
    ContradictoryCluesError, NoSolutionError, MultipleSolutionsError
    """
    if not isinstance(text, str):
        raise TypeError(f"a puzzle string must be str, got {type(text).__name__}")
    if check not in ("unique", "consistent", "none"):
        raise ValueError(f"check must be 'unique', 'consistent' or 'none', got {check!r}")
    s = "".join(text.split())
    if box is None:
        try:
            b = box_from_cells(len(s))
        except ValueError:
            raise PuzzleFormatError(
                f"a puzzle string has 81 symbols (9x9; 16 for 4x4, 256 for 16x16), got "
                f"{len(s)}") from None
    else:
        b = check_box(box)
        if len(s) != b**4:
            raise PuzzleFormatError(f"a {b * b}x{b * b} puzzle string has {b**4} symbols, "
                                    f"got {len(s)}")
    n = b * b
    lookup = {ch: i for i, ch in enumerate(_SYMBOLS[: n + 1])}
    lookup["0"] = 0
    if n > 9:
        lookup.update({ch.lower(): i for ch, i in list(lookup.items()) if ch.isalpha()})
    grid = np.empty(len(s), dtype=np.int64)
    for i, ch in enumerate(s):
        v = lookup.get(ch)
        if v is None:
            r, c = divmod(i, n)
            allowed = f"1-{n}" if n <= 9 else f"1-9, A-{_SYMBOLS[n]}"
            raise PuzzleFormatError(
                f"symbol {ch!r} at row {r + 1}, column {c + 1} is not a digit {allowed} or a "
                f"blank ('.' or '0')")
        grid[i] = v
    if check != "none":
        problems = clue_conflicts(grid, box=b)
        if problems:
            raise ContradictoryCluesError("contradictory clues: " + "; ".join(problems))
    if check == "unique":
        cnt = count_solutions(grid, limit=2, box=b)
        if cnt == 0:
            raise NoSolutionError("the clues admit no solution")
        if cnt > 1:
            raise MultipleSolutionsError("the puzzle has more than one solution", count=cnt)
    return grid


def format_puzzle(grid, *, blank: str = ".") -> str:
    """The one-line string of a grid (inverse of :func:`parse_puzzle`)."""
    arr, _, single = as_puzzles(grid)
    if not single:
        raise ValueError("format_puzzle takes one grid")
    return "".join(blank if v == 0 else _SYMBOLS[v] for v in arr[0])


def _unit_name(u: int, n: int) -> str:
    kind = ("row", "column", "box")[u // n]
    return f"{kind} {u % n + 1}"


def clue_conflicts(grid, *, box: int | None = None) -> list[str]:
    """Units where a digit appears twice among the filled cells (empty list: none)."""
    arr, b, single = as_puzzles(grid, box)
    if not single:
        raise ValueError("clue_conflicts takes one grid")
    topo = topology(b)
    g = arr[0]
    out = []
    for u, cells in enumerate(topo.units):
        vals = g[cells]
        vals = vals[vals > 0]
        uniq, cnt = np.unique(vals, return_counts=True)
        for v in uniq[cnt > 1]:
            out.append(f"digit {int(v)} appears twice in {_unit_name(u, topo.n)}")
    return out


# -- validity of full grids ------------------------------------------------------------------
def grid_errors(grid, puzzle=None, *, box: int | None = None) -> list[str]:
    """What is wrong with a claimed solution (empty list: it is a valid solution).

    Checks that every cell holds 1..n, every row, column and box holds each digit once,
    and (with ``puzzle``) that every clue is kept.
    """
    arr, b, single = as_puzzles(grid, box)
    if not single:
        raise ValueError("grid_errors takes one grid; use valid_solutions for a batch")
    topo = topology(b)
    g = arr[0]
    out = []
    blanks = np.flatnonzero(g == 0)
    if blanks.size:
        out.append(f"{blanks.size} cell(s) are blank")
    for u, cells in enumerate(topo.units):
        vals = g[cells]
        missing = sorted(set(range(1, topo.n + 1)) - set(vals.tolist()))
        if missing and not (vals == 0).all():
            out.append(f"{_unit_name(u, topo.n)} lacks digit(s) {missing}")
    if puzzle is not None:
        p, pb, _ = as_puzzles(puzzle, b)
        p = p[0]
        bad = np.flatnonzero((p != 0) & (p != g))
        for c in bad[:5]:
            out.append(f"cell (row {c // topo.n + 1}, column {c % topo.n + 1}) changes clue "
                       f"{p[c]} to {g[c]}")
        if bad.size > 5:
            out.append(f"... {bad.size} clues changed in all")
    return out


def valid_solutions(grids, puzzles=None, *, box: int | None = None) -> np.ndarray:
    """bool array, shape (M,): each grid is a full valid Sudoku keeping its puzzle's clues.

    Vectorised over the batch (for evaluating models on thousands of puzzles).
    """
    arr, b, _ = as_puzzles(grids, box)
    topo = topology(b)
    n = topo.n
    onehot = np.zeros((arr.shape[0], arr.shape[1], n + 1), dtype=bool)
    np.put_along_axis(onehot, arr[:, :, None], True, axis=2)
    # every unit holds every digit 1..n exactly once
    per_unit = onehot[:, topo.units, 1:].sum(axis=2)  # (M, 3n, n)
    ok = (per_unit == 1).all(axis=(1, 2))
    if puzzles is not None:
        p, _, _ = as_puzzles(puzzles, b)
        if p.shape != arr.shape:
            raise ValueError(f"puzzles must have the grids' shape {arr.shape}, got {p.shape}")
        ok &= ((p == 0) | (p == arr)).all(axis=1)
    return ok


# -- token layouts ---------------------------------------------------------------------------
def _puzzles_and_solutions(puzzles, solutions) -> tuple[np.ndarray, np.ndarray, int]:
    """(M, N) puzzles and solutions: same shape, full solutions that keep every clue."""
    p, b, _ = as_puzzles(puzzles)
    s, _, _ = as_puzzles(solutions, b)
    if p.shape != s.shape:
        raise ValueError(f"puzzles and solutions must have the same shape, got {p.shape} "
                         f"and {s.shape}")
    if (s == 0).any():
        raise ValueError("solutions must be full grids (no 0 tokens)")
    bad = np.flatnonzero(((p != 0) & (p != s)).any(axis=1))
    if bad.size:
        raise ValueError(f"solution {bad[0]} contradicts a clue of its puzzle ({bad.size} "
                         f"such pairs)")
    return p, s, b


def mdm_tokens(puzzles, solutions) -> np.ndarray:
    """int64 array, shape (M, 2N): clue tokens (0 = blank) then solution tokens (1..n)."""
    p, s, _ = _puzzles_and_solutions(puzzles, solutions)
    return np.concatenate([p, s], axis=1)


def split_mdm_tokens(tokens, *, box: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`mdm_tokens`: ``(puzzles, solutions)``, each int64 (M, N)."""
    t = np.asarray(tokens, dtype=np.int64)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] % 2:
        raise ValueError(f"MDM token sequences have shape (M, 2N), got {t.shape}")
    N = t.shape[1] // 2
    b = box_from_cells(N) if box is None else check_box(box)
    if b**4 != N:
        raise ValueError(f"box b = {b} needs 2 b^4 = {2 * b**4} tokens, got {t.shape[1]}")
    return t[:, :N].copy(), t[:, N:].copy()


def mdm_loss_mask(box: int = 3) -> np.ndarray:
    """bool array, shape (2N,): the maskable positions (the N solution tokens)."""
    N = check_box(box) ** 4
    out = np.zeros(2 * N, dtype=bool)
    out[N:] = True
    return out


def arm_vocab_size(box: int = 3) -> int:
    """``3n + 1``: padding 0, values 1..n, rows n+1..2n, columns 2n+1..3n."""
    return 3 * check_box(box) ** 2 + 1


def arm_tokens(puzzles, solutions, orders=None) -> tuple[np.ndarray, np.ndarray]:
    """The (row, column, value) layout: clues row-major, then blanks in the given order.

    Parameters
    ----------
    puzzles, solutions : int array, shape (M, N)
    orders : int array, shape (M, N), optional
        Cells of each puzzle's blanks in solving order, padded with -1 (the rater's
        ``orders``). None: row-major order.

    Returns
    -------
    tokens : int64 array, shape (M, 3N)
    prompt_length : int64 array, shape (M,)
        ``3 * clues``: the tokens before the first blank's triple.
    """
    p, s, b = _puzzles_and_solutions(puzzles, solutions)
    n = b * b
    M, N = p.shape
    if orders is None:
        blanks = [np.flatnonzero(row == 0) for row in p]
    else:
        o = np.asarray(orders, dtype=np.int64)
        if o.ndim == 1:
            o = o[None]
        if o.shape != p.shape:
            raise ValueError(f"orders must have shape (M, N) = {p.shape}, got {o.shape}")
        blanks = []
        for i in range(M):
            oi = o[i][o[i] >= 0]
            expect = np.flatnonzero(p[i] == 0)
            if oi.size != expect.size or not np.array_equal(np.sort(oi), expect):
                raise ValueError(f"orders[{i}] is not a permutation of puzzle {i}'s blanks")
            blanks.append(oi)
    tokens = np.empty((M, 3 * N), dtype=np.int64)
    prompt = np.empty(M, dtype=np.int64)
    for i in range(M):
        cells = np.concatenate([np.flatnonzero(p[i] != 0), blanks[i]])
        r, c = np.divmod(cells, n)
        tokens[i, 0::3] = n + 1 + r
        tokens[i, 1::3] = 2 * n + 1 + c
        tokens[i, 2::3] = s[i, cells]
        prompt[i] = 3 * int((p[i] != 0).sum())
    return tokens, prompt


def decode_arm_tokens(tokens, *, box: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Grids from (row, column, value) sequences.

    Returns ``(grids int64 (M, N), well_formed bool (M,))``. A sequence is well formed
    when every triple has a row, a column and a value token in that order and names
    every cell exactly once; malformed triples are skipped and their cells stay 0.
    """
    b = check_box(box)
    n, N = b * b, b**4
    t = np.asarray(tokens, dtype=np.int64)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] % 3:
        raise ValueError(f"ARM sequences have shape (M, 3k), got {t.shape}")
    M = t.shape[0]
    grids = np.zeros((M, N), dtype=np.int64)
    ok = np.ones(M, dtype=bool)
    for i in range(M):
        seen = np.zeros(N, dtype=bool)
        tri = t[i].reshape(-1, 3)
        r, c, v = tri[:, 0] - (n + 1), tri[:, 1] - (2 * n + 1), tri[:, 2]
        good = (r >= 0) & (r < n) & (c >= 0) & (c < n) & (v >= 1) & (v <= n)
        if not good.all():
            ok[i] = False
        for rr, cc, vv in zip(r[good], c[good], v[good], strict=True):
            cell = rr * n + cc
            if seen[cell]:
                ok[i] = False
                continue
            seen[cell] = True
            grids[i, cell] = vv
        if not seen.all():
            ok[i] = False
    return grids, ok
