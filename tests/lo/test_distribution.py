"""L&O samplers: structure, frequency tests with stated bounds, golden values, bad input, I/O."""

import itertools
import json
import math

import numpy as np
import pytest

from lohard.lo import (
    NAE_SAT_PRESETS,
    LODistribution,
    distinct_subsets,
    load_distribution,
    load_samples,
    nae_sat,
    nae_sat_preset,
    noisy_parity,
    random_slab,
    save_samples,
    sparse_predicate,
)
from lohard.predicates import Predicate

# Frequency tests: each column of n i.i.d. samples is a Bernoulli average, so its
# deviation from the true mean exceeds 5 standard deviations with probability
# < 6e-7; with at most a few hundred columns per test the false-alarm rate is < 1e-4.
SIGMAS = 5.0


def _within(freq, p, n):
    sd = np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
    return np.all(np.abs(freq - p) <= SIGMAS * sd + 1e-12)


# -- structure ------------------------------------------------------------------------------
def test_nae_sat_structure_and_positions():
    d = nae_sat(20, 280, rng=0)
    assert (d.n_latent, d.n_obs, d.length, d.k, d.m) == (20, 280, 300, 3, 2)
    assert d.vocab_size == 2 and d.mask_id == 2
    assert np.array_equal(d.latent_positions, np.arange(20))
    assert np.array_equal(d.observed_positions, np.arange(20, 300))
    srt = np.sort(d.scopes, axis=1)
    assert np.array_equal(srt, d.scopes)
    assert len({tuple(r) for r in d.scopes}) == 280  # distinct triples


def test_trailing_token_is_constant_two():
    d = nae_sat(10, 20, trailing_token=True, rng=1)
    t = d.sample(50, rng=2)
    assert t.shape == (50, 31) and np.all(t[:, -1] == 2)
    assert d.vocab_size == 3 and d.mask_id == 3


@pytest.mark.parametrize(("n", "p"), NAE_SAT_PRESETS)
def test_presets(n, p):
    d = nae_sat_preset(n, rng=0)
    assert (d.n_latent, d.n_obs, d.length) == (n, p, 300)


def test_random_permutation_places_tokens():
    d = nae_sat(6, 8, permutation="random", rng=3)
    t = d.sample(100, rng=4)
    x = t[:, d.latent_positions]
    expect = 1 - (x[:, d.scopes].min(axis=2) == x[:, d.scopes].max(axis=2))
    assert np.array_equal(t[:, d.observed_positions], expect)
    assert not np.array_equal(d.perm, np.arange(14))


def test_sparse_predicate_all_ordered_subsets():
    d = sparse_predicate(5, Predicate.nae(3, 3))
    assert d.n_obs == math.perm(5, 3)
    assert [tuple(r) for r in d.scopes] == list(itertools.permutations(range(5), 3))


def test_distinct_subsets_are_distinct_and_uniform_enough():
    s = distinct_subsets(6, 2, 30, ordered=True, rng=0)
    assert len({tuple(r) for r in s}) == 30 == math.perm(6, 2)
    # rejection path (more candidates than the enumeration limit)
    big = distinct_subsets(3000, 3, 500, ordered=False, rng=1)
    assert len({tuple(r) for r in big}) == 500 and np.all(np.diff(big, axis=1) > 0)


# -- frequency tests ----------------------------------------------------------------------------
def test_nae_sat_frequencies():
    d = nae_sat(12, 40, rng=5)
    n = 6000
    t = d.sample(n, rng=6)
    x, o = d.latents(t), d.observations(t)
    assert _within(x.mean(axis=0), 0.5, n)
    assert _within(o.mean(axis=0), 0.75, n)  # P(NAE) = 3/4 for uniform bits
    assert np.array_equal(o, 1 - (x[:, d.scopes].min(2) == x[:, d.scopes].max(2)))


def test_sparse_predicate_prior_and_determinism():
    prior = np.array([0.5, 0.3, 0.2])
    d = sparse_predicate(6, Predicate.nae(3, 3), 25, prior=prior, rng=7)
    n = 5000
    t = d.sample(n, rng=8)
    x, o = d.latents(t), d.observations(t)
    for c in range(3):
        assert _within((x == c).mean(axis=0), prior[c], n)
    g = Predicate.nae(3, 3).table
    assert np.array_equal(o, g[x[:, d.scopes[:, 0]], x[:, d.scopes[:, 1]], x[:, d.scopes[:, 2]]])


