"""Numba kernels for Sudoku: exact solution counting, grid generation, the strategy rater.

Conventions shared by every kernel
----------------------------------
* Box size ``b``, side ``n = b*b``, ``N = n*n`` cells in row-major order.
* ``values`` : int64 array, shape (N,), digits 1..n, 0 = blank.
* ``cand`` : int64 array, shape (N,), candidate bitmask of a blank cell (bit ``v-1``
  set when digit ``v`` is still possible); 0 for filled cells.
* Topology (built once per ``b`` by :func:`lohard.sudoku._grid.topology`):
  ``units`` int64 (3n, n) (rows, then columns, then boxes), ``cell_units`` int64
  (N, 3) (the row, column and box unit of a cell), ``peers`` int64 (N, P) with
  ``P = 2(n-1) + (b-1)^2``, and ``pc`` int64 (2^n,) the popcount table.
* Randomness: a splitmix64 stream per item (``state``: uint64 array of length 1),
  seeded from (root key, item index), so a batch gives the same items whatever the
  number of threads or the chunking.

Serial drivers are cached; the parallel drivers are compiled from the same Python
body with ``parallel=True`` (no cache, see STYLE.md). Both are deterministic and
give identical outputs.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

# Strategy codes, in the order the rater tries them (simplest first); the order of
# Shah et al. (2024), the solver behind the paper's Sudoku data.
CLUE = 0
NAKED_SINGLE = 1
HIDDEN_SINGLE = 2
NAKED_PAIR = 3
NAKED_TRIPLE = 4
LOCKED_CANDIDATE = 5
XY_WING = 6
UNIQUE_RECTANGLE = 7
GUESS = 8
NUM_CODES = 9

# Status codes of the rater.
SOLVED = 0
STUCK = 1          # strategies alone stall and search was not allowed
NO_SOLUTION = 2    # contradiction reached with no branch left (or inconsistent clues)

# Difficulty codes of the generator.
DIFF_ANY = 0
DIFF_EASY = 1
DIFF_HARD = 2

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


# -- randomness --------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _next_u64(state):
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _randbelow(state, k):
    """Uniform integer in [0, k) (modulo bias below 2^-58 for k <= 64)."""
    return np.int64(_next_u64(state) % np.uint64(k))


@njit(cache=True)
def seed_state(key, index, state):
    """Seed ``state`` for item ``index`` of the stream with root ``key`` (both uint64)."""
    state[0] = key ^ (np.uint64(index) * _MIX2)
    _next_u64(state)
    state[0] = _next_u64(state)


# -- bit helpers ---------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _bit_index(mask):
    """Index of the lowest set bit of a nonzero mask."""
    d = 0
    while not (mask >> d) & 1:
        d += 1
    return d


@njit(cache=True, inline="always")
def _nth_bit(mask, t):
    """Index of the t-th (0-based) set bit of mask."""
    d = 0
    while True:
        if (mask >> d) & 1:
            if t == 0:
                return d
            t -= 1
        d += 1


# -- exact counting / solving ----------------------------------------------------------------
@njit(cache=True)
def count_solutions(grid, n, cell_units, pc, limit, randomize, state, sol):
    """Count the completions of ``grid`` up to ``limit`` by bitmask DFS (MRV cell order).

    Parameters
    ----------
    grid : int64 array, shape (N,)
        Scratch copy of the puzzle; left in an unspecified state.
    n : int
    cell_units, pc : topology arrays (see module docstring).
    limit : int
        Stop after this many solutions (2 decides uniqueness).
    randomize : bool
        Try candidates in a random order drawn from ``state`` (used to draw full grids);
        otherwise in increasing digit order.
    state : uint64 array, shape (1,)
    sol : int64 array, shape (N,)
        Receives the first solution found.

    Returns
    -------
    int
        Number of solutions found (``<= limit``); 0 for inconsistent clues.

    Notes
    -----
    Exact: every branch is explored unless ``limit`` is reached. Minimum remaining
    values (MRV) picks the blank with the fewest candidates, first in row-major order.
    """
    N = n * n
    full = (1 << n) - 1
    rows = np.zeros(n, np.int64)
    cols = np.zeros(n, np.int64)
    boxes = np.zeros(n, np.int64)
    empties = np.empty(N, np.int64)
    rem = np.empty(N + 1, np.int64)
    ne = 0
    for c in range(N):
        v = grid[c]
        if v == 0:
            empties[ne] = c
            ne += 1
            continue
        bit = 1 << (v - 1)
        r, q, x = cell_units[c, 0], cell_units[c, 1] - n, cell_units[c, 2] - 2 * n
        if (rows[r] | cols[q] | boxes[x]) & bit:
            return 0
        rows[r] |= bit
        cols[q] |= bit
        boxes[x] |= bit
    count = 0
    depth = 0
    while True:
        # choose the branching cell at this depth, or record a solution
        if depth == ne:
            count += 1
            if count == 1:
                for c in range(N):
                    sol[c] = grid[c]
            if count >= limit:
                return count
            depth -= 1
            if depth < 0:
                return count
        else:
            best = -1
            bestp = n + 1
            bestm = 0
            for j in range(depth, ne):
                c = empties[j]
                m = full & ~(rows[cell_units[c, 0]] | cols[cell_units[c, 1] - n]
                             | boxes[cell_units[c, 2] - 2 * n])
                p = pc[m]
                if p < bestp:
                    bestp = p
                    best = j
                    bestm = m
                    if p <= 1:
                        break
            t = empties[depth]
            empties[depth] = empties[best]
            empties[best] = t
            rem[depth] = bestm
        # try the next candidate at this depth, undoing the previous one
        while True:
            c = empties[depth]
            r, q, x = cell_units[c, 0], cell_units[c, 1] - n, cell_units[c, 2] - 2 * n
            if grid[c] != 0:
                bit = ~(1 << (grid[c] - 1))
                rows[r] &= bit
                cols[q] &= bit
                boxes[x] &= bit
                grid[c] = 0
            m = rem[depth]
            if m == 0:
                depth -= 1
                if depth < 0:
                    return count
                continue
            if randomize:
                d = _nth_bit(m, _randbelow(state, pc[m]))
            else:
                d = _bit_index(m)
            rem[depth] = m & ~(1 << d)
            grid[c] = d + 1
            bit = 1 << d
            rows[r] |= bit
            cols[q] |= bit
            boxes[x] |= bit
            depth += 1
            break


@njit(cache=True)
def random_grid(n, cell_units, pc, state, out):
    """Fill ``out`` (int64, shape (N,)) with a random full grid (randomised DFS)."""
    work = np.zeros(n * n, np.int64)
    return count_solutions(work, n, cell_units, pc, 1, True, state, out)


@njit(cache=True)
def dig(solution, n, cell_units, pc, min_clues, state, puzzle):
    """Remove clues of ``solution`` in a random order while the solution stays unique.

    Writes the puzzle to ``puzzle`` and returns its number of clues. The result is
    minimal (no clue can be removed) unless the floor ``min_clues`` stopped it.
    """
    N = n * n
    perm = np.arange(N)
    for i in range(N - 1, 0, -1):
        j = _randbelow(state, i + 1)
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t
    for c in range(N):
        puzzle[c] = solution[c]
    work = np.empty(N, np.int64)
    sol = np.empty(N, np.int64)
    clues = N
    for i in range(N):
        if clues <= min_clues:
            break
        c = perm[i]
        v = puzzle[c]
        puzzle[c] = 0
        for t in range(N):
            work[t] = puzzle[t]
        if count_solutions(work, n, cell_units, pc, 2, False, state, sol) != 1:
            puzzle[c] = v
        else:
            clues -= 1
    return clues


# -- the strategy rater ------------------------------------------------------------------------
@njit(cache=True)
def init_candidates(values, n, units, cell_units, cand):
    """Candidates of every blank from the filled cells; False if two clues clash."""
    N = n * n
    placed = np.zeros(3 * n, np.int64)
    for u in range(3 * n):
        for t in range(n):
            v = values[units[u, t]]
            if v != 0:
                bit = 1 << (v - 1)
                if placed[u] & bit:
                    return False
                placed[u] |= bit
    full = (1 << n) - 1
    for c in range(N):
        if values[c] == 0:
            cand[c] = full & ~(placed[cell_units[c, 0]] | placed[cell_units[c, 1]]
                               | placed[cell_units[c, 2]])
        else:
            cand[c] = 0
    return True


@njit(cache=True, inline="always")
def _place(values, cand, peers, c, v):
    values[c] = v
    cand[c] = 0
    nb = ~(1 << (v - 1))
    for t in range(peers.shape[1]):
        cand[peers[c, t]] &= nb


@njit(cache=True, inline="always")
def _sees(cell_units, a, c):
    return a != c and (cell_units[a, 0] == cell_units[c, 0] or cell_units[a, 1] == cell_units[c, 1]
                       or cell_units[a, 2] == cell_units[c, 2])


@njit(cache=True)
def naked_single(values, cand, pc):
    """First blank (row-major) with one candidate: its index; -1 none; -2 a blank has none."""
    for c in range(values.shape[0]):
        if values[c] == 0:
            p = pc[cand[c]]
            if p == 0:
                return -2
            if p == 1:
                return c
    return -1


@njit(cache=True)
def hidden_single(values, cand, n, units, out):
    """First (unit, digit) with one possible cell: out = (cell, digit); -1 none, -2 a digit
    has no cell in some unit (contradiction), 1 found."""
    for u in range(3 * n):
        placed = 0
        for t in range(n):
            v = values[units[u, t]]
            if v != 0:
                placed |= 1 << (v - 1)
        for d in range(n):
            if (placed >> d) & 1:
                continue
            cnt = 0
            where = -1
            for t in range(n):
                c = units[u, t]
                if (cand[c] >> d) & 1:
                    cnt += 1
                    where = c
            if cnt == 0:
                return -2
            if cnt == 1:
                out[0] = where
                out[1] = d + 1
                return 1
    return -1


@njit(cache=True)
def _remove_from_unit(cand, units, u, n, m, a, b, c, e):
    """Remove the digits ``m`` from the blanks of unit ``u`` other than cells a, b, c, e
    (-1 for none); True if anything was removed. The elimination step of naked subsets
    (and of unique rectangle type 3)."""
    hit = False
    for t in range(n):
        x = units[u, t]
        if x != a and x != b and x != c and x != e and (cand[x] & m):
            cand[x] &= ~m
            hit = True
    return hit


@njit(cache=True)
def naked_pair(values, cand, n, units, pc):
    """Two blanks of a unit with the same two candidates: remove both digits from the
    unit's other blanks. Applies the first instance that eliminates something."""
    for u in range(3 * n):
        for i in range(n):
            a = units[u, i]
            m = cand[a]
            if values[a] != 0 or pc[m] != 2:
                continue
            for j in range(i + 1, n):
                c2 = units[u, j]
                if values[c2] != 0 or cand[c2] != m:
                    continue
                if _remove_from_unit(cand, units, u, n, m, a, c2, -1, -1):
                    return True
    return False


