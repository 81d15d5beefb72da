"""Token layouts of Zebra puzzles for the MDM and the ARMs (modelled on the Sudoku ones).

One vocabulary serves every size (ids for the largest, 6 x 6):

==========  =========================  =================================
ids         meaning                    count
==========  =========================  =================================
0           padding (empty clue slot)  1
1..6        (unused, kept free)        6
7..16       clue types (code order)    10
17..52      item (a, v): 17 + 6a + v   36
53..58      house h: 53 + h            6
59..64      attribute a: 59 + a        6
==========  =========================  =================================

A solution cell holds the *item* token of its value, the same id a clue uses to name
that value: attention can then match a clue to the cells it speaks of by token identity
(with a separate value vocabulary a 1M-parameter MDM stayed at the marginal loss for
350 steps on 4 x 4 puzzles, measured, 0% solved). A clue is ``CLUE_WIDTH = 5`` tokens:
its type, three item slots and a house slot (unused slots are padding); the clue list
is padded to ``max_clues`` slots, so the prompt has a fixed length ``P = 5 max_clues``.

* MDM: ``P + N`` tokens (``N = n m``): the clue prompt, then the solution, cell
  (a, h) at position ``P + a m + h`` holding item ``(a, grid[a, h])``. Only the solution
  is masked; the mask id is :attr:`ZebraLayout.mask_id` (= the vocabulary size), and a
  cell's prediction is read from the logits of the m items of its attribute
  (:func:`cell_item_ids`).
* ARM: ``P + 3N`` tokens: the prompt, then one (attribute, house, item) triple per
  cell, in the solver's order ("with ordering") or row-major order ("without").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lohard.zebra._puzzle import CLUE_ITEMS, CLUE_TYPES, MAX_ARGS, MAX_SIZE, check_size

PAD = 0
VALUE0 = 1
TYPE0 = VALUE0 + MAX_SIZE
ITEM0 = TYPE0 + len(CLUE_TYPES)
HOUSE0 = ITEM0 + MAX_SIZE * MAX_SIZE
ATTR0 = HOUSE0 + MAX_SIZE
VOCAB_SIZE = ATTR0 + MAX_SIZE
CLUE_WIDTH = 5
_HAS_HOUSE = np.array([k in ("at", "not-at") for k in CLUE_TYPES])
N_ITEMS = np.array([CLUE_ITEMS[k] for k in CLUE_TYPES])


@dataclass(frozen=True)
class ZebraLayout:
    """Lengths and token ids of the layouts at one size.

    Attributes
    ----------
    m, n : int
    max_clues : int
        Clue slots of the prompt.
    """

    m: int
    n: int
    max_clues: int

    def __post_init__(self) -> None:
        check_size(self.m, self.n)
        if int(self.max_clues) != self.max_clues or self.max_clues < 1:
            raise ValueError(f"max_clues must be an integer >= 1, got {self.max_clues}")

    @property
    def n_cells(self) -> int:
        return self.m * self.n

    @property
    def prompt_length(self) -> int:
        return CLUE_WIDTH * self.max_clues

    @property
    def mdm_length(self) -> int:
        return self.prompt_length + self.n_cells

    @property
    def arm_length(self) -> int:
        return self.prompt_length + 3 * self.n_cells

    @property
    def vocab_size(self) -> int:
        """Ids 0..VOCAB_SIZE-1 (the same at every size)."""
        return VOCAB_SIZE

    @property
    def mask_id(self) -> int:
        """The MDM's mask token (one past the vocabulary)."""
        return VOCAB_SIZE

    @property
    def cell_item_ids(self) -> np.ndarray:
        """int64 (N, m): the item ids each solution cell may hold."""
        return cell_item_ids(self.m, self.n)


def clue_tokens(clues, n_clues, layout: ZebraLayout) -> np.ndarray:
    """int64 (M, P): the clue prompt.

    Parameters
    ----------
    clues : int array, shape (M, C, 1 + MAX_ARGS)
        Rows of :meth:`lohard.zebra.Clue.to_row` (code, arguments, -1 padding); rows at
        and after ``n_clues[i]`` are ignored.
    n_clues : int array, shape (M,)
    """
    c = np.asarray(clues, np.int64)
    k = np.asarray(n_clues, np.int64)
    M, C = c.shape[0], c.shape[1]
    if int(k.max(initial=0)) > layout.max_clues:
        raise ValueError(f"a puzzle has {int(k.max())} clues, the layout holds "
                         f"{layout.max_clues}")
    out = np.zeros((M, layout.max_clues, CLUE_WIDTH), np.int64)
    used = np.arange(C)[None, :] < k[:, None]
    code = np.where(used, c[:, :, 0], 0)
    items = N_ITEMS[code]
    slots = min(C, layout.max_clues)
    u = used[:, :slots]
    out[:, :slots, 0] = np.where(u, TYPE0 + code[:, :slots], PAD)
    for j in range(3):
        a, v = c[:, :slots, 1 + 2 * j], c[:, :slots, 2 + 2 * j]
        ok = u & (items[:, :slots] > j)
        out[:, :slots, 1 + j] = np.where(ok, ITEM0 + MAX_SIZE * a + v, PAD)
    has_house = u & _HAS_HOUSE[code[:, :slots]]
    out[:, :slots, 4] = np.where(has_house, HOUSE0 + c[:, :slots, 3], PAD)
    return out.reshape(M, -1)


