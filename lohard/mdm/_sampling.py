"""Reverse-process samplers: vanilla, the paper's adaptive orders, and decoders beyond the paper.

The paper's three (Sec. 2, App. D): ``vanilla``, ``top-prob``, ``margin``. Beyond it, the
rules other MDM codebases use (``docs/decoders.md`` maps the names): ``entropy`` (Dream),
``threshold`` (confidence-threshold parallel decoding, Fast-dLLM), ``semi-ar`` (blocks
left to right, LLaDA), ``bp-order`` (belief propagation on the CSP ranks the positions,
the MDM gives the values) and remasking added to any order (:class:`Remask`, ReMDM / P2).
"""

from __future__ import annotations

import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from lohard.mdm._loss import alpha, check_tokens

#: Sampler names accepted by :func:`sample`.
SAMPLERS = ("vanilla", "top-prob", "margin", "random", "entropy", "threshold", "semi-ar",
            "bp-order")
#: The paper's three (Sec. 2, App. D); ``random`` is vanilla's order with K per step fixed.
PAPER_SAMPLERS = SAMPLERS[:3]
#: Position scores (higher is unmasked first): inside ``semi-ar`` blocks, and of ``bp-order``.
POSITION_SCORES = ("top-prob", "margin", "entropy", "random")
#: Which decoded tokens :class:`Remask` puts back under the mask.
REMASK_MODES = ("random", "confidence")
#: How adaptive samplers choose K per step (App. D.1.2).
K_MODES = ("deterministic", "binomial")
#: Noise added to the adaptive position score (App. D.1.2 Gaussian, App. D.2 Gumbel).
NOISES = (None, "gumbel", "gaussian")
#: Default noise coefficient: App. D.2 adds Gumbel noise with coefficient 0.5.
DEFAULT_NOISE_SCALE = 0.5


def _model_device(model) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _gumbel(shape, generator, device) -> torch.Tensor:
    # Clamp away from 0 so -log(-log u) stays finite.
    u = torch.rand(shape, generator=generator, device=device).clamp_min(1e-20)
    return -torch.log(-torch.log(u))


