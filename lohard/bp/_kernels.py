"""Numba kernels for belief propagation (private).

An edge ``e = a * k + s`` joins clause ``a`` and its slot-``s`` variable. Its
messages are stored *variable-major*, in row ``pos[e]``, so that a variable's
rows are contiguous: ``nu[pos[e], c]`` is the clause-to-variable message and
``mu[pos[e], c]`` the variable-to-clause (cavity) message. The variable pass is
then a linear scan and only the clause pass gathers. Rows are normalised to 1.

Each update is written once as a per-item body; serial drivers (``cache=True``,
for sweeps run in many processes) and parallel drivers (``parallel=True``, not
cached, for single large runs) call the same bodies. Both are deterministic:
items are independent within a step, and the parallel reductions are exact maxima.
"""

import numpy as np
from numba import njit, prange

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
# Upper bound on a kept product's scale in the sequential sweep before rescaling.
_RESCALE_HIGH = 1e20


@njit(cache=True)
def var_body(i, nu, mu, beliefs, field, offsets, m, suf, run):
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
def clause_body(a, k, m, mu, nu, pos, damping, kind, parity, tables, clause_table, sat_idx,
                sat_off, new):
    """Clause-to-variable update for clause ``a`` with damping; returns (max change, bad).

    ``pos[a*k + s]`` is the storage row of edge (clause a, slot s).
    ``new`` (k, m) is scratch. ``kind`` selects the NAE / XOR fast path or the
    generic weighted truth table ``tables[clause_table[a]]`` (flat, length m^k),
    whose nonzero entries are listed in ``sat_idx[sat_off[t]:sat_off[t+1]]``.
    """
    base = a * k
    bad = 0
    if kind == NAE:
        # sum_{x_-s} g(x) prod mu = 1 - prod_{t != s} mu_t(c) for normalised mu.
        for s in range(k):
            tot = 0.0
            for c in range(m):
                p = 1.0
                for t in range(k):
                    if t != s:
                        p *= mu[pos[base + t], c]
                new[s, c] = 1.0 - p
                tot += 1.0 - p
            inv = 1.0 / tot  # tot >= m - 1 > 0 for normalised mu
            for c in range(m):
                new[s, c] *= inv
    elif kind == XOR:
        # Fourier form: P(x_s = c) = (1 + (-1)^(c + parity) prod_{t != s} (mu_t(0) - mu_t(1))) / 2.
        for s in range(k):
            p = 1.0
            for t in range(k):
                if t != s:
                    p *= mu[pos[base + t], 0] - mu[pos[base + t], 1]
            sign = 1.0 if parity == 0 else -1.0
            new[s, 0] = 0.5 * (1.0 + sign * p)
            new[s, 1] = 0.5 * (1.0 - sign * p)
            if new[s, 0] < 0.0:  # rounding when p is +-1
                new[s, 0] = 0.0
            if new[s, 1] < 0.0:
                new[s, 1] = 0.0
            _normalise(new[s], m)
    else:
        tab = clause_table[a]
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
                        p *= mu[pos[base + t], xt]
                new[s, xs] += p
        for s in range(k):
            if not _normalise(new[s], m):
                bad += 1
            for c in range(m):
                if new[s, c] < _FLUSH:
                    new[s, c] = 0.0
    change = 0.0
    for s in range(k):
        e = pos[base + s]
        for c in range(m):
            v = damping * nu[e, c] + (1.0 - damping) * new[s, c]
            if v < _FLUSH:
                v = 0.0
            d = abs(v - nu[e, c])
            if d > change:
                change = d
            nu[e, c] = v
    return change, bad


@njit(cache=True)
def max_degree(offsets):
    best = 0
    for i in range(offsets.shape[0] - 1):
        d = offsets[i + 1] - offsets[i]
        if d > best:
            best = d
    return best


# ---------------------------------------------------------------------------------
# parallel-schedule drivers: one flooding iteration = all variables, then all clauses
# ---------------------------------------------------------------------------------
@njit(cache=True)
def iterate_serial(nu, mu, beliefs, field, offsets, pos, k, m, damping, kind, parity,
                   tables, clause_table, sat_idx, sat_off, maxdeg):
    """One flooding iteration, serial. Returns (max message change, contradictions)."""
    n = offsets.shape[0] - 1
    P = nu.shape[0] // k
    suf = np.empty((maxdeg + 1, m))
    run = np.empty(m)
    new = np.empty((k, m))
    bad = 0
    for i in range(n):
        bad += var_body(i, nu, mu, beliefs, field, offsets, m, suf, run)
    change = 0.0
    for a in range(P):
        ch, b = clause_body(a, k, m, mu, nu, pos, damping, kind, parity, tables, clause_table,
                            sat_idx, sat_off, new)
        bad += b
        if ch > change:
            change = ch
    return change, bad


@njit(parallel=True)
def iterate_parallel(nu, mu, beliefs, field, offsets, pos, k, m, damping, kind, parity,
                     tables, clause_table, sat_idx, sat_off, maxdeg, nchunks):
    """One flooding iteration over ``nchunks`` blocks in parallel; same result as serial."""
    n = offsets.shape[0] - 1
    P = nu.shape[0] // k
    bads = np.zeros(nchunks, dtype=np.int64)
    changes = np.zeros(nchunks)
    for ch in prange(nchunks):
        suf = np.empty((maxdeg + 1, m))
        run = np.empty(m)
        lo = n * ch // nchunks
        hi = n * (ch + 1) // nchunks
        b = 0
        for i in range(lo, hi):
            b += var_body(i, nu, mu, beliefs, field, offsets, m, suf, run)
        bads[ch] = b
    for ch in prange(nchunks):
        new = np.empty((k, m))
        lo = P * ch // nchunks
        hi = P * (ch + 1) // nchunks
        best = 0.0
        b = 0
        for a in range(lo, hi):
            c, bb = clause_body(a, k, m, mu, nu, pos, damping, kind, parity, tables, clause_table,
                                sat_idx, sat_off, new)
            b += bb
            if c > best:
                best = c
        changes[ch] = best
        bads[ch] += b
    return changes.max(), bads.sum()