def parse_clue_tokens(tokens, layout: ZebraLayout) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`clue_tokens`: ``(clues int64 (M, max_clues, 7), n_clues (M,))``.

    Raises ValueError on a slot that is not a well-formed clue.
    """
    t = np.asarray(tokens, np.int64)
    if t.ndim == 1:
        t = t[None]
    P = layout.prompt_length
    if t.shape[1] < P:
        raise ValueError(f"need at least P = {P} prompt tokens, got {t.shape[1]}")
    slots = t[:, :P].reshape(t.shape[0], layout.max_clues, CLUE_WIDTH)
    out = np.full((t.shape[0], layout.max_clues, 1 + MAX_ARGS), -1, np.int64)
    n = np.zeros(t.shape[0], np.int64)
    for i in range(t.shape[0]):
        for j in range(layout.max_clues):
            s = slots[i, j]
            if s[0] == PAD:
                if (s != PAD).any():
                    raise ValueError(f"sequence {i}, clue slot {j}: padding type with content")
                continue
            code = int(s[0]) - TYPE0
            if not 0 <= code < len(CLUE_TYPES):
                raise ValueError(f"sequence {i}, clue slot {j}: token {s[0]} is not a type")
            row = [code]
            for q in range(N_ITEMS[code]):
                item = int(s[1 + q]) - ITEM0
                if not 0 <= item < MAX_SIZE * MAX_SIZE:
                    raise ValueError(f"sequence {i}, clue slot {j}: token {s[1 + q]} is not "
                                     "an item")
                row += [item // MAX_SIZE, item % MAX_SIZE]
            if _HAS_HOUSE[code]:
                row.append(int(s[4]) - HOUSE0)
            out[i, n[i], :len(row)] = row
            n[i] += 1
    return out, n


def item_id(a, v):
    """Token id of item (attribute a, value v) (arrays broadcast)."""
    return ITEM0 + MAX_SIZE * np.asarray(a) + np.asarray(v)


def cell_item_ids(m: int, n: int) -> np.ndarray:
    """int64 (N, m): the item ids cell ``a m + h`` may hold (its attribute's m items)."""
    a = np.repeat(np.arange(n), m)
    return item_id(a[:, None], np.arange(m)[None, :]).astype(np.int64)


def solution_tokens(solutions) -> np.ndarray:
    """int64 (M, N): item ids of the solution, row-major (cell (a, h) at a m + h)."""
    s = np.asarray(solutions, np.int64)
    n = s.shape[1]
    return item_id(np.arange(n)[None, :, None], s).reshape(s.shape[0], -1)


def mdm_tokens(clues, n_clues, solutions, layout: ZebraLayout) -> np.ndarray:
    """int64 (M, P + N): clue prompt then solution tokens."""
    return np.concatenate([clue_tokens(clues, n_clues, layout), solution_tokens(solutions)],
                          axis=1)


def arm_tokens(clues, n_clues, solutions, layout: ZebraLayout, orders=None) -> np.ndarray:
    """int64 (M, P + 3N): the prompt, then (attribute, house, item) triples.

    Parameters
    ----------
    orders : int array, shape (M, N), optional
        Each row a permutation of the cells ``a m + h`` (the solver's order). None:
        row-major.
    """
    s = np.asarray(solutions, np.int64).reshape(len(solutions), -1)
    M, N = s.shape
    m = layout.m
    if orders is None:
        cells = np.tile(np.arange(N), (M, 1))
    else:
        cells = np.asarray(orders, np.int64)
        if cells.shape != (M, N) or not (np.sort(cells, axis=1) == np.arange(N)).all():
            raise ValueError(f"orders must be (M, N) = ({M}, {N}) permutations of the cells")
    trip = np.empty((M, N, 3), np.int64)
    trip[:, :, 0] = ATTR0 + cells // m
    trip[:, :, 1] = HOUSE0 + cells % m
    trip[:, :, 2] = item_id(cells // m, np.take_along_axis(s, cells, axis=1))
    return np.concatenate([clue_tokens(clues, n_clues, layout), trip.reshape(M, -1)], axis=1)


def decode_arm_tokens(tokens, layout: ZebraLayout) -> tuple[np.ndarray, np.ndarray,
                                                            np.ndarray]:
    """Grids from ARM sequences.

    Returns
    -------
    grids : int64 (M, n, m)
        -1 in cells no well-formed triple named.
    steps : int64 (M, N)
        Triple index at which each cell was first named (-1: never).
    well_formed : bool (M,)
        Every triple is (attribute < n, house < m, an item of that attribute with value
        < m) and names a new cell.
    """
    t = np.asarray(tokens, np.int64)
    if t.ndim == 1:
        t = t[None]
    m, n, N = layout.m, layout.n, layout.n_cells
    if t.shape[1] != layout.arm_length:
        raise ValueError(f"ARM sequences at this size have {layout.arm_length} tokens, got "
                         f"{t.shape[1]}")
    tri = t[:, layout.prompt_length:].reshape(t.shape[0], N, 3)
    a, h = tri[..., 0] - ATTR0, tri[..., 1] - HOUSE0
    va, v = np.divmod(tri[..., 2] - ITEM0, MAX_SIZE)
    good = ((a >= 0) & (a < n) & (h >= 0) & (h < m) & (v >= 0) & (v < m) & (va == a)
            & (tri[..., 2] >= ITEM0))
    M = t.shape[0]
    grids = np.full((M, N), -1, np.int64)
    steps = np.full((M, N), -1, np.int64)
    ok = good.all(axis=1)
    for i in range(M):
        for j in np.flatnonzero(good[i]):
            cell = a[i, j] * m + h[i, j]
            if steps[i, cell] >= 0:
                ok[i] = False
                continue
            steps[i, cell] = j
            grids[i, cell] = v[i, j]
    ok &= (steps >= 0).all(axis=1)
    return grids.reshape(M, n, m), steps, ok
