"""Numba kernels for belief propagation (private).

An edge ``e = a * k + s`` joins clause ``a`` and its slot-``s`` variable.

Production kernels (the *belief form*) store the clause-to-variable messages
``nu`` clause-major, in row ``e``, so a clause's k rows are contiguous. Each
variable keeps the product of its incoming messages, ``prod[i, c]`` (nonzero
factors only, kept near scale 1) and ``zeros[i, c]`` (how many factors are
exactly 0). A cavity message mu_{i->a} is prod[i] with nu_{a->i} removed: by
one division by a nonzero entry, or by decrementing a zero count, never by
dividing by zero.

A flooding iteration is one pass over the clauses, in C fixed chunks. Each
chunk works through blocks of clauses in short passes over colour-major
scratch arrays (cavities, new messages, damping), which the compiler
vectorises across edges, and multiplies every new message into the chunk's
own partial product per variable. Combining the C partials (a pass over the
variables) gives the products of the updated messages, ready for the next
iteration. C is set by the graph, not by the thread count, so the result is
the same on every machine; the random-sequential sweep updates the products
in place after every clause instead.

Reference kernels (``reference_*``) do the same flooding iteration the slow,
division-free way: messages stored variable-major in row ``pos[e]``, leave-one-out
products by prefix/suffix products. Tests check the belief form against them.

Each update is written once as a per-item (or per-chunk) body; serial drivers
(``cache=True``, for sweeps run in many processes) and parallel drivers
(``parallel=True``, not cached, for single large runs) call the same bodies.
Both are deterministic and give identical results: items are independent
within a pass, the parallel reductions are exact maxima and integer sums, and
partial products are combined in chunk order.
"""

import numpy as np
from numba import njit, prange

from lohard._prefetch import prefetch, prefetch_at

# Must match lohard.predicates: clause-update fast paths.
GENERIC = 0
NAE = 1
XOR = 2


@njit(cache=True, inline="always")
def _normalise(x, m):
    """Normalise a length-m row in place; return False (and set it uniform) if it sums to 0."""
    s = 0.0
    for c in range(m):
        s += x[c]
    if s > 0.0:
        inv = 1.0 / s
        for c in range(m):
            x[c] *= inv
        return True
    for c in range(m):
        x[c] = 1.0 / m
    return False


# Running products are rescaled only when their largest entry drops below this,
# so that _FLUSH * (row max) never falls into the subnormal range.
_RESCALE = 1e-20
# Entries below _FLUSH times their row's largest entry are set to exactly 0.
# Such entries are invisible after normalisation (1 + 1e-280 == 1 in float64),
# but left alone they decay into subnormal numbers, whose arithmetic is ~50x
# slower on x86 (measured: 45 ms vs 5 ms per variable pass at N = 10^4, d = 64).
# This is the hardware flush-to-zero mode, at a slightly higher threshold.
_FLUSH = 1e-280
# Upper bound on a kept product's scale before rescaling.
_RESCALE_HIGH = 1e20
# Products below this are set to 0 as they are formed (the scale is >= _RESCALE,
# so this is a flush at <= 1e-280 relative): it keeps subnormals out of the
# running products. Where a flushed colour matters, the exact fallback
# (direct_product) recomputes the message.
_TINY = 1e-300


@njit(cache=True)
def _reference_scale(prod, zeros, i, m):
    """Largest product among the colours with the fewest exact zeros (0 if none positive).

    Those colours dominate every cavity message of the variable, so products are
    scaled relative to them.
    """
    zmin = zeros[i, 0]
    for c in range(1, m):
        if zeros[i, c] < zmin:
            zmin = zeros[i, c]
    mx = 0.0
    for c in range(m):
        if zeros[i, c] == zmin and prod[i, c] > mx:
            mx = prod[i, c]
    return mx


# Products of colours with more exact zeros than the reference colours are capped
# at this multiple of the reference scale. Such a colour enters only the cavity
# messages of the edges that carry its zeros, next to reference colours of
# weight >= 1 there; the cap keeps the product finite (no overflow to inf) and
# changes nothing unless the colours' products differ by more than 1e250.
_CAP = 1e250


@njit(cache=True)
def _renormalise_product(prod, zeros, i, m):
    """Scale prod[i] so its reference scale is 1; flush negligible entries, cap large ones.

    An entry below _FLUSH after scaling is set to 0: its cavity weight is below
    _FLUSH / (smallest nonzero message entry) <= 1e-20 of the reference colours'.
    Returns the reference scale before scaling.
    """
    mx = _reference_scale(prod, zeros, i, m)
    if mx > 0.0:
        inv = 1.0 / mx
        for c in range(m):
            v = prod[i, c] * inv
            if v < _FLUSH:
                v = 0.0
            elif v > _CAP:
                v = _CAP
            prod[i, c] = v
    return mx


# How many steps ahead the loops over randomly placed rows prefetch (see clause_range):
# a clause's rows of nu and its variables at _AHEAD, the products of its variables at
# _AHEAD_VARS (by then its variables have arrived). A row of m = 3 doubles (24 bytes)
# straddles two cache lines one time in four, so each prefetched row is hinted at its
# first and its last entry (2026-12-05, N = 10^6, d = 64, same results bit for bit: a
# sweep 2.45 -> 2.07 s, a flooding iteration 1.05 -> 0.83 s; no change at N = 10^4).
_AHEAD = 32
_AHEAD_VARS = 16


# Note on the hot loops below: they are written out in one function each, with
# no calls in the common path. A call to another jitted function that takes
# arrays costs ~100 ns here (reference counting of every array argument),
# which at 3 calls per clause is more than the update itself.


@njit(cache=True)
def _worse(change, d):
    """The larger of two message changes; NaN (from a non-finite message) wins and stays.

    run_bp raises when the change of a flooding iteration is not finite, so no
    pass over the messages is needed to check them.
    """
    return d if (d > change or d != d) else change


@njit(cache=True)
def _absorb_factor(prod, zeros, i, nu, e, m):
    """prod[i], zeros[i] <- times the factor nu[e] (zeros counted), rescaled if needed.

    The reference colours are those with the fewest zeros (:func:`_reference_scale`).
    """
    for c in range(m):
        v = nu[e, c]
        if v > 0.0:
            p = prod[i, c] * v
            prod[i, c] = p if p >= _TINY else 0.0
        else:
            zeros[i, c] += 1
    mx = _reference_scale(prod, zeros, i, m)
    if mx < _RESCALE or mx > _RESCALE_HIGH:
        _renormalise_product(prod, zeros, i, m)


