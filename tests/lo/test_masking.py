"""Masking: forward-process frequencies, fixed sizes, restricted and App. C.2.1 masks."""

import numpy as np
import pytest

from lohard.lo import (
    COSINE,
    LINEAR,
    apply_mask,
    fixed_size_mask,
    forward_mask,
    latent_mask,
    nae_sat,
    observation_mask,
    protocol_mask,
    protocol_obs_count,
)


def test_schedules():
    t = np.linspace(0, 1, 11)
    assert np.allclose(LINEAR.alpha(t), 1 - t)
    assert np.isclose(COSINE.alpha(0.0), 1.0) and np.isclose(COSINE.alpha(1.0), 0.0)
    # derivative by central differences (step 1e-6: error O(1e-12), bound 1e-6)
    h = 1e-6
    tt = np.linspace(0.1, 0.9, 9)
    for s in (LINEAR, COSINE):
        fd = (s.alpha(tt + h) - s.alpha(tt - h)) / (2 * h)
        assert np.allclose(fd, s.dalpha(tt), atol=1e-6)
        assert np.all(s.loss_weight(tt) < 0)


@pytest.mark.parametrize("sched", ["linear", "cosine"])
def test_forward_mask_frequency(sched):
    n, L, t = 4000, 50, 0.3
    mk = forward_mask(n, L, t, schedule=sched, rng=0)
    p = 1 - (LINEAR if sched == "linear" else COSINE).alpha(t)
    sd = np.sqrt(p * (1 - p) / n)
    # each column is an average of n i.i.d. Bernoulli(1 - alpha_t); 5 sd bound
    assert np.all(np.abs(mk.mean(axis=0) - p) <= 5 * sd)


def test_forward_mask_endpoints_and_per_row_times():
    assert not forward_mask(10, 7, 0.0, rng=0).any()
    assert forward_mask(10, 7, 1.0, rng=0).all()
    mk = forward_mask(2, 7, np.array([0.0, 1.0]), rng=0)
    assert not mk[0].any() and mk[1].all()
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        forward_mask(2, 3, 1.5)


def test_fixed_size_mask_sizes_and_uniformity():
    n, L = 6000, 8
    mk = fixed_size_mask(n, L, 3, rng=1)
    assert np.all(mk.sum(axis=1) == 3)
    p = 3 / 8
    assert np.all(np.abs(mk.mean(axis=0) - p) <= 5 * np.sqrt(p * (1 - p) / n))
    sizes = np.arange(9)
    assert np.array_equal(fixed_size_mask(9, L, sizes, rng=2).sum(axis=1), sizes)
    assert not fixed_size_mask(3, L, 0, rng=0).any() and fixed_size_mask(3, L, 8, rng=0).all()


def test_restricted_and_protocol_masks():
    d = nae_sat(20, 280, trailing_token=True, rng=0)
    ml = latent_mask(d, 50, 4, rng=0)
    assert np.all(ml[:, d.latent_positions].sum(1) == 4) and not ml[:, d.observed_positions].any()
    mo = observation_mask(d, 50, 9, rng=0)
    assert np.all(mo[:, d.observed_positions].sum(1) == 9) and not mo[:, d.latent_positions].any()
    ells = np.arange(1, 20)
    mk = protocol_mask(d, 19, ells, rng=3)
    assert np.array_equal(mk[:, d.latent_positions].sum(1), ells)
    assert np.array_equal(mk[:, d.observed_positions].sum(1), 14 * ells)
    assert not mk[:, -1].any()  # the trailing token is never masked
    assert protocol_mask(d, 1, 3, rng=4).nonzero()[1].tolist()[:3] == [3, 7, 18]
    d40 = nae_sat(40, 260, rng=0)
    assert protocol_obs_count(d40, np.array([1, 2, 3])).tolist() == [7, 13, 20]  # 6.5 l, half up


def test_mask_errors_and_apply():
    with pytest.raises(ValueError, match="inside the sequence"):
        fixed_size_mask(2, 5, 1, positions=[0, 5])
    with pytest.raises(ValueError, match="mask size must be an integer in"):
        fixed_size_mask(2, 5, 6)
    d = nae_sat(6, 4, rng=0)
    with pytest.raises(ValueError, match="l must be an integer"):
        protocol_mask(d, 2, 7)
    t = d.sample(3, rng=0)
    mk = fixed_size_mask(3, d.length, 2, rng=1)
    x = apply_mask(t, mk, d.mask_id)
    assert np.array_equal(x == d.mask_id, mk) and np.array_equal(x[~mk], t[~mk])
    with pytest.raises(ValueError, match="inside the sequence"):
        apply_mask(t, np.zeros((3, d.length + 1), dtype=bool), d.mask_id)


def test_loss_weight_needs_t_in_the_half_open_interval():
    assert LINEAR.loss_weight(1.0) == -1.0
    for bad in (0.0, -0.1, 1.5, float("nan")):
        for sched in (LINEAR, COSINE):
            with pytest.raises(ValueError, match=r"needs t in \(0, 1\]"):
                sched.loss_weight(bad)
    with pytest.raises(ValueError, match=r"needs t in \(0, 1\]"):
        LINEAR.loss_weight([0.5, 0.0])


def test_mask_arguments_are_checked_at_call_time():
    d = nae_sat(10, 20, rng=0)
    with pytest.raises(ValueError, match="batch size n must be an integer >= 0, got -1"):
        protocol_mask(d, -1, 3, rng=0)
    with pytest.raises(ValueError, match=r"t must be one value or one per sequence, shape "
                                         r"\(n,\) = \(3,\), got shape \(2,\)"):
        forward_mask(3, 5, [0.1, 0.2], rng=0)
    with pytest.raises(ValueError, match="mask size must be one value or one per sequence"):
        fixed_size_mask(3, 5, [1, 2], rng=0)
    with pytest.raises(ValueError, match="l must be one value or one per sequence"):
        protocol_mask(d, 2, [[1, 1]], rng=0)
    # one value per sequence, or a length-1 array, still broadcast
    assert forward_mask(3, 5, [0.1, 0.2, 0.3], rng=0).shape == (3, 5)
    assert forward_mask(3, 5, [0.5], rng=0).shape == (3, 5)
