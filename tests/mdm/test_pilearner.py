"""pi-learners: causality, order bookkeeping against an enumeration oracle, orders, training."""

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.lo import nae_sat, nae_sat_preset, noisy_parity, sparse_predicate  # noqa: E402
from lohard.mdm._pilearner import (  # noqa: E402
    PiLearner,
    PiLearnerConfig,
    PiTrainConfig,
    closer_order,
    eval_steps,
    lo_entropy,
    lr_at,
    natural_order,
    order_inputs,
    order_nll,
    pilearner_config,
    resolve_order,
    train_pilearner,
    uniform_orders,
)
from lohard.predicates import Predicate  # noqa: E402

torch.set_num_threads(1)


# -- enumeration oracle ----------------------------------------------------------------------
def _support(dist):
    """All sequences of positive probability and their probabilities (brute force)."""
    # Latent values range over 0..m-1 and observations over 0..V-1 (dist.log_prob is
    # only defined there); the trailing tokens are fixed.
    N, P = dist.n_latent, dist.n_obs
    lat = np.array(list(itertools.product(range(dist.m), repeat=N)))
    obs = np.array(list(itertools.product(range(dist.n_obs_values), repeat=P)))
    seqs = np.empty((len(lat) * len(obs), dist.length), dtype=np.int64)
    seqs[:, dist.perm[:N]] = np.repeat(lat, len(obs), axis=0)
    seqs[:, dist.perm[N:]] = np.tile(obs, (len(lat), 1))
    seqs[:, dist.trailing_positions] = dist.trailing
    lp = dist.log_prob(seqs)
    keep = np.isfinite(lp)
    return seqs[keep], np.exp(lp[keep])


def _oracle_logprobs(support, probs, tokens, orders, vocab):
    """Step-frame log p(x_{pi(t)} = v | x_{pi(0..t-1)}) by summing the exact joint."""
    B, L = tokens.shape
    out = np.full((B, L, vocab), -np.inf)
    for b in range(B):
        for t in range(L):
            pre = orders[b, :t]
            match = np.all(support[:, pre] == tokens[b, pre], axis=1)
            tot = probs[match].sum()
            for v in range(vocab):
                pv = probs[match & (support[:, orders[b, t]] == v)].sum() / tot
                if pv > 0:
                    out[b, t, v] = math.log(pv)
    return out


def _tiny_dists():
    return [
        nae_sat(4, 3, permutation="random", rng=1),  # deterministic observations
        noisy_parity(3, 3, 2, 0.2, permutation="random", rng=2),  # noisy observations
        nae_sat(4, 2, trailing_token=True, rng=3),  # a constant trailing token
        # m = 3 with a non-uniform prior
        sparse_predicate(3, Predicate.not_equal(3), 2, prior=[0.5, 0.3, 0.2],
                         permutation="random", rng=5),
    ]


_IDS = ["nae", "parity", "trailing", "prior"]


@pytest.mark.parametrize("dist", _tiny_dists(), ids=_IDS)
def test_lo_entropy_matches_enumeration(dist):
    _, p = _support(dist)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert lo_entropy(dist) == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-12)


def test_lo_entropy_nae_preset_is_n_log2():
    d = nae_sat_preset(20, rng=0)
    assert lo_entropy(d) == pytest.approx(20 * math.log(2), abs=1e-12)


@pytest.mark.parametrize("dist", _tiny_dists(), ids=_IDS)
def test_oracle_nll_is_exact_log_prob_for_every_order(dist):
    """Chain rule: with the exact conditionals, the NLL in any order is -log p(x), and
    its mean over the support is the entropy. A bookkeeping slip (gathering the wrong
    targets, shifting steps) breaks the per-sequence equality."""
    sup, p = _support(dist)
    L, V = dist.length, dist.vocab_size
    tokens = sup
    g = torch.Generator().manual_seed(0)
    specs = {
        "natural": np.broadcast_to(natural_order(dist), tokens.shape),
        "closer": np.broadcast_to(closer_order(dist, 2, rng=0), tokens.shape),
        "uniform": uniform_orders(len(tokens), L, generator=g).numpy(),
    }
    for name, orders in specs.items():
        orders = np.ascontiguousarray(orders)
        lp = _oracle_logprobs(sup, p, tokens, orders, V)
        nll = order_nll(torch.from_numpy(lp), torch.from_numpy(tokens),
                        torch.from_numpy(orders)).double().numpy()
        # float32 cross-entropy: 1e-5 relative
        np.testing.assert_allclose(nll, -dist.log_prob(tokens), rtol=1e-5, atol=1e-5,
                                   err_msg=name)
        assert float((p * nll).sum()) == pytest.approx(lo_entropy(dist), abs=1e-4)


# -- model ---------------------------------------------------------------------------------
def _model(L=10, V=3, seed=0):
    return PiLearner(PiLearnerConfig(vocab_size=V, length=L, d_model=32, n_layers=2,
                                     n_heads=2), seed=seed).eval()


