"""Samplers: with the exact oracle every order draws from p_data (chi-square), errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from lohard.lo import noisy_parity, sparse_predicate  # noqa: E402
from lohard.mdm import ExactOracle, sample, select_top_k  # noqa: E402
from lohard.predicates import Predicate  # noqa: E402

# A p-value below this rejects "the sampler draws from p_data". Each passing case then
# fails by chance with probability 1e-3.
ALPHA = 1e-3


def _dist(prior=(0.65, 0.35)):
    # NAE on 3 ordered triples of 4 binary latents with a skewed prior: 16 sequences of
    # unequal probability, L = 7, observations at random positions.
    return sparse_predicate(4, Predicate.nae(3, 2), 3, prior=list(prior),
                            permutation="random", rng=7)


def _pvalue(dist, samples, support_of, prompt=None):
    """Chi-square p-value of ``samples`` against p_data (conditioned on ``prompt``)."""
    sup, p = support_of(dist)
    if prompt is not None:
        given = prompt != dist.mask_id
        keep = np.all(sup[:, given] == prompt[given], axis=1)
        sup, p = sup[keep], p[keep]
    p = p / p.sum()
    index = {tuple(r): i for i, r in enumerate(sup)}
    codes = [index.get(tuple(r), -1) for r in samples]
    if min(codes) < 0:
        return 0.0  # a sample outside the support: certainly not p_data
    obs = np.bincount(codes, minlength=len(sup))
    return scipy_stats.chisquare(obs, p * len(samples)).pvalue


CASES = [
    # (sampler, noise, k_mode, steps); adaptive: steps = L and K = 1 per step.
    ("top-prob", None, "deterministic", 7),
    ("margin", None, "deterministic", 7),
    ("top-prob", "gumbel", "deterministic", 7),
    ("margin", "gumbel", "deterministic", 7),
    ("margin", "gaussian", "deterministic", 7),
    # random: vanilla's order with K fixed, so one token per step at steps = L.
    ("random", None, "deterministic", 7),
]


def _parity():
    # Noisy 2-sparse parities of 3 latents: every sequence has positive probability, so
    # parallel draws never reach an impossible state; L = 6, 64 sequences.
    return noisy_parity(3, 3, 2, 0.15, permutation="random", rng=5)


@pytest.mark.parametrize("sampler,noise,k_mode,steps", CASES + [
    # Vanilla unmasks at random times; with 500 steps two tokens share a step with
    # probability ~3%, too rarely for the product-of-marginals error to show at 4000
    # samples over 64 cells (binomial K likewise).
    ("vanilla", None, "deterministic", 500),
    ("margin", "gumbel", "binomial", 500),
])
def test_every_order_samples_p_data_with_the_exact_oracle(sampler, noise, k_mode, steps,
                                                         support_of):
    d = _dist() if steps < 500 else _parity()
    x = sample(ExactOracle(d), 4000, sampler=sampler, steps=steps, length=d.length,
               noise=noise, k_mode=k_mode, generator=11)
    assert _pvalue(d, x.numpy(), support_of) > ALPHA


def test_the_chi_square_check_can_fail(support_of):
    d = _dist()
    # An oracle of the wrong prior: every sample is in the support, the law is wrong.
    wrong = ExactOracle(_dist(prior=(0.5, 0.5)))
    x = sample(wrong, 4000, sampler="margin", steps=7, length=d.length, generator=12)
    assert _pvalue(d, x.numpy(), support_of) < ALPHA
    # One step unmasks everything from the marginals: the joint law is wrong.
    p = _parity()
    x = sample(ExactOracle(p), 4000, sampler="vanilla", steps=1, length=p.length,
               generator=13)
    assert _pvalue(p, x.numpy(), support_of) < ALPHA
    # So is a coarse vanilla grid: 3 steps for 6 tokens.
    x = sample(ExactOracle(p), 4000, sampler="vanilla", steps=3, length=p.length,
               generator=13)
    assert _pvalue(p, x.numpy(), support_of) < ALPHA


def test_infilling_keeps_given_tokens_and_samples_the_conditional(support_of):
    d = _dist()
    prompt = np.full(d.length, d.mask_id)
    prompt[d.observed_positions[0]] = 0  # the first triple is all equal
    prompt[d.latent_positions[3]] = 1
    x = sample(ExactOracle(d), 3000, sampler="margin", steps=d.length, noise="gumbel",
               prompt=torch.from_numpy(prompt), generator=14).numpy()
    given = prompt != d.mask_id
    assert np.all(x[:, given] == prompt[given])
    assert _pvalue(d, x, support_of, prompt=prompt) > ALPHA


def test_binomial_k_and_cosine_schedule_run_and_finish():
    d = _parity()
    x = sample(ExactOracle(d), 200, sampler="margin", steps=3, k_mode="binomial",
               schedule="cosine", length=d.length, generator=0)
    assert (x != d.mask_id).all()


def test_progress_bar_goes_to_stderr_and_changes_nothing(capsys):
    d = _parity()
    o = ExactOracle(d)
    a = sample(o, 40, sampler="margin", steps=4, length=d.length, generator=3, batch_size=16,
               progress="eval-mdm margin")
    captured = capsys.readouterr()
    assert "eval-mdm margin" in captured.err and "12/12" in captured.err  # 3 batches x 4
    assert captured.out == ""
    b = sample(o, 40, sampler="margin", steps=4, length=d.length, generator=3, batch_size=16)
    assert torch.equal(a, b) and capsys.readouterr().err == ""


def test_seed_determines_the_output():
    d = _parity()
    o = ExactOracle(d)
    a = sample(o, 50, sampler="vanilla", steps=5, length=d.length, generator=3)
    b = sample(o, 50, sampler="vanilla", steps=5, length=d.length, generator=3)
    c = sample(o, 50, sampler="vanilla", steps=5, length=d.length, generator=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_errors():
    d = _dist()
    o = ExactOracle(d)
    with pytest.raises(ValueError, match="unknown sampler 'greedy'; valid samplers are "
                                         "vanilla, top-prob, margin"):
        sample(o, 2, sampler="greedy")
    with pytest.raises(ValueError, match="unknown noise"):
        sample(o, 2, noise="uniform")
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        sample(o, 2, steps=0)
    masked = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match="K = 3 of 2 masked positions"):
        select_top_k(torch.zeros(1, 3), masked, torch.tensor([3]))
    chosen = select_top_k(torch.tensor([[0.1, 0.9, 0.5]]), masked, torch.tensor([1]))
    assert chosen.tolist() == [[False, False, True]]


class _FixedLogits(torch.nn.Module):
    """Two positions, vocabulary 4, fixed p_theta: position 0 (0.6, 0.4, 0, 0), position 1
    (0.55, 0.15, 0.15, 0.15). Records its inputs."""

    vocab_size, mask_id, max_seq_len = 4, 4, 2

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        p = torch.tensor([[0.6, 0.4, 1e-30, 1e-30], [0.55, 0.15, 0.15, 0.15]])
        self.register_buffer("logits", p.log())
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return self.logits.expand(x.shape[0], -1, -1) + 0 * self.anchor


@pytest.mark.parametrize("sampler", ["top-prob", "margin"])
def test_temperature_tempers_values_not_the_order(sampler):
    # top-prob: position 0 (0.6 > 0.55) first; margin: position 1 (0.40 > 0.20) first.
    # Scored from the tempered probabilities, top-prob at temperature 0.5 would pick
    # position 1 (0.82 > 0.69).
    first = 0 if sampler == "top-prob" else 1
    for temperature in (1.0, 0.5, 2.0):
        model = _FixedLogits()
        sample(model, 3, sampler=sampler, steps=2, temperature=temperature, generator=0)
        after_step_1 = model.inputs[1]
        assert (after_step_1[:, first] != model.mask_id).all()
        assert (after_step_1[:, 1 - first] == model.mask_id).all()


def test_prompt_and_length_or_num_must_agree():
    d = _dist()
    o = ExactOracle(d)
    prompt = torch.full((d.length,), d.mask_id)
    with pytest.raises(ValueError, match="disagrees with the prompt's length"):
        sample(o, 2, prompt=prompt, length=d.length - 1)
    with pytest.raises(ValueError, match="num must be an integer >= 0"):
        sample(o, 2.5, prompt=prompt)
    assert sample(o, 3, prompt=prompt, length=d.length, generator=0).shape == (3, d.length)
