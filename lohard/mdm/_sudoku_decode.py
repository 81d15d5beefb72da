r"""Sudoku decoders: MDM orders (vanilla, top-prob, margin), the greedy ARM, and BP order.

Decoding one cell per step
--------------------------
Every decoder unmasks ``cells_per_step`` cells per forward pass (default one, so a
puzzle with b blanks takes b steps and the order of unmasking is a full ranking of the
blanks):

* ``"vanilla"``: the cells are chosen uniformly at random among the masked ones (the
  vanilla reverse process in the limit of many steps, where no two cells unmask at the
  same time);
* ``"top-prob"``: the highest :math:`\max_j p_\theta(x^i = j \mid x_t)`;
* ``"margin"``: the highest :math:`p(j_1) - p(j_2)` (top two values);

plus Gumbel noise on the adaptive scores (App. D.2: coefficient 0.5), in one of two
conventions (``noise_mode``):

* ``"log-annealed"`` (default; the convention of the codebase the paper's Sudoku runs
  used, Ye et al. 2024): the noise is added to the *log* score, scaled by the share of
  the puzzle's blanks still masked, ``r`` (1 at the first step, 1/b at the last):
  :math:`\log s_i + c\, r\, G_i`. Taking the top cell is then the Gumbel-max trick: cell
  i is chosen with probability :math:`\propto s_i^{1/(c r)}`, a tempered choice that
  grows greedy as the puzzle fills;
* ``"prob"``: :math:`s_i + c\, G_i` on the score itself, constant over the steps. A
  score lies in [0, 1] and c G has standard deviation 0.64 at c = 0.5, so this noise
  nearly randomises the order (measured on 9x9: close to vanilla).

The value of a chosen cell is drawn from :math:`p_\theta(\cdot \mid x_t)` restricted to
the digits 1..n at ``temperature`` (0: argmax, as in that codebase). ``bp`` decoders
take the order from belief propagation (:func:`lohard.sudoku.bp_decode`) and the values
from BP or the MDM.

Accuracy is the share of puzzles whose decoded grid is a full valid Sudoku keeping every
clue (:func:`lohard.sudoku.valid_solutions`). Order agreement is the Spearman rank
correlation, over a puzzle's blank cells, between the step at which a decoder unmasked
a cell and the step at which the strategy solver filled it.

References
----------
Kim et al. (ICML 2025), Sec. 4.1, Tables 2 and 5, App. D.2.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lohard.mdm._model import MaskedDiffusionTransformer
from lohard.mdm._pilearner import PiLearner
from lohard.mdm._sampling import (
    DEFAULT_NOISE_SCALE,
    POSITION_SCORES,
    Remask,
    _gumbel,
    _model_device,
    _top_k,
    check_tau,
    position_scores,
    select_top_k,
)
from lohard.mdm._sudoku_data import _arm_step_inputs, mdm_sudoku_inputs
from lohard.sudoku import (
    PuzzleSet,
    bp_decode,
    decode_arm_tokens,
    valid_solutions,
)
from lohard.sudoku._grid import check_box

MDM_DECODERS = ("vanilla", "top-prob", "margin")
#: Decoders beyond the paper (``docs/decoders.md``): lowest entropy first, confidence-
#: threshold parallel decoding, and semi-autoregressive blocks of cells (row-major).
EXTRA_DECODERS = ("entropy", "threshold", "semi-ar")
#: Conventions of the Gumbel noise on the adaptive scores (module docstring).
NOISE_MODES = ("log-annealed", "prob")
#: BP-ordered decoders: BP order with BP's values, BP order with the MDM's values.
BP_DECODERS = ("bp", "bp-mdm")
#: ARM shapes: name -> (d_model, n_layers, n_heads). ``arm-6m`` matches the MDM's mdm-6m
# -- decoding ------------------------------------------------------------------------------
@dataclass
class SudokuDecode:
    """Decoded grids and the order in which their cells were filled.

    Attributes
    ----------
    method : str
    grids : int64 array, shape (M, N)
        Decoded grids (0 where a malformed ARM sequence left a cell blank).
    steps : int64 array, shape (M, N)
        Step (0-based forward pass) at which each blank cell was filled; -1 for clues
        and for cells left blank.
    solved : bool array, shape (M,)
        :func:`lohard.sudoku.valid_solutions`: full valid grid keeping every clue.
    well_formed : bool array, shape (M,)
        ARM only: every triple well formed and every cell named once (True otherwise).
    seconds : float
    options : dict
    calls : int64 array, shape (M,), optional
        Forward passes of the model each puzzle needed: the steps at which it filled at
        least one cell (ARM: generated tokens; BP orders: MDM value calls, 0 for BP's own).
    """

    method: str
    grids: np.ndarray
    steps: np.ndarray
    solved: np.ndarray
    well_formed: np.ndarray
    seconds: float = 0.0
    options: dict = field(default_factory=dict)
    calls: np.ndarray | None = None  # model calls (forward passes) each puzzle needed

    @property
    def accuracy(self) -> float:
        return float(self.solved.mean()) if self.solved.size else float("nan")


def _as_puzzle_array(puzzles, box: int) -> np.ndarray:
    p = np.asarray(puzzles.puzzles if isinstance(puzzles, PuzzleSet) else puzzles)
    p = p.astype(np.int64)
    if p.ndim == 1:
        p = p[None]
    N = box**4
    if p.ndim != 2 or p.shape[1] != N:
        raise ValueError(f"puzzles must have shape (M, N) = (M, {N}) for box b = {box}, got "
                         f"{p.shape}")
    if p.min(initial=0) < 0 or p.max(initial=0) > box**2:
        raise ValueError(f"puzzle digits must lie in 0..n = 0..{box**2}")
    return p


def _digit_logp(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p over the digits 1..n (column v-1 for digit v), value 0 excluded."""
    x = logits[..., 1:].float()
    if bool(torch.isnan(x).any()):
        raise FloatingPointError("the model gave NaN logits (non-finite weights or inputs)")
    return torch.log_softmax(x / (temperature if temperature > 0 else 1.0), dim=-1)


def _check_decode_opts(method, cells_per_step, noise_scale, temperature, batch_size,
                       noise_mode="log-annealed"):
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"unknown noise_mode {noise_mode!r}; choose one of "
                         f"{', '.join(NOISE_MODES)}")
    if method not in MDM_DECODERS + EXTRA_DECODERS:
        raise ValueError(f"unknown MDM decoder {method!r}; choose one of "
                         f"{', '.join(MDM_DECODERS + EXTRA_DECODERS)}")
    if int(cells_per_step) != cells_per_step or cells_per_step < 1:
        raise ValueError(f"cells_per_step must be an integer >= 1, got {cells_per_step}")
    if not (noise_scale >= 0 and math.isfinite(noise_scale)):
        raise ValueError(f"noise_scale must be finite and >= 0, got {noise_scale}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be finite and >= 0 (0: argmax), got {temperature}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")