def test_order_inputs_layout():
    tokens = torch.tensor([[10, 11, 12, 13]])
    orders = torch.tensor([[2, 0, 3, 1]])
    inp, in_pos, tgt = order_inputs(tokens, orders, bos_id=99)
    assert inp.tolist() == [[99, 12, 10, 13]]
    assert in_pos.tolist() == [[4, 2, 0, 3]]
    assert tgt.tolist() == [[2, 0, 3, 1]]


def test_order_nll_is_sum_of_right_step_log_probs():
    m = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 3, (5, 10), generator=g)
    o = uniform_orders(5, 10, generator=g)
    with torch.no_grad():
        logits = m(x, o)
        nll = order_nll(logits, x, o)
    lsm = torch.log_softmax(logits.double(), -1)
    ref = torch.zeros(5, dtype=torch.float64)
    for b in range(5):
        for t in range(10):
            ref[b] -= lsm[b, t, x[b, o[b, t]]]
    torch.testing.assert_close(nll.double(), ref, rtol=1e-5, atol=1e-5)


def test_model_is_causal_in_the_order():
    m = _model()
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (4, 10), generator=g)
    o = uniform_orders(4, 10, generator=g)
    with torch.no_grad():
        base = m(x, o)
        for s in (0, 4, 8):
            # change the token read at step s + 1 (the one at position o[:, s])
            x2 = x.clone()
            rows = torch.arange(4)
            x2[rows, o[:, s]] = (x2[rows, o[:, s]] + 1) % 3
            pert = m(x2, o)
            torch.testing.assert_close(pert[:, : s + 1], base[:, : s + 1], rtol=0, atol=1e-6)
            assert (pert[:, s + 1] - base[:, s + 1]).abs().max() > 1e-4
            # exchange the positions visited at steps s and s + 1: steps < s unchanged
            o2 = o.clone()
            o2[:, [s, s + 1]] = o[:, [s + 1, s]]
            pert = m(x, o2)
            torch.testing.assert_close(pert[:, :s], base[:, :s], rtol=0, atol=1e-6)
            assert (pert[:, s] - base[:, s]).abs().max() > 1e-4


def test_init_is_seeded():
    a, b, c = _model(seed=5), _model(seed=5), _model(seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["head.weight"], sc["head.weight"])


def test_param_counts():
    m = _model(L=10, V=3)
    d = 32
    emb = (3 + 1) * d + (10 + 1) * d + 10 * d
    assert m.num_params(non_embedding=False) - m.num_params() == emb


# -- orders --------------------------------------------------------------------------------
def test_natural_order_undoes_the_permutation():
    d = nae_sat(6, 10, permutation="random", trailing_token=True, rng=4)
    x = d.sample(20, rng=0)
    nat = x[:, natural_order(d)]
    np.testing.assert_array_equal(nat[:, :6], d.latents(x))
    np.testing.assert_array_equal(nat[:, 6:16], d.observations(x))
    assert np.all(nat[:, 16] == 2)


@pytest.mark.parametrize("k", [0, 1, 5, 8])
def test_closer_makes_exactly_k_swaps(k):
    d = nae_sat(6, 10, permutation="random", rng=4)
    nat = natural_order(d)
    o = closer_order(d, k, rng=7)
    assert sorted(o) == list(range(16))
    step_of = np.argsort(nat)
    s = step_of[o]  # the step-space permutation applied to the natural order
    assert np.array_equal(s[s], np.arange(16))  # an involution: disjoint transpositions
    assert int((s != np.arange(16)).sum()) == 2 * k
    assert np.array_equal(o, closer_order(d, k, rng=7))
    if k:
        assert not np.array_equal(o, closer_order(d, k, rng=8))
    with pytest.raises(ValueError, match="2 K <= L"):
        closer_order(d, 9, rng=0)


def test_named_closer_orders_swap_counts():
    d = nae_sat_preset(20, rng=0)
    nat = natural_order(d)
    for spec, k in (("closer-sqrt", 17), ("closer-tenth", 30)):
        o = resolve_order(spec, d, rng=0)
        assert int((o != nat).sum()) == 2 * k
    assert resolve_order("uniform", d) is None
    with pytest.raises(ValueError, match="unknown order"):
        resolve_order("reverse", d)


def test_uniform_orders_vary_and_are_seeded():
    a = uniform_orders(4000, 4, generator=torch.Generator().manual_seed(3))
    b = uniform_orders(4000, 4, generator=torch.Generator().manual_seed(3))
    c = uniform_orders(4000, 4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a.sort(1).values, torch.arange(4).expand(4000, 4))
    assert len({tuple(r) for r in a.tolist()}) == 24  # all 4! orders appear
    # first step uniform on 4 positions: counts ~ Binomial(4000, 1/4), sd 27.4; 6 sd bound
    counts = torch.bincount(a[:, 0], minlength=4)
    assert torch.all((counts - 1000).abs() < 165)


