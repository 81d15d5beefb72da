"""CPU pipeline: train a tiny MDM on L&O-NAE-SAT (N = 8, P = 24), margin beats vanilla."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.mdm import TrainConfig, observation_correct, sample, train  # noqa: E402

# Tiny model, a learned absolute position embedding on top of RoPE (a 2-layer RoPE-only
# model does not learn positions in a few hundred CPU steps), Adam at 3e-3.
PIPELINE = dict(dist="nae-sat-8-24", model="tiny", model_overrides={"learned_pos": True},
                steps=1500, batch_size=32, lr=3e-3, min_lr=3e-4, warmup_steps=75,
                eval_every=0, eval_size=0, log_every=300, ckpt_every=0, device="cpu")
# One token per reverse step (L = 32 steps): the regime where a model that has learned
# the pairwise latent correlations but not yet the 3-way NAE lookup gains from ordering.
SAMPLE_STEPS = 32
NUM = 400


def run_pipeline(seed: int, out_dir) -> dict:
    """Train with ``seed`` and compare margin and vanilla decoding; returns the statistics."""
    res = train(TrainConfig(**PIPELINE, seed=seed, dist_seed=seed), out_dir, progress=False)
    per = {}
    for name in ("vanilla", "margin"):
        x = sample(res.model, NUM, sampler=name, steps=SAMPLE_STEPS, length=res.dist.length,
                   generator=seed + 100)
        # Per-sequence accuracy: the observations of one sequence are dependent, so the
        # sequence is the unit of the two-sample z-test.
        per[name] = observation_correct(res.dist, x).mean(axis=1)
    a, b = per["margin"], per["vanilla"]
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return {"margin": float(a.mean()), "vanilla": float(b.mean()),
            "z": float((a.mean() - b.mean()) / se),
            "loss": [h["train_loss"] for h in res.history if "train_loss" in h]}


def test_margin_beats_vanilla_on_observation_accuracy(tmp_path):
    stats = run_pipeline(0, tmp_path / "run")
    # Training must have learned something beyond the token marginals (~0.595 nats/token).
    assert stats["loss"][-1] < 0.5, stats
    # z > 3: a one-sided false positive has probability ~1e-3 if the samplers were equal.
    assert stats["z"] > 3, stats
    assert np.isfinite(stats["margin"])