@torch.no_grad()
def mdm_decode(model: MaskedDiffusionTransformer, puzzles, *, method: str = "margin",
               cells_per_step: int = 1, noise_scale: float = DEFAULT_NOISE_SCALE,
               temperature: float = 1.0, batch_size: int = 1024, seed: int = 0,
               amp: bool = True, noise_mode: str = "log-annealed",
               progress: bool | str = False, tau: float = 0.9, block_size: int | None = None,
               block_score: str = "margin", remask: Remask | None = None) -> SudokuDecode:
    r"""Fill the blanks of Sudoku puzzles with an MDM, in a vanilla or adaptive order.

    Parameters
    ----------
    model : MaskedDiffusionTransformer
        Trained on the Sudoku layout (vocabulary n + 1).
    puzzles : int array, shape (M, N), or PuzzleSet
    method : {"vanilla", "top-prob", "margin", "entropy", "threshold", "semi-ar"}
        How the cells to unmask are chosen (module docstring). Beyond the paper:
        ``"entropy"`` ranks by :math:`-H(p^i)` (its noisy score is
        :math:`e^{-H}`, so the log-annealed noise adds to :math:`-H`);
        ``"threshold"`` fills, in one step, every blank whose top digit probability is
        at least ``tau`` (at least one per step; ``cells_per_step`` is not used);
        ``"semi-ar"`` works through blocks of ``block_size`` cells in row-major order
        (9: rows, 27: bands of a 9x9 grid), ranking the blanks of the current block by
        ``block_score``.
    cells_per_step : int
        Cells unmasked per forward pass (the last step takes what is left).
    tau : float
        Threshold of ``"threshold"``, in (0, 1].
    block_size : int, optional
        Cells per ``"semi-ar"`` block: a divisor of N, at most N.
    block_score : str
        Score inside a block (:data:`lohard.mdm.POSITION_SCORES`).
    remask : Remask, optional
        Remasking schedule (:class:`lohard.mdm.Remask`), its time the share of the
        puzzle's blanks not yet filled (fill events so far over blanks), so the window
        closes after at most ``blanks / t_off``-ish steps.
    noise_scale : float
        Coefficient c of the Gumbel noise on the adaptive scores (App. D.2: 0.5; 0: none).
    noise_mode : {"log-annealed", "prob"}
        Where the noise goes (module docstring).
    progress : bool or str
        A tqdm bar of the cells filled, on stderr (a string is its label).
    temperature : float
        Of the value draws over the digits (0: argmax).
    batch_size : int
    seed : int
        Seeds the torch generator (on the model's device); the output is a function of
        the seed, the batch size and the device.
    amp : bool
        bf16 autocast on CUDA.

    Returns
    -------
    SudokuDecode
        Clue cells are never written: only masked solution tokens are ever replaced.
    """
    _check_decode_opts(method, cells_per_step, noise_scale, temperature, batch_size,
                       noise_mode)
    n = model.vocab_size - 1
    box = int(round(math.sqrt(n)))
    p_all = _as_puzzle_array(puzzles, box)
    M, N = p_all.shape
    if method == "threshold":
        check_tau(tau)
    if method == "semi-ar":
        from lohard.mdm._sampling import check_blocks

        check_blocks(block_size, N)
    if block_score not in POSITION_SCORES:
        raise ValueError(f"unknown block_score {block_score!r}; choose one of "
                         f"{', '.join(POSITION_SCORES)}")
    if remask is not None and not isinstance(remask, Remask):
        raise TypeError(f"remask must be a lohard.mdm.Remask schedule, got "
                        f"{type(remask).__name__}")
    extra = _Extra(float(tau), block_size, block_score, remask)
    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    grids = np.zeros((M, N), np.int64)
    steps = np.full((M, N), -1, np.int64)
    calls = np.zeros(M, np.int64)
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    bar = _bar(progress, int((p_all == 0).sum()), f"decode {method}", "cell")
    try:
        for lo in range(0, M, batch_size):
            p = torch.from_numpy(p_all[lo:lo + batch_size]).to(device)
            g, st, c = _decode_batch(model, p, method, int(cells_per_step),
                                     float(noise_scale), float(temperature), gen, use_amp,
                                     noise_mode, bar, extra)
            grids[lo:lo + batch_size] = g.cpu().numpy()
            steps[lo:lo + batch_size] = st.cpu().numpy()
            calls[lo:lo + batch_size] = c.cpu().numpy()
    finally:
        model.train(was)
        if bar is not None:
            bar.close()
    solved = valid_solutions(grids, p_all, box=box)
    opts = {"cells_per_step": int(cells_per_step), "noise": "gumbel", "noise_mode": noise_mode,
            "noise_scale": float(noise_scale) if method != "vanilla" else 0.0,
            "temperature": float(temperature), "seed": int(seed), "batch_size": int(batch_size)}
    if method == "threshold":
        opts.update(tau=float(tau), noise_scale=0.0)
        del opts["cells_per_step"]
    if method == "semi-ar":
        opts.update(block_size=int(block_size), block_score=block_score)
    if remask is not None:
        opts["remask"] = remask.to_dict()
    return SudokuDecode(method, grids, steps, solved, np.ones(M, bool),
                        time.perf_counter() - t0, opts, calls)


