"""Numba kernels for planted population dynamics and Bethe free entropies (private).

Population layout: ``pop[c, j, :]`` is the j-th sampled variable-to-clause
(cavity) message of a variable whose planted colour is ``c``; every row is a
probability vector of length m. Keeping one sub-population per planted colour
is the Nishimori (planted) construction: a clause drawn around a variable of
colour ``c`` in slot ``s`` has its other colours uniform among the satisfying
tuples with ``y_s = c``, and each neighbour's message is taken from the
sub-population of that neighbour's planted colour.

The serial kernels take a ``numpy.random.Generator`` (Numba draws from its bit
generator), so a seed fixes every result; they are deterministic given the seed
and are compiled with ``cache=True``.
"""

import numpy as np
from numba import njit

# Must match lohard.predicates.KERNEL_NAE: the not-all-equal fast path
# (k = 2 is not-equal, i.e. colouring).
NAE = 1


@njit(cache=True)
def randint(rng, n):
    """Uniform integer in [0, n) from one double: ``floor(n U)``.

    Numba's ``Generator.integers`` costs ~45 ns a draw against ~5 ns for
    ``random()``, and a clause update draws k + 1 indices, so this halves to
    thirds the cost of a population sweep. ``U`` has 53 random bits, so for
    the n < 2^31 used here the probabilities differ from 1/n by less than
    n 2^-53 relative; the guard covers a product that rounds up to n.
    """
    j = int(rng.random() * n)
    return j if j < n else n - 1


@njit(cache=True)
def clause_hat(code, sat, k, m, s, msg, out, scratch):
    r"""Unnormalised clause-to-variable message towards slot ``s``.

    .. math:: \hat\nu(x) = \sum_{y \in g^{-1}(1),\, y_s = x} \prod_{t \ne s} \mu_t(y_t)

    ``msg`` (k, m) holds the incoming normalised messages (row ``s`` unused);
    ``out`` (m,) is written; ``scratch`` (m,) is workspace. The NAE path uses
    :math:`\hat\nu(x) = 1 - p(x)` with :math:`p(x) = \prod_{t \ne s} \mu_t(x)`.
    Where :math:`p(x) < 1/2` the subtraction loses nothing (the result is
    >= 1/2, so its relative error is below 2 ulp). Since
    :math:`\sum_x p(x) \le 1`, at most one colour has :math:`p(x) \ge 1/2`;
    for it the sum
    :math:`\sum_{t \ne s} (1 - \mu_t(x)) \prod_{t' < t,\, t' \ne s} \mu_{t'}(x)`
    is used, with :math:`1 - \mu_t(x)` summed over the other colours, so that
    nearly one-hot messages lose no precision to cancellation. Cost
    O(k m) either way.
    """
    if code == NAE:
        for x in range(m):
            p = 1.0
            for t in range(k):
                if t != s:
                    p *= msg[t, x]
            if p < 0.5:
                out[x] = 1.0 - p
                continue
            acc = 0.0
            run = 1.0  # product of mu_t'(x) over the slots done so far
            for t in range(k):
                if t == s:
                    continue
                rest = 0.0
                for y in range(m):
                    if y != x:
                        rest += msg[t, y]
                acc += rest * run
                run *= msg[t, x]
            out[x] = acc
        return
    for x in range(m):
        out[x] = 0.0
    for r in range(sat.shape[0]):
        p = 1.0
        for t in range(k):
            if t != s:
                p *= msg[t, sat[r, t]]
        out[sat[r, s]] += p


@njit(cache=True)
def clause_z(code, sat, k, m, msg):
    r"""Clause partition function :math:`Z_a = \sum_{y \in g^{-1}(1)} \prod_t \mu_t(y_t)`."""
    if code == NAE:
        eq = 0.0
        for x in range(m):
            p = 1.0
            for t in range(k):
                p *= msg[t, x]
            eq += p
        z = 1.0 - eq
        return z if z > 0.0 else 0.0
    z = 0.0
    for r in range(sat.shape[0]):
        p = 1.0
        for t in range(k):
            p *= msg[t, sat[r, t]]
        z += p
    return z


