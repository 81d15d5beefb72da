"""Exact posteriors against brute-force enumeration; BP against exact; bad input."""

import numpy as np
import pytest

from lohard.bp import BPConvergenceWarning
from lohard.lo import (
    DEFAULT_MAX_STATES,
    LODistribution,
    apply_mask,
    bp_posterior,
    exact_posterior,
    fixed_size_mask,
    largest_masked_component,
    latent_mask,
    nae_sat,
    noisy_parity,
    posterior,
    protocol_mask,
    random_slab,
    sparse_predicate,
)
from lohard.predicates import Predicate

# Exact enumeration and brute force sum the same terms in different orders:
# agreement to 1e-12 is rounding only.
EXACT_TOL = 1e-12


def _families(seed):
    return [
        nae_sat(10, 30, rng=seed),
        sparse_predicate(6, Predicate.nae(3, 3), 20, prior=[0.5, 0.3, 0.2],
                         permutation="random", rng=seed),
        noisy_parity(9, 25, 3, 0.1, rng=seed),
        random_slab(9, 15, 0.5, rng=seed),
        nae_sat(7, 12, trailing_token=True, rng=seed),
    ]


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_matches_brute_force(seed, brute):
    for dist in _families(seed):
        n = 12
        tok = dist.sample(n, rng=seed + 10)
        sizes = np.linspace(0, dist.length - 1, n).astype(int)
        mk = fixed_size_mask(n, dist.length, sizes, rng=seed + 20)
        mk[:, dist.trailing_positions] = False
        post = exact_posterior(dist, apply_mask(tok, mk, dist.mask_id))
        assert np.allclose(post.probs.sum(-1), 1.0, atol=EXACT_TOL)
        for b in range(n):
            for pos, law in brute(dist, tok[b], mk[b]).items():
                assert np.allclose(post.probs[b, pos, : law.size], law, atol=EXACT_TOL), dist
            um = ~mk[b]
            assert np.all(post.probs[b, um, tok[b, um]] == 1.0)
        assert np.all(np.isfinite(post.log_prob(tok)))


def test_components_and_all_masked(brute):
    d = nae_sat(12, 40, rng=3)
    tok = d.sample(1, rng=4)[0]
    mk = np.ones(d.length, dtype=bool)  # nothing observed: the posterior is the prior
    post = exact_posterior(d, tok, mk)
    assert np.allclose(post.probs[d.latent_positions], 0.5)
    assert np.allclose(post.probs[d.observed_positions, 1], 0.75)
    assert post.iterations[0] == 12 * 2  # 12 singleton components, 2 states each
    mk = protocol_mask(d, 1, 10, rng=5)[0]
    post = exact_posterior(d, tok, mk)
    for pos, law in brute(d, tok, mk).items():
        assert np.allclose(post.probs[pos, :2], law, atol=EXACT_TOL)


def test_nae_flip_symmetry_with_all_latents_masked():
    d = nae_sat(10, 30, rng=0)
    tok = d.sample(5, rng=1)
    mk = np.zeros_like(tok, dtype=bool)
    mk[:, d.latent_positions] = True
    post = exact_posterior(d, tok, mk)
    # NAE is invariant under x -> 1 - x: with no latent observed every marginal is 1/2.
    assert np.allclose(post.probs[:, d.latent_positions], 0.5, atol=1e-12)


def test_posterior_is_bayes_consistent_on_average():
    # E over data of p(x_i = 1 | x[M]) equals P(x_i = 1): a check that needs no brute force.
    d = noisy_parity(10, 20, 2, 0.15, rng=6)
    n = 3000
    tok = d.sample(n, rng=7)
    mk = protocol_mask(d, n, 4, rng=8)
    post = exact_posterior(d, tok, mk)
    lp = d.latent_positions
    got = post.probs[:, lp, 1][mk[:, lp]].mean()
    # mean of n * 4 posteriors in [0, 1]; sd of the mean <= 0.5 / sqrt(n), bound 5 sd
    assert abs(got - 0.5) <= 5 * 0.5 / np.sqrt(n)


