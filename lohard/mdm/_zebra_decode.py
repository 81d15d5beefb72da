"""Zebra decoding and evaluation, on the Sudoku decoders.

* MDM: :func:`lohard.mdm._sudoku_decode._mdm_decode_batch` (vanilla, top-prob, margin,
  one cell per step, Gumbel noise in the "log-annealed" or "prob" convention) runs on a
  thin view of the Zebra MDM that looks like a Sudoku MDM whose puzzle half is all
  blank: the view prepends the clue prompt and gives each cell the logits of its
  attribute's m items, which the Sudoku decoder reads as digits ``1..m``.
* ARM: greedy decoding with the KV cache, each slot restricted to its token type and
  to ids of this size (attribute < n, house < m, an item with value < m).

Accuracy is the share of puzzles whose whole decoded grid equals the (unique) solution;
:func:`lohard.mdm._sudoku_eval.summarize_decode` adds the Wilson interval and the
Spearman agreement of the decoding order with the solver's.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext

import numpy as np
import torch

from lohard.mdm._sampling import DEFAULT_NOISE_SCALE, _model_device
from lohard.mdm._sudoku_data import _arm_step_inputs
from lohard.mdm._sudoku_decode import (
    MDM_DECODERS,
    SudokuDecode,
    _bar,
    _check_decode_opts,
    _mdm_decode_batch,
)
from lohard.mdm._sudoku_eval import summarize_decode
from lohard.mdm._zebra_train import ZebraModel, cell_logits
from lohard.zebra import ZebraSet, clue_tokens
from lohard.zebra._encoding import ATTR0, HOUSE0

#: Decoders of an MDM in the Table 3 run (vanilla has no score to add noise to).
ZEBRA_MDM_DECODERS = ("vanilla", "top-prob", "margin", "top-prob-nonoise", "margin-nonoise")


class _SolutionView(torch.nn.Module):
    """A Zebra MDM seen as a Sudoku MDM with an all-blank puzzle half of N cells.

    The Sudoku decoder writes digits 1..m and reads logits column v as digit v; the
    view maps digit k of cell (a, h) to item (a, k - 1) on the way in, and gives the
    logits of the cell's m items (after a dummy column 0) on the way out.
    """

    def __init__(self, model, prompt: torch.Tensor, ids: torch.Tensor) -> None:
        super().__init__()
        self.model, self.prompt, self.ids = model, prompt, ids
        self.mask_id = model.mask_id

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_cells = x.shape[1] // 2
        sol = x[:, n_cells:]
        tok = torch.where(sol == self.mask_id, self.mask_id, self.ids[:, 0] + sol - 1)
        logits = self.model(torch.cat([self.prompt, tok], dim=1))[:, -n_cells:]
        cells = cell_logits(logits, self.ids)
        cells = torch.cat([cells.new_zeros(cells.shape[:2] + (1,)), cells], dim=2)
        return torch.cat([cells.new_zeros(cells.shape), cells], dim=1)


@torch.no_grad()
def mdm_decode_zebra(zm: ZebraModel, ps: ZebraSet, *, method: str = "margin",
                     noise_scale: float = DEFAULT_NOISE_SCALE, temperature: float = 0.0,
                     batch_size: int = 512, seed: int = 0, amp: bool = True,
                     noise_mode: str = "log-annealed",
                     progress: bool | str = False) -> SudokuDecode:
    """Fill the solution grids of a puzzle set with an MDM, one cell per step.

    Parameters are those of :func:`lohard.mdm._sudoku_decode.mdm_decode`.

    Returns
    -------
    SudokuDecode
        ``grids`` hold values ``0..m-1`` (row-major cells), ``solved`` marks exact
        solutions.
    """
    zm.check_size(ps)
    _check_decode_opts(method, 1, noise_scale, temperature, batch_size, noise_mode)
    model = zm.model
    lay = zm.config.layout
    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    prompts = clue_tokens(ps.clues, ps.n_clues, lay)
    ids = torch.from_numpy(lay.cell_item_ids).to(device)
    M, N = len(ps), lay.n_cells
    grids = np.zeros((M, N), np.int64)
    steps = np.full((M, N), -1, np.int64)
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    bar = _bar(progress, M * N, f"decode {method}", "cell")
    try:
        for lo in range(0, M, batch_size):
            pr = torch.from_numpy(prompts[lo:lo + batch_size]).to(device)
            view = _SolutionView(model, pr, ids)
            blank = torch.zeros((pr.shape[0], N), dtype=torch.long, device=device)
            g, st = _mdm_decode_batch(view, blank, method, 1, float(noise_scale),
                                      float(temperature), gen, use_amp, noise_mode, bar)[:2]
            grids[lo:lo + batch_size] = g.cpu().numpy() - 1
            steps[lo:lo + batch_size] = st.cpu().numpy()
    finally:
        model.train(was)
        if bar is not None:
            bar.close()
    solved = (grids == ps.solutions.reshape(M, N)).all(axis=1)
    return SudokuDecode(method, grids, steps, solved, np.ones(M, bool),
                        time.perf_counter() - t0,
                        {"noise_mode": noise_mode, "noise": "gumbel",
                         "noise_scale": float(noise_scale) if method != "vanilla" else 0.0,
                         "temperature": float(temperature), "seed": int(seed),
                         "batch_size": int(batch_size), "cells_per_step": 1})


@torch.no_grad()
def arm_decode_zebra(zm: ZebraModel, ps: ZebraSet, *, batch_size: int = 512, amp: bool = True,
                     progress: bool | str = False) -> SudokuDecode:
    """Generate the (attribute, house, item) triples greedily after the clue prompt.

    A sequence that names a cell twice or misses one is malformed (not solved).
    """
    from lohard.zebra import decode_arm_tokens

    zm.check_size(ps)
    model = zm.model
    lay = zm.config.layout
    m, n, P, length = lay.m, lay.n, lay.prompt_length, lay.arm_length
    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    M = len(ps)
    tokens_all = np.zeros((M, length), np.int64)
    tokens_all[:, :P] = clue_tokens(ps.clues, ps.n_clues, lay)
    allowed = torch.zeros(3, lay.vocab_size, dtype=torch.bool, device=device)
    allowed[0, ATTR0:ATTR0 + n] = True
    allowed[1, HOUSE0:HOUSE0 + m] = True
    allowed[2, torch.from_numpy(lay.cell_item_ids.ravel()).to(device)] = True
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    bar = _bar(progress, -(-M // batch_size) * (length - P), "decode arm", "token")
    try:
        for lo in range(0, M, batch_size):
            x = torch.from_numpy(tokens_all[lo:lo + batch_size]).to(device)
            inp_all, in_pos_all, tgt_all = _arm_step_inputs(x, model.cfg.bos_id)
            ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
            caches: list[list] = [[] for _ in model.blocks]
            for t in range(P, length):
                # Prefill of the prompt's P + 1 steps, then one new step at a time.
                lo_t = 0 if t == P else t
                inp = torch.cat([inp_all[:, :1], x[:, :t]], dim=1)[:, lo_t:]
                with ctx:
                    logits = model.forward_steps_cached(inp, in_pos_all[:, lo_t:t + 1],
                                                        tgt_all[:, lo_t:t + 1],
                                                        caches)[:, -1].float()
                if bool(torch.isnan(logits).any()):
                    raise FloatingPointError("the ARM gave NaN logits")
                logits = logits.masked_fill(~allowed[(t - P) % 3], -math.inf)
                x[:, t] = logits.argmax(dim=-1)
                if bar is not None:
                    bar.update(1)
            tokens_all[lo:lo + batch_size] = x.cpu().numpy()
    finally:
        model.train(was)
        if bar is not None:
            bar.close()
    grids, steps, ok = decode_arm_tokens(tokens_all, lay)
    flat = grids.reshape(M, -1)
    solved = ok & (flat == ps.solutions.reshape(M, -1)).all(axis=1)
    return SudokuDecode(zm.name, flat, steps, solved, ok, time.perf_counter() - t0,
                        {"greedy": True, "slot_types": True, "batch_size": int(batch_size)})


def evaluate_zebra(zm: ZebraModel, test: ZebraSet, *, decoders=None,
                   noise_scale: float = DEFAULT_NOISE_SCALE, temperature: float = 0.0,
                   seed: int = 0, batch_size: int = 512, noise_mode: str = "log-annealed",
                   progress: bool = False) -> tuple[dict, dict[str, SudokuDecode]]:
    """Decode a test set with every decoder of a model.

    Parameters
    ----------
    decoders : list of str, optional
        MDM: from :data:`ZEBRA_MDM_DECODERS` (default all; ``-nonoise``: noise_scale 0);
        ARM: ``["arm"]``.

    Returns
    -------
    results : dict
        decoder -> :func:`summarize_decode` dict (accuracy, ci95, order agreement).
    decodes : dict
        decoder -> SudokuDecode.
    """
    zm.check_size(test)
    solver = test.solver_steps()
    if zm.kind == "arm":
        decoders = ["arm"] if decoders is None else list(decoders)
        if decoders != ["arm"]:
            raise ValueError(f"an ARM has the single decoder 'arm', got {decoders}")
    elif decoders is None:
        decoders = list(ZEBRA_MDM_DECODERS)
    results, decodes = {}, {}
    for name in decoders:
        if zm.kind == "arm":
            dec = arm_decode_zebra(zm, test, batch_size=batch_size,
                                   progress=f"decode {zm.name}" if progress else False)
        else:
            base = name.removesuffix("-nonoise")
            if base not in MDM_DECODERS:
                raise ValueError(f"unknown decoder {name!r}; choose from "
                                 f"{', '.join(ZEBRA_MDM_DECODERS)}")
            dec = mdm_decode_zebra(zm, test, method=base,
                                   noise_scale=0.0 if name.endswith("-nonoise") else noise_scale,
                                   temperature=temperature, batch_size=batch_size, seed=seed,
                                   noise_mode=noise_mode,
                                   progress=f"decode {name}" if progress else False)
            dec.method = name
        results[name] = summarize_decode(dec, solver)
        decodes[name] = dec
    return results, decodes