@njit(cache=True)
def _planted_clause(rng, pop, c, code, sat, sc_off, sc_idx, k, m, msg, hat, scratch):
    """Draw one planted clause around a variable of colour ``c``; write its message to ``hat``.

    The slot is uniform, the other colours uniform among the satisfying tuples
    with that slot equal to ``c``, and each neighbour's message is drawn from
    the sub-population of its planted colour. Returns the sum of ``hat``.
    """
    npop = pop.shape[1]
    s = randint(rng, k)
    lo = sc_off[s * m + c]
    hi = sc_off[s * m + c + 1]
    r = sc_idx[lo + randint(rng, hi - lo)]
    for t in range(k):
        if t != s:
            j = randint(rng, npop)
            yt = sat[r, t]
            for x in range(m):
                msg[t, x] = pop[yt, j, x]
    clause_hat(code, sat, k, m, s, msg, hat, scratch)
    tot = 0.0
    for x in range(m):
        tot += hat[x]
    return tot


@njit(cache=True)
def _normalise_row(v, m):
    """Normalise ``v`` (m,) in place; return its former sum (0: set uniform)."""
    tot = 0.0
    for x in range(m):
        tot += v[x]
    if tot > 0.0:
        inv = 1.0 / tot
        for x in range(m):
            v[x] *= inv
    else:
        for x in range(m):
            v[x] = 1.0 / m
    return tot


@njit(cache=True)
def pd_sweeps(rng, pop, n_sweeps, mean_deg, code, sat, sc_off, sc_idx, k, m, trace):
    """Random-sequential population dynamics, ``n_sweeps`` x (m * M) single-message updates.

    Each update draws a colour c uniformly, a Poisson(mean_deg) number of other
    clauses, builds the cavity message and overwrites a uniformly chosen member
    of ``pop[c]``. After each sweep ``trace[t]`` receives the cavity order
    parameter ``(m <mu(c_true)> - 1) / (m - 1)``. Returns the number of
    all-zero (contradictory) products, which is 0 for a planted population
    unless products underflow.
    """
    npop = pop.shape[1]
    msg = np.empty((k, m))
    hat = np.empty(m)
    scratch = np.empty(m)
    prod = np.empty(m)
    bad = 0
    for t in range(n_sweeps):
        for _ in range(m * npop):
            c = randint(rng, m)
            deg = rng.poisson(mean_deg)
            for x in range(m):
                prod[x] = 1.0 / m  # a variable with no other clause sends the uniform message
            for _a in range(deg):
                _planted_clause(rng, pop, c, code, sat, sc_off, sc_idx, k, m, msg, hat, scratch)
                for x in range(m):
                    prod[x] *= hat[x]
                if _normalise_row(prod, m) == 0.0:
                    bad += 1
            j = randint(rng, npop)
            for x in range(m):
                pop[c, j, x] = prod[x]
        acc = 0.0
        for c in range(m):
            for j in range(npop):
                acc += pop[c, j, c]
        trace[t] = (acc / npop - 1.0) / (m - 1.0)
    return bad