def noisy_scores(score: torch.Tensor, masked_share: torch.Tensor, noise_scale: float,
                 noise_mode: str, gen: torch.Generator | None) -> torch.Tensor:
    """Adaptive scores with Gumbel noise, as ranked by the decoder.

    Parameters
    ----------
    score : float tensor, shape (B, N)
        Top probability or margin, in [0, 1].
    masked_share : float tensor, shape (B,)
        Share r of each puzzle's blanks still masked ("log-annealed" only).
    noise_scale : float
        Coefficient c (0: the scores unchanged).
    noise_mode : {"log-annealed", "prob"}
        ``log s + c r G`` or ``s + c G`` (module docstring).
    gen : torch.Generator or None
    """
    if noise_scale <= 0:
        return score
    g = _gumbel(score.shape, gen, score.device)
    if noise_mode == "prob":
        return score + noise_scale * g
    # A zero margin (a tie of the top two digits) ranks last but stays finite.
    return score.clamp_min(1e-30).log() + noise_scale * masked_share[:, None] * g


def _bar(progress, total: int, label: str, unit: str):
    """A tqdm bar on stderr, or None (``progress`` False; a string is the label)."""
    if not progress:
        return None
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr,
                desc=progress if isinstance(progress, str) else label)


@dataclass(frozen=True)
class _Extra:
    tau: float
    block_size: int | None
    block_score: str
    remask: Remask | None