@njit(cache=True)
def _product_tail(i, j0, nu, field, offsets, edges, m, prod, zeros):
    """General product update of variable ``i`` from edge slot j0 on (zeros, any scale).

    prod[i] and zeros[i] must hold the product of the field and the factors
    before slot j0. The slow path of :func:`product_range`.
    """
    for j in range(j0, offsets[i + 1]):
        _absorb_factor(prod, zeros, i, nu, edges[j], m)


@njit(cache=True)
def product_range(lo, hi, nu, field, offsets, edges, mt, prod, zeros, beliefs):
    """Products and beliefs of variables lo..hi-1 from ``nu``; returns contradictions.

    ``mt`` is a tuple of length m (see :func:`shape_tuples`).

    prod[i, c] = field_i(c) times the nonzero incoming factors nu[edges[j], c],
    j in offsets[i]..offsets[i+1]-1; zeros[i, c] counts the exact zeros. The
    product is kept near scale 1 (see :func:`_renormalise_product`); entries
    below _TINY are flushed as they are formed. The loop below handles rows
    without zeros inline; at the first zero (in the field or a message) the
    variable continues in :func:`_product_tail`.
    """
    m = len(mt)
    bad = 0
    nedges = edges.shape[0]
    for i in range(lo, hi):
        mx = 0.0
        fmin = 1.0
        for c in range(m):
            f = field[i, c]
            prod[i, c] = f
            zeros[i, c] = 0
            fmin = min(fmin, f)
            mx = max(mx, f)
        j = offsets[i]
        end = offsets[i + 1]
        if fmin > 0.0:
            inv = 1.0 / mx
            for c in range(m):
                v = prod[i, c] * inv
                prod[i, c] = v if v >= _FLUSH else 0.0
            while j < end:
                e = edges[j]
                if j + _AHEAD < nedges:  # prefetch (cf. clause_range)
                    e2 = edges[j + _AHEAD]
                    prefetch(nu, e2)
                    prefetch_at(nu, e2, m - 1)
                vmin = nu[e, 0]
                for c in range(1, m):
                    vmin = min(vmin, nu[e, c])
                if vmin <= 0.0:
                    break  # an exact zero: general path from here
                mx = 0.0
                for c in range(m):
                    v = prod[i, c] * nu[e, c]
                    v = v if v >= _TINY else 0.0
                    prod[i, c] = v
                    mx = max(mx, v)
                if (mx < _RESCALE or mx > _RESCALE_HIGH) and mx > 0.0:
                    inv = 1.0 / mx
                    for c in range(m):
                        v = prod[i, c] * inv
                        prod[i, c] = v if v >= _FLUSH else 0.0
                j += 1
        else:
            for c in range(m):
                if field[i, c] <= 0.0:
                    prod[i, c] = 1.0
                    zeros[i, c] = 1
            _renormalise_product(prod, zeros, i, m)
        if j < end:
            _product_tail(i, j, nu, field, offsets, edges, m, prod, zeros)
        tot = 0.0
        for c in range(m):
            w = prod[i, c] if zeros[i, c] == 0 else 0.0
            beliefs[i, c] = w
            tot += w
        if tot > 0.0:
            inv = 1.0 / tot
            for c in range(m):
                beliefs[i, c] *= inv
        else:
            bad += direct_product(i, -1, nu, field, offsets, edges, m, beliefs, i)
    return bad


@njit(cache=True)
def direct_product(i, skip, nu, field, offsets, edges, m, out, r):
    """out[r] = normalised field_i * prod of nu[edges[j]] over the edges of i but row ``skip``.

    The exact, division-free fallback of :func:`cavity_row` and :func:`belief_row`
    (``skip = -1`` keeps every edge): a running product rescaled by its maximum,
    as in the reference kernel. Returns 1 if the product vanishes for every
    colour (a true contradiction; ``out[r]`` set uniform), else 0.
    """
    mx = 0.0
    for c in range(m):
        out[r, c] = field[i, c]
        if out[r, c] > mx:
            mx = out[r, c]
    for j in range(offsets[i], offsets[i + 1] + 1):
        if mx < _RESCALE:
            if mx == 0.0:
                break
            inv = 1.0 / mx
            for c in range(m):
                v = out[r, c] * inv
                out[r, c] = v if v >= _FLUSH else 0.0
        if j == offsets[i + 1]:
            break
        e = edges[j]
        if e == skip:
            continue
        mx = 0.0
        for c in range(m):
            v = out[r, c] * nu[e, c]
            out[r, c] = v
            if v > mx:
                mx = v
    tot = 0.0
    for c in range(m):
        tot += out[r, c]
    if tot > 0.0:
        inv = 1.0 / tot
        for c in range(m):
            v = out[r, c] * inv
            out[r, c] = v if v >= _FLUSH else 0.0
        return 0
    for c in range(m):
        out[r, c] = 1.0 / m
    return 1


@njit(cache=True)
def cavity_row(prod, zeros, i, nu, e, m, out, r):
    """out[r] = normalised cavity message mu_{i->a} of edge row ``e``: prod[i] without nu[e].

    Removing a factor divides by a nonzero entry (>= _FLUSH by construction) or,
    for an exact zero, decrements the zero count: no division by zero. Returns
    False if every colour comes out excluded; the caller then recomputes the
    message exactly with :func:`direct_product` (the products may have flushed a
    colour that only the removal of this edge makes relevant).
    """
    tot = 0.0
    for c in range(m):
        v = nu[e, c]
        if v > 0.0:
            w = prod[i, c] / v if zeros[i, c] == 0 else 0.0
        else:
            w = prod[i, c] if zeros[i, c] == 1 else 0.0
        out[r, c] = w
        tot += w
    if tot > 0.0:
        inv = 1.0 / tot
        for c in range(m):
            w = out[r, c] * inv
            out[r, c] = w if w >= _FLUSH else 0.0
        return True
    return False


@njit(cache=True)
def belief_row(prod, zeros, i, m, beliefs):
    """beliefs[i] = normalised zero-free part of prod[i]; False if nothing is left.

    On False the caller recomputes it with :func:`direct_product`, as for cavities.
    """
    tot = 0.0
    for c in range(m):
        w = prod[i, c] if zeros[i, c] == 0 else 0.0
        beliefs[i, c] = w
        tot += w
    if tot > 0.0:
        inv = 1.0 / tot
        for c in range(m):
            beliefs[i, c] *= inv
        return True
    return False


