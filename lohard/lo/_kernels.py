"""Numba kernels for exact L&O posteriors: Gray-code enumeration over masked latents.

All kernels are serial, deterministic and cached; they take arrays and scalars
only and fill preallocated outputs. Status codes are returned in ``info[0]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STATUS_OK = 0
#: The unmasked tokens have probability zero (no latent assignment explains them).
STATUS_CONTRADICTION = 1
#: A connected component of masked latents has more than ``max_states`` assignments.
STATUS_TOO_LARGE = 2

# Log-weights are kept relative to a reference; we rescale the accumulators when a
# weight exceeds the reference by this much, so sums of up to 2^40 terms of size
# at most e^30 never overflow, and the reference weight itself is exactly 1.
_RESCALE_GAP = 30.0
# Slab sums <z_j, 2x - 1> are updated incrementally; recomputing them from scratch
# this often bounds the floating-point drift to a few ulps of one fresh sum.
_SLAB_RESYNC = 1024


@njit(cache=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def _code(x, scopes, f, k, m):
    c = 0
    for s in range(k):
        c = c * m + x[scopes[f, s]]
    return c


@njit(cache=True)
def table_posterior(n_latent, m, x, lmask, ovals, omask, scopes, otab, tables, logtab, zerotab,
                    logprior, max_states, marg, pred, acc, info):
    """Exact posterior of one sequence for table-kind observations.

    Parameters
    ----------
    n_latent, m : int
    x : int64 array, shape (N,)
        Latent values; entries at masked latents are overwritten (scratch).
    lmask : bool array, shape (N,)
        Masked latents.
    ovals : int64 array, shape (P,)
        Observation values (ignored where masked).
    omask : bool array, shape (P,)
        Masked observations.
    scopes : int64 array, shape (P, k)
    otab : int64 array, shape (P,)
    tables, logtab : float64 arrays, shape (T, m^k, V)
        Probabilities and their logs (0 where the probability is 0).
    zerotab : uint8 array, shape (T, m^k, V)
        1 where the probability is exactly 0.
    logprior : float64 array, shape (m,)
    max_states : int
        Largest number of assignments enumerated for one component.
    marg : float64 array, shape (N, m)
        Output: posterior marginals of masked latents (other rows untouched).
    pred : float64 array, shape (P, V)
        Output: predictive laws of masked observations (other rows untouched).
    acc : float64 array, shape (P, k, m^k)
        Scratch for per-component joint laws of masked observations' scopes.
    info : int64 array, shape (4,)
        Output: status, largest component size, number of components, assignments visited.

    Notes
    -----
    Masked latents split into connected components of the graph whose edges
    are the unmasked observations; components are independent under the
    posterior and are enumerated separately, each in reflected m-ary Gray-code
    order (Knuth's Algorithm H), so one latent changes per step and only its
    observations are re-evaluated. A masked observation's scope law is the
    product of the joint laws of its scope's parts in each component.
    """
    P, k = scopes.shape
    mk = acc.shape[2]
    V = pred.shape[1]
    info[0] = STATUS_OK
    info[1] = 0
    info[2] = 0
    info[3] = 0
    for i in range(n_latent):
        if lmask[i]:
            x[i] = 0
    # Step 1: constant factors must be satisfiable; the others are active.
    active = np.zeros(P, dtype=np.bool_)
    parent = np.arange(n_latent)
    for f in range(P):
        if omask[f]:
            continue
        nm = 0
        for s in range(k):
            if lmask[scopes[f, s]]:
                nm += 1
        if nm == 0:
            if zerotab[otab[f], _code(x, scopes, f, k, m), ovals[f]]:
                info[0] = STATUS_CONTRADICTION
                return
            continue
        active[f] = True
        # Step 2: union the masked latents of every active factor.
        first = -1
        for s in range(k):
            i = scopes[f, s]
            if lmask[i]:
                if first < 0:
                    first = _find(parent, i)
                else:
                    r = _find(parent, i)
                    if r != first:
                        parent[r] = first
    # Step 3: components as CSR lists of masked latents.
    comp = -np.ones(n_latent, dtype=np.int64)
    ncomp = 0
    root_id = -np.ones(n_latent, dtype=np.int64)
    for i in range(n_latent):
        if lmask[i]:
            r = _find(parent, i)
            if root_id[r] < 0:
                root_id[r] = ncomp
                ncomp += 1
            comp[i] = root_id[r]
    comp_off = np.zeros(ncomp + 1, dtype=np.int64)
    for i in range(n_latent):
        if lmask[i]:
            comp_off[comp[i] + 1] += 1
    for c in range(ncomp):
        comp_off[c + 1] += comp_off[c]
    comp_vars = np.empty(comp_off[ncomp], dtype=np.int64)
    fill = comp_off[:-1].copy()
    for i in range(n_latent):
        if lmask[i]:
            comp_vars[fill[comp[i]]] = i
            fill[comp[i]] += 1
    info[2] = ncomp
    # Step 4: active factors by masked latent (CSR).
    fac_off = np.zeros(n_latent + 1, dtype=np.int64)
    for f in range(P):
        if active[f]:
            for s in range(k):
                if lmask[scopes[f, s]]:
                    fac_off[scopes[f, s] + 1] += 1
    for i in range(n_latent):
        fac_off[i + 1] += fac_off[i]
    fac_list = np.empty(fac_off[n_latent], dtype=np.int64)
    ffill = fac_off[:-1].copy()
    for f in range(P):
        if active[f]:
            for s in range(k):
                i = scopes[f, s]
                if lmask[i]:
                    fac_list[ffill[i]] = f
                    ffill[i] += 1
    # Step 5: (masked observation, first slot of each component in its scope) pairs.
    pair_off = np.zeros(ncomp + 1, dtype=np.int64)
    is_first = np.zeros((P, k), dtype=np.bool_)
    for f in range(P):
        if not omask[f]:
            continue
        for s in range(k):
            i = scopes[f, s]
            if not lmask[i]:
                continue
            dup = False
            for s2 in range(s):
                i2 = scopes[f, s2]
                if lmask[i2] and comp[i2] == comp[i]:
                    dup = True
            if not dup:
                is_first[f, s] = True
                pair_off[comp[i] + 1] += 1
    for c in range(ncomp):
        pair_off[c + 1] += pair_off[c]
    pair_f = np.empty(pair_off[ncomp], dtype=np.int64)
    pair_s = np.empty(pair_off[ncomp], dtype=np.int64)
    pfill = pair_off[:-1].copy()
    for f in range(P):
        for s in range(k):
            if is_first[f, s]:
                c = comp[scopes[f, s]]
                pair_f[pfill[c]] = f
                pair_s[pfill[c]] = s
                pfill[c] += 1
                for d in range(mk):
                    acc[f, s, d] = 0.0
    powers = np.empty(k, dtype=np.int64)
    pw = 1
    for s in range(k - 1, -1, -1):
        powers[s] = pw
        pw *= m
    # Step 6: enumerate each component in Gray-code order.
    stamp = -np.ones(P, dtype=np.int64)
    a = np.zeros(n_latent + 1, dtype=np.int64)
    o = np.ones(n_latent + 1, dtype=np.int64)
    fo = np.zeros(n_latent + 2, dtype=np.int64)
    for c in range(ncomp):
        c0, c1 = comp_off[c], comp_off[c + 1]
        sz = c1 - c0
        if sz > info[1]:
            info[1] = sz
        states = 1
        for _ in range(sz):
            states *= m
            if states > max_states:
                info[0] = STATUS_TOO_LARGE
                info[1] = sz
                return
        zc = 0
        ls = 0.0
        for q in range(c0, c1):
            i = comp_vars[q]
            ls += logprior[0]
            marg[i, :] = 0.0
            for e in range(fac_off[i], fac_off[i + 1]):
                f = fac_list[e]
                if stamp[f] != c:
                    stamp[f] = c
                    code = _code(x, scopes, f, k, m)
                    if zerotab[otab[f], code, ovals[f]]:
                        zc += 1
                    else:
                        ls += logtab[otab[f], code, ovals[f]]
        for j in range(sz):
            a[j] = 0
            o[j] = 1
            fo[j] = j
        fo[sz] = sz
        z = 0.0
        ref = 0.0
        have_ref = False
        while True:
            info[3] += 1
            if zc == 0:
                if not have_ref:
                    ref = ls
                    have_ref = True
                elif ls > ref + _RESCALE_GAP:
                    scale = np.exp(ref - ls)
                    z *= scale
                    for q in range(c0, c1):
                        for col in range(m):
                            marg[comp_vars[q], col] *= scale
                    for pp in range(pair_off[c], pair_off[c + 1]):
                        for d in range(mk):
                            acc[pair_f[pp], pair_s[pp], d] *= scale
                    ref = ls
                w = np.exp(ls - ref)
                z += w
                for q in range(c0, c1):
                    i = comp_vars[q]
                    marg[i, x[i]] += w
                for pp in range(pair_off[c], pair_off[c + 1]):
                    f = pair_f[pp]
                    d = 0
                    for s in range(k):
                        i = scopes[f, s]
                        if lmask[i] and comp[i] == c:
                            d += x[i] * powers[s]
                    acc[f, pair_s[pp], d] += w
            # Algorithm H: pick the digit to move, or stop.
            j = fo[0]
            fo[0] = 0
            if j == sz:
                break
            i = comp_vars[c0 + j]
            old = a[j]
            new = old + o[j]
            for e in range(fac_off[i], fac_off[i + 1]):
                f = fac_list[e]
                code = _code(x, scopes, f, k, m)
                if zerotab[otab[f], code, ovals[f]]:
                    zc -= 1
                else:
                    ls -= logtab[otab[f], code, ovals[f]]
            x[i] = new
            for e in range(fac_off[i], fac_off[i + 1]):
                f = fac_list[e]
                code = _code(x, scopes, f, k, m)
                if zerotab[otab[f], code, ovals[f]]:
                    zc += 1
                else:
                    ls += logtab[otab[f], code, ovals[f]]
            ls += logprior[new] - logprior[old]
            a[j] = new
            if new == 0 or new == m - 1:
                o[j] = -o[j]
                fo[j] = fo[j + 1]
                fo[j + 1] = j + 1
        if z <= 0.0:
            info[0] = STATUS_CONTRADICTION
            return
        for q in range(c0, c1):
            for col in range(m):
                marg[comp_vars[q], col] /= z
        for pp in range(pair_off[c], pair_off[c + 1]):
            for d in range(mk):
                acc[pair_f[pp], pair_s[pp], d] /= z
    # Step 7: predictive laws of masked observations.
    joint = np.empty(mk)
    nxt = np.empty(mk)
    for f in range(P):
        if not omask[f]:
            continue
        base = 0
        for s in range(k):
            i = scopes[f, s]
            if not lmask[i]:
                base += x[i] * powers[s]
        joint[:] = 0.0
        joint[base] = 1.0
        for s in range(k):
            if not is_first[f, s]:
                continue
            nxt[:] = 0.0
            for c1 in range(mk):
                if joint[c1] == 0.0:
                    continue
                for d in range(mk):
                    if acc[f, s, d] > 0.0:
                        nxt[c1 + d] += joint[c1] * acc[f, s, d]
            joint[:] = nxt
        t = otab[f]
        for v in range(V):
            tot = 0.0
            for code in range(mk):
                if joint[code] > 0.0:
                    tot += joint[code] * tables[t, code, v]
            pred[f, v] = tot


@njit(cache=True)
def slab_posterior(x, lmask, ovals, omask, z, thr, logprior, max_states, marg, pred, info):
    """Exact posterior of one sequence for slab observations (binary latents).

    Parameters
    ----------
    x : int64 array, shape (N,)
        Latent values; masked entries are scratch.
    lmask : bool array, shape (N,)
    ovals : int64 array, shape (P,)
    omask : bool array, shape (P,)
    z : float64 array, shape (P, N)
    thr : float
        beta sqrt(N).
    logprior : float64 array, shape (2,)
    max_states : int
    marg : float64 array, shape (N, 2)
        Output rows for masked latents.
    pred : float64 array, shape (P, 2)
        Output rows for masked observations.
    info : int64 array, shape (4,)
        Status, number of masked latents, 1, assignments visited.

    Notes
    -----
    Every slab observation couples all latents, so the masked latents are
    enumerated jointly in binary Gray-code order; the sums <z_j, 2x - 1> are
    updated in O(P) per step and recomputed from scratch every 1024 steps.
    Cost O(2^u P) for u masked latents.
    """
    P, N = z.shape
    info[0] = STATUS_OK
    info[2] = 1
    info[3] = 0
    u = 0
    for i in range(N):
        if lmask[i]:
            x[i] = 0
            u += 1
    info[1] = u
    states = 1
    for _ in range(u):
        states *= 2
        if states > max_states:
            info[0] = STATUS_TOO_LARGE
            return
    vars_ = np.empty(u, dtype=np.int64)
    q = 0
    for i in range(N):
        if lmask[i]:
            vars_[q] = i
            q += 1
            marg[i, 0] = 0.0
            marg[i, 1] = 0.0
    for f in range(P):
        if omask[f]:
            pred[f, 0] = 0.0
            pred[f, 1] = 0.0
    s = np.zeros(P)
    ls = 0.0
    for i in range(N):
        ls += logprior[x[i]]
    a = np.zeros(u + 1, dtype=np.int64)
    fo = np.arange(u + 2)
    tot = 0.0
    ref = 0.0
    have_ref = False
    step = 0
    while True:
        if step % _SLAB_RESYNC == 0:
            for f in range(P):
                acc = 0.0
                for i in range(N):
                    acc += z[f, i] * (2.0 * x[i] - 1.0)
                s[f] = acc
        step += 1
        ok = True
        for f in range(P):
            if not omask[f]:
                inside = 1 if abs(s[f]) <= thr else 0
                if inside != ovals[f]:
                    ok = False
                    break
        if ok:
            if not have_ref:
                ref = ls
                have_ref = True
            elif ls > ref + _RESCALE_GAP:
                scale = np.exp(ref - ls)
                tot *= scale
                marg *= scale
                pred *= scale
                ref = ls
            w = np.exp(ls - ref)
            tot += w
            for qq in range(u):
                i = vars_[qq]
                marg[i, x[i]] += w
            for f in range(P):
                if omask[f]:
                    pred[f, 1 if abs(s[f]) <= thr else 0] += w
        j = fo[0]
        fo[0] = 0
        if j == u:
            break
        i = vars_[j]
        old = a[j]
        new = 1 - old
        delta = 2.0 * (new - old)
        for f in range(P):
            s[f] += z[f, i] * delta
        ls += logprior[new] - logprior[old]
        x[i] = new
        a[j] = new
        fo[j] = fo[j + 1]
        fo[j + 1] = j + 1
    info[3] = step
    if tot <= 0.0:
        info[0] = STATUS_CONTRADICTION
        return
    for qq in range(u):
        i = vars_[qq]
        marg[i, 0] /= tot
        marg[i, 1] /= tot
    for f in range(P):
        if omask[f]:
            pred[f, 0] /= tot
            pred[f, 1] /= tot