@njit(cache=True)
def naked_triple(values, cand, n, units, pc):
    """Three blanks of a unit whose candidates together are three digits: remove those
    digits from the unit's other blanks (first instance that eliminates something)."""
    for u in range(3 * n):
        for i in range(n):
            a = units[u, i]
            if values[a] != 0 or pc[cand[a]] < 2 or pc[cand[a]] > 3:
                continue
            for j in range(i + 1, n):
                c2 = units[u, j]
                if values[c2] != 0 or pc[cand[c2]] < 2 or pc[cand[a] | cand[c2]] > 3:
                    continue
                for k in range(j + 1, n):
                    c3 = units[u, k]
                    if values[c3] != 0 or pc[cand[c3]] < 2:
                        continue
                    m = cand[a] | cand[c2] | cand[c3]
                    if pc[m] != 3:
                        continue
                    if _remove_from_unit(cand, units, u, n, m, a, c2, c3, -1):
                        return True
    return False


@njit(cache=True)
def locked_candidate(values, cand, n, units, cell_units):
    """Pointing (a digit's candidates in a box lie in one line: remove it from the rest of
    the line) and claiming (a digit's candidates in a line lie in one box: remove it from
    the rest of the box). First instance that eliminates something."""
    # pointing: box units 2n..3n-1, line slot 0 (row) or 1 (column)
    for u in range(2 * n, 3 * n):
        for d in range(n):
            bit = 1 << d
            for slot in range(2):
                line = -1
                ok = True
                cnt = 0
                for t in range(n):
                    c = units[u, t]
                    if cand[c] & bit:
                        cnt += 1
                        if line == -1:
                            line = cell_units[c, slot]
                        elif cell_units[c, slot] != line:
                            ok = False
                            break
                if not ok or cnt == 0:
                    continue
                hit = False
                for t in range(n):
                    c = units[line, t]
                    if cell_units[c, 2] != u and (cand[c] & bit):
                        cand[c] &= ~bit
                        hit = True
                if hit:
                    return True
    # claiming: row and column units 0..2n-1
    for u in range(2 * n):
        for d in range(n):
            bit = 1 << d
            box = -1
            ok = True
            cnt = 0
            for t in range(n):
                c = units[u, t]
                if cand[c] & bit:
                    cnt += 1
                    if box == -1:
                        box = cell_units[c, 2]
                    elif cell_units[c, 2] != box:
                        ok = False
                        break
            if not ok or cnt == 0:
                continue
            slot = 0 if u < n else 1
            hit = False
            for t in range(n):
                c = units[box, t]
                if cell_units[c, slot] != u and (cand[c] & bit):
                    cand[c] &= ~bit
                    hit = True
            if hit:
                return True
    return False