def test_noisy_parity_flip_rate():
    eta = 0.2
    d = noisy_parity(15, 30, 3, eta, rng=9)
    assert np.all(np.diff(d.scopes, axis=1) > 0)
    n = 4000
    t = d.sample(n, rng=10)
    x, o = d.latents(t), d.observations(t)
    flips = o ^ (x[:, d.scopes].sum(axis=2) % 2)
    # flips are i.i.d. Bernoulli(eta) over all n * P entries
    assert _within(np.array([flips.mean()]), eta, flips.size)
    assert _within(flips.mean(axis=0), eta, n)
    assert _within(x.mean(axis=0), 0.5, n)


def test_slab_frequency_against_exact_enumeration():
    d = random_slab(10, 12, 0.6, rng=11)
    signs = 2.0 * np.array(list(itertools.product((0, 1), repeat=10))) - 1.0
    p_exact = (np.abs(signs @ d.z.T) <= 0.6 * np.sqrt(10)).mean(axis=0)
    n = 6000
    t = d.sample(n, rng=12)
    assert _within(d.observations(t).mean(axis=0), p_exact, n)
    x = d.latents(t)
    assert np.array_equal(d.observations(t), np.abs((2 * x - 1) @ d.z.T) <= 0.6 * np.sqrt(10))


# -- golden values per seed ---------------------------------------------------------------------
def test_golden_nae_sat():
    d = nae_sat(8, 10, rng=123)
    assert d.scopes.tolist() == [[0, 1, 2], [0, 1, 4], [0, 2, 6], [0, 3, 4], [0, 3, 6],
                                 [0, 5, 6], [1, 3, 7], [1, 4, 7], [3, 4, 5], [5, 6, 7]]
    assert d.sample(2, rng=7).tolist() == [
        [1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]]


def test_golden_parity_slab_predicate():
    d = noisy_parity(6, 4, 2, 0.2, rng=5)
    assert d.scopes.tolist() == [[3, 4], [1, 2], [0, 4], [1, 5]]
    assert d.sample(2, rng=7).tolist() == [[1, 1, 1, 0, 0, 1, 0, 0, 1, 0],
                                           [0, 1, 1, 0, 0, 0, 1, 0, 0, 1]]
    s = random_slab(5, 3, 0.7, rng=9)
    assert np.allclose(s.z[0], [-0.802837, 0.24285, -1.656345, 0.656105, 1.143453], atol=1e-6)
    assert s.sample(2, rng=7).tolist() == [[1, 1, 1, 0, 0, 0, 1, 0], [1, 0, 1, 1, 0, 0, 1, 0]]
    p = sparse_predicate(5, Predicate.nae(3, 3), 4, rng=11)
    assert p.scopes.tolist() == [[0, 3, 2], [2, 1, 4], [3, 4, 2], [4, 3, 0]]
    assert p.sample(2, rng=7).tolist() == [[1, 2, 2, 0, 0, 1, 1, 1, 1],
                                           [2, 0, 2, 2, 1, 0, 1, 1, 1]]


def test_seed_determines_sample_and_generator_advances():
    d = nae_sat(10, 20, rng=0)
    assert np.array_equal(d.sample(5, rng=3), d.sample(5, rng=3))
    g = np.random.default_rng(3)
    assert not np.array_equal(d.sample(5, rng=g), d.sample(5, rng=g))
    # chunked sampling equals one draw
    big = d.sample(5000, rng=1)
    assert big.shape == (5000, 30)


