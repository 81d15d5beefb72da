"""Grid geometry: box size, units, peers and the popcount table, built once per box size."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

#: Box sizes supported: 4x4 (b = 2, CPU tests), 9x9 (b = 3, the paper), 16x16 (b = 4).
#: Larger boxes would need candidate masks and a popcount table beyond 2^16 entries,
#: and the DFS generator would be too slow to be useful.
BOX_SIZES = (2, 3, 4)


@dataclass(frozen=True, eq=False)
class Topology:
    """Units and peers of the ``n x n`` Sudoku with ``b x b`` boxes (``n = b*b``).

    Attributes
    ----------
    b, n, cells : int
        Box size, side and number of cells ``N = n*n`` (row-major cell ``r*n + c``).
    units : int64 array, shape (3n, n)
        Cells of each unit: rows 0..n-1, columns n..2n-1, boxes 2n..3n-1.
    cell_units : int64 array, shape (N, 3)
        The row, column and box unit of each cell.
    peers : int64 array, shape (N, 2(n-1) + (b-1)^2)
        The other cells sharing a unit with each cell, sorted.
    pc : int64 array, shape (2^n,)
        Popcount of every candidate mask.
    """

    b: int
    n: int
    cells: int
    units: np.ndarray
    cell_units: np.ndarray
    peers: np.ndarray
    pc: np.ndarray

    def kernel_args(self):
        return self.units, self.cell_units, self.peers, self.pc


def check_box(b) -> int:
    if isinstance(b, bool) or int(b) != b or int(b) not in BOX_SIZES:
        raise ValueError(f"box size b must be one of {BOX_SIZES} (grid side n = b^2), got {b}")
    return int(b)


def box_from_cells(cells: int) -> int:
    """The box size b of a grid with ``cells = b^4`` cells."""
    for b in BOX_SIZES:
        if b**4 == cells:
            return b
    sizes = ", ".join(str(b**4) for b in BOX_SIZES)
    raise ValueError(f"a Sudoku grid has b^4 cells ({sizes}), got {cells}")


@cache
def topology(b: int) -> Topology:
    b = check_box(b)
    n = b * b
    N = n * n
    rr, cc = np.divmod(np.arange(N), n)
    box = (rr // b) * b + cc // b
    units = np.empty((3 * n, n), dtype=np.int64)
    for i in range(n):
        units[i] = np.flatnonzero(rr == i)
        units[n + i] = np.flatnonzero(cc == i)
        units[2 * n + i] = np.flatnonzero(box == i)
    cell_units = np.stack([rr, n + cc, 2 * n + box], axis=1).astype(np.int64)
    peers = np.empty((N, 2 * (n - 1) + (b - 1) ** 2), dtype=np.int64)
    for c in range(N):
        sees = (rr == rr[c]) | (cc == cc[c]) | (box == box[c])
        sees[c] = False
        peers[c] = np.flatnonzero(sees)
    pc = np.array([bin(m).count("1") for m in range(1 << n)], dtype=np.int64)
    for arr in (units, cell_units, peers, pc):
        arr.setflags(write=False)
    return Topology(b, n, N, units, cell_units, peers, pc)


@dataclass(frozen=True, eq=False)
class Symmetry:
    """A validity-preserving transform of ``n x n`` Sudoku grids.

    One element of the Sudoku symmetry group: a permutation of the bands, of the rows
    inside each band, of the stacks, of the columns inside each stack, an optional
    transpose, and a relabelling of the digits. It maps valid grids to valid grids,
    puzzles with one solution to puzzles with one solution (the transformed one), and
    keeps every human-strategy pattern, since it maps units onto units: whether the
    strategies alone solve a puzzle is unchanged. The rater's order and guess count can
    change, since it breaks ties by cell and digit index.

    Attributes
    ----------
    b : int
        Box size.
    cells : int64 array, shape (N,)
        ``out[..., c] = digits[grid[..., cells[c]]]``: the source cell of each cell.
    digits : int64 array, shape (n + 1,)
        The digit relabelling, with ``digits[0] = 0`` (blanks stay blank).
    """

    b: int
    cells: np.ndarray
    digits: np.ndarray

    def apply(self, grids) -> np.ndarray:
        """Transform grids or puzzles (int array, last axis the ``N`` cells, 0 = blank)."""
        g = np.asarray(grids)
        n = self.b * self.b
        if g.ndim == 0 or g.shape[-1] != n * n:
            raise ValueError(f"a grid of box size b = {self.b} has n^2 = {n * n} cells on "
                             f"its last axis, got shape {g.shape}")
        if g.size and (g.min() < 0 or g.max() > n):
            raise ValueError(f"cell values must lie in 0..{n} (0 = blank), got "
                             f"{g.min()}..{g.max()}")
        return self.digits[g[..., self.cells]]

    def inverse(self) -> Symmetry:
        """The transform that undoes this one."""
        cells = np.empty_like(self.cells)
        cells[self.cells] = np.arange(self.cells.size)
        digits = np.empty_like(self.digits)
        digits[self.digits] = np.arange(self.digits.size)
        return Symmetry(self.b, cells, digits)


def random_symmetry(box: int = 3, *, rng=None) -> Symmetry:
    """A uniformly random element of the Sudoku symmetry group of box size ``box``
    (``b!^(2b+2) * 2 * n!`` elements: 3,359,232 x 9! for 9x9).

    Parameters
    ----------
    box : int
        Box size b (grid side n = b^2).
    rng : Generator, int or None
        Randomness.
    """
    from lohard._util import as_generator

    b = check_box(box)
    n = b * b
    gen = as_generator(rng)

    def lines():
        # a band (stack) permutation, then a permutation inside each band (stack)
        return np.concatenate([band * b + gen.permutation(b) for band in gen.permutation(b)])

    rows, cols = lines(), lines()
    cells = (rows[:, None] * n + cols[None, :]).reshape(-1)
    if gen.random() < 0.5:  # transpose
        cells = cells.reshape(n, n).T.reshape(-1).copy()
    digits = np.concatenate([[0], 1 + gen.permutation(n)]).astype(np.int64)
    return Symmetry(b, cells.astype(np.int64), digits)