@njit(cache=True)
def clause_update(cav, k, m, kind, parity, tables, tab, sat_idx, sat_off, new):
    """New clause-to-variable messages ``new`` (k, m) from the cavity rows ``cav`` (k, m).

    ``kind`` selects the NAE / XOR fast path or the generic weighted truth table
    ``tables[tab]`` (flat, length m^k, slot 0 most significant), whose nonzero
    entries are listed in ``sat_idx[sat_off[tab]:sat_off[tab+1]]``. Rows of ``cav``
    are normalised. Returns the number of all-zero results (set uniform).
    """
    bad = 0
    if kind == NAE:
        # sum_{x_-s} g(x) prod mu = 1 - prod_{t != s} mu_t(c) for normalised mu.
        for s in range(k):
            tot = 0.0
            for c in range(m):
                p = 1.0
                for t in range(k):
                    if t != s:
                        p *= cav[t, c]
                new[s, c] = 1.0 - p
                tot += 1.0 - p
            inv = 1.0 / tot  # tot >= m - 1 > 0 for normalised mu
            for c in range(m):
                new[s, c] *= inv
    elif kind == XOR:
        # Fourier form: P(x_s = c) = (1 + (-1)^(c + parity) prod_{t != s} (mu_t(0) - mu_t(1))) / 2.
        sign = 1.0 if parity == 0 else -1.0
        for s in range(k):
            p = 1.0
            for t in range(k):
                if t != s:
                    p *= cav[t, 0] - cav[t, 1]
            new[s, 0] = 0.5 * (1.0 + sign * p)
            new[s, 1] = 0.5 * (1.0 - sign * p)
            if new[s, 0] < 0.0:  # rounding when p is +-1
                new[s, 0] = 0.0
            if new[s, 1] < 0.0:
                new[s, 1] = 0.0
            _normalise(new[s], m)
    else:
        for s in range(k):
            for c in range(m):
                new[s, c] = 0.0
        for q in range(sat_off[tab], sat_off[tab + 1]):
            idx = sat_idx[q]
            w = tables[tab, idx]
            # decode idx into digits x_0..x_{k-1} (slot 0 most significant)
            for s in range(k):
                p = w
                rem = idx
                xs = 0
                for t in range(k - 1, -1, -1):
                    xt = rem % m
                    rem //= m
                    if t == s:
                        xs = xt
                    else:
                        p *= cav[t, xt]
                new[s, xs] += p
        for s in range(k):
            if not _normalise(new[s], m):
                bad += 1
            for c in range(m):
                if new[s, c] < _FLUSH:
                    new[s, c] = 0.0
    return bad


@njit(cache=True)
def _damp_row(nu, e, new, s, m, damping):
    """nu[e] <- damping nu[e] + (1 - damping) new[s], flushed; returns the max change."""
    change = 0.0
    for c in range(m):
        v = damping * nu[e, c] + (1.0 - damping) * new[s, c]
        if v < _FLUSH:
            v = 0.0
        d = abs(v - nu[e, c])
        change = _worse(change, d)
        nu[e, c] = v
    return change


@njit(cache=True)
def clause_body_exact(a, k, m, nu, field, offsets, edges, clauses_flat, damping, kind, parity,
                      tables, clause_table, sat_idx, sat_off, cav, new):
    """Update of clause ``a`` with every cavity message from :func:`direct_product` (exact, slow).

    Used for the rare clauses whose cavity messages the products cannot give.
    Returns (max message change, contradictions).
    """
    base = a * k
    bad = 0
    for s in range(k):
        bad += direct_product(clauses_flat[base + s], base + s, nu, field, offsets, edges, m, cav,
                              s)
    bad += clause_update(cav, k, m, kind, parity, tables, clause_table[a], sat_idx, sat_off, new)
    change = 0.0
    for s in range(k):
        d = _damp_row(nu, base + s, new, s, m, damping)
        change = _worse(change, d)
    return change, bad


@njit(cache=True)
def _swap_factors(a, k, m, nu, old, prod, zeros, clauses_flat):
    """Products of clause ``a``'s variables: factors ``old`` out, its rows of nu in (slow path)."""
    base = a * k
    for s in range(k):
        i = clauses_flat[base + s]
        for c in range(m):
            vo = old[s, c]
            vn = nu[base + s, c]
            if vo > 0.0:
                if vn > 0.0:
                    prod[i, c] *= vn / vo
                else:
                    prod[i, c] /= vo
                    zeros[i, c] += 1
            elif vn > 0.0:
                prod[i, c] *= vn
                zeros[i, c] -= 1
            if prod[i, c] < _TINY:
                prod[i, c] = 0.0
        mx = _reference_scale(prod, zeros, i, m)
        if mx < _RESCALE or mx > _RESCALE_HIGH:
            _renormalise_product(prod, zeros, i, m)