def test_bp_exact_on_a_tree():
    g = Predicate.nae(3, 2).table.reshape(-1).astype(float)
    d = LODistribution(n_latent=7, m=2, prior=[0.5, 0.5], kind="table", n_obs_values=2,
                       perm=np.arange(10), scopes=[[0, 1, 2], [2, 3, 4], [4, 5, 6]],
                       obs_table=[0, 0, 0], tables=np.stack([1 - g, g], 1)[None])
    tok = d.sample(30, rng=0)
    mk = np.zeros_like(tok, dtype=bool)
    mk[:, 1:7] = True  # latent 0 observed, the chain of factors is a tree
    ex = exact_posterior(d, tok, mk)
    bp = bp_posterior(d, tok, mk)
    assert bp.converged.all()
    # BP is exact on trees; the tolerance covers BP's stopping tol of 1e-9.
    assert np.allclose(bp.probs[:, :7], ex.probs[:, :7], atol=1e-7)


def test_bp_close_to_exact_when_few_latents_masked():
    d = nae_sat(20, 280, rng=1)
    tok = d.sample(20, rng=2)
    mk = protocol_mask(d, 20, 3, rng=3)
    ex = exact_posterior(d, tok, mk)
    bp = bp_posterior(d, tok, mk, rng=0)
    assert bp.converged.all()
    assert np.allclose(bp.probs.sum(-1), 1.0)
    # 3 masked latents among 238 observed triples: the posterior is nearly a point
    # mass and BP finds it; measured max error 0 on this seed, bound 1e-6.
    assert np.abs(bp.probs - ex.probs).max() <= 1e-6


def test_bp_matches_exact_with_one_masked_latent_per_factor():
    d = noisy_parity(12, 30, 3, 0.2, rng=4)
    tok = d.sample(10, rng=5)
    mk = np.zeros_like(tok, dtype=bool)
    mk[:, d.latent_positions[0]] = True  # one masked latent: every factor is a unary one
    mk[:, d.observed_positions[:5]] = True
    ex = exact_posterior(d, tok, mk)
    bp = bp_posterior(d, tok, mk)
    # With one masked latent both are exact; masked observations are then exact too.
    assert np.allclose(bp.probs, ex.probs, atol=1e-9)


def test_single_sequence_and_auto_method():
    d = nae_sat(8, 12, rng=0)
    tok = d.sample(1, rng=1)[0]
    mk = fixed_size_mask(1, d.length, 6, rng=2)[0]
    post = posterior(d, tok, mk)
    assert post.method == "exact" and post.probs.shape == (d.length, 2)
    assert posterior(d, tok, mk, method="bp").method == "bp"


def test_errors():
    d = nae_sat(8, 12, rng=0)
    tok = d.sample(2, rng=1)
    with pytest.raises(ValueError, match="inside the sequence"):
        exact_posterior(d, tok, np.zeros((2, d.length + 3), dtype=bool))
    bad = tok.copy()
    bad[0, d.latent_positions] = 0  # all-equal latents: every observed NAE must be 0
    bad[0, d.observed_positions] = 1
    with pytest.raises(ValueError, match="probability zero"):
        exact_posterior(d, bad, np.zeros_like(bad, dtype=bool))
    mk = np.zeros_like(bad, dtype=bool)
    mk[:, d.latent_positions[:3]] = True
    with pytest.raises(ValueError, match="probability zero"):
        exact_posterior(d, bad, mk)
    mk = np.zeros_like(tok, dtype=bool)
    mk[:, d.latent_positions] = True
    with pytest.raises(ValueError, match="max_states"):
        exact_posterior(d, tok, mk, max_states=16)
    with pytest.raises(ValueError, match="slab"):
        bp_posterior(random_slab(4, 2, 0.5, rng=0), np.zeros((1, 6), dtype=int))
    with pytest.raises(ValueError, match="unknown posterior method"):
        posterior(d, tok, mk, method="mcmc")


