"""Observation accuracy: 1 on data, NAE semantics, naive guess 3/4, out-of-alphabet latents."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.lo import nae_sat, noisy_parity  # noqa: E402
from lohard.mdm import observation_accuracy, observation_correct  # noqa: E402


def test_accuracy_is_nae_agreement():
    d = nae_sat(10, 30, trailing_token=True, permutation="random", rng=0)
    x = d.sample(500, rng=1)
    assert observation_accuracy(d, x) == 1.0
    assert observation_accuracy(d, torch.from_numpy(x)) == 1.0
    # Brute force: o_j == NAE(x_S_j) for random tokens.
    rng = np.random.default_rng(2)
    y = x.copy()
    y[:, d.observed_positions] = rng.integers(0, 2, (500, d.n_obs))
    y[:, d.latent_positions] = rng.integers(0, 2, (500, d.n_latent))
    lat = y[:, d.latent_positions][:, d.scopes]
    nae = ~(np.all(lat == 0, axis=2) | np.all(lat == 1, axis=2))
    ok = observation_correct(d, y)
    np.testing.assert_array_equal(ok, y[:, d.observed_positions] == nae)
    # The naive guess "every observation is 1" is right 3/4 of the time on average.
    y[:, d.observed_positions] = 1
    acc = observation_accuracy(d, y)
    assert abs(acc - 0.75) < 0.02  # 15000 Bernoulli(3/4) triples: SD ~ 0.0035 plus overlap


def test_out_of_alphabet_latents_make_their_observations_wrong():
    d = nae_sat(6, 8, trailing_token=True, rng=0)
    x = d.sample(3, rng=1)
    x[0, d.latent_positions[0]] = 2  # the trailing value, not a bit
    ok = observation_correct(d, x)
    np.testing.assert_array_equal(ok[0], ~np.any(d.scopes == 0, axis=1))
    assert ok[1:].all()
    x[1, d.observed_positions[0]] = 2
    assert not observation_correct(d, x)[1, 0]


def test_mode_rule_for_noisy_observations():
    d = noisy_parity(6, 20, 2, 0.2, rng=0)
    x = d.sample(2000, rng=1)
    assert observation_accuracy(d, x, rule="support") == 1.0
    # Under "mode" an observation is right when it equals the parity: rate 1 - eta.
    assert abs(observation_accuracy(d, x, rule="mode") - 0.8) < 0.01
    with pytest.raises(ValueError, match="unknown rule"):
        observation_accuracy(d, x, rule="max")