@njit(cache=True)
def clause_range(order, lo, hi, kt, mt, nu, prod, zeros, field, offsets, edges, clauses_flat,
                 damping, kind, parity, tables, clause_table, sat_idx, sat_off):
    """Update clauses ``order[lo:hi]`` one after the other, damped (random-sequential schedule).

    ``kt`` and ``mt`` are tuples of lengths k and m (see :func:`shape_tuples`).

    Cavity messages come from the products (:func:`product_range`), and the
    products of a clause's variables are updated right after it (one factor
    out, the new one in), so later clauses read fresh messages. A clause whose
    cavity messages the products cannot give (every colour excluded, see
    :func:`cavity_row`) is updated exactly by :func:`clause_body_exact` after
    the loop. Returns (max message change, contradictions).
    """
    # k and m arrive as the lengths of the tuples kt and mt, so they are compile-time
    # constants (one compiled version per (k, m)) and the short loops over slots and
    # colours unroll: 3x faster than with k and m as runtime integers.
    k = len(kt)
    m = len(mt)
    cav = np.empty((k, m))
    new = np.empty((k, m))
    old = np.empty((k, m))
    redo = np.empty(hi - lo, dtype=np.int64)
    nredo = 0
    change = 0.0
    bad = 0
    sign = 1.0 if parity == 0 else -1.0
    for q in range(lo, hi):
        a = order[q]
        # In random order every row a clause touches is a cache miss. Prefetch them a
        # few clauses ahead, so that the misses overlap with this clause's work: the
        # clause _AHEAD on, its rows of nu (first and last entry) and of clauses_flat;
        # the clause _AHEAD_VARS on, whose variables have arrived by now, the products
        # of its variables. Hints only: the results are bitwise the same. A whole sweep
        # at d = 64 (2026-12-05, against reads ahead of the clause's rows only): 10.4 ->
        # 8.0 ms at N = 10^4, 4.5 -> 2.6-2.9 s at N = 10^6.
        if q + _AHEAD < hi:
            af = order[q + _AHEAD] * k
            prefetch(clauses_flat, af)
            prefetch(nu, af)
            prefetch_at(nu, af + k - 1, m - 1)
        if q + _AHEAD_VARS < hi:
            ah = order[q + _AHEAD_VARS] * k
            for s in range(k):
                i = clauses_flat[ah + s]
                prefetch(prod, i)
                prefetch_at(prod, i, m - 1)
                prefetch(zeros, i)
                prefetch_at(zeros, i, m - 1)
        base = a * k
        # cavity messages: prod[i] without this edge's factor (cf. cavity_row)
        ok = True
        for s in range(k):
            i = clauses_flat[base + s]
            e = base + s
            tot = 0.0
            for c in range(m):
                v = nu[e, c]
                if v > 0.0:
                    w = prod[i, c] / v if zeros[i, c] == 0 else 0.0
                else:
                    w = prod[i, c] if zeros[i, c] == 1 else 0.0
                cav[s, c] = w
                tot += w
            if tot > 0.0:
                inv = 1.0 / tot
                for c in range(m):
                    w = cav[s, c] * inv
                    cav[s, c] = w if w >= _FLUSH else 0.0
            else:
                ok = False
        if not ok:
            redo[nredo] = a
            nredo += 1
            continue
        # clause update (cf. clause_update, which the generic table uses)
        if kind == NAE:
            for s in range(k):
                tot = 0.0
                for c in range(m):
                    p = 1.0
                    for t in range(k):
                        if t != s:
                            p *= cav[t, c]
                    new[s, c] = 1.0 - p
                    tot += 1.0 - p
                inv = 1.0 / tot
                for c in range(m):
                    new[s, c] *= inv
        elif kind == XOR:
            for s in range(k):
                p = 1.0
                for t in range(k):
                    if t != s:
                        p *= cav[t, 0] - cav[t, 1]
                v0 = 0.5 * (1.0 + sign * p)
                v1 = 0.5 * (1.0 - sign * p)
                v0 = v0 if v0 > 0.0 else 0.0
                v1 = v1 if v1 > 0.0 else 0.0
                inv = 1.0 / (v0 + v1)
                new[s, 0] = v0 * inv
                new[s, 1] = v1 * inv
        else:
            bad += clause_update(cav, k, m, kind, parity, tables, clause_table[a], sat_idx,
                                 sat_off, new)
        # damping (cf. _damp_row), then the products
        for s in range(k):
            e = base + s
            for c in range(m):
                vo = nu[e, c]
                v = damping * vo + (1.0 - damping) * new[s, c]
                if v < _FLUSH:
                    v = 0.0
                d = abs(v - vo)
                if d > change:  # not _worse: its NaN test costs 4 % of a sweep here,
                    change = d  # so run_bp checks the messages after the last sweep
                nu[e, c] = v
                old[s, c] = vo
        # the products of the clause's variables (written out: cf. _swap_factors)
        for s in range(k):
            i = clauses_flat[base + s]
            e = base + s
            for c in range(m):
                vo = old[s, c]
                vn = nu[e, c]
                if vo > 0.0:
                    if vn > 0.0:
                        prod[i, c] *= vn / vo
                    else:
                        prod[i, c] /= vo
                        zeros[i, c] += 1
                elif vn > 0.0:
                    prod[i, c] *= vn
                    zeros[i, c] -= 1
                if prod[i, c] < _TINY:
                    prod[i, c] = 0.0
            # rescale only when the scale drifts far from 1 (guards over- and underflow)
            z0 = zeros[i, 0]
            mx = 0.0
            for c in range(m):
                if zeros[i, c] != z0:
                    mx = -1.0  # mixed zero counts: let _reference_scale decide
                    break
                if prod[i, c] > mx:
                    mx = prod[i, c]
            if mx < 0.0:
                mx = _reference_scale(prod, zeros, i, m)
            if mx < _RESCALE or mx > _RESCALE_HIGH:
                _renormalise_product(prod, zeros, i, m)
    for r in range(nredo):
        a = redo[r]
        for s in range(k):
            for c in range(m):
                old[s, c] = nu[a * k + s, c]
        ch, b = clause_body_exact(a, k, m, nu, field, offsets, edges, clauses_flat, damping, kind,
                                  parity, tables, clause_table, sat_idx, sat_off, cav, new)
        bad += b
        change = _worse(change, ch)
        _swap_factors(a, k, m, nu, old, prod, zeros, clauses_flat)
    return change, bad


def shape_tuples(k, m):
    """Tuples of lengths k and m: how the drivers receive k and m as compile-time constants."""
    return (0,) * int(k), (0,) * int(m)


@njit(cache=True)
def max_degree(offsets):
    best = 0
    for i in range(offsets.shape[0] - 1):
        d = offsets[i + 1] - offsets[i]
        if d > best:
            best = d
    return best


# ---------------------------------------------------------------------------------
# flooding schedule, fused: the clause pass also builds the next products
# ---------------------------------------------------------------------------------
# Clauses per block of the clause pass. Each block is done in passes over
# small scratch arrays (colour-major), which the compiler vectorises across
# edges: 5.2 -> 3.3 ms per clause pass at N = 10^4, d = 64 (NAE(3,3), serial).
_BLOCK = 64


