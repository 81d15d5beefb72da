"""MDM training losses: the Eq. (1) subset form and the continuous-time ELBO (Prop. 2.1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSS_KINDS = ("eq1", "elbo")
SCHEDULES = ("linear", "cosine")


def alpha(t: torch.Tensor, schedule: str) -> torch.Tensor:
    """alpha_t, the probability a token is still unmasked at time t (torch twin of
    :data:`lohard.lo.LINEAR` / :data:`lohard.lo.COSINE`)."""
    if schedule == "linear":
        return 1.0 - t
    if schedule == "cosine":
        return torch.cos(0.5 * math.pi * t)
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def one_minus_alpha(t: torch.Tensor, schedule: str) -> torch.Tensor:
    """1 - alpha_t without cancellation near t = 0 (cosine: 2 sin^2(pi t / 4))."""
    if schedule == "linear":
        return t
    if schedule == "cosine":
        return 2.0 * torch.sin(0.25 * math.pi * t) ** 2
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def dalpha(t: torch.Tensor, schedule: str) -> torch.Tensor:
    """The derivative alpha'_t (<= 0)."""
    if schedule == "linear":
        return -torch.ones_like(t)
    if schedule == "cosine":
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def loss_masks(batch: int, length: int, *, kind: str = "elbo", schedule: str = "linear",
               generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw the masks and per-sequence weights of one Monte Carlo loss estimate.

    Parameters
    ----------
    batch, length : int
        B sequences of length L.
    kind : {"eq1", "elbo"}
        ``"eq1"``: |M| uniform on 1..L, M uniform of that size, weight L / |M|.
        ``"elbo"``: t uniform on (0, 1], each position masked w.p. 1 - alpha_t,
        weight -alpha'_t / (1 - alpha_t).
    schedule : {"linear", "cosine"}
        alpha_t of the ELBO (ignored by ``"eq1"``).
    generator : torch.Generator, optional
        On ``device``; the draws are a function of its state.
    device : torch.device or str

    Returns
    -------
    mask : bool tensor, shape (B, L)
        True where masked.
    weight : float32 tensor, shape (B,)
        So that ``weight * sum_{i in M} -log p(x0_i | x0[M])`` is an unbiased estimate
        of the bound of Prop. 2.1 on ``-log p_theta(x0)``, under either kind.

    Notes
    -----
    Both kinds estimate :math:`\sum_{k=1}^{L} f(k)`, with :math:`f(k)` the mean
    per-token loss over uniform masks of size k: Eq. (1) weights each size-k term
    by :math:`\binom{L}{k}^{-1} k^{-1}` per (M, i), and for the linear ELBO
    :math:`\int_0^1 t^{-1}\binom{L}{k} t^k (1-t)^{L-k} k\,dt = 1`.

    References
    ----------
    Kim et al. (ICML 2025), Prop. 2.1, Eq. (1), App. E.
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if int(length) != length or length < 1:
        raise ValueError(f"sequence length L must be an integer >= 1, got {length}")
    keys = torch.rand(batch, length, generator=generator, device=device)
    if kind == "eq1":
        size = torch.randint(1, length + 1, (batch,), generator=generator, device=device)
        # The ranks of i.i.d. uniform keys are a uniform permutation: the |M| smallest
        # keys are a uniform subset of size |M|.
        ranks = keys.argsort(dim=1).argsort(dim=1)
        mask = ranks < size[:, None]
        weight = length / size.float()
    else:
        # 1 - U with U in [0, 1) lies in (0, 1]: t = 0 (weight 1/0) is never drawn.
        t = 1.0 - torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
        mask = keys >= alpha(t, schedule).float()[:, None]
        # float64 and the cancellation-free 1 - alpha_t keep the weight finite for t > 0.
        weight = (-dalpha(t, schedule) / one_minus_alpha(t, schedule)).float()
    return mask, weight


def check_tokens(tokens: torch.Tensor, vocab_size: int, *, allow_mask: bool = False) -> None:
    """Raise ValueError unless ``tokens`` is an int tensor (B, L) of values in range."""
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
    if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"tokens must be integers, got dtype {tokens.dtype}")
    if tokens.numel():
        top = vocab_size if allow_mask else vocab_size - 1
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi > top:
            what = "data values and the mask id" if allow_mask else "data values"
            raise ValueError(f"tokens must be {what} in [0, {top}], got [{lo}, {hi}]")


def mdm_loss(model, tokens: torch.Tensor, *, kind: str = "elbo", schedule: str = "linear",
             generator: torch.Generator | None = None, reduction: str = "mean",
             check: bool = True,
             masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    r"""One Monte Carlo estimate of the MDM loss, in nats per token.

    .. math::

        \mathcal L_\theta = -\sum_{M \subseteq [L], i \in M} \frac{1}{|M|}
        \binom{L}{|M|}^{-1} \mathbb E \log p_\theta(x_0^i \mid x_0[M])
        = \int_0^1 \frac{\alpha'_t}{1-\alpha_t}\,
        \mathbb E \sum_{i:\, x_t^i = \mathrm{mask}} \log p_\theta(x_0^i \mid x_t)\,dt,

    divided by L. Both forms bound :math:`-\log p_\theta(x_0) / L` from above.

    Parameters
    ----------
    model : callable
        ``model(tokens (B, L)) -> logits (B, L, V)`` with attributes ``vocab_size``
        and ``mask_id`` (a :class:`MaskedDiffusionTransformer` or an oracle).
    tokens : int64 tensor, shape (B, L)
        Clean sequences x0 on the model's device.
    kind : {"elbo", "eq1"}
        Which unbiased estimator (see :func:`loss_masks`).
    schedule : {"linear", "cosine"}
        alpha_t of the ELBO.
    generator : torch.Generator, optional
        Draws the masks (on the tokens' device).
    reduction : {"mean", "none"}
        Batch mean (a scalar) or one estimate per sequence, shape (B,).
    check : bool
        Range-check the tokens (one device sync); the training loop turns it off.
    masks : (bool tensor (B, L), float32 tensor (B,)), optional
        The ``(mask, weight)`` to use instead of drawing them from ``generator``: e.g. a
        rank's rows of the draw :func:`loss_masks` made for the whole global batch.

    Returns
    -------
    float32 tensor, shape () or (B,)
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if check:
        check_tokens(tokens, model.vocab_size)
    b, n = tokens.shape
    if masks is None:
        masks = loss_masks(b, n, kind=kind, schedule=schedule, generator=generator,
                           device=tokens.device)
    mask, weight = masks
    inp = torch.where(mask, torch.full_like(tokens, model.mask_id), tokens)
    logits = model(inp).float()
    nll = F.cross_entropy(logits.reshape(b * n, -1), tokens.reshape(-1),
                          reduction="none").view(b, n)
    # where, not a product: an oracle may put -inf logits at unmasked positions.
    per_seq = weight * torch.where(mask, nll, 0.0).sum(dim=1) / n
    return per_seq.mean() if reduction == "mean" else per_seq
