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
from lohard.mdm import ExactOracle  # noqa: E402


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


def test_oracle_rejects_impossible_input_and_large_laws():
    d = nae_sat(4, 3, rng=0)
    t = d.sample(1, rng=0)
    t[0, d.observed_positions[0]] = 1 - t[0, d.observed_positions[0]]  # violates NAE
    with pytest.raises(ValueError, match="probability 0"):
        ExactOracle(d)(torch.from_numpy(t))
    with pytest.raises(ValueError, match="MAX_ORACLE_STATES"):
        ExactOracle(nae_sat(20, 10, rng=0))