@njit(cache=True)
def clause_chunk(ch, lo, hi, kt, mt, nu, prod, zeros, zflag, part, part_zeros, part_flag, redo,
                 clauses_flat, damping, kind, parity, tables, clause_table, sat_idx, sat_off):
    """Flooding update of clauses lo..hi-1; their new factors go into partial products ``ch``.

    ``prod``, ``zeros`` and ``zflag`` (1 where a variable's ``zeros`` row is not
    all 0) must describe the current ``nu`` (see :func:`product_range`); they are
    read only. Each updated message row is multiplied into ``part[ch]`` /
    ``part_zeros[ch]`` (the chunk's partial product per variable, same
    conventions as ``prod`` / ``zeros``; ``part_flag[ch, i]`` is set once row i
    needs the general update), so that :func:`combine_products` can form the
    next products without a separate pass over the edges. A clause whose cavity
    messages the products cannot give (every colour excluded, see
    :func:`cavity_row`) is left unchanged and flagged in ``redo``; the driver
    updates it exactly afterwards. Returns (max message change,
    contradictions, flagged clauses).
    """
    k = len(kt)
    m = len(mt)
    B = _BLOCK
    pp = part[ch]
    pz = part_zeros[ch]
    cb = np.empty((m, B * k))  # cavity messages, colour-major
    nw = np.empty((m, B * k))  # new messages
    tb = np.empty(B * k)
    scale = np.empty(B * k)
    db = np.empty(B * k * m)
    okb = np.empty(B, dtype=np.bool_)
    cav = np.empty((k, m))
    new = np.empty((k, m))
    sign = 1.0 if parity == 0 else -1.0
    # The largest change is tracked as the largest bit pattern of the nonnegative
    # floats |v - vo| read as int64 (same order): an integer maximum vectorises.
    ichange = 0
    bad = 0
    nredo = 0
    end = hi * k
    for a0 in range(lo, hi, B):
        nb = min(B, hi - a0)
        e0 = a0 * k
        # 1. cavity messages: prod[i] without this edge's factor (cf. cavity_row);
        #    one division per colour where neither side has exact zeros. Prefetch (cf.
        #    clause_range) the products of the variable _AHEAD edges on, and this
        #    variable's row of the partial products, which step 4 updates.
        for j in range(nb * k):
            e = e0 + j
            if e + _AHEAD < end:
                i2 = clauses_flat[e + _AHEAD]
                prefetch(prod, i2)
                prefetch_at(prod, i2, m - 1)
                prefetch(zflag, i2)
            i = clauses_flat[e]
            prefetch(pp, i)
            prefetch_at(pp, i, m - 1)
            vmin = nu[e, 0]
            for c in range(1, m):
                vmin = min(vmin, nu[e, c])
            tot = 0.0
            if vmin > 0.0 and zflag[i] == 0:
                for c in range(m):
                    w = prod[i, c] / nu[e, c]
                    cb[c, j] = w
                    tot += w
            else:
                for c in range(m):
                    v = nu[e, c]
                    z = zeros[i, c] - (1 if v <= 0.0 else 0)
                    w = prod[i, c] / (v if v > 0.0 else 1.0)
                    w = w if z == 0 else 0.0
                    cb[c, j] = w
                    tot += w
            tb[j] = tot
        for j in range(nb * k):
            tot = tb[j]
            inv = 1.0 / tot if tot > 0.0 else 0.0
            for c in range(m):
                w = cb[c, j] * inv
                cb[c, j] = w if w >= _FLUSH else 0.0
        for b in range(nb):
            ok = True
            for s in range(k):
                ok = ok and tb[b * k + s] > 0.0
            okb[b] = ok
        # 2. new messages ``nw``, to be normalised by ``scale`` (cf. clause_update)
        if kind == NAE:
            # sum_{x_-s} g(x) prod mu = 1 - prod_{t != s} mu_t(c) for normalised mu
            for s in range(k):
                for b in range(nb):
                    j0 = b * k
                    tot = 0.0
                    for c in range(m):
                        p = 1.0
                        for t in range(k):
                            if t != s:
                                p *= cb[c, j0 + t]
                        nw[c, j0 + s] = 1.0 - p
                        tot += 1.0 - p
                    scale[j0 + s] = 1.0 / tot  # tot >= m - 1 > 0 for normalised mu
        elif kind == XOR:
            # Fourier form (cf. clause_update)
            for s in range(k):
                for b in range(nb):
                    j0 = b * k
                    p = 1.0
                    for t in range(k):
                        if t != s:
                            p *= cb[0, j0 + t] - cb[1, j0 + t]
                    v0 = 0.5 * (1.0 + sign * p)
                    v1 = 0.5 * (1.0 - sign * p)
                    v0 = v0 if v0 > 0.0 else 0.0
                    v1 = v1 if v1 > 0.0 else 0.0
                    nw[0, j0 + s] = v0
                    nw[1, j0 + s] = v1
                    scale[j0 + s] = 1.0 / (v0 + v1)
        else:
            for b in range(nb):
                j0 = b * k
                for s in range(k):
                    scale[j0 + s] = 1.0  # clause_update normalises
                    for c in range(m):
                        nw[c, j0 + s] = 0.0
                if not okb[b]:
                    continue
                for s in range(k):
                    for c in range(m):
                        cav[s, c] = cb[c, j0 + s]
                bad += clause_update(cav, k, m, kind, parity, tables, clause_table[a0 + b],
                                     sat_idx, sat_off, new)
                for s in range(k):
                    for c in range(m):
                        nw[c, j0 + s] = new[s, c]
        # 3. damping (cf. _damp_row); flagged clauses keep their messages
        for b in range(nb):
            ok = okb[b]
            for s in range(k):
                j = b * k + s
                e = e0 + j
                for c in range(m):
                    vo = nu[e, c]
                    v = damping * vo + (1.0 - damping) * (nw[c, j] * scale[j])
                    v = 0.0 if v < _FLUSH else v  # NaN stays NaN (see _worse)
                    v = v if ok else vo
                    db[j * m + c] = abs(v - vo)
                    nu[e, c] = v
        dbits = db.view(np.int64)
        for j in range(nb * k * m):
            ichange = max(ichange, dbits[j])
        # 4. the new factors into the chunk's partial products (cf. product_range)
        for b in range(nb):
            if not okb[b]:
                redo[a0 + b] = True
                nredo += 1
                continue
            for s in range(k):
                e = e0 + b * k + s
                i = clauses_flat[e]
                vmin = nu[e, 0]
                for c in range(1, m):
                    vmin = min(vmin, nu[e, c])
                if vmin > 0.0 and part_flag[ch, i] == 0:
                    # no zeros in the row (so every colour is a reference colour)
                    mx = 0.0
                    for c in range(m):
                        p = pp[i, c] * nu[e, c]
                        p = p if p >= _TINY else 0.0
                        pp[i, c] = p
                        mx = max(mx, p)
                    if mx < _RESCALE:  # factors are <= 1: the scale only falls
                        _renormalise_product(pp, pz, i, m)
                else:
                    part_flag[ch, i] = 1
                    _absorb_factor(pp, pz, i, nu, e, m)
    out = np.empty(1, dtype=np.int64)
    out[0] = ichange
    return out.view(np.float64)[0], bad, nredo


