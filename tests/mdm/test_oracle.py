"""The exact oracle agrees with lohard.lo.exact_posterior and brute-force enumeration."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.lo import (  # noqa: E402
    apply_mask,
    exact_posterior,
    forward_mask,
    nae_sat,
    noisy_parity,
)
from lohard.mdm import ExactOracle, PosteriorOracle  # noqa: E402


@pytest.mark.parametrize("make", [
    lambda: nae_sat(5, 6, rng=0),
    lambda: nae_sat(4, 3, trailing_token=True, permutation="random", rng=1),
    lambda: noisy_parity(5, 4, 2, 0.2, permutation="random", rng=2),
])
def test_oracle_matches_exact_posterior(make):
    d = make()
    tokens = d.sample(40, rng=3)
    mask = forward_mask(40, d.length, np.linspace(0.05, 1, 40), rng=4)
    mask[:, d.trailing_positions] = False
    inp = apply_mask(tokens, mask, d.mask_id)
    ref = exact_posterior(d, inp, mask).probs
    got = ExactOracle(d).probs(torch.from_numpy(inp)).numpy()
    # Both are float64 enumerations of the same sums; only rounding differs.
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # The component-wise oracle is a brute-force-checked path too: same laws, and logits
    # -inf exactly where the probability is 0.
    comp = PosteriorOracle(d)
    np.testing.assert_allclose(comp.probs(torch.from_numpy(inp)).numpy(), got, atol=1e-12)
    logits = comp(torch.from_numpy(inp)).numpy()
    assert np.array_equal(np.isneginf(logits), got == 0)


def test_oracle_rejects_impossible_input_and_large_laws():
    d = nae_sat(4, 3, rng=0)
    t = d.sample(1, rng=0)
    t[0, d.observed_positions[0]] = 1 - t[0, d.observed_positions[0]]  # violates NAE
    with pytest.raises(ValueError, match="probability 0"):
        ExactOracle(d)(torch.from_numpy(t))
    with pytest.raises(ValueError, match="MAX_ORACLE_STATES"):
        ExactOracle(nae_sat(20, 10, rng=0))
    # The component-wise oracle takes N = 20 while the components stay small, and names
    # the limit when one does not.
    big = nae_sat(20, 30, rng=0)
    x = big.sample(2, rng=1)
    x[:, big.latent_positions[:3]] = big.mask_id
    assert PosteriorOracle(big).probs(torch.from_numpy(x)).shape == (2, big.length, 2)
    x = np.full((1, big.length), big.mask_id)
    x[0, big.observed_positions] = 1
    with pytest.raises(ValueError, match="max_states"):
        PosteriorOracle(big, max_states=16)(torch.from_numpy(x))
