"""Losses: Eq. (1) and the ELBO estimate the same bound, = -log p(x0) for the exact model."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.lo import COSINE, LINEAR, nae_sat  # noqa: E402
from lohard.mdm import ExactOracle, alpha, dalpha, loss_masks, mdm_loss  # noqa: E402


def test_torch_schedules_match_lohard_lo():
    t = np.linspace(0.01, 1, 50)
    tt = torch.from_numpy(t)
    for name, sched in (("linear", LINEAR), ("cosine", COSINE)):
        np.testing.assert_allclose(alpha(tt, name).numpy(), sched.alpha(t), rtol=1e-12)
        np.testing.assert_allclose(dalpha(tt, name).numpy(), sched.dalpha(t), rtol=1e-12)


def test_eq1_mask_sizes_are_uniform_and_weights_match():
    gen = torch.Generator().manual_seed(0)
    mask, w = loss_masks(20000, 5, kind="eq1", generator=gen)
    size = mask.sum(1)
    counts = torch.bincount(size, minlength=6).numpy()
    assert counts[0] == 0
    # 4000 expected per size; 5 binomial SDs ~ 280.
    assert np.all(np.abs(counts[1:] - 4000) < 300)
    torch.testing.assert_close(w, 5 / size.float())


def _estimates(model, x0, kind, schedule, reps, seed, weight_fn=None):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(reps):
        if weight_fn is None:
            out.append(mdm_loss(model, x0, kind=kind, schedule=schedule, generator=gen,
                                reduction="none"))
        else:
            out.append(weight_fn(model, x0, gen))
    v = torch.cat(out).double().numpy()
    return v.mean(), v.std(ddof=1) / math.sqrt(v.size)


def _wrong(model, x0, gen):
    """Cosine masks with the linear weight 1/t: a mis-weighted ELBO."""
    b, n = x0.shape
    t = 1.0 - torch.rand(b, generator=gen)
    mask = torch.rand(b, n, generator=gen) >= alpha(t, "cosine")[:, None]
    inp = torch.where(mask, torch.full_like(x0, model.mask_id), x0)
    nll = -torch.log_softmax(model(inp), -1).gather(-1, x0[..., None])[..., 0]
    return (torch.where(mask, nll, 0.0).sum(1) / t) / n


def test_eq1_and_elbo_agree_and_equal_exact_nll_for_the_oracle():
    # For exact conditionals every any-order chain rule gives -log p(x0), so the bound of
    # Prop. 2.1 is tight: both estimators must average to N log 2 / L per token here.
    d = nae_sat(4, 3, rng=1)
    oracle = ExactOracle(d)
    x0 = torch.from_numpy(d.sample(256, rng=2))
    target = d.n_latent * math.log(2) / d.length
    ests = {}
    for kind, sched in (("eq1", "linear"), ("elbo", "linear"), ("elbo", "cosine")):
        ests[kind, sched] = _estimates(oracle, x0, kind, sched, reps=40, seed=3)
    for (mean, se) in ests.values():
        # 4 standard errors: a false alarm has probability ~6e-5 per estimate.
        assert abs(mean - target) < 4 * se, (mean, se, target)
    (m1, s1), (m2, s2) = ests["eq1", "linear"], ests["elbo", "cosine"]
    assert abs(m1 - m2) < 4 * math.hypot(s1, s2)
    # The test can fail: a mis-weighted ELBO (cosine masks, linear weight) is detected.
    mw, sw = _estimates(oracle, x0, None, None, reps=40, seed=3, weight_fn=_wrong)
    assert abs(mw - target) > 4 * sw, (mw, sw, target)


def test_eq1_and_elbo_agree_on_a_fixed_random_transformer():
    from lohard.mdm import build_model, model_config

    torch.manual_seed(0)
    d = nae_sat(6, 10, rng=0)
    model = build_model(model_config("tiny", n_layers=1, d_model=32, n_heads=2), d).eval()
    # Sharpen the random model so its per-token loss depends on the mask.
    with torch.no_grad():
        model.head.weight.mul_(30)
        x0 = torch.from_numpy(d.sample(256, rng=1))
        a = _estimates(model, x0, "eq1", "linear", reps=30, seed=5)
        b = _estimates(model, x0, "elbo", "linear", reps=30, seed=6)
        c = _estimates(model, x0, "elbo", "cosine", reps=30, seed=7)
        w = _estimates(model, x0, None, None, reps=30, seed=8, weight_fn=_wrong)
    assert abs(a[0] - b[0]) < 4 * math.hypot(a[1], b[1])
    assert abs(a[0] - c[0]) < 4 * math.hypot(a[1], c[1])
    assert abs(a[0] - w[0]) > 4 * math.hypot(a[1], w[1])


def test_loss_rejects_bad_input():
    d = nae_sat(4, 3, rng=1)
    oracle = ExactOracle(d)
    x0 = torch.from_numpy(d.sample(4, rng=2))
    with pytest.raises(ValueError, match="unknown loss kind 'eq2'"):
        mdm_loss(oracle, x0, kind="eq2")
    with pytest.raises(ValueError, match="unknown schedule 'cubic'"):
        mdm_loss(oracle, x0, schedule="cubic")
    bad = x0.clone()
    bad[0, 0] = d.mask_id
    with pytest.raises(ValueError, match=r"tokens must be data values in \[0, 1\]"):
        mdm_loss(oracle, bad)
