"""Sudoku training data and losses: seeded batches, digit relabelling, MDM and ARM losses."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from lohard.mdm._loss import loss_masks
from lohard.mdm._pilearner import PiLearner
from lohard.mdm._sudoku_config import _DATA, SudokuTrainConfig
from lohard.sudoku import (
    PuzzleSet,
    arm_tokens,
)

# -- data ----------------------------------------------------------------------------------

def puzzles_hash(ps: PuzzleSet) -> str:
    """SHA-256 of a puzzle set's puzzles, solutions and orders (resume checks)."""
    h = hashlib.sha256(f"box={ps.box}".encode())
    for a in (ps.puzzles, ps.solutions, ps.orders):
        h.update(np.ascontiguousarray(a.astype(np.int64)).tobytes())
    return h.hexdigest()


def relabel_digits(grids: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Apply digit permutations: digit d of row i becomes ``perms[i, d - 1]``; 0 stays 0.

    Parameters
    ----------
    grids : int array, shape (M, N)
    perms : int array, shape (M, n)
        Each row a permutation of 1..n.
    """
    g = np.asarray(grids, dtype=np.int64)
    table = np.concatenate([np.zeros((g.shape[0], 1), np.int64),
                            np.asarray(perms, np.int64)], axis=1)
    return np.take_along_axis(table, g, axis=1)


def training_batch(ps: PuzzleSet, cfg: SudokuTrainConfig, step: int) -> dict[str, np.ndarray]:
    """The batch of step ``step``: a function of ``(cfg.seed, step)`` and the puzzle set.

    Returns a dict with ``puzzles``, ``solutions`` (int64 (B, N)) and, for the ARM,
    ``tokens`` (int64 (B, 3N)) and ``prompt`` (int64 (B,)).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), _DATA, int(step)]))
    idx = rng.integers(0, len(ps), size=cfg.batch_size)
    p = ps.puzzles[idx].astype(np.int64)
    s = ps.solutions[idx].astype(np.int64)
    if cfg.augment:
        n = ps.box**2
        perms = rng.permuted(np.tile(np.arange(1, n + 1), (cfg.batch_size, 1)), axis=1)
        p, s = relabel_digits(p, perms), relabel_digits(s, perms)
    out = {"puzzles": p, "solutions": s}
    if cfg.kind == "arm":
        orders = ps.orders[idx] if cfg.arm_order == "solver" else None
        out["tokens"], out["prompt"] = arm_tokens(p, s, orders)
    return out


# -- losses --------------------------------------------------------------------------------
def mdm_sudoku_inputs(puzzles: torch.Tensor, grid: torch.Tensor, mask_id: int) -> torch.Tensor:
    """MDM input ``[clues | solution half]``: blank cells of ``grid`` (0) become the mask id.

    Parameters
    ----------
    puzzles : int64 tensor, shape (B, N)
        The clues (0 = blank).
    grid : int64 tensor, shape (B, N)
        The solution half so far (0 = still masked); clue cells hold their clue.
    """
    return torch.cat([puzzles, torch.where(grid > 0, grid, mask_id)], dim=1)


def mdm_sudoku_loss(model, puzzles: torch.Tensor, solutions: torch.Tensor, *,
                    generator: torch.Generator | None = None,
                    reduction: str = "mean",
                    masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """One Monte Carlo estimate of the blank-cell ELBO (module docstring), nats per blank.

    Parameters
    ----------
    model : MaskedDiffusionTransformer
        Vocabulary n + 1 (digits 0..n), mask id n + 1.
    puzzles, solutions : int64 tensors, shape (B, N)
    generator : torch.Generator, optional
        Draws t and the masks (on the tensors' device).
    reduction : {"mean", "none"}
    masks : (bool tensor (B, N), float32 tensor (B,)), optional
        ``(mask, weight)`` of :func:`loss_masks` (ELBO, linear) instead of a draw from
        ``generator``: e.g. a data-parallel rank's rows of the global batch's draw.

    Returns
    -------
    float32 tensor, shape () or (B,)
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    b, n_cells = puzzles.shape
    blank = puzzles == 0
    n_blank = blank.sum(dim=1)
    if bool((n_blank == 0).any()):
        raise ValueError("every puzzle needs at least one blank cell to be masked")
    if masks is None:
        masks = loss_masks(b, n_cells, kind="elbo", schedule="linear", generator=generator,
                           device=puzzles.device)
    mask, weight = masks
    mask = mask & blank
    grid = torch.where(mask, 0, solutions)
    logits = model(mdm_sudoku_inputs(puzzles, grid, model.mask_id))[:, n_cells:].float()
    nll = F.cross_entropy(logits.reshape(b * n_cells, -1), solutions.reshape(-1),
                          reduction="none").view(b, n_cells)
    per = weight * torch.where(mask, nll, 0.0).sum(dim=1) / n_blank
    return per.mean() if reduction == "mean" else per


def _arm_step_inputs(tokens: torch.Tensor, bos_id: int):
    b, length = tokens.shape
    dev = tokens.device
    inp = torch.cat([torch.full((b, 1), bos_id, dtype=torch.long, device=dev),
                     tokens[:, :-1]], dim=1)
    pos = torch.arange(length, device=dev)
    in_pos = torch.cat([torch.tensor([length], device=dev), pos[:-1]]).expand(b, -1)
    return inp, in_pos, pos.expand(b, -1)


def arm_sudoku_loss(model: PiLearner, tokens: torch.Tensor, prompt: torch.Tensor, *,
                    reduction: str = "mean", n_targets: float | None = None) -> torch.Tensor:
    """Cross-entropy (nats per token) of the blank triples, teacher-forced.

    Parameters
    ----------
    model : PiLearner
        Read in the identity order: step t predicts ``tokens[:, t]`` from ``tokens[:, :t]``.
    tokens : int64 tensor, shape (B, 3N)
    prompt : int64 tensor, shape (B,)
        Tokens of the clue triples; only positions ``>= prompt`` enter the loss.
    n_targets : float, optional
        What the ``"mean"`` divides the summed loss by, instead of this batch's target
        count: a data-parallel rank passes the global batch's count over the number of
        ranks, so that the ranks' averaged gradient is the global batch's.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    logits = model.forward_steps(*_arm_step_inputs(tokens, model.cfg.bos_id)).float()
    nll = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")
    target = torch.arange(tokens.shape[1], device=tokens.device)[None] >= prompt[:, None]
    per_tok = torch.where(target, nll, 0.0)
    if reduction == "none":
        return per_tok.sum(dim=1) / target.sum(dim=1).clamp_min(1)
    if n_targets is not None:
        return per_tok.sum() / n_targets
    return per_tok.sum() / target.sum().clamp_min(1)
