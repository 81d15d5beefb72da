"""The bidirectional MDM transformer: RMSNorm, RoPE, SwiGLU, SDPA attention, no time input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lohard.mdm._config import MDMConfig, model_config


class RMSNorm(nn.Module):
    r"""Root-mean-square layer norm: :math:`x / \sqrt{\mathrm{mean}(x^2) + \epsilon} \cdot g`."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 so bf16 autocast does not lose the scale.
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return out.to(x.dtype) * self.weight.to(x.dtype)


def rope_tables(length: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of rotary embeddings: float32 arrays, shape (length, head_dim / 2)."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) of ``x`` (B, H, L, d) by the RoPE angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.to(x.dtype)


class Block(nn.Module):
    """Pre-norm transformer block: bidirectional SDPA attention and a SwiGLU MLP."""

    def __init__(self, cfg: MDMConfig) -> None:
        super().__init__()
        d, h = cfg.d_model, cfg.mlp_hidden
        self.n_heads = cfg.n_heads
        self.norm1 = RMSNorm(d, cfg.norm_eps)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.norm2 = RMSNorm(d, cfg.norm_eps)
        self.gate_up = nn.Linear(d, 2 * h, bias=False)
        self.down = nn.Linear(h, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, -1).permute(
            2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, d))
        gate, up = self.gate_up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class MaskedDiffusionTransformer(nn.Module):
    r"""Bidirectional transformer giving :math:`p_\theta(x^i \mid x_t)` at every position.

    Input ids are data values 0..V-1 and the mask id V; the output is logits over
    the V data values only (the mask is never predicted). There is no time
    embedding: by Prop. 2.1 the optimal denoiser does not depend on t.

    Parameters
    ----------
    config : MDMConfig or str
        Shape (see :func:`~lohard.mdm.model_config`).
    vocab_size : int, optional
        Number of data values V (default ``config.vocab_size``); the mask id is V.

    Notes
    -----
    Forward cost O(B L^2 d + B L d^2) per layer. Token ids are not range-checked
    in :meth:`forward` (that would force a device sync); the public entry points
    (:func:`~lohard.mdm.mdm_loss`, :func:`~lohard.mdm.sample`) check them once.

    References
    ----------
    Kim et al. (ICML 2025), Sec. 2 and App. C.2.1 (19M MDM with RoPE).
    """

    def __init__(self, config: MDMConfig | str, vocab_size: int | None = None) -> None:
        super().__init__()
        cfg = model_config(config)
        v = cfg.vocab_size if vocab_size is None else int(vocab_size)
        if v is None:
            raise ValueError("the number of data values V is unknown: give vocab_size or set "
                             "it in the config")
        if cfg.vocab_size is not None and v > cfg.vocab_size:
            raise ValueError(f"the data has V = {v} values but the config's vocabulary holds "
                             f"{cfg.vocab_size}")
        if v < 2:
            raise ValueError(f"need V >= 2 data values, got V = {v}")
        self.config = cfg
        self.vocab_size = v
        self.mask_id = v
        self.max_seq_len = cfg.max_seq_len
        self.data_length: int | None = None  # L of the data it was built for (build_model)
        self.embed = nn.Embedding(v + 1, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.learned_pos else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, v, bias=False)
        cos, sin = rope_tables(cfg.max_seq_len, cfg.head_dim, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        # GPT-2 style: scale the residual output projections by 1/sqrt(2 n_layers).
        for blk in self.blocks:
            for lin in (blk.proj, blk.down):
                nn.init.normal_(lin.weight, std=0.02 / (2 * cfg.n_layers) ** 0.5)

    @staticmethod
    def _init(mod: nn.Module) -> None:
        if isinstance(mod, nn.Linear | nn.Embedding):
            nn.init.normal_(mod.weight, std=0.02)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of p_theta(x^i = v | tokens) at every position.

        Parameters
        ----------
        tokens : int64 tensor, shape (B, L)
            Values in 0..V (V is the mask id), L <= ``max_seq_len``.

        Returns
        -------
        tensor, shape (B, L, V): logits (float32, or bf16 under autocast).
        """
        n = tokens.shape[1]
        if n > self.max_seq_len:
            raise ValueError(f"sequence length L = {n} exceeds the model's max_seq_len = "
                             f"{self.max_seq_len}")
        x = self.embed(tokens)
        if self.pos is not None:
            x = x + self.pos.weight[:n]
        cos, sin = self.rope_cos[:n], self.rope_sin[:n]
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.head(self.norm(x))


def check_fits(config: MDMConfig, dist) -> None:
    """Raise ValueError if ``config`` cannot model ``dist`` (length or vocabulary).

    Parameters
    ----------
    config : MDMConfig
    dist : LODistribution
    """
    if config.max_seq_len < dist.length:
        raise ValueError(f"the model's max_seq_len = {config.max_seq_len} is shorter than the "
                         f"data's sequence length L = {dist.length}; need max_seq_len >= L "
                         f"(on the command line: --max-seq-len {dist.length}, or a larger "
                         f"--config)")
    if config.vocab_size is not None and config.vocab_size < dist.vocab_size:
        raise ValueError(f"the model's vocab_size = {config.vocab_size} is smaller than the "
                         f"data's V = {dist.vocab_size} token values; need vocab_size >= V")


def build_model(config: MDMConfig | str, dist) -> MaskedDiffusionTransformer:
    """A fresh :class:`MaskedDiffusionTransformer` sized for ``dist``.

    Parameters
    ----------
    config : MDMConfig or str
    dist : LODistribution
        Fixes V (``dist.vocab_size`` unless the config names a larger vocabulary) and
        the mask id; the config must fit its length L.

    Returns
    -------
    MaskedDiffusionTransformer
    """
    cfg = model_config(config)
    check_fits(cfg, dist)
    v = dist.vocab_size if cfg.vocab_size is None else cfg.vocab_size
    if v != dist.vocab_size:
        raise ValueError(f"the mask id must be the data's mask id {dist.mask_id}: set the "
                         f"config's vocab_size to None or V = {dist.vocab_size}, got "
                         f"{cfg.vocab_size}")
    model = MaskedDiffusionTransformer(cfg, v)
    # The training distribution's L: sample() generates sequences of this length by default.
    model.data_length = int(dist.length)
    return model
