"""Reverse-process samplers: vanilla, and adaptive by top probability or top-probability margin."""

from __future__ import annotations

import math
import sys
from contextlib import nullcontext

import torch

from lohard.mdm._loss import alpha, check_tokens

#: Sampler names accepted by :func:`sample`.
SAMPLERS = ("vanilla", "top-prob", "margin", "random")
#: The paper's three (Sec. 2, App. D); ``random`` is vanilla's order with K per step fixed.
PAPER_SAMPLERS = SAMPLERS[:3]
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


def _position_scores(probs: torch.Tensor, sampler: str) -> torch.Tensor:
    top2 = probs.topk(2, dim=-1).values
    if sampler == "top-prob":
        return top2[..., 0]
    return top2[..., 0] - top2[..., 1]


def sample(model, num: int | None = None, *, sampler: str = "margin", steps: int = 50,
           prompt: torch.Tensor | None = None, length: int | None = None,
           schedule: str = "linear", k_mode: str = "deterministic",
           noise: str | None = None, noise_scale: float = DEFAULT_NOISE_SCALE,
           temperature: float = 1.0, batch_size: int = 1024,
           generator: torch.Generator | int | None = None, amp: bool = True,
           progress: bool | str = False) -> torch.Tensor:
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

    * ``"random"``: K uniformly random masked positions (K as for the adaptive
      samplers): vanilla's order with a fixed count per step. With ``steps = L`` it
      unmasks one token per step, the any-order chain rule, so a model equal to
      p_data then samples p_data exactly.

    Each chosen position gets a value drawn from :math:`p_\theta(\cdot \mid x_t)`
    (tempered by ``temperature``). The last step has s = 0, so every position is
    unmasked at the end. Given prompt tokens are never changed.

    Parameters
    ----------
    model : MaskedDiffusionTransformer or ExactOracle
        ``model(tokens) -> logits (B, L, V)``, attributes ``vocab_size``, ``mask_id``.
    num : int, optional
        Number of sequences (unconditional generation, or copies of a 1-D prompt).
    sampler : {"vanilla", "top-prob", "margin", "random"}
    steps : int
        Number of reverse steps T (50 as in the paper).
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

    Returns
    -------
    int64 tensor, shape (B, L), on the model's device.

    References
    ----------
    Kim et al. (ICML 2025), Sec. 2 (vanilla and adaptive inference), App. D.1.2, D.2.
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
    device = _model_device(model)
    x = _initial(model, num, prompt, length, device)
    if isinstance(generator, torch.Generator):
        gen = generator
    else:
        gen = torch.Generator(device=device)
        if generator is None:
            gen.seed()
        else:
            gen.manual_seed(int(generator))
    out = torch.empty_like(x)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        n_batches = -(-x.shape[0] // int(batch_size))
        bar = tqdm(total=n_batches * int(steps), unit="step", file=sys.stderr,
                   desc=progress if isinstance(progress, str) else f"sample {sampler}")
    try:
        for lo in range(0, x.shape[0], batch_size):
            out[lo:lo + batch_size] = _sample_batch(
                model, x[lo:lo + batch_size], sampler, int(steps), schedule, k_mode, noise,
                float(noise_scale), float(temperature), gen, amp and device.type == "cuda",
                bar)
    finally:
        if bar is not None:
            bar.close()
        if was_training:
            model.train()
    return out


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
def _sample_batch(model, x, sampler, steps, schedule, k_mode, noise, noise_scale, temperature,
                  gen, use_amp, bar=None) -> torch.Tensor:
    device = x.device
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    alphas = alpha(ts, schedule).tolist()
    alphas[0], alphas[-1] = 0.0, 1.0  # exact ends: alpha_1 = 0, alpha_0 = 1
    amp_ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
    for j in range(steps):
        if bar is not None:
            bar.update(1)
        a_t, a_s = alphas[j], alphas[j + 1]
        ratio = 1.0 if j == steps - 1 else min(1.0, max(0.0, (a_s - a_t) / (1.0 - a_t)))
        masked = x == model.mask_id
        if sampler == "vanilla":
            u = torch.rand(x.shape, generator=gen, device=device)
            chosen = masked & (u < ratio)
            # With many steps most vanilla steps unmask nothing: skip their forward pass
            # (one host sync, cheap next to a forward pass).
            if not bool(chosen.any()):
                continue
        with amp_ctx:
            logits = model(x)
        logp = torch.log_softmax(logits.float(), dim=-1)
        if bool(torch.isnan(logp).any()):
            raise FloatingPointError(f"the model gave NaN log-probabilities at reverse step "
                                     f"{j + 1} of {steps} (non-finite weights or inputs)")
        # The position scores use p_theta itself; only the value draws are tempered.
        logq = logp if temperature == 1.0 else torch.log_softmax(logp / temperature, dim=-1)
        # Gumbel-max: an exact draw from softmax(logq), zero-probability values never win.
        values = (logq + _gumbel(logq.shape, gen, device)).argmax(dim=-1)
        if sampler != "vanilla":
            count = masked.sum(dim=1)
            if k_mode == "deterministic":
                k = torch.floor(count.double() * ratio + 0.5).long()
            else:
                u = torch.rand(x.shape, generator=gen, device=device)
                k = (masked & (u < ratio)).sum(dim=1)
            if sampler == "random":
                score = torch.rand(masked.shape, generator=gen, device=device)
            else:
                score = _position_scores(logp.exp(), sampler)
            if noise == "gumbel":
                score = score + noise_scale * _gumbel(score.shape, gen, device)
            elif noise == "gaussian":
                score = score + noise_scale * torch.randn(score.shape, generator=gen,
                                                          device=device)
            chosen = _top_k(score, masked, k.clamp(max=count))
        x = torch.where(chosen, values, x)
    return x