# -- degenerate parameters ----------------------------------------------------------------------
def test_degenerate_cases():
    d = noisy_parity(5, 6, 2, 0.0, rng=0)  # eta = 0: exact parities
    t = d.sample(200, rng=1)
    x = d.latents(t)
    assert np.array_equal(d.observations(t), x[:, d.scopes].sum(2) % 2)
    e = nae_sat(3, 1, rng=0)  # N = k, the single triple
    assert e.scopes.tolist() == [[0, 1, 2]]
    z = nae_sat(5, 0, rng=0)  # no observations
    assert z.sample(4, rng=0).shape == (4, 5)
    assert d.sample(0, rng=0).shape == (0, d.length)
    wide = random_slab(6, 5, 1e6, rng=0)  # a huge slab contains every point
    assert np.all(wide.observations(wide.sample(50, rng=1)) == 1)
    full = sparse_predicate(3, Predicate.xor(3), 6, rng=0)  # P = N!/(N-k)! exactly
    assert full.n_obs == 6


def test_log_prob_sums_to_one():
    d = noisy_parity(4, 3, 2, 0.25, rng=2)
    xs = np.array(list(itertools.product((0, 1), repeat=7)))
    assert math.isclose(np.exp(d.log_prob(xs)).sum(), 1.0, rel_tol=1e-12)


def test_log_prob_of_values_outside_a_tokens_alphabet_is_minus_inf():
    # With a trailing token the vocabulary has a value (2) that no latent can take.
    d = nae_sat(4, 2, trailing_token=True, rng=0)
    t = d.sample(3, rng=1)
    assert np.all(np.isfinite(d.log_prob(t)))
    t[0, d.latent_positions[0]] = 2
    lp = d.log_prob(t)
    assert lp[0] == -np.inf and np.all(np.isfinite(lp[1:]))


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="exceeds the number of distinct ordered k-subsets"):
        sparse_predicate(4, Predicate.nae(3, 2), 25, rng=0)
    with pytest.raises(ValueError, match="exceeds the number of distinct k-subsets"):
        nae_sat(5, 11, rng=0)
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1/2\), got 0.7"):
        noisy_parity(5, 3, 2, 0.7)
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1/2\), got 0.5"):
        noisy_parity(5, 3, 2, 0.5)
    with pytest.raises(ValueError, match="beta must be > 0, got 0"):
        random_slab(5, 3, 0)
    with pytest.raises(ValueError, match="k <= N"):
        noisy_parity(3, 2, 4, 0.1)
    with pytest.raises(ValueError, match="k <= N"):
        nae_sat(2, 1)
    with pytest.raises(ValueError, match="m >= 2"):
        LODistribution(n_latent=2, m=1, prior=[1.0], kind="table", n_obs_values=2,
                       perm=[0, 1], scopes=np.zeros((0, 1)), obs_table=[],
                       tables=np.ones((1, 1, 2)) / 2)
    with pytest.raises(ValueError, match="m must be an integer >= 2"):
        Predicate.nae(3, 1)
    with pytest.raises(ValueError, match="no L&O-NAE-SAT preset"):
        nae_sat_preset(21)
    d = nae_sat(5, 3, rng=0)
    with pytest.raises(ValueError, match="shape"):
        d.log_prob(np.zeros((2, 7), dtype=int))


# -- files ---------------------------------------------------------------------------------------
def test_save_load_roundtrip(tmp_path):
    d = noisy_parity(7, 9, 3, 0.1, permutation="random", rng=4)
    d.save(tmp_path / "d.npz", seed=4)
    assert load_distribution(tmp_path / "d.npz") == d
    t = d.sample(20, rng=5)
    save_samples(tmp_path / "s.npz", d, t, seed=5, config={"note": "x"})
    d2, t2, meta = load_samples(tmp_path / "s.npz")
    assert d2 == d and np.array_equal(t2, t)
    assert meta["seed"] == 5 and "lohard_version" in meta and meta["format_version"] == 1
    assert load_distribution(tmp_path / "s.npz") == d
    s = random_slab(4, 3, 0.5, rng=1)
    s.save(tmp_path / "slab.npz")
    assert load_distribution(tmp_path / "slab.npz") == s


def test_incompatible_file_version(tmp_path):
    d = nae_sat(5, 3, rng=0)
    d.save(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta_json"]))
    meta["format_version"] = 99
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match="format version 99.*reads version 1"):
        load_distribution(tmp_path / "old.npz")
    with pytest.raises(ValueError, match="expected 'lohard.lo.samples'"):
        load_samples(tmp_path / "d.npz")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a lohard L&O file"):
        load_distribution(tmp_path / "foreign.npz")