def select_top_k(scores: torch.Tensor, masked: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Choose, per row, the ``k`` masked positions with the highest score.

    Parameters
    ----------
    scores : float tensor, shape (B, L)
    masked : bool tensor, shape (B, L)
        Candidate positions.
    k : int64 tensor, shape (B,)
        How many to choose in each row, 0 <= k <= number of masked positions.

    Returns
    -------
    bool tensor, shape (B, L): the chosen positions (a subset of ``masked``).
    Ties are broken by position (stable sort).
    """
    count = masked.sum(dim=1)
    if bool((k > count).any()) or bool((k < 0).any()):
        row = int(torch.nonzero((k > count) | (k < 0))[0, 0])
        raise ValueError(f"K must lie in [0, number of masked positions]; row {row} asks "
                         f"K = {int(k[row])} of {int(count[row])} masked positions")
    return _top_k(scores, masked, k)


def _top_k(scores, masked, k):
    s = torch.where(masked, scores.float(), -math.inf)
    order = torch.argsort(s, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order))
    return (ranks < k[:, None]) & masked


def position_scores(probs: torch.Tensor, rule: str, *, generator=None) -> torch.Tensor:
    r"""Score of every position under an ordering rule (higher: unmasked first).

    * ``"top-prob"``: :math:`\max_j p^i(j)`;
    * ``"margin"``: :math:`p^i(j_1) - p^i(j_2)` (the two most likely values);
    * ``"entropy"``: :math:`-H(p^i) = \sum_j p^i(j) \log p^i(j)` (lowest entropy first);
    * ``"random"``: uniform on [0, 1) (the order of a random permutation).

    Parameters
    ----------
    probs : float tensor, shape (B, L, V)
        The per-position laws :math:`p^i`.
    rule : str
        One of :data:`POSITION_SCORES`.
    generator : torch.Generator, optional
        For ``"random"``.
    """
    if rule not in POSITION_SCORES:
        raise ValueError(f"unknown position score {rule!r}; choose one of "
                         f"{', '.join(POSITION_SCORES)}")
    if rule == "random":
        return torch.rand(probs.shape[:-1], generator=generator, device=probs.device)
    if rule == "entropy":
        p = probs.float()
        return torch.where(p > 0, p * torch.log(p.clamp_min(1e-38)), 0.0).sum(dim=-1)
    top2 = probs.topk(2, dim=-1).values
    if rule == "top-prob":
        return top2[..., 0]
    return top2[..., 0] - top2[..., 1]


def _position_scores(probs: torch.Tensor, sampler: str) -> torch.Tensor:
    return position_scores(probs, sampler)


@dataclass(frozen=True)
class Remask:
    r"""A remasking schedule added to any order (ReMDM, Wang et al. 2025; P2, Peng et al.
    2025): decoded tokens go back under the mask and are drawn again later, with more
    context, so an early mistake can be repaired.

    At a reverse step from t to s whose time s lies in the window
    ``t_off <= s <= t_on``, after the order unmasks its K positions, the decoder remasks

    .. math:: R = \lfloor \eta K + 1/2 \rfloor

    tokens it generated at earlier steps (never a prompt token, never one of this step's):

    * ``mode="random"``: chosen uniformly (ReMDM's order-free remasking);
    * ``mode="confidence"``: those whose value had the lowest probability
      :math:`p_\theta(x^i = v \mid x_t)` when it was drawn (ReMDM-conf, P2's
      self-correction).

    :math:`\eta \le 1` (a step never remasks more than it unmasks); the window ends
    before s = 0, so the last steps finish the sequence. Model calls are unchanged for
    the fixed-step orders (remasking needs no extra forward pass); ``threshold`` and the
    Sudoku decoders take the extra steps the remasked tokens need.

    With the exact conditionals (p_theta = p_data), one token per step and the
    ``random`` order, ``mode="random"`` keeps the output law exact (a remask chosen
    independently of the values, redrawn from its exact conditional, is a Gibbs move of
    the revealed marginal); the tests check it.
    """

    mode: str = "confidence"
    eta: float = 0.5
    t_on: float = 0.6
    t_off: float = 0.1

    def __post_init__(self) -> None:
        if self.mode not in REMASK_MODES:
            raise ValueError(f"unknown remask mode {self.mode!r}; choose one of "
                             f"{', '.join(REMASK_MODES)}")
        if not (math.isfinite(self.eta) and self.eta >= 0):
            raise ValueError(f"the remask rate eta must be finite and >= 0, got {self.eta}")
        if self.eta > 1:
            raise ValueError(f"the remask rate eta = {self.eta:g} exceeds 1: a step would "
                             f"remask more tokens (R = eta K) than it unmasks (K)")
        if not (0 < self.t_off <= self.t_on <= 1):
            raise ValueError(f"the remask window needs 0 < t_off <= t_on <= 1 (it must end "
                             f"before t = 0 so that the last steps finish the sequence), got "
                             f"t_on = {self.t_on}, t_off = {self.t_off}")

    def active(self, s: float) -> bool:
        """Whether a step ending at time ``s`` remasks."""
        return self.eta > 0 and self.t_off <= s <= self.t_on

    def active_rows(self, s: torch.Tensor) -> torch.Tensor:
        """Per row: whether a step ending at the row's time ``s`` (B,) remasks."""
        return (s >= self.t_off) & (s <= self.t_on) & (self.eta > 0)

    def count(self, k: torch.Tensor) -> torch.Tensor:
        """R per row for K unmasked per row."""
        return torch.floor(k.double() * self.eta + 0.5).long()

    def choose(self, decoded: torch.Tensor, conf: torch.Tensor, r: torch.Tensor,
               generator) -> torch.Tensor:
        """The positions to remask: bool (B, L), ``r`` per row among ``decoded``."""
        r = torch.minimum(r, decoded.sum(dim=1))
        if self.mode == "random":
            score = torch.rand(decoded.shape, generator=generator, device=decoded.device)
        else:
            score = -conf
        return _top_k(score, decoded, r)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "eta": self.eta, "t_on": self.t_on, "t_off": self.t_off}


def sample(model, num: int | None = None, *, sampler: str = "margin", steps: int = 50,
           prompt: torch.Tensor | None = None, length: int | None = None,
           schedule: str = "linear", k_mode: str = "deterministic",
           noise: str | None = None, noise_scale: float = DEFAULT_NOISE_SCALE,
           temperature: float = 1.0, batch_size: int = 1024,
           generator: torch.Generator | int | None = None, amp: bool = True,
           progress: bool | str = False, tau: float = 0.9, block_size: int | None = None,
           block_score: str = "margin", remask: Remask | None = None, order_model=None,
           return_calls: bool = False):
    r"""Generate (or infill) sequences with the MDM reverse process.

    The time grid is :math:`t_j = 1 - j/T`, j = 0..T (T = ``steps``). Going from
    t to s < t:

    * ``"vanilla"``: each masked position is unmasked with probability
      :math:`(\alpha_s - \alpha_t)/(1 - \alpha_t)`.
    * ``"top-prob"`` / ``"margin"``: the K masked positions with the highest score
      :math:`\max_j p_\theta(x^i = j \mid x_t)` or :math:`p(j_1) - p(j_2)` (the two
      most likely values), plus optional noise, are unmasked. K matches the vanilla
      expectation (App. D.1.2): ``k_mode="deterministic"`` takes
      :math:`K = \lfloor n_{\mathrm{masked}} (\alpha_s-\alpha_t)/(1-\alpha_t) + 1/2\rfloor`,
      ``"binomial"`` draws :math:`K \sim \mathrm{Bin}(n_{\mathrm{masked}},
      (\alpha_s-\alpha_t)/(1-\alpha_t))`.
    * ``"entropy"``: the K masked positions of lowest predictive entropy
      :math:`H(p_\theta(\cdot \mid x_t)^i)` (Dream's order), K as above.
    * ``"random"``: K uniformly random masked positions (K as for the adaptive
      samplers): vanilla's order with a fixed count per step. With ``steps = L`` it
      unmasks one token per step, the any-order chain rule, so a model equal to
      p_data then samples p_data exactly.
    * ``"threshold"``: confidence-threshold parallel decoding (Fast-dLLM): every step
      unmasks each masked position with :math:`\max_j p_\theta(x^i = j \mid x_t) \ge \tau`,
      and at least the most confident one; it runs until nothing is masked, so
      ``steps`` is not used and the number of model calls varies (``return_calls``).
    * ``"semi-ar"``: blocks of B = ``block_size`` positions, left to right (LLaDA's
      semi-autoregressive decoding): the T steps are split equally over the L / B blocks
      and, inside the current block, the positions with the highest ``block_score``
      (one of :data:`POSITION_SCORES`) are unmasked, K by the block's own linear grid.
    * ``"bp-order"``: the K masked positions whose ``order_model`` law (BP marginals on
      the CSP, :class:`lohard.mdm.BPOracle`) has the largest margin are unmasked, with
      values drawn from the MDM: BP as an ordering oracle. Once the MDM has written a
      value that makes a sequence's revealed tokens impossible under the law, the oracle
      has no posterior for it, and the model's own margin ranks that sequence's positions
      (``order_model.fallbacks`` counts these sequence-steps).

    Each chosen position gets a value drawn from :math:`p_\theta(\cdot \mid x_t)`
    (tempered by ``temperature``). The last step has s = 0, so every position is
    unmasked at the end. Given prompt tokens are never changed. ``remask`` adds a
    remasking schedule (:class:`Remask`) to any order.

    Parameters
    ----------
    model : MaskedDiffusionTransformer or ExactOracle
        ``model(tokens) -> logits (B, L, V)``, attributes ``vocab_size``, ``mask_id``.
    num : int, optional
        Number of sequences (unconditional generation, or copies of a 1-D prompt).
    sampler : str
        One of :data:`SAMPLERS`.
    steps : int
        Number of reverse steps T (50 as in the paper); ``semi-ar`` needs a multiple of
        the number of blocks; ``threshold`` ignores it.
    prompt : int tensor, shape (B, L) or (L,), optional
        Sequences to infill: positions equal to ``model.mask_id`` are generated,
        the others kept. Default: all masked (unconditional).
    length : int, optional
        L for unconditional generation (default: the L of the distribution the model
        was built for, ``model.data_length``, else ``model.max_seq_len``).
    schedule : {"linear", "cosine"}
        alpha_t of the time grid.
    k_mode : {"deterministic", "binomial"}
        K per step of the adaptive samplers.
    noise : {None, "gumbel", "gaussian"}
        Noise added to the adaptive position score, scaled by ``noise_scale``
        (App. D.2: Gumbel with coefficient 0.5).
    noise_scale : float
    temperature : float
        Softmax temperature of the value draws (1: p_theta itself).
    batch_size : int
        Sequences per forward pass.
    generator : torch.Generator, int or None
        Randomness (on the model's device); an int seeds a fresh generator. The
        output is a function of the seed, ``batch_size`` and the device.
    amp : bool
        bf16 autocast of the model on CUDA (ignored on CPU).
    progress : bool or str
        A tqdm bar of the reverse steps on stderr (a string is its label).
    tau : float
        Confidence threshold of ``"threshold"``, in (0, 1].
    block_size : int, optional
        B of ``"semi-ar"``: a divisor of L, at most L.
    block_score : str
        Position score inside a ``"semi-ar"`` block (:data:`POSITION_SCORES`).
    remask : Remask, optional
        Remasking schedule added to the order.
    order_model : optional
        ``"bp-order"``'s ranking oracle: ``order_model.probs(tokens) -> (B, L, V)``.
    return_calls : bool
        Also return the model calls each sequence needed: the reverse steps at which it
        unmasked at least one token (a decoder running that sequence alone makes exactly
        these forward passes).

    Returns
    -------
    int64 tensor, shape (B, L), on the model's device; with ``return_calls`` a pair
    ``(tokens, calls)``, calls an int64 tensor of shape (B,).

    References
    ----------
    Kim et al. (ICML 2025), Sec. 2 (vanilla and adaptive inference), App. D.1.2, D.2.
    Dream 7B (Ye et al. 2025: entropy order); LLaDA (Nie et al. 2025: semi-autoregressive
    blocks); Fast-dLLM (Wu et al. 2025: confidence-threshold parallel decoding); ReMDM
    (Wang et al. 2025) and P2 (Peng et al. 2025): remasking.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid samplers are "
                         f"{', '.join(SAMPLERS)}")
    if k_mode not in K_MODES:
        raise ValueError(f"unknown k_mode {k_mode!r}; choose one of {', '.join(K_MODES)}")
    if noise not in NOISES:
        raise ValueError(f"unknown noise {noise!r}; choose one of None, 'gumbel', 'gaussian'")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps}")
    if not (noise_scale >= 0 and math.isfinite(noise_scale)):
        raise ValueError(f"noise_scale must be finite and >= 0, got {noise_scale}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if sampler == "threshold":
        check_tau(tau)
    if block_score not in POSITION_SCORES:
        raise ValueError(f"unknown block_score {block_score!r}; choose one of "
                         f"{', '.join(POSITION_SCORES)}")
    if remask is not None and not isinstance(remask, Remask):
        raise TypeError(f"remask must be a lohard.mdm.Remask schedule, got "
                        f"{type(remask).__name__}")
    if sampler == "bp-order" and order_model is None:
        raise ValueError("bp-order ranks positions by BP marginals on the CSP: pass "
                         "order_model=lohard.mdm.BPOracle(dist) for an L&O distribution with "
                         "table observations (a CSP factor graph)")
    device = _model_device(model)
    x = _initial(model, num, prompt, length, device)
    if sampler == "semi-ar":
        check_blocks(block_size, x.shape[1], steps)
    if isinstance(generator, torch.Generator):
        gen = generator
    else:
        gen = torch.Generator(device=device)
        if generator is None:
            gen.seed()
        else:
            gen.manual_seed(int(generator))
    out = torch.empty_like(x)
    calls = torch.zeros(x.shape[0], dtype=torch.int64, device=device)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        n_batches = -(-x.shape[0] // int(batch_size))
        per = x.shape[1] if sampler == "threshold" else int(steps)
        bar = tqdm(total=n_batches * per, unit="step", file=sys.stderr,
                   desc=progress if isinstance(progress, str) else f"sample {sampler}")
    opts = _Opts(sampler, int(steps), schedule, k_mode, noise, float(noise_scale),
                 float(temperature), float(tau), block_size, block_score, remask, order_model)
    try:
        for lo in range(0, x.shape[0], batch_size):
            out[lo:lo + batch_size], calls[lo:lo + batch_size] = _sample_batch(
                model, x[lo:lo + batch_size], opts, gen, amp and device.type == "cuda", bar)
    finally:
        if bar is not None:
            bar.close()
        if was_training:
            model.train()
    return (out, calls) if return_calls else out


def check_tau(tau: float) -> float:
    """The confidence threshold of ``threshold`` decoding, checked to lie in (0, 1]."""
    if not (math.isfinite(tau) and 0 < tau <= 1):
        raise ValueError(f"the confidence threshold tau must lie in (0, 1], got {tau}")
    return float(tau)


def check_blocks(block_size, length: int, steps: int | None = None) -> int:
    """Number of ``semi-ar`` blocks of ``block_size`` in ``length`` positions (checked)."""
    if block_size is None:
        raise ValueError("semi-ar needs block_size, the number B of positions per block")
    if int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size}")
    b = int(block_size)
    if b > length:
        raise ValueError(f"block size B = {b} exceeds the sequence length L = {length}")
    if length % b:
        raise ValueError(f"block size B = {b} does not divide the sequence length L = "
                         f"{length} (L mod B = {length % b})")
    n_blocks = length // b
    if steps is not None and steps % n_blocks:
        raise ValueError(f"semi-ar splits the T = {steps} steps equally over the L / B = "
                         f"{n_blocks} blocks: T must be a multiple of {n_blocks}")
    return n_blocks


@dataclass(frozen=True)
class _Opts:
    sampler: str
    steps: int
    schedule: str
    k_mode: str
    noise: str | None
    noise_scale: float
    temperature: float
    tau: float
    block_size: int | None
    block_score: str
    remask: Remask | None
    order_model: object


def default_length(model) -> int:
    """L of unconditional generation: the model's training data length when it knows it
    (models from :func:`~lohard.mdm.build_model`), else its ``max_seq_len``."""
    length = getattr(model, "data_length", None)
    return model.max_seq_len if length is None else int(length)


def _initial(model, num, prompt, length, device) -> torch.Tensor:
    if prompt is None:
        if num is None:
            raise ValueError("give num (the number of sequences) or a prompt")
        n = default_length(model) if length is None else int(length)
        if n < 1 or n > model.max_seq_len:
            raise ValueError(f"length must lie in [1, max_seq_len = {model.max_seq_len}], "
                             f"got {n}")
        if int(num) != num or num < 0:
            raise ValueError(f"num must be an integer >= 0, got {num}")
        return torch.full((int(num), n), model.mask_id, dtype=torch.int64, device=device)
    if num is not None and (int(num) != num or num < 0):
        raise ValueError(f"num must be an integer >= 0, got {num}")
    p = torch.as_tensor(prompt, device=device)
    if p.ndim not in (1, 2):
        raise ValueError(f"a prompt is one sequence (L,) or a batch (B, L), got shape "
                         f"{tuple(p.shape)}")
    if length is not None and int(length) != p.shape[-1]:
        raise ValueError(f"length = {length} disagrees with the prompt's length "
                         f"L = {p.shape[-1]} (give one or the other)")
    if p.ndim == 1:
        p = p[None].expand(1 if num is None else int(num), -1)
    elif num is not None and int(num) != p.shape[0]:
        raise ValueError(f"num = {num} disagrees with the prompt batch of {p.shape[0]}")
    check_tokens(p, model.vocab_size, allow_mask=True)
    if p.shape[1] > model.max_seq_len:
        raise ValueError(f"prompt length L = {p.shape[1]} exceeds the model's max_seq_len = "
                         f"{model.max_seq_len}")
    return p.to(torch.int64).clone()


@torch.no_grad()
def _sample_batch(model, x, o: _Opts, gen, use_amp, bar=None):
    device = x.device
    B, L = x.shape
    amp_ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
    calls = torch.zeros(B, dtype=torch.int64, device=device)
    prompt = x != model.mask_id
    # Probability each generated token had when drawn (for confidence remasking).
    conf = torch.zeros(B, L, device=device)

    def forward(j, total):
        with amp_ctx:
            logits = model(x)
        logp = torch.log_softmax(logits.float(), dim=-1)
        if bool(torch.isnan(logp).any()):
            raise FloatingPointError(f"the model gave NaN log-probabilities at reverse step "
                                     f"{j + 1} of {total} (non-finite weights or inputs)")
        # The position scores use p_theta itself; only the value draws are tempered.
        logq = logp if o.temperature == 1.0 else torch.log_softmax(logp / o.temperature, dim=-1)
        # Gumbel-max: an exact draw from softmax(logq), zero-probability values never win.
        values = (logq + _gumbel(logq.shape, gen, device)).argmax(dim=-1)
        return logp, values

    def commit(chosen, values, logp, s):
        # s: float, or a (B,) tensor of per-row times (threshold decoding)
        nonlocal x, conf
        before = (x != model.mask_id) & ~prompt  # generated at earlier steps
        x = torch.where(chosen, values, x)
        conf = torch.where(chosen, logp.gather(-1, values[..., None])[..., 0].exp(), conf)
        busy = chosen.any(dim=1)
        if o.remask is not None:
            on = (o.remask.active_rows(s) if torch.is_tensor(s)
                  else torch.full_like(busy, o.remask.active(s)))
            if bool(on.any()):
                cand = before if region is None else before & region
                r = o.remask.count(chosen.sum(dim=1)) * on
                back = o.remask.choose(cand, conf, r, gen)
                x = torch.where(back, model.mask_id, x)
        calls.add_(busy.long())

    region = None
    if o.sampler == "threshold":
        # Nominal time: 1 - (unmask events so far) / (positions masked at the start); it
        # falls by at least 1/n per step, so a remask window always closes.
        n0 = (~prompt).sum(dim=1).clamp_min(1).double()
        events = torch.zeros(B, dtype=torch.float64, device=device)
        j = 0
        while True:
            masked = x == model.mask_id
            if not bool(masked.any()):
                break
            logp, values = forward(j, L)
            top = logp.exp().max(dim=-1).values
            first = _top_k(top, masked, masked.any(dim=1).long())
            chosen = masked & ((top >= o.tau) | first)
            events += chosen.sum(dim=1).double()
            commit(chosen, values, logp, (1.0 - events / n0).clamp_min(0.0))
            j += 1
            if bar is not None:
                bar.update(1)
        return x, calls

    T = o.steps
    if o.sampler == "semi-ar":
        n_blocks = L // o.block_size
        per = T // n_blocks
    else:
        n_blocks, per = 1, T
    ts = torch.linspace(1.0, 0.0, per + 1, dtype=torch.float64)
    alphas = alpha(ts, o.schedule).tolist()
    alphas[0], alphas[-1] = 0.0, 1.0  # exact ends: alpha_1 = 0, alpha_0 = 1
    pos = torch.arange(L, device=device)
    for j in range(T):
        if bar is not None:
            bar.update(1)
        blk, jj = divmod(j, per)
        a_t, a_s = alphas[jj], alphas[jj + 1]
        ratio = 1.0 if jj == per - 1 else min(1.0, max(0.0, (a_s - a_t) / (1.0 - a_t)))
        s = 1.0 - (j + 1) / T
        if jj == per - 1:
            s = -1.0  # a block's last step never remasks: its tokens would stay masked
        masked = x == model.mask_id
        if o.sampler == "semi-ar":
            region = (pos >= blk * o.block_size) & (pos < (blk + 1) * o.block_size)
            masked = masked & region
        if o.sampler == "vanilla":
            u = torch.rand(x.shape, generator=gen, device=device)
            chosen = masked & (u < ratio)
            # With many steps most vanilla steps unmask nothing: skip their forward pass
            # (one host sync, cheap next to a forward pass).
            if not bool(chosen.any()):
                continue
        logp, values = forward(j, T)
        if o.sampler != "vanilla":
            count = masked.sum(dim=1)
            if o.k_mode == "deterministic":
                k = torch.floor(count.double() * ratio + 0.5).long()
            else:
                u = torch.rand(x.shape, generator=gen, device=device)
                k = (masked & (u < ratio)).sum(dim=1)
            if o.sampler == "random":
                score = torch.rand(masked.shape, generator=gen, device=device)
            elif o.sampler == "semi-ar":
                score = position_scores(logp.exp(), o.block_score, generator=gen)
            elif o.sampler == "bp-order":
                oprobs, none = _order_probs(o.order_model, x)
                score = position_scores(oprobs, "margin")
                if bool(none.any()):  # no posterior: the model's own margin ranks the row
                    own = position_scores(logp.exp(), "margin")
                    score = torch.where(none[:, None], own, score)
            else:
                score = _position_scores(logp.exp(), o.sampler)
            if o.noise == "gumbel":
                score = score + o.noise_scale * _gumbel(score.shape, gen, device)
            elif o.noise == "gaussian":
                score = score + o.noise_scale * torch.randn(score.shape, generator=gen,
                                                            device=device)
            chosen = _top_k(score, masked, k.clamp(max=count))
        commit(chosen, values, logp, s)
    return x, calls


def _order_probs(order_model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ordering oracle's laws (B, L, V), and which rows have none.

    A sequence whose revealed tokens have probability 0 under the oracle's distribution
    (the MDM wrote an impossible value) has no posterior: its row is flagged, the caller
    ranks it by the model's own margin instead, and ``order_model.fallbacks`` counts the
    (sequence, step) pairs where that happened.
    """
    length = getattr(order_model, "max_seq_len", x.shape[1])
    if x.shape[1] != length:
        raise ValueError(f"the ordering oracle is for sequences of L = {length} tokens, the "
                         f"decoded ones have {x.shape[1]}")
    dev = _model_device(order_model) if isinstance(order_model, torch.nn.Module) else x.device
    if dev != x.device:  # e.g. an exact oracle on the CPU ranking for a model on a GPU
        probs, none = _order_probs(order_model, x.to(dev))
        return probs.to(x.device), none.to(x.device)
    none = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    try:
        return torch.as_tensor(order_model.probs(x), device=x.device).float(), none
    except ValueError:
        rows = []
        for b in range(x.shape[0]):
            try:
                rows.append(torch.as_tensor(order_model.probs(x[b:b + 1]),
                                            device=x.device).float()[0])
            except ValueError:
                rows.append(None)
                none[b] = True
        shape = (x.shape[1], getattr(order_model, "vocab_size", 1))
        out = torch.stack([torch.zeros(shape, device=x.device) if r is None else r
                           for r in rows])
        order_model.fallbacks = getattr(order_model, "fallbacks", 0) + int(none.sum())
        return out, none