def _scores(probs, rule, count, n_blank, noise_scale, noise_mode, gen):
    """A position rule's score with the decoder's Gumbel noise (none for ``random``)."""
    if rule == "random":
        return position_scores(probs, "random", generator=gen)
    score = position_scores(probs, rule)
    if rule == "entropy":
        score = score.exp()  # e^{-H} in (0, 1]: the noise conventions need a positive score
    return noisy_scores(score, count / n_blank, noise_scale, noise_mode, gen)


def _mdm_decode_batch(model, p, method, cells_per_step, noise_scale, temperature, gen,
                      use_amp, noise_mode, bar=None):
    """(grid, steps) of :func:`_decode_batch` with the paper's options."""
    return _decode_batch(model, p, method, cells_per_step, noise_scale, temperature, gen,
                         use_amp, noise_mode, bar)[:2]


def _decode_batch(model, p, method, cells_per_step, noise_scale, temperature, gen,
                  use_amp, noise_mode, bar=None, extra: _Extra | None = None):
    """Decode one batch: (grid, steps, calls) tensors."""
    extra = extra or _Extra(0.9, None, "margin", None)
    device = p.device
    grid = p.clone()
    n_blank = (p == 0).sum(dim=1).clamp_min(1)
    steps = torch.full_like(p, -1)
    calls = torch.zeros(p.shape[0], dtype=torch.int64, device=device)
    conf = torch.zeros(p.shape, device=device)
    events = torch.zeros(p.shape[0], dtype=torch.float64, device=device)
    amp_ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
    N = p.shape[1]
    block_of = (torch.arange(N, device=device) // extra.block_size
                if method == "semi-ar" else None)
    rm = extra.remask
    j = 0
    while True:
        masked = grid == 0
        count = masked.sum(dim=1)
        if not bool(count.any()):
            break
        with amp_ctx:
            logits = model(mdm_sudoku_inputs(p, grid, model.mask_id))[:, N:]
        logp = _digit_logp(logits, temperature)
        if temperature > 0:
            values = (logp + _gumbel(logp.shape, gen, device)).argmax(dim=-1) + 1
        else:
            values = logp.argmax(dim=-1) + 1
        # The oracle scores the model's own distribution (temperature 1).
        probs = _digit_logp(logits, 1.0).exp()
        region = None
        if method == "vanilla":
            score = torch.rand(grid.shape, generator=gen, device=device)
        elif method == "threshold":
            score = probs.max(dim=-1).values
        elif method == "semi-ar":
            # The current block of each puzzle: the first one still holding a blank.
            first = torch.where(masked, block_of, N).min(dim=1).values
            region = block_of[None] == first[:, None]
            score = _scores(probs, extra.block_score, count, n_blank, noise_scale,
                            noise_mode, gen)
        else:
            score = _scores(probs, method, count, n_blank, noise_scale, noise_mode, gen)
        cand = masked if region is None else masked & region
        if method == "threshold":
            chosen = cand & ((score >= extra.tau) | _top_k(score, cand, cand.any(dim=1).long()))
        else:
            chosen = select_top_k(score, cand, cand.sum(dim=1).clamp(max=cells_per_step))
        before = (grid != 0) & (p == 0)
        grid = torch.where(chosen, values, grid)
        steps = torch.where(chosen, j, steps)
        k = chosen.sum(dim=1)
        calls += (k > 0).long()
        if rm is not None:
            digit = (values - 1).clamp_min(0)[..., None]
            conf = torch.where(chosen, probs.gather(-1, digit)[..., 0], conf)
            events += k.double()
            on = rm.active_rows(1.0 - events / n_blank.double())
            if bool(on.any()):
                back = rm.choose(before if region is None else before & region, conf,
                                 rm.count(k) * on, gen)
                grid = torch.where(back, 0, grid)
                steps = torch.where(back, -1, steps)
        j += 1
        if bar is not None:
            bar.update(int(k.sum()))
    return grid, steps, calls


