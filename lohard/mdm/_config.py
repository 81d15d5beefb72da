"""Model and training configurations (dataclasses with commented defaults) and the registry."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MDMConfig:
    """Shape of a :class:`~lohard.mdm.MaskedDiffusionTransformer`.

    Attributes
    ----------
    name : str
        Registry name, recorded in checkpoints.
    n_layers, d_model, n_heads : int
        Depth, width and attention heads; ``d_model / n_heads`` must be even (RoPE).
    mlp_ratio : float
        SwiGLU hidden width = ``mlp_ratio * d_model`` (rounded to a multiple of 8).
    max_seq_len : int
        Longest sequence the model accepts (RoPE tables are built for it).
    vocab_size : int or None
        Number of data values; None takes it from the data distribution.
    rope_base : float
        RoPE frequency base.
    norm_eps : float
        RMSNorm epsilon.
    learned_pos : bool
        Add a learned absolute position embedding to the input (on top of RoPE).
        Off in the paper-sized configs; RoPE alone must infer absolute positions
        from relative offsets, which small models learn slowly.
    """

    name: str = "custom"
    n_layers: int = 8  # 19M reference shape
    d_model: int = 384
    n_heads: int = 6  # head dim 64
    mlp_ratio: float = 4.0  # SwiGLU hidden 1536 at width 384
    max_seq_len: int = 512  # App. C.2.1: "maximum sequence length 512"
    vocab_size: int | None = None  # None: the data's vocabulary
    rope_base: float = 10_000.0  # the usual RoPE base (Su et al.)
    norm_eps: float = 1e-6
    learned_pos: bool = False  # RoPE only, as the paper's MDM

    def __post_init__(self) -> None:
        for key in ("n_layers", "d_model", "n_heads", "max_seq_len"):
            val = getattr(self, key)
            if int(val) != val or val < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {val}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model = {self.d_model} must be divisible by n_heads = "
                             f"{self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"RoPE needs an even head dimension, got d_model / n_heads = "
                             f"{self.d_model // self.n_heads}")
        for key in ("mlp_ratio", "rope_base", "norm_eps"):
            val = getattr(self, key)
            if not (val > 0 and math.isfinite(val)):
                raise ValueError(f"{key} must be finite and > 0, got {val}")
        if self.vocab_size is not None and (int(self.vocab_size) != self.vocab_size
                                            or self.vocab_size < 2):
            raise ValueError(f"vocab_size must be None or an integer >= 2, got {self.vocab_size}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.n_heads

    @property
    def mlp_hidden(self) -> int:
        """SwiGLU hidden width, a multiple of 8."""
        return max(8, int(round(self.mlp_ratio * self.d_model / 8)) * 8)

    def n_params(self, vocab_size: int) -> int:
        """Exact parameter count for ``vocab_size`` data values (mask token included)."""
        d, h = self.d_model, self.mlp_hidden
        per_layer = 4 * d * d + 3 * d * h + 2 * d  # attention, SwiGLU, two RMSNorm gains
        pos = self.max_seq_len * d if self.learned_pos else 0
        return (vocab_size + 1) * d + pos + self.n_layers * per_layer + d + d * vocab_size

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


#: Named shapes. Parameter counts are for a 3-value vocabulary (L&O-NAE-SAT with the
#: trailing token); the embeddings add only 2 d per extra value.
MODEL_CONFIGS: dict[str, MDMConfig] = {
    # 19M: 8 layers, width 384, 6 heads, SwiGLU 4x -> 18,883,584 parameters, the 19M MDM
    # of App. C.2.1 / D.1.1 (the reference code's small GPT-2 shape).
    "mdm-19m": MDMConfig(name="mdm-19m", n_layers=8, d_model=384, n_heads=6),
    # 6M: 6 layers, width 256, 8 heads, SwiGLU 4x -> 6,296,576 parameters (the 6M MDM of
    # the Sudoku experiments, App. D.2, in this architecture).
    "mdm-6m": MDMConfig(name="mdm-6m", n_layers=6, d_model=256, n_heads=8),
    # cpu-1m: the CPU-scale Table 1 model (lohard table1 --scale cpu): 4 layers, width 128,
    # 4 heads (head dim 32), SwiGLU 4x, with a learned absolute position embedding on top of
    # RoPE, which a model this small needs to learn L ~ 100 positions in a CPU budget
    # (1,067,008 parameters at L = 101, vocabulary 3).
    "cpu-1m": MDMConfig(name="cpu-1m", n_layers=4, d_model=128, n_heads=4, max_seq_len=128,
                        learned_pos=True),
    # cpu-4l: the CPU-scale Zebra model (lohard zebra tables --scale cpu): tiny's width
    # with 4 layers. Depth, not width, is what the clue reasoning needed: on 3 x 3 puzzles
    # it reached a training loss of 0.353 in 4000 steps where tiny reached 0.415 in 8000
    # (measured, same data and wall time budget).
    "cpu-4l": MDMConfig(name="cpu-4l", n_layers=4, d_model=64, n_heads=4, max_seq_len=128),
    # tiny: for CPU tests and the CI pipeline (131,840 parameters).
    "tiny": MDMConfig(name="tiny", n_layers=2, d_model=64, n_heads=4, max_seq_len=128),
}


def model_config(name: str | MDMConfig, **overrides) -> MDMConfig:
    """Look up a named model shape, optionally overriding fields.

    Parameters
    ----------
    name : str or MDMConfig
        One of ``MODEL_CONFIGS`` (``"mdm-19m"``, ``"mdm-6m"``, ``"tiny"``) or a config.
    **overrides
        Fields to replace, e.g. ``max_seq_len=1024``.

    Returns
    -------
    MDMConfig
    """
    if isinstance(name, MDMConfig):
        base = name
    elif name in MODEL_CONFIGS:
        base = MODEL_CONFIGS[name]
    else:
        raise ValueError(f"unknown model config {name!r}; choose one of "
                         f"{', '.join(MODEL_CONFIGS)}")
    return dataclasses.replace(base, **overrides) if overrides else base


def check_optimisation(cfg, positive: tuple, nonnegative: tuple) -> None:
    """Validate the optimisation fields shared by the training configs, in place.

    Integer fields in ``positive`` must be >= 1 and those in ``nonnegative`` >= 0;
    lr > 0 with 0 <= min_lr <= lr, grad_clip > 0, device in auto/cpu/cuda. Also
    normalises ``betas`` to a float tuple and ``model_overrides`` to a dict.
    """
    for keys, low in ((positive, 1), (nonnegative, 0)):
        for key in keys:
            val = getattr(cfg, key)
            if int(val) != val or val < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {val}")
    if not (cfg.lr > 0 and 0 <= cfg.min_lr <= cfg.lr):
        raise ValueError(f"need lr > 0 and 0 <= min_lr <= lr, got lr = {cfg.lr}, "
                         f"min_lr = {cfg.min_lr}")
    if not cfg.grad_clip > 0:
        raise ValueError(f"grad_clip must be > 0, got {cfg.grad_clip}")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {cfg.device!r}")
    cfg.betas = tuple(float(b) for b in cfg.betas)
    cfg.model_overrides = dict(cfg.model_overrides)


@dataclass
class TrainConfig:
    """Training run settings; saved (resolved) in every checkpoint and ``config.json``.

    Attributes
    ----------
    dist : str
        Data distribution: ``"nae-sat-N-P"`` (append ``"-t"`` for the App. C.2.1
        trailing token) or the path of a saved distribution / samples ``.npz``.
    dist_seed : int
        Seed of the distribution's structure (the triples) for ``nae-sat-N-P``.
    model : str
        Model config name (see :func:`model_config`).
    model_overrides : dict
        Fields of the model config to override.
    steps : int
        Total optimiser steps.
    batch_size : int
        Sequences per step, fresh from the distribution each step (infinite data).
    loss : {"elbo", "eq1"}
        Continuous-time ELBO or the Eq. (1) subset form (same expectation).
    schedule : {"linear", "cosine"}
        Masking schedule of the ELBO loss.
    lr, min_lr : float
        Peak and final learning rate of the cosine schedule.
    warmup_steps : int
        Linear warm-up from 0 to ``lr``.
    betas, weight_decay, grad_clip : float
        AdamW betas, decoupled weight decay (2-D weights only), clipping norm.
    seed : int
        Root seed: model init, every batch and mask (per step), the eval set.
    device : {"auto", "cpu", "cuda"}
    amp : bool
        bf16 autocast (used on CUDA only; ignored on CPU).
    compile : bool
        Wrap the model in ``torch.compile`` for training.
    eval_every, eval_size : int
        Held-out loss every ``eval_every`` steps on a fixed set of ``eval_size``
        masked sequences (0 disables).
    log_every : int
        Steps between log lines / progress updates (the only host syncs).
    ckpt_every : int
        Steps between checkpoints (a checkpoint is always written at the end).
    """

    dist: str = "nae-sat-20-280"
    dist_seed: int = 0  # structure seed of nae-sat-N-P
    model: str = "mdm-19m"
    model_overrides: dict = field(default_factory=dict)
    steps: int = 2000  # App. C.2.1: 2e3 iterations for the per-mask error study
    batch_size: int = 256
    loss: str = "elbo"
    schedule: str = "linear"
    lr: float = 4e-4  # App. C.1: AdamW, cosine from 4e-4 to 4e-5, betas (0.9, 0.95), wd 0.1
    min_lr: float = 4e-5
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    compile: bool = False
    eval_every: int = 500
    eval_size: int = 512
    log_every: int = 50
    ckpt_every: int = 1000

    def __post_init__(self) -> None:
        check_optimisation(self, ("steps", "batch_size"),
                           ("warmup_steps", "eval_every", "eval_size", "ckpt_every", "log_every"))
        if self.loss not in ("elbo", "eq1"):
            raise ValueError(f"loss must be 'elbo' or 'eq1', got {self.loss!r}")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {self.schedule!r}")

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return dataclasses.asdict(self)