@njit(cache=True)
def redo_clauses(redo, kt, mt, nu, part, part_zeros, field, offsets, edges, clauses_flat,
                 damping, kind, parity, tables, clause_table, sat_idx, sat_off):
    """Update the clauses flagged by :func:`clause_chunk` exactly, in clause order; clear flags.

    Cavity messages come from :func:`direct_product` over the current ``nu``
    (which already holds this pass's updates of the other clauses). The new
    factors go into the partial products of the chunk each clause belongs to.
    Returns (max message change, contradictions).
    """
    k = len(kt)
    m = len(mt)
    P = redo.shape[0]
    C = part.shape[0]
    cav = np.empty((k, m))
    new = np.empty((k, m))
    change = 0.0
    bad = 0
    for ch in range(C):
        pp = part[ch]
        pz = part_zeros[ch]
        for a in range(P * ch // C, P * (ch + 1) // C):
            if not redo[a]:
                continue
            redo[a] = False
            d, b = clause_body_exact(a, k, m, nu, field, offsets, edges, clauses_flat, damping,
                                     kind, parity, tables, clause_table, sat_idx, sat_off, cav,
                                     new)
            change = _worse(change, d)
            bad += b
            for s in range(k):
                _absorb_factor(pp, pz, clauses_flat[a * k + s], nu, a * k + s, m)
    return change, bad


@njit(cache=True)
def combine_products(lo, hi, mt, nu, field, offsets, edges, part, part_zeros, part_flag, prod,
                     zeros, zflag, beliefs):
    """prod, zeros, zflag, beliefs of variables lo..hi-1 from the field and the partial products.

    The partials are reset (to 1, 0 and 0) for the next pass. The result describes
    the same product as :func:`product_range` over the updated ``nu``, with
    the factors multiplied in a different order. Returns contradictions.
    """
    m = len(mt)
    C = part.shape[0]
    bad = 0
    for i in range(lo, hi):
        for c in range(m):
            f = field[i, c]
            prod[i, c] = f if f > 0.0 else 1.0
            zeros[i, c] = 0 if f > 0.0 else 1
        _renormalise_product(prod, zeros, i, m)
        for ch in range(C):
            z0 = zeros[i, 0] + part_zeros[ch, i, 0]
            mixed = False
            mx = 0.0
            for c in range(m):
                p = prod[i, c] * part[ch, i, c]
                p = p if p >= _TINY else 0.0
                prod[i, c] = min(p, _CAP)  # also catches overflow to inf
                zeros[i, c] += part_zeros[ch, i, c]
                part[ch, i, c] = 1.0
                part_zeros[ch, i, c] = 0
                mixed = mixed or zeros[i, c] != z0
                mx = max(mx, prod[i, c])
            part_flag[ch, i] = 0
            if mixed:
                mx = _reference_scale(prod, zeros, i, m)
            if mx < _RESCALE or mx > _RESCALE_HIGH:
                _renormalise_product(prod, zeros, i, m)
        zf = 0
        for c in range(m):
            zf = zf | (1 if zeros[i, c] > 0 else 0)
        zflag[i] = zf
        tot = 0.0
        for c in range(m):
            w = prod[i, c] if zeros[i, c] == 0 else 0.0
            beliefs[i, c] = w
            tot += w
        if tot > 0.0:
            inv = 1.0 / tot
            for c in range(m):
                beliefs[i, c] *= inv
        else:
            bad += direct_product(i, -1, nu, field, offsets, edges, m, beliefs, i)
    return bad


def flood_chunks(num_edges, n):
    """Number of clause chunks (partial products) of a flooding pass: fixed by the graph.

    It does not depend on the number of threads, so serial and parallel runs give
    bitwise-identical results on every machine. At most 16 (the threads it can
    keep busy), at most one per 65,536 edges (each chunk's partial products are
    combined in a pass over the variables), and at most E / (4n), which keeps
    the partial products below 3/8 of the memory of the messages.
    """
    return int(max(1, min(16, num_edges // 65536, num_edges // (4 * max(n, 1)))))


@njit(cache=True)
def absorb_rows(lo, hi, nu, clauses_flat, mt, pp, pz, pflag):
    """Multiply message rows lo..hi-1 into the partial products ``pp``, ``pz``, ``pflag``.

    The scatter step of :func:`clause_chunk` on its own: rows are read in order
    and each multiplies into its variable's partial product, so the large
    array ``nu`` streams and only the small per-variable arrays are accessed
    at random (unlike :func:`product_range`, which gathers ``nu`` at random).
    Rows of ``nu`` must be normalised (factors <= 1).
    """
    m = len(mt)
    for e in range(lo, hi):
        if e + _AHEAD < hi:  # prefetch (cf. clause_range)
            i2 = clauses_flat[e + _AHEAD]
            prefetch(pp, i2)
            prefetch_at(pp, i2, m - 1)
        i = clauses_flat[e]
        vmin = nu[e, 0]
        for c in range(1, m):
            vmin = min(vmin, nu[e, c])
        if vmin > 0.0 and pflag[i] == 0:
            mx = 0.0
            for c in range(m):
                p = pp[i, c] * nu[e, c]
                p = p if p >= _TINY else 0.0
                pp[i, c] = p
                mx = max(mx, p)
            if mx < _RESCALE:
                _renormalise_product(pp, pz, i, m)
        else:
            pflag[i] = 1
            _absorb_factor(pp, pz, i, nu, e, m)


def flood_start(nu, field, offsets, edges, clauses_flat, num_clauses, mt, nchunks):
    """Working arrays of :func:`flood_serial` / :func:`flood_parallel` for messages ``nu``.

    Returns ((prod, zeros, zflag, beliefs, part, part_zeros, part_flag, redo),
    contradictions): the products and beliefs of ``nu`` and ``nchunks`` partial
    products at their starting values. The products are formed as a flooding
    iteration forms them (:func:`absorb_rows` into one partial product, then
    :func:`combine_products`): the same products as :func:`product_range`, with
    the factors in another order, at about half its cost on large graphs.
    """
    n = offsets.shape[0] - 1
    m = len(mt)
    prod = np.empty((n, m))
    zeros = np.empty((n, m), dtype=np.int64)
    zflag = np.empty(n, dtype=np.uint8)
    beliefs = np.empty((n, m))
    part = np.ones((nchunks, n, m))
    part_zeros = np.zeros((nchunks, n, m), dtype=np.int32)
    part_flag = np.zeros((nchunks, n), dtype=np.uint8)
    absorb_rows(0, nu.shape[0], nu, clauses_flat, mt, part[0], part_zeros[0], part_flag[0])
    bad = combine_products(0, n, mt, nu, field, offsets, edges, part, part_zeros, part_flag, prod,
                           zeros, zflag, beliefs)
    state = (prod, zeros, zflag, beliefs, part, part_zeros, part_flag,
             np.zeros(num_clauses, dtype=np.bool_))
    return state, int(bad)


def _flood(nu, prod, zeros, zflag, beliefs, part, part_zeros, part_flag, redo, field, offsets,
           edges, clauses_flat, kt, mt, damping, kind, parity, tables, clause_table, sat_idx,
           sat_off, nblocks):
    """One flooding iteration (compiled twice below: serial and parallel).

    On entry ``prod``, ``zeros`` describe ``nu`` (:func:`product_range`; ``zflag``
    marks the rows of ``zeros`` that are not all 0), and the partial products
    ``part`` (C, n, m) are 1, ``part_zeros`` and ``part_flag`` 0; on return
    all of them describe the updated ``nu`` again and ``beliefs`` holds its
    beliefs. Clauses are split into C = part.shape[0] fixed chunks whose
    partial products are multiplied together in chunk order, so the result
    depends on C but not on the threads. Returns (max message change,
    contradictions).
    """
    k = len(kt)
    n = offsets.shape[0] - 1
    P = nu.shape[0] // k
    C = part.shape[0]
    changes = np.zeros(C)
    bads = np.zeros(C, dtype=np.int64)
    nredo = np.zeros(C, dtype=np.int64)
    for ch in prange(C):
        c, b, r = clause_chunk(ch, P * ch // C, P * (ch + 1) // C, kt, mt, nu, prod, zeros, zflag,
                               part, part_zeros, part_flag, redo, clauses_flat, damping, kind,
                               parity, tables, clause_table, sat_idx, sat_off)
        changes[ch] = c
        bads[ch] = b
        nredo[ch] = r
    change = 0.0
    for ch in range(C):
        change = _worse(change, changes[ch])
    bad = bads.sum()
    if nredo.sum() > 0:
        c, b = redo_clauses(redo, kt, mt, nu, part, part_zeros, field, offsets, edges,
                            clauses_flat, damping, kind, parity, tables, clause_table, sat_idx,
                            sat_off)
        change = _worse(change, c)
        bad += b
    vb = np.zeros(nblocks, dtype=np.int64)
    for q in prange(nblocks):
        vb[q] = combine_products(n * q // nblocks, n * (q + 1) // nblocks, mt, nu, field,
                                 offsets, edges, part, part_zeros, part_flag, prod, zeros, zflag,
                                 beliefs)
    return change, bad + vb.sum()


flood_serial = njit(cache=True)(_flood)
flood_parallel = njit(parallel=True)(_flood)


# ---------------------------------------------------------------------------------
# random-sequential schedule
# ---------------------------------------------------------------------------------
@njit(cache=True)
def sweep_sequential(nu, prod, zeros, beliefs, field, offsets, edges, clauses_flat, order, kt,
                     mt, damping, kind, parity, tables, clause_table, sat_idx, sat_off):
    """One random-sequential sweep: clauses in ``order``, each reading fresh cavity messages.

    After a clause is updated, the products of its variables are updated in place
    (one factor out, the new one in), so the next clause sees the new messages.
    The products are rebuilt from scratch at the start of every sweep, which
    bounds the rounding drift of these incremental updates to one sweep. A
    clause whose cavity messages need the exact path is updated at the end of
    the sweep instead. ``beliefs`` receives the beliefs after the sweep.
    Returns (max message change, contradictions).
    """
    m = len(mt)
    n = offsets.shape[0] - 1
    product_range(0, n, nu, field, offsets, edges, mt, prod, zeros, beliefs)
    change, bad = clause_range(order, 0, order.shape[0], kt, mt, nu, prod, zeros, field,
                               offsets, edges, clauses_flat, damping, kind, parity, tables,
                               clause_table, sat_idx, sat_off)
    for i in range(n):
        if not belief_row(prod, zeros, i, m, beliefs):
            bad += direct_product(i, -1, nu, field, offsets, edges, m, beliefs, i)
    return change, bad


@njit(cache=True)
def cavities(nu, prod, zeros, beliefs, mu, field, offsets, edges, clauses_flat, src_clause, kt,
             mt):
    """All cavity messages and the beliefs of ``nu``; returns contradictions.

    ``mu[a k + s]`` receives the cavity message of edge ``src_clause[a] k + s`` of
    ``nu``: with ``src_clause`` the layout's ``clause_pos``, the messages of the
    internal layout come out in the user's edge order, with no intermediate array
    (``arange(P)`` keeps the order). The rows are read in that order, at random
    places: prefetched as in :func:`clause_range`.
    """
    k = len(kt)
    m = len(mt)
    n = offsets.shape[0] - 1
    P = src_clause.shape[0]
    bad = product_range(0, n, nu, field, offsets, edges, mt, prod, zeros, beliefs)
    for a in range(P):
        if a + _AHEAD < P:
            af = src_clause[a + _AHEAD] * k
            prefetch(clauses_flat, af)
            prefetch(nu, af)
            prefetch_at(nu, af + k - 1, m - 1)
        if a + _AHEAD_VARS < P:
            ah = src_clause[a + _AHEAD_VARS] * k
            for s in range(k):
                i = clauses_flat[ah + s]
                prefetch(prod, i)
                prefetch_at(prod, i, m - 1)
                prefetch(zeros, i)
                prefetch_at(zeros, i, m - 1)
        src = src_clause[a] * k
        for s in range(k):
            e = src + s
            i = clauses_flat[e]
            if not cavity_row(prod, zeros, i, nu, e, m, mu, a * k + s):
                bad += direct_product(i, e, nu, field, offsets, edges, m, mu, a * k + s)
    return bad


# ---------------------------------------------------------------------------------
# reference flooding iteration: variable-major storage, prefix/suffix products
# ---------------------------------------------------------------------------------
@njit(cache=True)
def reference_var_body(i, nu, mu, beliefs, field, offsets, m, suf, run):
    """Leave-one-out products for variable ``i`` by prefix/suffix products (no division).

    Messages are stored variable-major: variable ``i`` owns rows
    ``offsets[i]:offsets[i+1]`` of ``nu`` and ``mu``, so this pass is contiguous.

    ``suf`` (deg+1, m) and ``run`` (m,) are scratch. Writes the ``mu`` rows of the
    variable's edges and its belief. Returns the number of contradictions
    (all-zero products, which are set to uniform).
    """
    start = offsets[i]
    deg = offsets[i + 1] - start
    bad = 0
    for c in range(m):
        suf[deg, c] = 1.0
    for j in range(deg - 1, -1, -1):
        e = start + j
        mx = 0.0
        for c in range(m):
            v = suf[j + 1, c] * nu[e, c]
            suf[j, c] = v
            if v > mx:
                mx = v
        if mx < _RESCALE:
            if mx == 0.0:
                bad += 1
                for c in range(m):
                    suf[j, c] = 1.0
                mx = 1.0
            else:
                inv = 1.0 / mx
                for c in range(m):
                    suf[j, c] *= inv
                mx = 1.0
        floor = mx * _FLUSH
        for c in range(m):
            if suf[j, c] < floor:
                suf[j, c] = 0.0
    mx = 0.0
    for c in range(m):
        v = field[i, c]
        run[c] = v
        if v > mx:
            mx = v
    inv = 1.0 / mx
    for c in range(m):
        run[c] *= inv
    for j in range(deg):
        e = start + j
        tot = 0.0
        for c in range(m):
            v = run[c] * suf[j + 1, c]
            mu[e, c] = v
            tot += v
        if tot > 0.0:
            inv = 1.0 / tot
            for c in range(m):
                v = mu[e, c] * inv
                mu[e, c] = v if v >= _FLUSH else 0.0
        else:
            bad += 1
            for c in range(m):
                mu[e, c] = 1.0 / m
        mx = 0.0
        for c in range(m):
            v = run[c] * nu[e, c]
            run[c] = v
            if v > mx:
                mx = v
        if mx < _RESCALE:
            if mx == 0.0:
                bad += 1
                for c in range(m):
                    run[c] = 1.0
                mx = 1.0
            else:
                inv = 1.0 / mx
                for c in range(m):
                    run[c] *= inv
                mx = 1.0
        floor = mx * _FLUSH
        for c in range(m):
            if run[c] < floor:
                run[c] = 0.0
    tot = 0.0
    for c in range(m):
        tot += run[c]
    inv = 1.0 / tot
    for c in range(m):
        beliefs[i, c] = run[c] * inv
    return bad



@njit(cache=True)
def reference_iterate(nu, mu, beliefs, field, offsets, pos, k, m, damping, kind, parity,
                      tables, clause_table, sat_idx, sat_off, maxdeg):
    """One flooding iteration the division-free way (rows ``pos[e]``); serial.

    Same update as :func:`flood_serial`; kept as the slow reference the belief
    form is tested against. Returns (max message change, contradictions).
    """
    n = offsets.shape[0] - 1
    P = nu.shape[0] // k
    suf = np.empty((maxdeg + 1, m))
    run = np.empty(m)
    cav = np.empty((k, m))
    new = np.empty((k, m))
    bad = 0
    for i in range(n):
        bad += reference_var_body(i, nu, mu, beliefs, field, offsets, m, suf, run)
    change = 0.0
    for a in range(P):
        base = a * k
        for s in range(k):
            for c in range(m):
                cav[s, c] = mu[pos[base + s], c]
        bad += clause_update(cav, k, m, kind, parity, tables, clause_table[a], sat_idx,
                             sat_off, new)
        for s in range(k):
            d = _damp_row(nu, pos[base + s], new, s, m, damping)
            change = _worse(change, d)
    return change, bad


# ---------------------------------------------------------------------------------
# starting messages and checks, in one pass each (they are O(E) work outside the
# iterations, so at E ~ 10^7 every extra NumPy temporary shows in run_bp's fixed cost)
# ---------------------------------------------------------------------------------
@njit(cache=True)
def uniform_rows(u, noise, dst_clause, kt, mt, out):
    """Rows 1/m + noise (2 u - 1), normalised, of consecutive user clauses, into ``out``.

    ``u`` (B k, m) holds uniform [0, 1) draws for B consecutive user clauses
    (``gen.uniform(-1, 1)`` is -1 + 2 ``gen.random()``); the clause drawn b-th goes
    to internal clause ``dst_clause[b]`` (see :mod:`lohard.bp._layout`), so a run
    does not depend on the layout. ``kt``, ``mt``: tuples of lengths k and m.
    Returns False if an entry is <= 0 (noise >= 1/m).
    """
    k = len(kt)
    m = len(mt)
    base = 1.0 / m
    vmin = 1.0
    nb = dst_clause.shape[0]
    for b in range(nb):
        if b + _AHEAD < nb:  # rows at random places: prefetch (cf. clause_range) both
            ahead = dst_clause[b + _AHEAD] * k  # ends of the clause's k m entries, which
            prefetch(out, ahead)  # span two cache lines (0.57 -> 0.46 s at N = 10^6)
            prefetch_at(out, ahead + k - 1, m - 1)
        dst = dst_clause[b] * k
        for s in range(k):
            tot = 0.0
            for c in range(m):
                v = base + noise * (2.0 * u[b * k + s, c] - 1.0)
                vmin = min(vmin, v)
                out[dst + s, c] = v
                tot += v
            inv = 1.0 / tot
            for c in range(m):
                out[dst + s, c] *= inv
    return vmin > 0.0


@njit(cache=True)
def planted_start(sigma, clauses_flat, noise, m, out):
    """out[e] = normalised (1 - noise) onehot(sigma[clauses_flat[e]]) + noise / m."""
    low = noise / m
    for e in range(clauses_flat.shape[0]):
        col = sigma[clauses_flat[e]]
        tot = 0.0
        for c in range(m):
            v = (1.0 - noise) * (1.0 if c == col else 0.0) + low
            out[e, c] = v
            tot += v
        for c in range(m):
            out[e, c] = out[e, c] / tot


@njit(cache=True)
def all_finite(x):
    """Whether every entry of the 2-d array ``x`` is finite (no temporary, unlike NumPy)."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[r, c]
            if v - v != 0.0:  # inf - inf and NaN - NaN are NaN
                return False
    return True