def arm_prompts(puzzles, *, box: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The clue triples of :func:`lohard.sudoku.arm_tokens` (row-major), zero-padded.

    Returns ``(tokens int64 (M, 3N), prompt_length int64 (M,))``.
    """
    p = _as_puzzle_array(puzzles, box)
    n = box**2
    M, N = p.shape
    tokens = np.zeros((M, 3 * N), np.int64)
    prompt = 3 * (p != 0).sum(axis=1)
    for i in range(M):
        cells = np.flatnonzero(p[i])
        r, c = np.divmod(cells, n)
        tokens[i, 0:3 * cells.size:3] = n + 1 + r
        tokens[i, 1:3 * cells.size:3] = 2 * n + 1 + c
        tokens[i, 2:3 * cells.size:3] = p[i, cells]
    return tokens, prompt


@torch.no_grad()
def arm_decode(model: PiLearner, puzzles, *, box: int | None = None, batch_size: int = 1024,
               amp: bool = True, progress: bool | str = False) -> SudokuDecode:
    """Generate the blank triples of Sudoku puzzles greedily with a triple ARM.

    Each generated slot is restricted to its token type (row, column or value by its
    position in the triple) and takes the argmax. No other constraint is imposed: a
    triple may name a filled cell (the sequence is then malformed and the grid unsolved;
    the clue is kept).

    Parameters
    ----------
    model : PiLearner
        Trained by :func:`train_sudoku` with ``kind="arm"``.
    puzzles : int array, shape (M, N), or PuzzleSet
    box : int, optional
        Inferred from the model's length 3N.
    batch_size : int
    amp : bool

    Returns
    -------
    SudokuDecode
    """
    length = model.cfg.length
    b = int(round((length // 3) ** 0.25)) if box is None else check_box(box)
    if 3 * b**4 != length or model.cfg.vocab_size != 3 * b**2 + 1:
        raise ValueError(f"the ARM's length {length} and vocabulary {model.cfg.vocab_size} do "
                         f"not fit box b = {b} (need 3N = {3 * b**4}, 3n + 1 = {3 * b * b + 1})")
    n = b * b
    p_all = _as_puzzle_array(puzzles, b)
    M, N = p_all.shape
    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    tokens_all, prompt_all = arm_prompts(p_all, box=b)
    # Allowed ids per slot type: 0 row, 1 column, 2 value.
    allowed = torch.zeros(3, 3 * n + 1, dtype=torch.bool, device=device)
    allowed[0, n + 1:2 * n + 1] = True
    allowed[1, 2 * n + 1:3 * n + 1] = True
    allowed[2, 1:n + 1] = True
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    out_tokens = np.zeros_like(tokens_all)
    bar = _bar(progress, sum(length - int(prompt_all[lo:lo + batch_size].min())
                             for lo in range(0, M, batch_size)), "decode arm", "token")
    try:
        for lo in range(0, M, batch_size):
            x = torch.from_numpy(tokens_all[lo:lo + batch_size]).to(device)
            pr = torch.from_numpy(prompt_all[lo:lo + batch_size]).to(device)
            inp_all, in_pos_all, tgt_all = _arm_step_inputs(x, model.cfg.bos_id)
            ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
            nan_seen = torch.zeros((), dtype=torch.bool, device=device)
            caches: list[list] = [[] for _ in model.blocks]
            first = int(pr.min())
            for t in range(first, length):
                # Step t reads tokens 0..t-1 (and BOS) and predicts token t: a prefill of
                # the first `first` + 1 steps, then one new step at a time (keys and values
                # of the earlier steps cached).
                lo_t = 0 if t == first else t
                inp = torch.cat([inp_all[:, :1], x[:, :t]], dim=1)[:, lo_t:]
                with ctx:
                    logits = model.forward_steps_cached(inp, in_pos_all[:, lo_t:t + 1],
                                                        tgt_all[:, lo_t:t + 1],
                                                        caches)[:, -1].float()
                nan_seen |= torch.isnan(logits).any()  # checked once per batch, no sync
                logits = logits.masked_fill(~allowed[t % 3], -math.inf)
                pred = logits.argmax(dim=-1)
                x[:, t] = torch.where(t >= pr, pred, x[:, t])
                if bar is not None:
                    bar.update(1)
            if bool(nan_seen):
                raise FloatingPointError("the ARM gave NaN logits (non-finite weights or inputs)")
            out_tokens[lo:lo + batch_size] = x.cpu().numpy()
    finally:
        model.train(was)
        if bar is not None:
            bar.close()
    grids, ok = decode_arm_tokens(out_tokens, box=b)
    # A clue named again by a generated triple keeps the clue (decode_arm_tokens keeps the
    # first occurrence); the guard below makes that explicit.
    grids = np.where(p_all > 0, p_all, grids)
    steps = np.full((M, N), -1, np.int64)
    for i in range(M):
        tri = out_tokens[i, prompt_all[i]:].reshape(-1, 3)
        r, c = tri[:, 0] - (n + 1), tri[:, 1] - (2 * n + 1)
        for j, (rr, cc) in enumerate(zip(r, c, strict=True)):
            if 0 <= rr < n and 0 <= cc < n:
                cell = rr * n + cc
                if p_all[i, cell] == 0 and steps[i, cell] < 0:
                    steps[i, cell] = j
    solved = valid_solutions(grids, p_all, box=b) & ok
    # One forward step per generated token (the KV cache holds the rest).
    calls = (length - prompt_all).astype(np.int64)
    return SudokuDecode("arm", grids, steps, solved, ok, time.perf_counter() - t0,
                        {"greedy": True, "slot_types": True, "batch_size": int(batch_size),
                         "tokens": out_tokens}, calls)


class _LockstepValues:
    """MDM values for many concurrent :func:`lohard.sudoku.bp_decode` runs, one batched
    forward pass per round: each run (a thread) posts its grid and cell and waits; the
    last to post runs the model for everybody."""

    def __init__(self, model, puzzles: np.ndarray, temperature: float, seed: int,
                 use_amp: bool, offset: int) -> None:
        self.model = model
        self.puzzles = puzzles
        self.temperature = temperature
        self.use_amp = use_amp
        self.rngs = [np.random.default_rng(np.random.SeedSequence([int(seed), offset + i]))
                     for i in range(puzzles.shape[0])]
        self.cv = threading.Condition()
        self.active = puzzles.shape[0]
        self.pending: dict[int, tuple[np.ndarray, int]] = {}
        self.results: dict[int, np.ndarray] = {}
        self.error: BaseException | None = None

    def _run(self) -> None:
        ids = sorted(self.pending)
        device = _model_device(self.model)
        p = torch.from_numpy(self.puzzles[ids]).to(device)
        g = torch.from_numpy(np.stack([self.pending[i][0] for i in ids])).to(device)
        cells = torch.tensor([self.pending[i][1] for i in ids], device=device)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else nullcontext()
        with torch.no_grad(), ctx:
            logits = self.model(mdm_sudoku_inputs(p, g, self.model.mask_id))
        N = p.shape[1]
        rows = logits[torch.arange(len(ids), device=device), N + cells]
        logp = _digit_logp(rows, self.temperature).cpu().double().numpy()
        for i, lp in zip(ids, logp, strict=True):
            self.results[i] = lp
        self.pending.clear()

    def value_fn(self, i: int):
        def fn(grid: np.ndarray, cell: int, marginals: np.ndarray) -> int:
            with self.cv:
                self.pending[i] = (grid.astype(np.int64), int(cell))
                while i not in self.results:
                    if self.error is not None:
                        raise RuntimeError("another BP-MDM decoding thread failed") \
                            from self.error
                    if len(self.pending) == self.active:
                        try:
                            self._run()
                        except BaseException as err:
                            self.error = err
                            self.cv.notify_all()
                            raise
                        self.cv.notify_all()
                    else:
                        self.cv.wait()
                lp = self.results.pop(i)
            if self.temperature > 0:
                pr = np.exp(lp - lp.max())
                return int(self.rngs[i].choice(lp.size, p=pr / pr.sum())) + 1
            return int(np.argmax(lp)) + 1
        return fn

    def finished(self) -> None:
        with self.cv:
            self.active -= 1
            if self.active and len(self.pending) == self.active:
                try:
                    self._run()
                except BaseException as err:
                    self.error = err
                    raise
                finally:
                    self.cv.notify_all()


def _bp_one(p: np.ndarray, score: str, box: int):
    r = bp_decode(p, score=score, box=box)
    return r.grid, r.order


def bp_oracle_decode(puzzles, *, model: MaskedDiffusionTransformer | None = None,
                     box: int | None = None, score: str = "margin", temperature: float = 1.0,
                     seed: int = 0, batch_size: int = 256, jobs: int = 1,
                     amp: bool = True, progress: bool = False) -> SudokuDecode:
    """Decode in the order belief propagation is most confident about (an ordering oracle).

    Each step runs BP on the current grid (:func:`lohard.sudoku.bp_decode`), unmasks the
    blank with the best BP ``score`` and writes BP's most probable digit (``model`` None:
    method ``"bp"``) or a digit drawn from the MDM's prediction at that cell given the
    current grid (method ``"bp-mdm"``, through ``bp_decode``'s ``value_fn``).

    Parameters
    ----------
    puzzles : int array, shape (M, N), or PuzzleSet
    model : MaskedDiffusionTransformer, optional
    box : int, optional
        Required without a model (inferred from the model otherwise, else from N).
    score : {"margin", "max"}
        BP's oracle score.
    temperature : float
        Of the MDM's value draws (0: argmax); puzzle i draws from its own stream
        ``SeedSequence([seed, i])``, so results do not depend on thread timing.
    seed : int
    batch_size : int
        Puzzles decoded concurrently (threads) with a model: one forward pass per round.
    jobs : int
        Processes for pure BP decoding (joblib; 1: serial).
    amp : bool
    progress : bool

    Returns
    -------
    SudokuDecode
    """
    if model is not None:
        b = int(round(math.sqrt(model.vocab_size - 1)))
    elif box is not None:
        b = check_box(box)
    else:
        N = np.asarray(puzzles.puzzles if isinstance(puzzles, PuzzleSet) else puzzles).shape[-1]
        b = int(round(N ** 0.25))
    p_all = _as_puzzle_array(puzzles, b)
    M, N = p_all.shape
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be finite and >= 0 (0: argmax), got {temperature}")
    grids = np.zeros((M, N), np.int64)
    steps = np.full((M, N), -1, np.int64)
    t0 = time.perf_counter()
    bar = tqdm(total=M, disable=not progress, desc="bp" if model is None else "bp-mdm",
               unit="puzzle", dynamic_ncols=True)

    def store(i, grid, order):
        grids[i] = grid
        steps[i, order] = np.arange(order.size)

    try:
        if model is None:
            if jobs == 1:
                for i in range(M):
                    store(i, *_bp_one(p_all[i], score, b))
                    bar.update(1)
            else:
                from joblib import Parallel, delayed

                chunk = max(1, batch_size)
                for lo in range(0, M, chunk):
                    res = Parallel(n_jobs=jobs)(delayed(_bp_one)(p_all[i], score, b)
                                                for i in range(lo, min(M, lo + chunk)))
                    for k, (g, o) in enumerate(res):
                        store(lo + k, g, o)
                    bar.update(len(res))
        else:
            device = _model_device(model)
            was = model.training
            model.eval()
            try:
                for lo in range(0, M, batch_size):
                    hi = min(M, lo + batch_size)
                    lock = _LockstepValues(model, p_all[lo:hi], float(temperature), seed,
                                           amp and device.type == "cuda", lo)
                    results: dict[int, Any] = {}

                    def work(k, lock=lock, results=results, lo=lo):
                        try:
                            results[k] = bp_decode(p_all[lo + k], score=score,
                                                   value_fn=lock.value_fn(k), box=b)
                        except BaseException as err:  # reported by the main thread
                            results[k] = err
                        finally:
                            lock.finished()

                    threads = [threading.Thread(target=work, args=(k,), daemon=True)
                               for k in range(hi - lo)]
                    for th in threads:
                        th.start()
                    for th in threads:
                        th.join()
                    for k in range(hi - lo):
                        r = results[k]
                        if isinstance(r, BaseException):
                            raise RuntimeError(f"BP-MDM decoding of puzzle {lo + k} failed") \
                                from r
                        store(lo + k, r.grid, r.order)
                    bar.update(hi - lo)
            finally:
                model.train(was)
    finally:
        bar.close()
    solved = valid_solutions(grids, p_all, box=b)
    # MDM calls: one per blank with the MDM's values (BP's own passes are not model calls).
    calls = (p_all == 0).sum(axis=1) if model is not None else np.zeros(M, np.int64)
    return SudokuDecode("bp" if model is None else "bp-mdm", grids, steps, solved,
                        np.ones(M, bool), time.perf_counter() - t0,
                        {"score": score, "temperature": float(temperature) if model else 0.0,
                         "seed": int(seed)}, calls.astype(np.int64))
