"""Sudoku evaluation: accuracy with intervals, order agreement with the solver, every decoder."""

from __future__ import annotations

import math

import numpy as np

from lohard.mdm._sampling import DEFAULT_NOISE_SCALE
from lohard.mdm._sudoku_decode import (
    BP_DECODERS,
    MDM_DECODERS,
    SudokuDecode,
    arm_decode,
    bp_oracle_decode,
    mdm_decode,
)
from lohard.mdm._sudoku_train import SudokuModel
from lohard.sudoku import (
    PuzzleSet,
)


# -- metrics -------------------------------------------------------------------------------
def solver_steps(orders, puzzles) -> np.ndarray:
    """int64 (M, N): the step at which the strategy solver filled each blank (-1: clue).

    Parameters
    ----------
    orders : int array, shape (M, N)
        The rater's orders (cells, then -1 padding), e.g. ``PuzzleSet.orders``.
    puzzles : int array, shape (M, N)
    """
    o = np.asarray(orders, np.int64)
    p = np.asarray(puzzles, np.int64)
    if o.ndim == 1:
        o, p = o[None], p[None]
    if o.shape != p.shape:
        raise ValueError(f"orders and puzzles must have the same shape, got {o.shape} and "
                         f"{p.shape}")
    steps = np.full(o.shape, -1, np.int64)
    for i in range(o.shape[0]):
        cells = o[i][o[i] >= 0]
        if not np.array_equal(np.sort(cells), np.flatnonzero(p[i] == 0)):
            raise ValueError(f"orders[{i}] is not a permutation of puzzle {i}'s blank cells")
        steps[i, cells] = np.arange(cells.size)
    return steps


def spearman(a, b) -> float:
    """Spearman rank correlation of two 1-D arrays (average ranks for ties).

    NaN when fewer than two values or when either side is constant.
    """
    from scipy.stats import rankdata

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if a.size < 2:
        return float("nan")
    ra, rb = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def order_agreement(steps_a, steps_b) -> np.ndarray:
    """Per-puzzle Spearman correlation of two decoding orders over their common cells.

    Parameters
    ----------
    steps_a, steps_b : int arrays, shape (M, N)
        Step at which each cell was filled, -1 for clues or unfilled cells (e.g.
        :attr:`SudokuDecode.steps` and :func:`solver_steps`).

    Returns
    -------
    float64 array, shape (M,)
        NaN where fewer than two cells were filled by both.
    """
    a = np.asarray(steps_a, np.int64)
    b = np.asarray(steps_b, np.int64)
    if a.shape != b.shape:
        raise ValueError(f"step arrays must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim == 1:
        a, b = a[None], b[None]
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        both = (a[i] >= 0) & (b[i] >= 0)
        out[i] = spearman(a[i, both], b[i, both])
    return out


def proportion_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (default 95%)."""
    if n <= 0:
        return float("nan"), float("nan")
    ph = k / n
    den = 1 + z * z / n
    mid = (ph + z * z / (2 * n)) / den
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    """Pooled two-proportion z statistic of k1/n1 against k2/n2 (positive: first larger)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"need n1, n2 >= 1, got {n1}, {n2}")
    pool = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0 if k1 * n2 == k2 * n1 else math.copysign(math.inf, k1 / n1 - k2 / n2)
    return (k1 / n1 - k2 / n2) / se


def summarize_decode(dec: SudokuDecode, solver: np.ndarray | None = None) -> dict:
    """Accuracy (with Wilson 95% interval) and order agreement with the solver, as a dict."""
    k, n = int(dec.solved.sum()), int(dec.solved.size)
    lo, hi = proportion_ci(k, n)
    out = {"method": dec.method, "num": n, "solved": k,
           "accuracy": k / n if n else float("nan"), "ci95": [lo, hi],
           "well_formed": float(dec.well_formed.mean()) if n else float("nan"),
           "seconds": dec.seconds,
           "options": {key: v for key, v in dec.options.items() if key != "tokens"}}
    if dec.calls is not None and n:
        out["model_calls_mean"] = float(np.mean(dec.calls))
    if solver is not None:
        rho = order_agreement(dec.steps, solver)
        good = np.isfinite(rho)
        out["order_spearman_mean"] = float(rho[good].mean()) if good.any() else float("nan")
        out["order_spearman_sem"] = (float(rho[good].std(ddof=1) / math.sqrt(good.sum()))
                                     if good.sum() > 1 else float("nan"))
        out["order_spearman_n"] = int(good.sum())
    return out


