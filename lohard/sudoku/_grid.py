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
