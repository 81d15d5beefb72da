r"""pi-learners (Sec. 3.2): causal transformers trained on L&O sequences read in an order pi.

A pi-learner is an autoregressive model of :math:`x_{\pi(0)}, x_{\pi(1)}, \dots,
x_{\pi(L-1)}`, the tokens of a sequence visited in the order pi. Its test NLL
per token measures how hard the distribution is to learn in that order. The
natural order of an L&O distribution (latents first, then observations) makes
every step easy; the uniform order, a fresh random pi per sequence, is the
any-order objective an MDM is trained on (Prop. 2.1), and is the hardest.

The model (sigma-GPT construction)
----------------------------------
The model reads L steps. At step t it predicts the token at position
:math:`\pi(t)` from the tokens at :math:`\pi(0..t-1)`. Its input at step t is

.. math::

    h_t = E_{tok}[u_t] + E_{in}[p_t] + E_{tgt}[\pi(t)],

with :math:`u_0 = \mathrm{BOS}`, :math:`p_0 = L` (a "no position" slot), and
:math:`u_t = x_{\pi(t-1)}`, :math:`p_t = \pi(t-1)` for t >= 1. ``E_in`` tells the
model where the token it reads sits in the original sequence; ``E_tgt`` tells
the query at step t which position it must predict next. Causal attention
(SDPA with ``is_causal=True``) lets step t see steps 0..t only, i.e. the tokens
:math:`x_{\pi(0..t-1)}` and the positions :math:`\pi(0..t)`, so

.. math::

    -\log p_\theta(x) = -\sum_{t=0}^{L-1} \log p_\theta(x_{\pi(t)} \mid
    x_{\pi(0..t-1)};\ \pi(0..t)),

the chain rule in the order pi. All L tokens are predicted (the first from BOS
alone), so the NLL is that of the whole sequence, comparable across orders and
with the exact entropy :func:`lo_entropy`.

Orders
------
An order is an int64 array ``pi`` of shape (L,): ``pi[t]`` is the sequence
position visited at step t. ``"natural"`` is ``concat(dist.perm,
dist.trailing_positions)``: the latents in canonical order, then the
observations, then the constant trailing tokens, undoing the distribution's
shuffle. ``"closer:K"`` applies K disjoint random transpositions to the
natural order (fixed per run by the seed); ``"closer-sqrt"`` and
``"closer-tenth"`` take K = round(sqrt(L)) and K = round(L / 10).
``"uniform"`` draws a fresh uniform permutation for every sequence.

Compute convention
------------------
Training FLOPs are ``6 * n_params_nonembedding * tokens`` (Kaplan et al. 2020):
``n_params_nonembedding`` counts every parameter except the token and the two
position embedding tables (table look-ups cost no multiply-adds); the output
head counts. ``tokens`` is steps * batch_size * L, the L model steps of each
training sequence. Evaluation is not counted.

References
----------
Kim et al. (ICML 2025), Sec. 3.2 (pi-learners), Prop. 2.1; Pannatier et al.
(2024), sigma-GPT (the double position encoding).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "lohard.mdm needs PyTorch; install it with `pip install lohard[torch]`"
    ) from err

from lohard._util import RNGLike, as_generator, atomic_write, provenance, to_jsonable
from lohard.lo import LODistribution
from lohard.mdm._train import RunningLoss, load_torch_file

#: Model sizes: name -> (d_model, n_layers, n_heads). ``tiny`` is for CPU tests; each
#: size has 3-8x the non-embedding parameters of the one before (about 12 d^2 per layer).
PILEARNER_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (32, 2, 2),
    "small": (64, 2, 4),
    "medium": (128, 4, 4),
    "large": (256, 6, 8),
    "xl": (384, 8, 8),
}

#: Named orders accepted by :func:`resolve_order` (plus ``"closer:K"`` for K swaps).
ORDERS = ("natural", "closer-sqrt", "closer-tenth", "uniform")

#: File format of a pi-learner training checkpoint; bump on incompatible changes.
CHECKPOINT_FORMAT = "lohard.mdm.pilearner-checkpoint"
CHECKPOINT_VERSION = 1


# ------------------------------------------------------------------------------------------
# Entropy of an L&O distribution
# ------------------------------------------------------------------------------------------
def _entropy_nats(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis; 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


def lo_entropy(dist: LODistribution) -> float:
    r"""Exact entropy H(x) in nats of one sequence of an L&O distribution.

    .. math::

        H = N\,H(\mathrm{prior}) + \sum_{j=1}^{P}
            \mathbb{E}_{x_{S_j} \sim \mathrm{prior}^{\otimes k}}
            H(\mathcal{O}_j(\cdot \mid x_{S_j})),

    since the latents are i.i.d. and the observations are independent given
    them; the trailing tokens are constant. The scope latents of an observation
    are distinct, hence independent, so each expectation is an exact sum over
    the m^k scope values. For the random slab the observations are
    deterministic given the latents and the sum is 0. Divide by ``dist.length``
    for the entropy per token.

    Notes
    -----
    For L&O-NAE-SAT, observations are deterministic: H = N log 2.
    Cost O(T m^k k V + P) for T observation tables.
    """
    h = dist.n_latent * float(_entropy_nats(dist.prior))
    if dist.kind != "table" or dist.n_obs == 0:
        return h
    k, m = dist.k, dist.m
    # P(code) for a scope of k independent prior draws, slot 0 most significant.
    digits = np.indices((m,) * k).reshape(k, -1)  # (k, m^k)
    w = np.prod(dist.prior[digits], axis=0)
    per_table = (_entropy_nats(dist.tables) * w[None, :]).sum(axis=1)  # (T,)
    return h + float(per_table[dist.obs_table].sum())


# ------------------------------------------------------------------------------------------
# Orders
# ------------------------------------------------------------------------------------------
def natural_order(dist: LODistribution) -> np.ndarray:
    """The natural order: latents in canonical order, observations, trailing tokens.

    Returns
    -------
    int64 array, shape (L,): ``order[t]`` is the position visited at step t.
    """
    return np.concatenate([dist.perm, dist.trailing_positions]).astype(np.int64)


def closer_order(dist: LODistribution, n_swaps: int, *, rng: RNGLike = None) -> np.ndarray:
    """The natural order with ``n_swaps`` disjoint random transpositions applied.

    2 * ``n_swaps`` distinct steps are drawn uniformly and paired up; the
    positions at each pair of steps are exchanged. Disjoint transpositions make
    the Cayley distance to the natural order exactly ``n_swaps`` (no swap can
    undo another), and exactly 2 * ``n_swaps`` steps change.

    Parameters
    ----------
    dist : LODistribution
    n_swaps : int
        Number of transpositions K, with 0 <= 2 K <= L.
    rng : Generator, int or None
        Fixes which steps are swapped.

    Returns
    -------
    int64 array, shape (L,)
    """
    order = natural_order(dist)
    L = order.shape[0]
    if int(n_swaps) != n_swaps or n_swaps < 0:
        raise ValueError(f"the number of swaps K must be an integer >= 0, got K = {n_swaps}")
    n_swaps = int(n_swaps)
    if 2 * n_swaps > L:
        raise ValueError(f"K = {n_swaps} disjoint swaps need 2 K <= L = {L} steps")
    gen = as_generator(rng)
    steps = gen.choice(L, size=2 * n_swaps, replace=False).reshape(n_swaps, 2)
    a, b = steps[:, 0], steps[:, 1]
    order[a], order[b] = order[b].copy(), order[a].copy()
    return order


def uniform_orders(batch: int, length: int, *, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """A fresh uniform random permutation of 0..L-1 for each of ``batch`` sequences.

    Drawn on the CPU from ``generator`` (argsort of i.i.d. uniforms), so a seed
    gives the same orders on every device.

    Returns
    -------
    int64 tensor, shape (batch, length)
    """
    if batch < 0 or length < 1:
        raise ValueError(f"need batch >= 0 and L >= 1, got batch = {batch}, L = {length}")
    u = torch.rand(batch, length, generator=generator, dtype=torch.float64)
    return torch.argsort(u, dim=1).to(device)


def n_swaps_for(spec: str, length: int) -> int | None:
    """Number of swaps K a ``"closer..."`` order spec asks for (None for other specs)."""
    if spec == "closer-sqrt":
        return int(round(math.sqrt(length)))
    if spec == "closer-tenth":
        return int(round(length / 10))
    if spec.startswith("closer:"):
        try:
            return int(spec.split(":", 1)[1])
        except ValueError as err:
            raise ValueError(f"order 'closer:K' needs an integer K, got {spec!r}") from err
    return None


def resolve_order(spec: str, dist: LODistribution, *, rng: RNGLike = None) -> np.ndarray | None:
    """A fixed order for ``spec``, or None for ``"uniform"`` (a fresh order per sequence).

    Parameters
    ----------
    spec : str
        ``"natural"``, ``"closer-sqrt"``, ``"closer-tenth"``, ``"closer:K"`` or ``"uniform"``.
    dist : LODistribution
    rng : Generator, int or None
        Draws the swaps of a ``"closer"`` order.
    """
    if spec == "natural":
        return natural_order(dist)
    if spec == "uniform":
        return None
    k = n_swaps_for(spec, dist.length)
    if k is None:
        raise ValueError(f"unknown order {spec!r}; choose one of {ORDERS} or 'closer:K'")
    return closer_order(dist, k, rng=rng)


def check_orders(orders: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """Validate orders: (L,) or (batch, L) int, each row a permutation of 0..L-1."""
    if orders.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"orders must be integer, got dtype {orders.dtype}")
    orders = orders.long()
    if orders.ndim == 1:
        orders = orders.unsqueeze(0).expand(batch, -1)
    if orders.shape != (batch, length):
        raise ValueError(f"orders must have shape (L,) or (batch, L) = ({batch}, {length}), "
                         f"got {tuple(orders.shape)}")
    ref = torch.arange(length, device=orders.device).expand(batch, -1)
    if not torch.equal(torch.sort(orders, dim=1).values, ref):
        raise ValueError(f"each order must be a permutation of 0..L-1 = 0..{length - 1}")
    return orders


# ------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------
@dataclass
class PiLearnerConfig:
    """Architecture of a pi-learner (causal transformer with two position tables)."""

    vocab_size: int  # data token values 0..vocab_size-1 (dist.vocab_size); BOS is vocab_size
    length: int  # sequence length L (dist.length): number of model steps and positions
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    # SwiGLU hidden width; None: 8/3 d_model rounded up to a multiple of 16 (the LLaMA
    # width, which keeps the MLP's parameter count at that of a 4 d_model GELU MLP).
    mlp_hidden: int | None = None
    norm_eps: float = 1e-6
    init_std: float = 0.02  # GPT-2 initialisation scale

    def __post_init__(self) -> None:
        for name in ("vocab_size", "length", "d_model", "n_layers", "n_heads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model = {self.d_model} must be divisible by "
                             f"n_heads = {self.n_heads}")
        if self.mlp_hidden is None:
            self.mlp_hidden = 16 * math.ceil(8 * self.d_model / 3 / 16)

    @property
    def bos_id(self) -> int:
        return self.vocab_size


def pilearner_config(size: str, dist: LODistribution) -> PiLearnerConfig:
    """The :class:`PiLearnerConfig` of a named size (``PILEARNER_SIZES``) for ``dist``."""
    if size not in PILEARNER_SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {list(PILEARNER_SIZES)}")
    d, n_layers, n_heads = PILEARNER_SIZES[size]
    return PiLearnerConfig(vocab_size=dist.vocab_size, length=dist.length, d_model=d,
                           n_layers=n_layers, n_heads=n_heads)


class _Block(nn.Module):
    """Pre-norm block: causal multi-head SDPA attention, then a SwiGLU MLP."""

    def __init__(self, cfg: PiLearnerConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.norm_attn = nn.RMSNorm(d, eps=cfg.norm_eps)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.norm_mlp = nn.RMSNorm(d, eps=cfg.norm_eps)
        self.gate = nn.Linear(d, cfg.mlp_hidden, bias=False)
        self.up = nn.Linear(d, cfg.mlp_hidden, bias=False)
        self.down = nn.Linear(cfg.mlp_hidden, d, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, T, D = h.shape
        q, k, v = (self.qkv(self.norm_attn(h)).view(B, T, 3, self.n_heads, D // self.n_heads)
                   .permute(2, 0, 3, 1, 4))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(a.transpose(1, 2).reshape(B, T, D))
        z = self.norm_mlp(h)
        return h + self.down(F.silu(self.gate(z)) * self.up(z))

    def forward_cached(self, h: torch.Tensor, cache: list) -> torch.Tensor:
        """:meth:`forward` of new positions given the keys and values of the earlier
        ones in ``cache`` (``[]`` or ``[k, v]``, updated in place): a prefill of T
        positions on an empty cache, or one position after it."""
        B, T, D = h.shape
        q, k, v = (self.qkv(self.norm_attn(h)).view(B, T, 3, self.n_heads, D // self.n_heads)
                   .permute(2, 0, 3, 1, 4))
        if cache:
            if T != 1:
                raise ValueError("after the prefill, a cached step takes one position")
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            a = F.scaled_dot_product_attention(q, k, v)  # the new query sees every key
        else:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        cache[:] = [k, v]
        h = h + self.proj(a.transpose(1, 2).reshape(B, T, D))
        z = self.norm_mlp(h)
        return h + self.down(F.silu(self.gate(z)) * self.up(z))


class PiLearner(nn.Module):
    """Causal transformer over a sequence read in an order pi (module docstring).

    Parameters
    ----------
    cfg : PiLearnerConfig
    seed : int
        Seeds the initialisation (a private torch.Generator; the global RNG is untouched).
    """

    def __init__(self, cfg: PiLearnerConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok_emb = nn.Embedding(cfg.vocab_size + 1, d)  # + BOS
        self.in_pos_emb = nn.Embedding(cfg.length + 1, d)  # + the "no position" slot of BOS
        self.tgt_pos_emb = nn.Embedding(cfg.length, d)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.RMSNorm(d, eps=cfg.norm_eps)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        self._init_weights(seed)

    def _init_weights(self, seed: int) -> None:
        g = torch.Generator().manual_seed(int(seed))
        # GPT-2: N(0, 0.02) weights; the projections into the residual stream are
        # scaled by 1/sqrt(2 n_layers) so the stream's variance does not grow with depth.
        resid = self.cfg.init_std / math.sqrt(2 * self.cfg.n_layers)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.ndim < 2:
                    continue  # RMSNorm gains stay at one
                std = resid if name.endswith(("proj.weight", "down.weight")) else \
                    self.cfg.init_std
                p.copy_(torch.randn(p.shape, generator=g) * std)

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [self.tok_emb.weight, self.in_pos_emb.weight, self.tgt_pos_emb.weight]

    def num_params(self, *, non_embedding: bool = True) -> int:
        """Parameter count; by default without the token and position tables (FLOPs)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= sum(p.numel() for p in self.embedding_parameters())
        return int(n)

    def forward_steps(self, inp: torch.Tensor, in_pos: torch.Tensor,
                      tgt_pos: torch.Tensor) -> torch.Tensor:
        """Logits from step-frame inputs (see :func:`order_inputs`).

        Parameters
        ----------
        inp, in_pos, tgt_pos : int64 tensors, shape (B, T), T <= L

        Returns
        -------
        float tensor, shape (B, T, vocab_size): logits of the token at ``tgt_pos``.
        """
        h = self.tok_emb(inp) + self.in_pos_emb(in_pos) + self.tgt_pos_emb(tgt_pos)
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm_out(h))

    def forward_steps_cached(self, inp: torch.Tensor, in_pos: torch.Tensor,
                             tgt_pos: torch.Tensor, caches: list[list]) -> torch.Tensor:
        """:meth:`forward_steps` of new steps, reusing the keys and values of the earlier
        ones: a prefill of T steps with ``caches = [[] for each block]``, then one step at
        a time. Incremental greedy decoding costs one position per step instead of the
        whole prefix; the logits equal :meth:`forward_steps`'s up to float rounding.

        Returns
        -------
        float tensor, shape (B, T, vocab_size): logits of the new steps.
        """
        h = self.tok_emb(inp) + self.in_pos_emb(in_pos) + self.tgt_pos_emb(tgt_pos)
        for blk, cache in zip(self.blocks, caches, strict=True):
            h = blk.forward_cached(h, cache)
        return self.head(self.norm_out(h))

    def forward(self, tokens: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
        """Logits of every step for sequences ``tokens`` read in ``orders``.

        Parameters
        ----------
        tokens : int64 tensor, shape (B, L)
        orders : int64 tensor, shape (L,) or (B, L); each row a permutation

        Returns
        -------
        float tensor, shape (B, L, vocab_size): row t is the law of ``tokens[b, orders[b, t]]``.
        """
        return self.forward_steps(*order_inputs(tokens, orders, self.cfg.bos_id))


def order_inputs(tokens: torch.Tensor, orders: torch.Tensor, bos_id: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step-frame inputs of sequences read in ``orders``.

    Returns ``(inp, in_pos, tgt_pos)``, int64 tensors of shape (B, L):
    ``inp = [BOS, x[pi(0)], ..., x[pi(L-2)]]``, ``in_pos = [L, pi(0), ..., pi(L-2)]``
    (L is the "no position" slot) and ``tgt_pos = pi``.
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
    B, L = tokens.shape
    orders = check_orders(orders.to(tokens.device), B, L)
    read = torch.gather(tokens, 1, orders[:, :-1])
    inp = torch.cat([torch.full((B, 1), bos_id, dtype=torch.long, device=tokens.device), read], 1)
    in_pos = torch.cat([torch.full((B, 1), L, dtype=torch.long, device=tokens.device),
                        orders[:, :-1]], 1)
    return inp, in_pos, orders


def order_nll(logits: torch.Tensor, tokens: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    r"""Sequence NLL :math:`-\sum_t \log \mathrm{softmax}(\mathrm{logits}_t)[x_{\pi(t)}]`.

    Parameters
    ----------
    logits : float tensor, shape (B, L, V)
        Step-frame logits (or log-probabilities): row t scores the token at ``orders[b, t]``.
    tokens : int64 tensor, shape (B, L)
    orders : int64 tensor, shape (L,) or (B, L)

    Returns
    -------
    float tensor, shape (B,): nats per sequence.
    """
    B, L = tokens.shape
    if logits.shape[:2] != (B, L):
        raise ValueError(f"logits must have shape (B, L, V) = ({B}, {L}, V), "
                         f"got {tuple(logits.shape)}")
    orders = check_orders(orders.to(tokens.device), B, L)
    targets = torch.gather(tokens, 1, orders)
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    return nll.sum(dim=1)


@torch.no_grad()
def evaluate_nll(model: PiLearner, tokens: torch.Tensor, orders: torch.Tensor, *,
                 batch_size: int = 256, autocast_dtype: torch.dtype | None = None) -> float:
    """Mean NLL per token (nats) of ``tokens`` read in ``orders`` (rows paired).

    Parameters
    ----------
    tokens : int64 tensor, shape (n, L)
    orders : int64 tensor, shape (L,) or (n, L)
    """
    was_training = model.training
    model.eval()
    n, L = tokens.shape
    dev = next(model.parameters()).device
    orders = check_orders(orders, n, L)
    total = 0.0
    for lo in range(0, n, batch_size):
        x = tokens[lo:lo + batch_size].to(dev)
        o = orders[lo:lo + batch_size].to(dev)
        with _autocast(dev, autocast_dtype):
            logits = model(x, o)
        total += float(order_nll(logits, x, o).double().sum())
    model.train(was_training)
    return total / (n * L)


def _autocast(dev: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return torch.autocast(dev.type, enabled=False)
    return torch.autocast(dev.type, dtype=dtype)


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------
@dataclass
class PiTrainConfig:
    """Training of one pi-learner; every field is recorded in checkpoints and results."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio at the last step
    warmup_steps: int = 100  # linear warm-up from 0
    weight_decay: float = 0.1  # AdamW, on matrices only (not on RMSNorm gains)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    seed: int = 0  # model init, training data, uniform orders and closer swaps
    eval_points: int = 12  # log-spaced evaluation steps between 1 and ``steps``
    test_size: int = 512  # held-out sequences
    test_seed: int = 12345  # the held-out sample; shared by all orders and sizes
    eval_orders: int = 4  # random orders per held-out sequence (uniform order only)
    eval_batch_size: int = 256
    checkpoint_every: int = 500  # steps between checkpoints (also written at the end)
    device: str = "auto"  # "auto" (cuda if available), "cpu" or "cuda"
    amp: bool = False  # bfloat16 autocast (cuda only)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps}, "
                             f"{self.batch_size}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr}, "
                             f"{self.min_lr_ratio}")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps, grad_clip and weight_decay must be >= 0")
        if self.eval_points < 1 or self.test_size < 1 or self.eval_orders < 1:
            raise ValueError("eval_points, test_size and eval_orders must be >= 1")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


def lr_at(step: int, cfg: PiTrainConfig) -> float:
    """Learning rate of update ``step`` (0-based): linear warm-up, then cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.steps - cfg.warmup_steps, 1)
    frac = min((step - cfg.warmup_steps) / span, 1.0)
    lo = cfg.lr * cfg.min_lr_ratio
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * frac))


def eval_steps(steps: int, points: int) -> list[int]:
    """Log-spaced evaluation steps in [1, steps], always including ``steps``."""
    grid = np.unique(np.round(np.geomspace(1, steps, points)).astype(np.int64))
    return [int(s) for s in grid]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False")
    return torch.device(name)


def _seed_of(*keys: int) -> int:
    """A 63-bit seed determined by ``keys`` (stream separation via SeedSequence)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


# Stream tags: each random stream of a run gets its own SeedSequence key.
_DATA, _ORDERS, _CLOSER, _EVAL_ORDERS = 1, 2, 3, 4


def dist_digest(dist: LODistribution) -> str:
    """SHA-256 of a distribution's header and arrays (checkpoints check it on resume)."""
    h = hashlib.sha256(repr(to_jsonable(dist.header())).encode())
    for key, arr in sorted(dist.to_arrays().items()):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def held_out(dist: LODistribution, cfg: PiTrainConfig, order: np.ndarray | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed held-out sample and its orders.

    The sample depends only on ``dist`` and ``cfg.test_seed`` (so every order and
    size is scored on the same sequences). A fixed order is used as is; for the
    uniform order each sequence is repeated ``eval_orders`` times with its own
    random orders, drawn from ``test_seed`` (the same at every evaluation).

    Returns
    -------
    tokens : int64 tensor, shape (n, L); orders : int64 tensor, shape (n, L)
    """
    tokens = torch.from_numpy(dist.sample(cfg.test_size, rng=cfg.test_seed))
    if order is not None:
        return tokens, torch.from_numpy(order).unsqueeze(0).expand(tokens.shape[0], -1)
    tokens = tokens.repeat_interleave(cfg.eval_orders, dim=0)
    g = torch.Generator().manual_seed(_seed_of(cfg.test_seed, _EVAL_ORDERS))
    return tokens, uniform_orders(tokens.shape[0], dist.length, generator=g)


@dataclass
class PiLearnerRun:
    """Result of :func:`train_pilearner`.

    ``curve`` has one dict per evaluation: ``step``, ``tokens``, ``flops``,
    ``test_nll`` (nats per token), ``train_loss`` (mean over the steps since the
    previous evaluation, nats per token) and ``lr``.
    """

    model: PiLearner
    order_spec: str
    order: np.ndarray | None
    model_config: PiLearnerConfig
    train_config: PiTrainConfig
    curve: list[dict] = field(default_factory=list)
    n_params: int = 0
    n_params_nonembedding: int = 0
    entropy_per_token: float = float("nan")
    resumed_from: int = 0
    steps_done: int = 0

    @property
    def completed(self) -> bool:
        return self.steps_done >= self.train_config.steps

    @property
    def final_test_nll(self) -> float:
        return self.curve[-1]["test_nll"] if self.curve else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no weights)."""
        return to_jsonable({
            "order_spec": self.order_spec, "order": self.order,
            "model_config": dataclasses.asdict(self.model_config),
            "train_config": dataclasses.asdict(self.train_config),
            "n_params": self.n_params, "n_params_nonembedding": self.n_params_nonembedding,
            "flops_convention": "6 * n_params_nonembedding * steps * batch_size * L",
            "entropy_per_token": self.entropy_per_token, "curve": self.curve,
            "final_test_nll": self.final_test_nll, "resumed_from": self.resumed_from,
            "steps_done": self.steps_done, "completed": self.completed,
        })


def _run_key(dist, order_spec, mcfg, tcfg) -> dict[str, Any]:
    # Fields that must agree for a checkpoint to be resumed (device, amp and checkpoint
    # cadence may change between sessions; amp changes numerics only slightly).
    t = dataclasses.asdict(tcfg)
    for k in ("device", "checkpoint_every", "eval_batch_size"):
        t.pop(k)
    return to_jsonable({"dist": dist_digest(dist), "order_spec": order_spec,
                        "model_config": dataclasses.asdict(mcfg), "train_config": t})


def _save_checkpoint(path: Path, payload: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def train_pilearner(dist: LODistribution, order_spec: str, model_config: PiLearnerConfig,
                    train_config: PiTrainConfig, *, checkpoint: str | Path | None = None,
                    stop_after: int | None = None, max_seconds: float | None = None,
                    progress: bool = False) -> PiLearnerRun:
    """Train a pi-learner on fresh samples of ``dist`` read in the order ``order_spec``.

    Each update draws ``batch_size`` new sequences from ``dist`` with a seed
    derived from ``(seed, step)`` (and, for the uniform order, new orders from a
    torch.Generator seeded the same way), so a resumed run replays exactly the
    data of an uninterrupted one. AdamW, linear warm-up then cosine decay,
    global gradient-norm clipping. The loss is the NLL per token. The held-out
    NLL per token is evaluated at log-spaced steps (:func:`eval_steps`).

    Parameters
    ----------
    dist : LODistribution
    order_spec : str
        See :func:`resolve_order`.
    model_config : PiLearnerConfig
        Its ``vocab_size`` and ``length`` must match ``dist``.
    train_config : PiTrainConfig
    checkpoint : path, optional
        Checkpoint file (``torch.save``, written atomically every
        ``checkpoint_every`` steps and at the end). If it exists and belongs to
        the same run (distribution, order, configs, seed), training resumes
        from it; a completed checkpoint returns at once. A checkpoint of another
        run raises ValueError.
    stop_after : int, optional
        Stop (with a checkpoint) after this many total steps.
    max_seconds : float, optional
        Wall-clock budget of this call: after the first step that ends past it, save
        a checkpoint and return (``completed`` False); a second call resumes exactly.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    PiLearnerRun
    """
    mcfg, tcfg = model_config, train_config
    if max_seconds is not None and not max_seconds >= 0:
        raise ValueError(f"max_seconds must be >= 0, got {max_seconds}")
    if (mcfg.vocab_size, mcfg.length) != (dist.vocab_size, dist.length):
        raise ValueError(f"model (vocab_size, L) = ({mcfg.vocab_size}, {mcfg.length}) does not "
                         f"match the distribution's ({dist.vocab_size}, {dist.length})")
    dev = resolve_device(tcfg.device)
    amp_dtype = torch.bfloat16 if (tcfg.amp and dev.type == "cuda") else None
    order = resolve_order(order_spec, dist, rng=_seed_of(tcfg.seed, _CLOSER))
    L, B = dist.length, tcfg.batch_size

    model = PiLearner(mcfg, seed=tcfg.seed).to(dev)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tcfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tcfg.lr, betas=tcfg.betas)
    run = PiLearnerRun(model=model, order_spec=order_spec, order=order, model_config=mcfg,
                       train_config=tcfg, n_params=model.num_params(non_embedding=False),
                       n_params_nonembedding=model.num_params(),
                       entropy_per_token=lo_entropy(dist) / L)
    key = _run_key(dist, order_spec, mcfg, tcfg)
    start = 0
    running_state: dict = {}
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        state = load_torch_file(ckpt_path, "pi-learner", map_location=dev)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or \
                state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{ckpt_path} is not a pi-learner checkpoint of format version "
                             f"{CHECKPOINT_VERSION}")
        if state["key"] != key:
            raise ValueError(f"{ckpt_path} belongs to another run (distribution, order, "
                             f"configs or seed differ); delete it or use another path")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, run.curve, run.resumed_from = state["step"], list(state["curve"]), state["step"]
        running_state = state.get("running_loss") or {}

    def save(step: int) -> None:
        running.check(step)
        if ckpt_path is not None:
            _save_checkpoint(ckpt_path, {
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "key": key,
                "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "curve": run.curve, "running_loss": running.state(),
                "meta": to_jsonable(provenance(key, tcfg.seed))})

    test_tokens, test_orders = held_out(dist, tcfg, order)
    fixed = torch.from_numpy(order).to(dev) if order is not None else None
    todo = [s for s in eval_steps(tcfg.steps, tcfg.eval_points) if s > start]
    flops_per_step = 6 * run.n_params_nonembedding * B * L
    # Summed on the device: the only host syncs are the evaluations and checkpoints.
    running = RunningLoss(dev, running_state)
    model.train()
    try:
        from tqdm.auto import tqdm
        bar = tqdm(total=tcfg.steps, initial=start, disable=not progress,
                   desc=f"pi-learner {order_spec} d={mcfg.d_model}", leave=False,
                   mininterval=2.0)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        bar = None
    end = tcfg.steps if stop_after is None else min(int(stop_after), tcfg.steps)
    if end < 1:
        raise ValueError(f"stop_after must be >= 1, got {stop_after}")
    t0 = time.perf_counter()
    for step in range(start, end):
        lr = lr_at(step, tcfg)
        for group in opt.param_groups:
            group["lr"] = lr
        x = torch.from_numpy(dist.sample(B, rng=_seed_of(tcfg.seed, _DATA, step))).to(dev)
        if fixed is None:
            g = torch.Generator().manual_seed(_seed_of(tcfg.seed, _ORDERS, step))
            o = uniform_orders(B, L, generator=g, device=dev)
        else:
            o = fixed.unsqueeze(0).expand(B, -1)
        with _autocast(dev, amp_dtype):
            logits = model(x, o)
        loss = order_nll(logits, x, o).mean() / L
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tcfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        running.add(loss)
        done = step + 1
        if bar is not None:
            bar.update(1)
        if todo and done == todo[0]:
            todo.pop(0)
            train_loss = running.read(done)
            nll = evaluate_nll(model, test_tokens, test_orders,
                               batch_size=tcfg.eval_batch_size, autocast_dtype=amp_dtype)
            run.curve.append({"step": done, "tokens": done * B * L,
                              "flops": float(done * flops_per_step), "test_nll": nll,
                              "train_loss": train_loss, "lr": lr})
            if bar is not None:
                bar.set_postfix(test_nll=f"{nll:.4f}")
        if done % tcfg.checkpoint_every == 0 or done == end:
            save(done)
        if max_seconds is not None and done < end and time.perf_counter() - t0 >= max_seconds:
            if done % tcfg.checkpoint_every:
                save(done)
            end = done
            break
    if bar is not None:
        bar.close()
    run.steps_done = max(start, end)
    model.eval()
    return run


__all__ = [
    "PILEARNER_SIZES", "ORDERS", "PiLearnerConfig", "PiLearner", "PiTrainConfig",
    "PiLearnerRun", "pilearner_config", "lo_entropy", "natural_order", "closer_order",
    "uniform_orders", "resolve_order", "order_inputs", "order_nll", "evaluate_nll",
    "train_pilearner", "eval_steps", "lr_at", "held_out", "n_swaps_for", "check_orders",
    "dist_digest", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
]