@njit(cache=True)
def xy_wing(values, cand, n, peers, cell_units, pc):
    """Pivot {x,y} seeing pincers {x,z} and {y,z}: remove z from blanks seeing both
    pincers. First instance that eliminates something."""
    N = n * n
    P = peers.shape[1]
    for p in range(N):
        mp = cand[p]
        if values[p] != 0 or pc[mp] != 2:
            continue
        for i in range(P):
            a = peers[p, i]
            ma = cand[a]
            if values[a] != 0 or pc[ma] != 2 or pc[ma & mp] != 1:
                continue
            z = ma & ~mp
            want = (mp & ~ma) | z
            for j in range(P):
                c2 = peers[p, j]
                if c2 == a or values[c2] != 0 or cand[c2] != want:
                    continue
                hit = False
                for c in range(N):
                    if (cand[c] & z) and c != a and c != c2 and _sees(cell_units, c, a) \
                            and _sees(cell_units, c, c2):
                        cand[c] &= ~z
                        hit = True
                if hit:
                    return True
    return False


@njit(cache=True)
def _ur_type2(cand, n, values, cell_units, pair, r1, r2):
    """Type 2: roof cells r1, r2 (one row or column) both {a, b, z}: remove z from blanks
    seeing both (one roof cell must hold z, or the rectangle would be deadly)."""
    z = cand[r1] & ~pair
    if z == 0 or (z & (z - 1)) != 0 or (cand[r2] & ~pair) != z:
        return False
    hit = False
    for c in range(n * n):
        if values[c] == 0 and (cand[c] & z) and c != r1 and c != r2 \
                and _sees(cell_units, c, r1) and _sees(cell_units, c, r2):
            cand[c] &= ~z
            hit = True
    return hit