def test_bad_orders_raise():
    m = _model()
    x = torch.zeros(2, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="permutation"):
        m(x, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        m(x, torch.arange(9))


# -- training ------------------------------------------------------------------------------
def _cfg(**kw):
    base = dict(steps=150, batch_size=64, warmup_steps=15, lr=3e-3, test_size=256,
                eval_points=3, eval_orders=2, device="cpu", seed=0)
    base.update(kw)
    return PiTrainConfig(**base)


def test_schedule_and_eval_steps():
    c = _cfg(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(0.1)
    assert lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(100, c) == pytest.approx(0.1)
    assert lr_at(55, c) == pytest.approx(0.55)  # half-way down the cosine
    s = eval_steps(1000, 4)
    assert s == [1, 10, 100, 1000]


def test_training_lowers_nll_and_natural_beats_uniform():
    d = nae_sat(6, 10, rng=0)
    h = lo_entropy(d) / d.length
    runs = {o: train_pilearner(d, o, pilearner_config("tiny", d), _cfg())
            for o in ("natural", "uniform")}
    nat, uni = runs["natural"], runs["uniform"]
    # untrained: about log 2 = 0.69 per token; H/L = 0.26
    assert nat.curve[0]["test_nll"] > 0.6
    assert nat.final_test_nll < nat.curve[0]["test_nll"] - 0.15
    assert nat.final_test_nll > h - 0.02  # cannot beat the entropy (up to sampling noise)
    # measured over seeds 0..4: gaps 0.06..0.13 nats per token
    assert nat.final_test_nll < uni.final_test_nll - 0.03
    c = nat.curve[-1]
    assert c["flops"] == 6 * nat.n_params_nonembedding * 150 * 64 * d.length
    assert [r["step"] for r in nat.curve] == eval_steps(150, 3)


def test_resume_replays_the_uninterrupted_run(tmp_path):
    d = nae_sat(5, 6, rng=1)
    mc = pilearner_config("tiny", d)
    tc = _cfg(steps=24, checkpoint_every=5, eval_points=4, test_size=32)
    full = train_pilearner(d, "uniform", mc, tc)
    ck = tmp_path / "run.pt"
    part = train_pilearner(d, "uniform", mc, tc, checkpoint=ck, stop_after=12)
    assert not part.completed and ck.exists()
    rest = train_pilearner(d, "uniform", mc, tc, checkpoint=ck)
    assert rest.resumed_from == 12 and rest.completed
    a, b = full.model.state_dict(), rest.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [(r["step"], r["test_nll"], r["train_loss"]) for r in rest.curve] == \
        [(r["step"], r["test_nll"], r["train_loss"]) for r in full.curve]
    again = train_pilearner(d, "uniform", mc, tc, checkpoint=ck)  # completed: no work
    assert again.resumed_from == 24 and again.curve == rest.curve
    with pytest.raises(ValueError, match="another run"):
        train_pilearner(d, "natural", mc, tc, checkpoint=ck)


def test_time_budget_stops_with_a_checkpoint_and_resumes_exactly(tmp_path):
    d = nae_sat(5, 6, rng=1)
    mc = pilearner_config("tiny", d)
    tc = _cfg(steps=12, checkpoint_every=5, eval_points=3, test_size=32)
    full = train_pilearner(d, "natural", mc, tc)
    ck = tmp_path / "run.pt"
    part = train_pilearner(d, "natural", mc, tc, checkpoint=ck, max_seconds=0.0)
    assert part.steps_done == 1 and not part.completed and not part.to_dict()["completed"]
    rest = train_pilearner(d, "natural", mc, tc, checkpoint=ck)
    assert rest.resumed_from == 1 and rest.completed
    a, b = full.model.state_dict(), rest.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a stop inside an averaging window of the train loss (evaluations at 1, 3, 12): the
    # window's sum is carried over in the checkpoint
    ck2 = tmp_path / "run2.pt"
    train_pilearner(d, "natural", mc, tc, checkpoint=ck2, stop_after=2)
    rest2 = train_pilearner(d, "natural", mc, tc, checkpoint=ck2)
    assert [(r["step"], r["train_loss"]) for r in rest2.curve] == \
        [(r["step"], r["train_loss"]) for r in full.curve]
    with pytest.raises(ValueError, match="max_seconds must be >= 0"):
        train_pilearner(d, "natural", mc, tc, max_seconds=-1.0)


def test_divergence_is_reported():
    d = nae_sat(5, 6, rng=1)
    tc = _cfg(steps=6, lr=1e30, warmup_steps=1, eval_points=2, test_size=16)
    with pytest.raises(FloatingPointError, match="not finite|nan"):
        train_pilearner(d, "natural", pilearner_config("tiny", d), tc)


def test_config_must_match_distribution():
    d = nae_sat(5, 6, rng=1)
    with pytest.raises(ValueError, match="does not match"):
        train_pilearner(d, "natural", PiLearnerConfig(vocab_size=2, length=12), _cfg())
    with pytest.raises(ValueError, match="divisible"):
        PiLearnerConfig(vocab_size=2, length=12, d_model=30, n_heads=4)