def test_largest_component_is_the_one_exact_enumeration_visits():
    # exact_posterior succeeds with max_states = m^c and refuses m^c - 1 exactly
    # when c is the size the kernel enumerates.
    d = sparse_predicate(20, Predicate.nae(3, 3), 60, rng=0)
    for seed in range(4):
        tok = d.sample(3, rng=seed)
        mk = protocol_mask(d, 3, 12, rng=seed)
        c = int(largest_masked_component(d, tok, mk).max())
        assert 1 < c <= 12
        exact_posterior(d, tok, mk, max_states=3 ** c)
        with pytest.raises(ValueError, match="max_states"):
            exact_posterior(d, tok, mk, max_states=3 ** c - 1)
    slab = random_slab(6, 4, 0.5, rng=0)
    mk = latent_mask(slab, 2, 4, rng=0)
    assert largest_masked_component(slab, slab.sample(2, rng=0), mk).tolist() == [4, 4]


def test_auto_is_exact_only_when_the_largest_component_fits():
    # N = 20 <= 24 but m = 3 and 18 masked latents in one component: 3^18 > 2^24
    # assignments, so "auto" must not pick exact enumeration (it used to, and fail).
    d = sparse_predicate(20, Predicate.nae(3, 3), 60, rng=0)
    tok = d.sample(4, rng=1)
    mk = latent_mask(d, 4, 18, rng=2)
    assert 3 ** int(largest_masked_component(d, tok, mk).max()) > DEFAULT_MAX_STATES
    post = posterior(d, tok, mk, rng=0)
    assert post.method == "bp" and post.converged.all()
    # ... unless max_states allows it (checked on a small component: 3^6 states)
    small = latent_mask(d, 1, 6, rng=4)
    c = int(largest_masked_component(d, tok[:1], small).max())
    assert posterior(d, tok[:1], small, max_states=3 ** c, rng=0).method == "exact"
    assert posterior(d, tok[:1], small, max_states=3 ** c - 1, rng=0).method == "bp"
    # N = 40 > 24 with 3 masked latents: exact is cheap and exact, so auto takes it.
    big = nae_sat(40, 260, rng=0)
    tb = big.sample(5, rng=1)
    mb = protocol_mask(big, 5, 3, rng=2)
    assert posterior(big, tb, mb, rng=0).method == "exact"


def test_rng_is_accepted_and_ignored_by_exact():
    d = nae_sat(8, 12, rng=0)
    tok = d.sample(3, rng=1)
    mk = fixed_size_mask(3, d.length, 6, rng=2)
    ref = exact_posterior(d, tok, mk)
    for rng in (0, 5, np.random.default_rng(3), None):
        assert np.array_equal(exact_posterior(d, tok, mk, rng=rng).probs, ref.probs)
        post = posterior(d, tok, mk, rng=rng)
        assert post.method == "exact" and np.array_equal(post.probs, ref.probs)
    # auto drops BP-only options when it picks exact, and BP-only ones when it picks BP
    assert posterior(d, tok, mk, damping=0.3, max_iter=10).method == "exact"
    with pytest.raises(TypeError, match="unexpected keyword"):
        posterior(d, tok, mk, beta=2.0)
    with pytest.raises(ValueError, match="max_states must be an integer >= 1"):
        exact_posterior(d, tok, mk, max_states=float("nan"))
    with pytest.raises(ValueError, match="max_states must be an integer >= 1"):
        exact_posterior(d, tok, mk, max_states=0)


def test_bp_non_convergence_is_one_warning_with_the_count():
    d = nae_sat(20, 280, rng=1)
    tok = d.sample(6, rng=2)
    mk = protocol_mask(d, 6, 10, rng=3)
    with pytest.warns(BPConvergenceWarning, match=r"BP did not converge on \d+ of 6 sequences"
                      ) as rec:
        post = bp_posterior(d, tok, mk, max_iter=1, rng=0)
    assert len(rec) == 1
    bad = int((~post.converged).sum())
    assert bad > 0 and f"on {bad} of 6" in str(rec[0].message)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        bp_posterior(d, tok, mk, max_iter=2.7)