@njit(cache=True)
def _ur_type3(cand, n, values, units, cell_units, pc, pair, r1, r2):
    """Type 3: the roof's extras E = (r1 | r2) minus the pair act as one cell, since one
    roof cell must hold a digit of E. In a unit holding both roof cells, if E and the
    candidates of j = 1 or 2 other blanks make up exactly j + 1 digits S (a naked pair
    or triple with the roof), remove S from the unit's remaining blanks."""
    extra = (cand[r1] | cand[r2]) & ~pair
    for t in range(3):
        u = cell_units[r1, t]
        if u != cell_units[r2, t]:
            continue
        for i in range(n):
            x1 = units[u, i]
            if x1 == r1 or x1 == r2 or values[x1] != 0:
                continue
            s1 = extra | cand[x1]
            if pc[s1] > 3:
                continue
            if pc[s1] == 2 and _remove_from_unit(cand, units, u, n, s1, r1, r2, x1, -1):
                return True
            for j in range(i + 1, n):
                x2 = units[u, j]
                if x2 == r1 or x2 == r2 or values[x2] != 0:
                    continue
                s2 = s1 | cand[x2]
                if pc[s2] == 3 and _remove_from_unit(cand, units, u, n, s2, r1, r2, x1, x2):
                    return True
    return False


@njit(cache=True)
def _ur_type4(cand, n, values, units, cell_units, pair, r1, r2):
    """Type 4: in a unit holding both roof cells, digit a of the pair fits only there:
    one of them is a, so neither can be b; remove b from both."""
    for t in range(3):
        u = cell_units[r1, t]
        if u != cell_units[r2, t]:
            continue
        for d in range(n):
            a = 1 << d
            if not (pair & a):
                continue
            alone = True
            for q in range(units.shape[1]):
                c = units[u, q]
                if c != r1 and c != r2 and values[c] == 0 and (cand[c] & a):
                    alone = False
                    break
            if alone:
                other = pair & ~a
                if (cand[r1] & other) or (cand[r2] & other):
                    cand[r1] &= ~other
                    cand[r2] &= ~other
                    return True
    return False