def evaluate_sudoku(sm: SudokuModel, test: PuzzleSet, *, decoders=None,
                    noise_scale: float = DEFAULT_NOISE_SCALE, temperature: float = 1.0,
                    cells_per_step: int = 1, seed: int = 0, batch_size: int = 1024,
                    bp_limit: int | None = None, jobs: int = 1,
                    progress: bool = False, noise_mode: str = "log-annealed"
                    ) -> tuple[dict, dict[str, SudokuDecode]]:
    """Decode a test set with every decoder of a model; accuracies and order agreements.

    Parameters
    ----------
    sm : SudokuModel
    test : PuzzleSet
        Test puzzles with their solver orders.
    decoders : list of str, optional
        MDM: from :data:`MDM_DECODERS` + :data:`BP_DECODERS` (default all), plus
        ``"top-prob-nonoise"`` / ``"margin-nonoise"`` (noise_scale 0); ARM: ``["arm"]``.
    noise_mode : {"log-annealed", "prob"}
        Convention of the Gumbel noise (:func:`mdm_decode`).
    bp_limit : int, optional
        Decode only the first ``bp_limit`` puzzles with the BP decoders (BP runs on CPU).
    jobs : int
        Processes for pure BP decoding.

    Returns
    -------
    results : dict
        decoder -> :func:`summarize_decode` dict.
    decodes : dict
        decoder -> :class:`SudokuDecode`.
    """
    if test.box != sm.config.box:
        raise ValueError(f"the test puzzles have box b = {test.box}, the model b = "
                         f"{sm.config.box}")
    solver = solver_steps(test.orders, test.puzzles)
    if sm.kind == "arm":
        decoders = ["arm"] if decoders is None else list(decoders)
        if decoders != ["arm"]:
            raise ValueError(f"an ARM has the single decoder 'arm', got {decoders}")
    elif decoders is None:
        decoders = list(MDM_DECODERS) + list(BP_DECODERS)
    results, decodes = {}, {}
    for name in decoders:
        if sm.kind == "arm":
            dec = arm_decode(sm.model, test.puzzles, box=test.box, batch_size=batch_size,
                             progress=f"decode {sm.name}" if progress else False)
            dec.method = sm.name
        elif name in MDM_DECODERS or name.endswith("-nonoise"):
            base = name.removesuffix("-nonoise")
            dec = mdm_decode(sm.model, test.puzzles, method=base,
                             cells_per_step=cells_per_step,
                             noise_scale=0.0 if name.endswith("-nonoise") else noise_scale,
                             temperature=temperature, batch_size=batch_size, seed=seed,
                             noise_mode=noise_mode,
                             progress=f"decode {name}" if progress else False)
            dec.method = name
        elif name in BP_DECODERS:
            m = len(test) if bp_limit is None else min(len(test), int(bp_limit))
            dec = bp_oracle_decode(test.puzzles[:m], model=sm.model if name == "bp-mdm" else
                                   None, box=test.box, temperature=temperature, seed=seed,
                                   jobs=jobs, progress=progress)
        else:
            raise ValueError(f"unknown decoder {name!r}; choose from "
                             f"{', '.join(MDM_DECODERS + BP_DECODERS)} (MDM) or 'arm'")
        m = dec.solved.size
        results[name] = summarize_decode(dec, solver[:m])
        decodes[name] = dec
    return results, decodes