@njit(cache=True)
def pd_measure(rng, pop, n_samples, mean_deg, code, sat, sc_off, sc_idx, k, m, log_gamma,
               out):
    r"""Monte Carlo estimates at a fixed population (the population is not changed).

    For a planted variable i of degree l with clause messages
    :math:`\hat\nu_a` (a = 1..l) the per-variable free-entropy shift is

    .. math:: \Delta_i = \log \frac1m \sum_x \prod_a \hat\nu_a(x) - l \log\gamma
              - \frac{k-1}{k} \sum_a \left(\log Z_a - \log\gamma\right),

    with :math:`Z_a = \sum_x \hat\nu_a(x) \mu_{i\to a}(x)` and
    :math:`\mu_{i \to a}` the leave-one-out product; its mean is the Bethe
    free entropy minus the annealed one, and it vanishes identically on
    uniform messages. Each clause is counted with its own variable, which
    cancels most of the degree fluctuations. Writes the sample means of
    (Delta, l, Delta l, l^2, b(sigma), argmax-overlap indicator) to
    ``out[0:6]`` and the number of all-zero products to ``out[6]``.
    """
    msg = np.empty((k, m))
    scratch = np.empty(m)
    cap = 64
    hats = np.empty((cap, m))
    zs = np.empty(cap)
    suf = np.empty((cap + 1, m))
    pre = np.empty(m)
    cav = np.empty(m)
    s_d = 0.0
    s_l = 0.0
    s_dl = 0.0
    s_ll = 0.0
    s_b = 0.0
    s_o = 0.0
    bad = 0
    w_clause = (k - 1.0) / k
    for _ in range(n_samples):
        c = randint(rng, m)
        deg = rng.poisson(mean_deg)
        if deg > cap:
            cap = 2 * deg
            hats = np.empty((cap, m))
            zs = np.empty(cap)
            suf = np.empty((cap + 1, m))
        log_zi = 0.0
        for a in range(deg):
            z = _planted_clause(rng, pop, c, code, sat, sc_off, sc_idx, k, m, msg, hats[a],
                                scratch)
            if z <= 0.0:
                bad += 1
            zs[a] = z
            _normalise_row(hats[a], m)
            log_zi += np.log(z) if z > 0.0 else 0.0
        # Suffix products, normalised, started from the uniform 1/m: their log
        # normalisers add up to log (1/m) sum_x prod_a hat'_a(x), and suf[0] is the
        # full marginal; suf[a + 1] feeds the leave-one-out cavity messages.
        for x in range(m):
            suf[deg, x] = 1.0 / m
        for a in range(deg - 1, -1, -1):
            for x in range(m):
                suf[a, x] = suf[a + 1, x] * hats[a, x]
            tot = _normalise_row(suf[a], m)
            if tot > 0.0:
                log_zi += np.log(tot)
            else:
                bad += 1
        # leave-one-out clause terms
        sum_za = 0.0
        for x in range(m):
            pre[x] = 1.0 / m
        for a in range(deg):
            for x in range(m):
                cav[x] = pre[x] * suf[a + 1, x]
            _normalise_row(cav, m)
            za = 0.0
            for x in range(m):
                za += hats[a, x] * cav[x]
            za *= zs[a]
            if za > 0.0:
                sum_za += np.log(za) - log_gamma
            else:
                bad += 1
            for x in range(m):
                pre[x] *= hats[a, x]
            _normalise_row(pre, m)
        delta = log_zi - deg * log_gamma - w_clause * sum_za
        s_d += delta
        s_l += deg
        s_dl += delta * deg
        s_ll += deg * deg
        # full marginal = suf[0]
        s_b += suf[0, c]
        top = suf[0, 0]
        for x in range(1, m):
            if suf[0, x] > top:
                top = suf[0, x]
        if suf[0, c] == top:
            ties = 0
            for x in range(m):
                if suf[0, x] == top:
                    ties += 1
            s_o += 1.0 / ties
    out[0] = s_d / n_samples
    out[1] = s_l / n_samples
    out[2] = s_dl / n_samples
    out[3] = s_ll / n_samples
    out[4] = s_b / n_samples
    out[5] = s_o / n_samples
    out[6] = bad


@njit(cache=True)
def bethe_instance(clauses, mu, code, sat, k, m, n, log_field, hat, logz_a, logz_i):
    r"""Bethe free entropy terms of an instance evaluated at variable-to-clause messages.

    .. math:: \Phi(\mu) = \sum_i \log \sum_x f_i(x) \prod_{a \ni i} \hat\nu_{a \to i}(x)
              - (k - 1) \sum_a \log Z_a(\mu)

    which equals the usual variable + clause - edge form at a BP fixed point and
    is invariant under rescaling any message. ``mu`` (E, m) on edges e = a*k+s;
    ``log_field`` (n, m); ``hat`` (E, m), ``logz_a`` (P,), ``logz_i`` (n,) are
    outputs (-inf marks a contradiction). Returns the number of contradictions.
    """
    P = clauses.shape[0]
    msg = np.empty((k, m))
    out = np.empty(m)
    scratch = np.empty(m)
    bad = 0
    for a in range(P):
        for t in range(k):
            e = a * k + t
            tot = 0.0
            for x in range(m):
                tot += mu[e, x]
            for x in range(m):
                msg[t, x] = mu[e, x] / tot if tot > 0.0 else 1.0 / m
        for s in range(k):
            clause_hat(code, sat, k, m, s, msg, out, scratch)
            for x in range(m):
                hat[a * k + s, x] = out[x]
        z = clause_z(code, sat, k, m, msg)
        if z > 0.0:
            logz_a[a] = np.log(z)
        else:
            logz_a[a] = -np.inf
            bad += 1
    # variable terms, in log space with running normalisation
    lp = np.empty((n, m))
    for i in range(n):
        for x in range(m):
            lp[i, x] = 0.0
    for a in range(P):
        for s in range(k):
            i = clauses[a, s]
            e = a * k + s
            for x in range(m):
                h = hat[e, x]
                lp[i, x] += np.log(h) if h > 0.0 else -np.inf
    for i in range(n):
        top = -np.inf
        for x in range(m):
            v = lp[i, x] + log_field[i, x]
            lp[i, x] = v
            if v > top:
                top = v
        if top == -np.inf:
            logz_i[i] = -np.inf
            bad += 1
            continue
        acc = 0.0
        for x in range(m):
            acc += np.exp(lp[i, x] - top)
        logz_i[i] = top + np.log(acc)
    return bad