@njit(cache=True)
def unique_rectangle(values, cand, n, b, units, cell_units, pc):
    """Unique rectangle, types 1 to 4. First instance found, checked in that order per
    rectangle.

    The corners are four blanks on two rows, two columns and two boxes, and each holds
    the pair {a, b}. If the pair were all that is left in the four, a and b could be
    swapped: two solutions. So, for a puzzle with a unique solution:

    * type 1: three corners are exactly {a, b}; remove a and b from the fourth;
    * type 2: two corners ("floor") are exactly {a, b}; the other two ("roof", on one
      row or column) are both exactly {a, b, z}: remove z from every blank seeing
      both roof cells;
    * type 3: floor as in type 2; one roof cell must hold a digit of the roof's extras
      E, so the roof acts as one cell with candidates E; with j = 1 or 2 other blanks
      of a unit holding both roof cells it forms a naked subset of j + 1 digits S:
      remove S from the unit's other blanks;
    * type 4: floor as in type 2; in a unit holding both roof cells, a fits only in
      the roof: remove b from both roof cells.
    """
    for r1 in range(n):
        for r2 in range(r1 + 1, n):
            same_band = r1 // b == r2 // b
            for c1 in range(n):
                for c2 in range(c1 + 1, n):
                    if same_band == (c1 // b == c2 // b):
                        continue  # one box or four boxes: not a rectangle of two boxes
                    cells = (r1 * n + c1, r1 * n + c2, r2 * n + c1, r2 * n + c2)
                    blank = True
                    for c in cells:
                        if values[c] != 0:
                            blank = False
                    if not blank:
                        continue
                    for k0 in range(4):  # each bivalue corner's pair
                        m = cand[cells[k0]]
                        if pc[m] != 2:
                            continue
                        nexact = 0
                        ok = True
                        for c in cells:
                            if cand[c] == m:
                                nexact += 1
                            elif (cand[c] & m) != m:
                                ok = False
                        if not ok:
                            continue
                        if nexact == 3:
                            for c in cells:
                                if cand[c] != m:
                                    cand[c] &= ~m
                                    return True
                        if nexact != 2:
                            continue
                        # the roof: the two corners with more than the pair; they must
                        # share a row or a column (diagonal roofs are other patterns)
                        x = -1
                        y = -1
                        for c in cells:
                            if cand[c] != m:
                                if x < 0:
                                    x = c
                                else:
                                    y = c
                        if x // n != y // n and x % n != y % n:
                            continue
                        if _ur_type2(cand, n, values, cell_units, m, x, y):
                            return True
                        if _ur_type3(cand, n, values, units, cell_units, pc, m, x, y):
                            return True
                        if _ur_type4(cand, n, values, units, cell_units, m, x, y):
                            return True
    return False


@njit(cache=True)
def apply_elimination(code, values, cand, n, b, units, cell_units, peers, pc):
    """Apply one instance of elimination strategy ``code`` (3..7); True if it applied."""
    if code == NAKED_PAIR:
        return naked_pair(values, cand, n, units, pc)
    if code == NAKED_TRIPLE:
        return naked_triple(values, cand, n, units, pc)
    if code == LOCKED_CANDIDATE:
        return locked_candidate(values, cand, n, units, cell_units)
    if code == XY_WING:
        return xy_wing(values, cand, n, peers, cell_units, pc)
    if code == UNIQUE_RECTANGLE:
        return unique_rectangle(values, cand, n, b, units, cell_units, pc)
    return False


@njit(cache=True)
def propagate(values, cand, n, b, units, cell_units, peers, pc, max_code, order, label,
              counts, scal):
    """Apply the strategies, simplest first, until solved, stuck or contradictory.

    After every placement or elimination the search restarts at the naked single.
    ``scal`` = int64 (2,): [number of cells in ``order``, hardest code since the last
    placement]; ``order``/``label``/``counts`` are appended to.

    Labelling convention: a placed cell's label is the hardest (largest) code used
    since the previous placement, including the single that placed it. An elimination
    chain is therefore credited to the first placement after it.

    Returns SOLVED, STUCK or NO_SOLUTION (a contradiction).
    """
    N = n * n
    hs = np.empty(2, np.int64)
    while True:
        c = naked_single(values, cand, pc)
        if c == -2:
            return NO_SOLUTION
        if c >= 0:
            _place(values, cand, peers, c, _bit_index(cand[c]) + 1)
            label[c] = max(scal[1], NAKED_SINGLE)
            order[scal[0]] = c
            scal[0] += 1
            scal[1] = 0
            counts[NAKED_SINGLE] += 1
            continue
        filled = True
        for t in range(N):
            if values[t] == 0:
                filled = False
                break
        if filled:
            return SOLVED
        if max_code < HIDDEN_SINGLE:
            return STUCK
        r = hidden_single(values, cand, n, units, hs)
        if r == -2:
            return NO_SOLUTION
        if r == 1:
            c = hs[0]
            _place(values, cand, peers, c, hs[1])
            label[c] = max(scal[1], HIDDEN_SINGLE)
            order[scal[0]] = c
            scal[0] += 1
            scal[1] = 0
            counts[HIDDEN_SINGLE] += 1
            continue
        applied = False
        for code in range(NAKED_PAIR, min(max_code, UNIQUE_RECTANGLE) + 1):
            if apply_elimination(code, values, cand, n, b, units, cell_units, peers, pc):
                counts[code] += 1
                if code > scal[1]:
                    scal[1] = code
                applied = True
                break
        if not applied:
            return STUCK


@njit(cache=True)
def rate(puzzle, n, b, units, cell_units, peers, pc, max_code, search, values, order, label,
         counts, info):
    """Solve ``puzzle`` like a person: strategies first, then guesses on the MRV cell.

    Parameters
    ----------
    puzzle : int64 array, shape (N,)
    max_code : int
        Highest strategy code the solver may use (``UNIQUE_RECTANGLE`` for all seven).
    search : bool
        When the strategies stall, guess the blank with the fewest candidates (first in
        row-major order), digits in increasing order, and backtrack on contradiction.
    values : int64 array, shape (N,)
        Output: the solved grid (or the stalled position when ``search`` is False).
    order : int64 array, shape (N,)
        Output: the blanks in the order they were filled on the successful path, then -1.
    label : int64 array, shape (N,)
        Output: code of each cell (0 for clues; see :func:`propagate`; ``GUESS`` for a
        guessed cell). Cells left blank (stalled) get -1.
    counts : int64 array, shape (NUM_CODES,)
        Output: applications of each strategy on the successful path (placements for
        singles, elimination steps otherwise, guesses on the path at ``GUESS``).
    info : int64 array, shape (2,)
        Output: [status, guesses], where guesses counts every guessed digit, including
        the wrong ones that were backtracked.
    """
    N = n * n
    cand = np.empty(N, np.int64)
    for c in range(N):
        values[c] = puzzle[c]
        order[c] = -1
        label[c] = CLUE if puzzle[c] != 0 else -1
    for k in range(NUM_CODES):
        counts[k] = 0
    info[1] = 0
    if not init_candidates(values, n, units, cell_units, cand):
        info[0] = NO_SOLUTION
        return
    scal = np.zeros(2, np.int64)
    st = propagate(values, cand, n, b, units, cell_units, peers, pc, max_code, order, label,
                   counts, scal)
    if st == SOLVED or (st == STUCK and not search):
        info[0] = st
        return
    # Search: one saved state per guess depth.
    sv = np.empty((N + 1, N), np.int64)
    sc = np.empty((N + 1, N), np.int64)
    so = np.empty((N + 1, N), np.int64)
    scnt = np.empty((N + 1, NUM_CODES), np.int64)
    sscal = np.empty((N + 1, 2), np.int64)
    scell = np.empty(N + 1, np.int64)
    srem = np.empty(N + 1, np.int64)
    depth = 0
    guesses = 0
    while True:
        if st == SOLVED:
            info[0] = SOLVED
            info[1] = guesses
            return
        if st == STUCK:
            best = -1
            bestp = n + 1
            for c in range(N):
                if values[c] == 0 and pc[cand[c]] < bestp:
                    bestp = pc[cand[c]]
                    best = c
            for c in range(N):
                sv[depth, c] = values[c]
                sc[depth, c] = cand[c]
                so[depth, c] = order[c]
            for k in range(NUM_CODES):
                scnt[depth, k] = counts[k]
            sscal[depth, 0] = scal[0]
            sscal[depth, 1] = scal[1]
            scell[depth] = best
            srem[depth] = cand[best]
            depth += 1
        else:  # contradiction: back to the deepest guess with digits left
            while depth > 0 and srem[depth - 1] == 0:
                depth -= 1
            if depth == 0:
                info[0] = NO_SOLUTION
                info[1] = guesses
                return
            for c in range(N):
                values[c] = sv[depth - 1, c]
                cand[c] = sc[depth - 1, c]
                order[c] = so[depth - 1, c]
            for k in range(NUM_CODES):
                counts[k] = scnt[depth - 1, k]
            scal[0] = sscal[depth - 1, 0]
            scal[1] = sscal[depth - 1, 1]
        c = scell[depth - 1]
        d = _bit_index(srem[depth - 1])
        srem[depth - 1] &= ~(1 << d)
        guesses += 1
        _place(values, cand, peers, c, d + 1)
        label[c] = GUESS
        order[scal[0]] = c
        scal[0] += 1
        scal[1] = 0
        counts[GUESS] += 1
        st = propagate(values, cand, n, b, units, cell_units, peers, pc, max_code, order, label,
                       counts, scal)


# -- batch drivers (one body, serial and parallel) -------------------------------------------
def _generate_batch_body(key, start, count, n, b, units, cell_units, peers, pc, difficulty,
                         min_clues, max_attempts, max_code, puzzles, solutions, orders, labels,
                         guesses, attempts, counts):
    N = n * n
    for i in numba.prange(count):
        state = np.empty(1, np.uint64)
        seed_state(key, start + i, state)
        grid = np.empty(N, np.int64)
        puz = np.empty(N, np.int64)
        vals = np.empty(N, np.int64)
        order = np.empty(N, np.int64)
        label = np.empty(N, np.int64)
        cnt = np.empty(NUM_CODES, np.int64)
        info = np.empty(2, np.int64)
        attempts[i] = -1
        for attempt in range(max_attempts):
            random_grid(n, cell_units, pc, state, grid)
            dig(grid, n, cell_units, pc, min_clues, state, puz)
            rate(puz, n, b, units, cell_units, peers, pc, max_code, True, vals, order, label, cnt,
                 info)
            ok = info[0] == SOLVED and (difficulty == DIFF_ANY
                                        or (difficulty == DIFF_EASY and info[1] == 0)
                                        or (difficulty == DIFF_HARD and info[1] > 0))
            if ok:
                for c in range(N):
                    puzzles[i, c] = puz[c]
                    solutions[i, c] = grid[c]
                    orders[i, c] = order[c]
                    labels[i, c] = label[c]
                for k in range(NUM_CODES):
                    counts[i, k] = cnt[k]
                guesses[i] = info[1]
                attempts[i] = attempt + 1
                break


def _rate_batch_body(puzzles, n, b, units, cell_units, peers, pc, max_code, search, values,
                     orders, labels, counts, infos):
    for i in numba.prange(puzzles.shape[0]):
        rate(puzzles[i], n, b, units, cell_units, peers, pc, max_code, search, values[i],
             orders[i], labels[i], counts[i], infos[i])


def _count_batch_body(puzzles, n, cell_units, pc, limit, nsol, sols):
    for i in numba.prange(puzzles.shape[0]):
        state = np.zeros(1, np.uint64)
        work = puzzles[i].copy()
        nsol[i] = count_solutions(work, n, cell_units, pc, limit, False, state, sols[i])


generate_batch_serial = njit(cache=True)(_generate_batch_body)
generate_batch_parallel = njit(parallel=True)(_generate_batch_body)
rate_batch_serial = njit(cache=True)(_rate_batch_body)
rate_batch_parallel = njit(parallel=True)(_rate_batch_body)
count_batch_serial = njit(cache=True)(_count_batch_body)
count_batch_parallel = njit(parallel=True)(_count_batch_body)


# -- belief propagation with exact all-different unit factors ------------------------------------
# Positive messages and unit weights are kept at or above a floor 10^(-BP_FLOOR_EXP / n).
# Why: an exact zero is a logical deduction and is never damped back (see bp_sweep), so
# a product that merely underflowed to 0.0 would become a false deduction and BP
# decoding would confidently write a wrong digit. A unit's permanent multiplies at most
# n weights, each >= the floor, so it stays >= 1e-280, inside the float64 range, and
# 0.0 only ever arises from true zeros. (For 9x9 the floor is 1e-31.)
BP_FLOOR_EXP = 280.0
@njit(cache=True)
def unit_messages(W, r, pc, msg):
    """Leave-one-out permanents of an r x r weight matrix, by dynamic programming over subsets.

    .. math::
        \\mathrm{msg}[i, t] = \\sum_{\\pi: \\pi(i) = t} \\prod_{j \\ne i} W[j, \\pi(j)],

    the sum over bijections pi from cells 0..r-1 to values 0..r-1: the all-different
    factor's message to cell i about value t. ``F[S]`` sums the assignments of cells
    ``0..|S|-1`` to value set S, ``G[S]`` those of cells ``r-|S|..r-1``; then
    ``msg[i, t] = sum_{|S| = i, t not in S} F[S] G[complement(S + t)]``.
    Cost O(r 2^r); exact.
    """
    size = 1 << r
    full = size - 1
    F = np.zeros(size)
    G = np.zeros(size)
    F[0] = 1.0
    G[0] = 1.0
    for S in range(1, size):
        k = pc[S]
        fi = k - 1        # F: the cell assigned last is cell k-1
        gi = r - k        # G: the cell assigned last is cell r-k
        sf = 0.0
        sg = 0.0
        rest = S
        while rest:
            low = rest & -rest
            t = _bit_index(low)
            sf += F[S ^ low] * W[fi, t]
            sg += G[S ^ low] * W[gi, t]
            rest ^= low
        F[S] = sf
        G[S] = sg
    for i in range(r):
        for t in range(r):
            msg[i, t] = 0.0
    for S in range(size):
        fs = F[S]
        if fs == 0.0:
            continue
        i = pc[S]
        if i >= r:
            continue
        free = full & ~S
        rest = free
        while rest:
            low = rest & -rest
            t = _bit_index(low)
            msg[i, t] += fs * G[free ^ low]
            rest ^= low


@njit(cache=True)
def bp_sweep(values, nu, n, units, cell_units, pc, damping):
    """One flooding BP iteration on the Sudoku factor graph (cells x all-different units).

    ``nu`` float64 (N, 3, n): message from the cell's row/column/box unit to the cell,
    updated in place with damping ``nu <- w nu_old + (1 - w) nu_new``. Filled cells are
    fixed (they only remove their digit from their units). Returns
    (largest change, contradictions), a contradiction being a unit whose blanks cannot
    take its missing digits (or a cell whose messages vanish), then set to uniform.
    """
    N = n * n
    floor = 10.0 ** (-BP_FLOOR_EXP / n)
    mu = np.empty((N, 3, n))
    bad = 0
    for c in range(N):
        if values[c] != 0:
            continue
        for s in range(3):
            tot = 0.0
            for v in range(n):
                p = 1.0
                for s2 in range(3):
                    if s2 != s:
                        p *= nu[c, s2, v]
                mu[c, s, v] = p
                tot += p
            if tot > 0.0:
                for v in range(n):
                    mu[c, s, v] /= tot
            else:
                bad += 1
                for v in range(n):
                    mu[c, s, v] = 1.0 / n
    W = np.empty((n, n))
    msg = np.empty((n, n))
    cells = np.empty(n, np.int64)
    vals = np.empty(n, np.int64)
    change = 0.0
    for u in range(3 * n):
        slot = u // n
        placed = 0
        r = 0
        for t in range(n):
            c = units[u, t]
            if values[c] != 0:
                placed |= 1 << (values[c] - 1)
            else:
                cells[r] = c
                r += 1
        if r == 0:
            continue
        ra = 0
        for v in range(n):
            if not (placed >> v) & 1:
                vals[ra] = v
                ra += 1
        ok = ra == r
        if ok:
            for i in range(r):
                rs = 0.0
                for t in range(r):
                    W[i, t] = mu[cells[i], slot, vals[t]]
                    rs += W[i, t]
                if rs > 0.0:
                    for t in range(r):
                        if W[i, t] > 0.0:
                            W[i, t] = max(W[i, t] / rs, floor)
            unit_messages(W, r, pc, msg)
        newv = np.empty(n)
        for i in range(r):
            c = cells[i]
            tot = 0.0
            if ok:
                for t in range(r):
                    tot += msg[i, t]
            for v in range(n):
                newv[v] = 0.0
            if tot > 0.0:
                for t in range(r):
                    if msg[i, t] > 0.0:
                        newv[vals[t]] = max(msg[i, t] / tot, floor)
            else:
                bad += 1
                for v in range(n):
                    newv[v] = 1.0 / n
            for v in range(n):
                # An exact zero is a sound deduction (the digit is impossible given the
                # zeros already known), so it is not damped away from zero.
                upd = 0.0
                if newv[v] != 0.0:
                    upd = damping * nu[c, slot, v] + (1.0 - damping) * newv[v]
                d = abs(upd - nu[c, slot, v])
                if d > change:
                    change = d
                nu[c, slot, v] = upd
    return change, bad


@njit(cache=True)
def bp_beliefs(values, nu, n, beliefs):
    """beliefs[c] proportional to the product of the three unit messages (one-hot if filled).
    Returns the number of blanks whose product vanishes (set to uniform)."""
    bad = 0
    for c in range(values.shape[0]):
        if values[c] != 0:
            for v in range(n):
                beliefs[c, v] = 0.0
            beliefs[c, values[c] - 1] = 1.0
            continue
        tot = 0.0
        for v in range(n):
            p = nu[c, 0, v] * nu[c, 1, v] * nu[c, 2, v]
            beliefs[c, v] = p
            tot += p
        if tot > 0.0:
            for v in range(n):
                beliefs[c, v] /= tot
        else:
            bad += 1
            for v in range(n):
                beliefs[c, v] = 1.0 / n
    return bad


@njit(cache=True)
def bp_run(values, nu, n, units, cell_units, pc, damping, tol, max_iter, beliefs, info):
    """Iterate :func:`bp_sweep` until the largest change is below tol or max_iter.

    info = int64 (3,): [iterations, converged (0/1), contradictions in the last sweep and
    the beliefs]."""
    it = 0
    conv = 0
    bad = 0
    while it < max_iter:
        change, bad = bp_sweep(values, nu, n, units, cell_units, pc, damping)
        it += 1
        if change < tol:
            conv = 1
            break
    bad += bp_beliefs(values, nu, n, beliefs)
    info[0] = it
    info[1] = conv
    info[2] = bad
