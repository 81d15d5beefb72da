"""Decoders beyond the paper: entropy, threshold, semi-ar, bp-order and remasking.

Each one is checked against the exact oracle (p_theta = p_data): a decoder that unmasks
one token per step (or only tokens of probability one together) and never remasks must
draw exactly from p_data, which a chi-square test checks; random remasking keeps that
law too (a Gibbs move). The chi-square check itself is shown able to fail in
test_sampling.py.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from lohard.lo import nae_sat, noisy_parity, random_slab, sparse_predicate  # noqa: E402
from lohard.mdm import (  # noqa: E402
    BPOracle,
    ExactOracle,
    Remask,
    position_scores,
    sample,
)
from lohard.predicates import Predicate  # noqa: E402

ALPHA = 1e-3


def _dist():
    # NAE on 3 ordered triples of 4 binary latents, skewed prior: 16 sequences, L = 7.
    return sparse_predicate(4, Predicate.nae(3, 2), 3, prior=[0.65, 0.35],
                            permutation="random", rng=7)


def _parity():
    # Noisy parities: every sequence has positive probability, L = 6.
    return noisy_parity(3, 3, 2, 0.15, permutation="random", rng=5)


def _pvalue(dist, samples, support_of):
    sup, p = support_of(dist)
    p = p / p.sum()
    index = {tuple(r): i for i, r in enumerate(sup)}
    codes = [index.get(tuple(r), -1) for r in samples]
    if min(codes) < 0:
        return 0.0
    obs = np.bincount(codes, minlength=len(sup))
    return scipy_stats.chisquare(obs, p * len(samples)).pvalue


class _Recorder(torch.nn.Module):
    """The exact oracle, recording the masked positions it was called on."""

    def __init__(self, dist):
        super().__init__()
        self.inner = ExactOracle(dist)
        self.vocab_size, self.mask_id = self.inner.vocab_size, self.inner.mask_id
        self.max_seq_len = self.inner.max_seq_len
        self.seen = []
        self.tokens = []

    def forward(self, x):
        self.seen.append((x == self.mask_id).clone())
        self.tokens.append(x.clone())
        return self.inner(x)


@pytest.mark.parametrize("kw", [
    dict(sampler="entropy", steps=7),
    dict(sampler="entropy", steps=7, noise="gumbel"),
    # tau = 1: only probability-one values are unmasked together (they are determined).
    dict(sampler="threshold", tau=1.0),
    dict(sampler="semi-ar", block_size=7, steps=7, block_score="entropy"),
    dict(sampler="semi-ar", block_size=1, steps=7, block_score="margin"),
], ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_decoders_sample_p_data_with_the_exact_oracle(kw, support_of):
    d = _dist()
    x = sample(ExactOracle(d), 4000, length=d.length, generator=21, **kw)
    assert _pvalue(d, x.numpy(), support_of) > ALPHA


@pytest.mark.parametrize("block_size,score", [(2, "margin"), (3, "random"), (3, "top-prob")])
def test_semi_ar_blocks_sample_p_data_and_go_left_to_right(block_size, score, support_of):
    d = _parity()
    rec = _Recorder(d)
    x = sample(rec, 4000, sampler="semi-ar", block_size=block_size, steps=d.length,
               block_score=score, length=d.length, generator=22)
    assert _pvalue(d, x.numpy(), support_of) > ALPHA
    # Block b + 1 is untouched while block b holds a mask.
    for masked in rec.seen:
        blocks = masked.reshape(masked.shape[0], -1, block_size).any(dim=2)
        for b in range(blocks.shape[1] - 1):
            assert bool((~blocks[:, b] | blocks[:, b + 1:].all(dim=1)).all())


def test_bp_order_samples_p_data_with_exact_values(support_of):
    d = _dist()
    bp = BPOracle(d)
    x = sample(ExactOracle(d), 3000, sampler="bp-order", order_model=bp, steps=d.length,
               length=d.length, generator=23, batch_size=3000)
    assert _pvalue(d, x.numpy(), support_of) > ALPHA
    assert bp.calls == d.length  # one BP pass per reverse step


def test_bp_order_follows_bp_confidence():
    # After the first step, the position unmasked next is BP's most confident masked one.
    d = nae_sat(6, 8, rng=3)
    bp = BPOracle(d)
    rec = _Recorder(d)
    sample(rec, 20, sampler="bp-order", order_model=bp, steps=d.length, length=d.length,
           generator=24)
    for tokens, before, after in zip(rec.tokens[:-1], rec.seen[:-1], rec.seen[1:],
                                     strict=True):
        new = before & ~after
        assert bool((new.sum(dim=1) == 1).all())
        score = position_scores(BPOracle(d).probs(tokens), "margin")
        best = torch.where(before, score, -1.0).max(dim=1).values
        assert torch.allclose(score[new], best)


def test_bp_order_falls_back_to_the_model_where_the_oracle_has_no_posterior():
    # The model's law has another structure: it writes values that are impossible under
    # the oracle's law; those sequences are then ranked by the model's own margin.
    d = _dist()
    other = sparse_predicate(4, Predicate.nae(3, 2), 3, prior=[0.65, 0.35],
                             permutation="random", rng=8)
    order = ExactOracle(d)
    x = sample(ExactOracle(other), 300, sampler="bp-order", order_model=order,
               steps=d.length, length=d.length, generator=29)
    assert (x != d.mask_id).all()
    assert order.fallbacks > 0


def test_random_remasking_keeps_p_data(support_of):
    d = _dist()
    rec = _Recorder(d)
    rm = Remask("random", eta=1.0, t_on=0.7, t_off=0.35)
    x, calls = sample(rec, 4000, sampler="random", steps=28, remask=rm, length=d.length,
                      generator=25, return_calls=True, batch_size=4000)
    # Precondition of exactness: one token unmasked per step, so check the schedule gave it.
    seen = torch.stack(rec.seen)  # (calls, B, L)
    gained = (seen[:-1] & ~seen[1:]).sum(dim=2)
    assert int(gained.max()) <= 1
    assert int(seen[-1].sum(dim=1).max()) <= 1
    assert _pvalue(d, x.numpy(), support_of) > ALPHA
    # Remasking happened: some sequence needed more calls than its 7 tokens.
    assert int(calls.max()) > d.length


def test_semi_ar_with_remasking_finishes_every_block():
    d = _parity()
    rm = Remask("random", eta=1.0, t_on=1.0, t_off=0.01)
    x = sample(ExactOracle(d), 200, sampler="semi-ar", block_size=2, steps=12, remask=rm,
               length=d.length, generator=28)
    assert (x != d.mask_id).all()


def test_confidence_remasking_redraws_the_least_confident_token():
    rm = Remask("confidence", eta=1.0)
    decoded = torch.tensor([[True, True, True, False]])
    conf = torch.tensor([[0.9, 0.2, 0.5, 0.0]])
    back = rm.choose(decoded, conf, torch.tensor([1]), None)
    assert back.tolist() == [[False, True, False, False]]
    back = rm.choose(decoded, conf, torch.tensor([5]), None)  # capped at what is decoded
    assert back.tolist() == [[True, True, True, False]]


def test_threshold_unmasks_everything_confident_in_one_call():
    d = _parity()
    o = ExactOracle(d)
    x, calls = sample(o, 50, sampler="threshold", tau=1e-9, length=d.length, generator=26,
                      return_calls=True)
    assert (x != d.mask_id).all() and bool((calls == 1).all())
    x, calls = sample(o, 50, sampler="threshold", tau=1.0, length=d.length, generator=26,
                      return_calls=True)
    assert (x != d.mask_id).all()
    assert bool((calls >= 1).all()) and bool((calls <= d.length).all())


def test_calls_count_the_steps_that_unmask():
    d = _dist()
    o = ExactOracle(d)
    _, calls = sample(o, 30, sampler="margin", steps=d.length, length=d.length,
                      generator=27, return_calls=True)
    assert bool((calls == d.length).all())
    # 50 steps for 7 tokens: K = 0 at many steps, which need no call.
    _, calls = sample(o, 30, sampler="margin", steps=50, length=d.length, generator=27,
                      return_calls=True)
    assert bool((calls == d.length).all())
    p = _parity()  # every state possible, so parallel draws never contradict
    _, calls = sample(ExactOracle(p), 30, sampler="margin", steps=2, length=p.length,
                      generator=27, return_calls=True)
    assert bool((calls == 2).all())


def test_entropy_score_is_minus_the_entropy():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(3, 5, 4, generator=g), dim=-1)
    probs[0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    want = (probs * probs.log()).nan_to_num().sum(-1)
    assert torch.allclose(position_scores(probs, "entropy"), want, atol=1e-6)
    assert float(position_scores(probs, "entropy")[0, 0]) == 0.0
    top2 = probs.topk(2, dim=-1).values
    assert torch.equal(position_scores(probs, "margin"), top2[..., 0] - top2[..., 1])


def test_decoder_errors():
    d = _dist()
    o = ExactOracle(d)
    for tau in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"tau must lie in \(0, 1\]"):
            sample(o, 2, sampler="threshold", tau=tau, length=d.length)
    with pytest.raises(ValueError, match="does not divide the sequence length L = 7"):
        sample(o, 2, sampler="semi-ar", block_size=3, steps=7, length=d.length)
    with pytest.raises(ValueError, match="exceeds the sequence length"):
        sample(o, 2, sampler="semi-ar", block_size=8, steps=8, length=d.length)
    with pytest.raises(ValueError, match="multiple of 7"):
        sample(o, 2, sampler="semi-ar", block_size=1, steps=10, length=d.length)
    with pytest.raises(ValueError, match="needs block_size"):
        sample(o, 2, sampler="semi-ar", length=d.length)
    with pytest.raises(ValueError, match="remask more tokens"):
        Remask("random", eta=1.5)
    with pytest.raises(ValueError, match="t_off <= t_on"):
        Remask("random", t_on=0.5, t_off=0.0)
    with pytest.raises(ValueError, match="unknown remask mode"):
        Remask("lowest")
    with pytest.raises(ValueError, match="BPOracle"):
        sample(o, 2, sampler="bp-order", length=d.length)
    slab = random_slab(5, 4, 0.5, rng=0)
    with pytest.raises(ValueError, match="CSP structure"):
        BPOracle(slab)
    with pytest.raises(ValueError, match="unknown block_score"):
        sample(o, 2, sampler="semi-ar", block_size=7, steps=7, block_score="x",
               length=d.length)


# -- Sudoku -----------------------------------------------------------------------------------
class _TeacherMDM(torch.nn.Module):
    """p_theta = p_data for Sudoku: a puzzle has one solution, so the exact conditional of
    every blank is a point mass on its solution digit, whatever else is filled."""

    def __init__(self, puzzles, solutions, box=2):
        super().__init__()
        n = box * box
        self.vocab_size, self.mask_id = n + 1, n + 1
        self.table = {np.asarray(p, np.int64).tobytes(): np.asarray(s, np.int64)
                      for p, s in zip(puzzles, solutions, strict=True)}
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inp):
        N = inp.shape[1] // 2
        sol = np.stack([self.table[r.tobytes()] for r in inp[:, :N].numpy().astype(np.int64)])
        logits = torch.full((inp.shape[0], 2 * N, self.vocab_size), -30.0)
        logits[:, N:] = logits[:, N:].scatter(2, torch.from_numpy(sol)[..., None], 30.0)
        return logits + self.anchor


@pytest.fixture(scope="module")
def sudoku4():
    import lohard.sudoku as S

    return S.generate_puzzles(60, box=2, rng=31, jobs=1)


@pytest.mark.parametrize("kw", [
    dict(method="entropy"), dict(method="threshold", tau=0.9),
    dict(method="semi-ar", block_size=4, block_score="entropy"),
    dict(method="semi-ar", block_size=8, block_score="random"),
    dict(method="margin", remask=Remask("confidence", 1.0)),
    dict(method="vanilla", remask=Remask("random", 0.5)),
], ids=lambda kw: "-".join(str(v) for v in kw.values())[:40])
def test_sudoku_decoders_solve_every_puzzle_with_the_exact_conditionals(sudoku4, kw):
    from lohard.mdm import mdm_decode

    p, sol = sudoku4.puzzles, sudoku4.solutions
    dec = mdm_decode(_TeacherMDM(p, sol), p, seed=1, **kw)
    assert dec.solved.all() and np.array_equal(dec.grids, sol)
    blanks = (p == 0).sum(axis=1)
    if kw["method"] == "threshold":  # every blank is certain: one call fills them all
        assert (dec.calls == 1).all()
    elif "remask" in kw:
        assert (dec.calls >= blanks).all() and (dec.calls > blanks).any()
    else:
        assert np.array_equal(dec.calls, blanks)
    if kw["method"] == "semi-ar":  # every cell of block b before any of block b + 1
        B = kw["block_size"]
        st = np.where(p == 0, dec.steps, -1).reshape(len(p), -1, B)
        last = st.max(axis=2)
        first = np.where(st >= 0, st, 10**6).min(axis=2)
        for b in range(st.shape[1] - 1):
            later = first[:, b + 1:].min(axis=1)
            assert ((last[:, b] < later) | (last[:, b] < 0) | (later == 10**6)).all()


def test_sudoku_decoder_errors(sudoku4):
    from lohard.mdm import mdm_decode

    m = _TeacherMDM(sudoku4.puzzles, sudoku4.solutions)
    with pytest.raises(ValueError, match=r"tau must lie in \(0, 1\]"):
        mdm_decode(m, sudoku4.puzzles[:2], method="threshold", tau=0.0)
    with pytest.raises(ValueError, match="does not divide the sequence length L = 16"):
        mdm_decode(m, sudoku4.puzzles[:2], method="semi-ar", block_size=5)
    with pytest.raises(ValueError, match="exceeds the sequence length"):
        mdm_decode(m, sudoku4.puzzles[:2], method="semi-ar", block_size=32)
