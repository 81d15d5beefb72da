"""Executable checks of the paper's MDM loss identities (App. E.1, Prop. 2.1) and L&O facts."""

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import quad

from lohard.lo import COSINE, LINEAR, exact_posterior, nae_sat, noisy_parity

# Sums of at most a few thousand terms of size O(1): rounding stays below 1e-10.
SUM_TOL = 1e-10


def _bits(subset):
    return sum(1 << i for i in subset)


def _mask_sum(L, logp):
    """Eq. (1): - sum_{M, i in M} 1/|M| 1/C(L,|M|) log p(x_i | x[M])."""
    tot = 0.0
    for M in range(1, 1 << L):
        size = bin(M).count("1")
        for i in range(L):
            if M >> i & 1:
                tot -= logp[M, i] / (size * math.comb(L, size))
    return tot


@pytest.mark.parametrize("L", [1, 2, 3, 4, 5, 6, 7])
def test_permutation_counting_identity(L):
    # App. E.1: #{pi : pi(j) = i and {pi(j..L-1)} = M} = (L - |M|)! (|M| - 1)!
    counts = np.zeros((1 << L, L), dtype=np.int64)
    for pi in itertools.permutations(range(L)):
        for j in range(L):
            counts[_bits(pi[j:]), pi[j]] += 1
    for M in range(1, 1 << L):
        size = bin(M).count("1")
        want = math.factorial(L - size) * math.factorial(size - 1)
        for i in range(L):
            assert counts[M, i] == (want if M >> i & 1 else 0)


@pytest.mark.parametrize("L", [3, 5, 7])
def test_any_order_ar_loss_equals_mask_sum(L):
    rng = np.random.default_rng(L)
    logp = np.log(rng.uniform(0.05, 1.0, size=(1 << L, L)))  # a random table of p_theta values
    perms = list(itertools.permutations(range(L)))
    ao = np.mean([-sum(logp[_bits(pi[j:]), pi[j]] for j in range(L)) for pi in perms])
    assert math.isclose(ao, _mask_sum(L, logp), rel_tol=SUM_TOL)


@pytest.mark.parametrize("schedule", [LINEAR, COSINE], ids=["linear", "cosine"])
def test_continuous_time_loss_equals_mask_sum(schedule):
    # Prop. 2.1: int_0^1 alpha'/(1-alpha) E_{x_t} sum_{i masked} log p dt = Eq. (1).
    L = 5
    rng = np.random.default_rng(11)
    logp = np.log(rng.uniform(0.05, 1.0, size=(1 << L, L)))
    per_mask = np.zeros(1 << L)
    sizes = np.array([bin(M).count("1") for M in range(1 << L)])
    for M in range(1, 1 << L):
        per_mask[M] = sum(logp[M, i] for i in range(L) if M >> i & 1)

    def integrand(t):
        a = float(schedule.alpha(t))
        expect = np.sum((1 - a) ** sizes * a ** (L - sizes) * per_mask)
        return float(schedule.loss_weight(t)) * expect

    val, err = quad(integrand, 0.0, 1.0, epsabs=1e-12, epsrel=1e-12, limit=200)
    # quad's own error estimate is < 1e-10 here; 1e-8 leaves room.
    assert err < 1e-9
    assert math.isclose(val, _mask_sum(L, logp), rel_tol=1e-8)


def test_arm_loss_is_identity_permutation_term():
    # For a toy joint p over {0,1}^L, the ARM loss sum_j -log p(x_j | x_<j) is the AO-AR
    # term of pi = identity (M = {j..L-1}, i = j); with the true conditionals it equals the
    # entropy, and so does every other permutation's term (chain rule), hence their mean too.
    L = 4
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(1 << L)).reshape((2,) * L)
    xs = list(itertools.product((0, 1), repeat=L))

    def cond(x, i, known):
        # p(x_i | x_known) with the other positions summed out
        axes = tuple(a for a in range(L) if a != i and a not in known)
        marg = p.sum(axis=axes, keepdims=True)
        idx_num = tuple(x[a] if (a == i or a in known) else 0 for a in range(L))
        num = marg[idx_num]
        den = marg.sum(axis=i, keepdims=True)[tuple(x[a] if a in known else 0
                                                   for a in range(L))]
        return num / den

    def term(pi):
        return sum(p[x] * -sum(np.log(cond(x, pi[j], set(pi[:j]))) for j in range(L))
                   for x in xs)

    arm = sum(p[x] * -sum(np.log(cond(x, j, set(range(j)))) for j in range(L)) for x in xs)
    entropy = -np.sum(p * np.log(p))
    assert math.isclose(arm, term(tuple(range(L))), rel_tol=SUM_TOL)
    assert math.isclose(arm, entropy, rel_tol=SUM_TOL)
    assert math.isclose(term((2, 0, 3, 1)), entropy, rel_tol=SUM_TOL)


def test_identity_term_with_lo_bayes_posteriors_is_the_entropy():
    # The same identity on an L&O distribution, with lohard's exact posteriors as the
    # conditionals: sum_j -log p(x_j | x_<j), averaged over all sequences, is H(p_data).
    d = noisy_parity(3, 2, 2, 0.2, rng=0)
    L = d.length
    xs = np.array(list(itertools.product((0, 1), repeat=L)))
    logp = d.log_prob(xs)
    w = np.exp(logp)
    entropy = -np.sum(w[w > 0] * logp[w > 0])
    arm = np.zeros(len(xs))
    for j in range(L):
        mask = np.zeros((len(xs), L), dtype=bool)
        mask[:, j:] = True
        arm -= np.log(np.take_along_axis(exact_posterior(d, xs, mask).probs[:, j],
                                         xs[:, j:j + 1], axis=1)[:, 0])
    assert math.isclose(np.sum(w * arm), entropy, rel_tol=1e-10)


def test_nae_naive_guess_is_right_three_quarters_of_the_time():
    # Sec. 3.3: a uniform triple of bits is not-all-equal with probability 3/4.
    d = nae_sat(20, 280, rng=0)
    o = d.observations(d.sample(4000, rng=1))
    # 4000 * 280 observations, correlated within a sequence; per-observation column
    # means are i.i.d. averages with sd sqrt(3/16/4000) = 0.0068; 5 sd bound.
    assert np.all(np.abs(o.mean(axis=0) - 0.75) <= 5 * np.sqrt(3 / 16 / 4000))