# ---------------------------------------------------------------------------------
# random-sequential schedule
# ---------------------------------------------------------------------------------
@njit(cache=True)
def _renormalise_field(prod, zeros, i, m):
    """Scale prod[i] so its largest zero-free entry is 1; flush negligible entries."""
    mx = 0.0
    for c in range(m):
        if zeros[i, c] == 0 and prod[i, c] > mx:
            mx = prod[i, c]
    if mx > 0.0:
        inv = 1.0 / mx
        floor = _FLUSH
        for c in range(m):
            v = prod[i, c] * inv
            prod[i, c] = v if v >= floor else 0.0


@njit(cache=True)
def _accumulate_fields(nu, field, offsets, m, prod, zeros):
    """prod[i, c] = field times the nonzero nu factors (max-normalised); zeros counts zeros."""
    n = offsets.shape[0] - 1
    for i in range(n):
        for c in range(m):
            f = field[i, c]
            if f > 0.0:
                prod[i, c] = f
                zeros[i, c] = 0
            else:
                prod[i, c] = 1.0
                zeros[i, c] = 1
        _renormalise_field(prod, zeros, i, m)
        for e in range(offsets[i], offsets[i + 1]):
            mx = 0.0
            for c in range(m):
                v = nu[e, c]
                if v > 0.0:
                    prod[i, c] *= v
                else:
                    zeros[i, c] += 1
                if zeros[i, c] == 0 and prod[i, c] > mx:
                    mx = prod[i, c]
            if mx < _RESCALE:
                _renormalise_field(prod, zeros, i, m)


@njit(cache=True)
def sweep_sequential(nu, mu, beliefs, field, offsets, pos, clauses_flat, order, k, m,
                     damping, kind, parity, tables, clause_table, sat_idx, sat_off):
    """One random-sequential sweep: clauses in ``order``, each reading fresh cavity messages.

    Each variable keeps the product of its nonzero incoming factors (max-normalised)
    and a count of exact zeros per colour, so one factor is removed exactly by a
    division, or by decrementing the zero count, never by dividing by zero. The
    products are rebuilt from scratch at the start of every sweep, which bounds
    the rounding drift of the incremental updates to one sweep.
    Returns (max message change, contradictions).
    """
    n = offsets.shape[0] - 1
    prod = np.empty((n, m))
    zeros = np.empty((n, m), dtype=np.int64)
    _accumulate_fields(nu, field, offsets, m, prod, zeros)
    new = np.empty((k, m))
    old = np.empty((k, m))
    change = 0.0
    bad = 0
    for q in range(order.shape[0]):
        a = order[q]
        base = a * k
        for s in range(k):
            i = clauses_flat[base + s]
            e = pos[base + s]
            tot = 0.0
            for c in range(m):
                v = nu[e, c]
                if v > 0.0:
                    w = prod[i, c] / v if zeros[i, c] == 0 else 0.0
                else:
                    w = prod[i, c] if zeros[i, c] == 1 else 0.0
                mu[e, c] = w
                tot += w
            if tot > 0.0:
                inv = 1.0 / tot
                for c in range(m):
                    w = mu[e, c] * inv
                    mu[e, c] = w if w >= _FLUSH else 0.0
            else:
                for c in range(m):
                    mu[e, c] = 1.0 / m
                bad += 1
            for c in range(m):
                old[s, c] = nu[e, c]
        ch, b = clause_body(a, k, m, mu, nu, pos, damping, kind, parity, tables, clause_table,
                            sat_idx, sat_off, new)
        bad += b
        if ch > change:
            change = ch
        for s in range(k):
            i = clauses_flat[base + s]
            e = pos[base + s]
            mx = 0.0
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
                if prod[i, c] < 1e-300:  # negligible next to mx >= _RESCALE; keep subnormals out
                    prod[i, c] = 0.0
                if zeros[i, c] == 0 and prod[i, c] > mx:
                    mx = prod[i, c]
            # Rescale only when the scale drifts far from 1 (guards over- and underflow).
            if mx < _RESCALE or mx > _RESCALE_HIGH:
                _renormalise_field(prod, zeros, i, m)
    for i in range(n):
        tot = 0.0
        for c in range(m):
            w = prod[i, c] if zeros[i, c] == 0 else 0.0
            beliefs[i, c] = w
            tot += w
        if tot > 0.0:
            for c in range(m):
                beliefs[i, c] /= tot
        else:
            for c in range(m):
                beliefs[i, c] = 1.0 / m
            bad += 1
    return change, bad


@njit(cache=True)
def var_step_serial(nu, mu, beliefs, field, offsets, m, maxdeg):
    """All variable-to-clause messages and beliefs from ``nu``; returns contradictions."""
    n = offsets.shape[0] - 1
    suf = np.empty((maxdeg + 1, m))
    run = np.empty(m)
    bad = 0
    for i in range(n):
        bad += var_body(i, nu, mu, beliefs, field, offsets, m, suf, run)
    return bad
