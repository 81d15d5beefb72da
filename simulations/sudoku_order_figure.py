"""Figure: the order in which each method fills one Sudoku, against the strategy solver's.

One grid per method -- the strategy solver (the rater's fill order), the MDM with the
top-probability-margin and top-probability oracles, and BP (margin score, BP's values)
-- with every blank cell coloured by the step at which it was filled (one shared colour
bar), its digit written in it (red if wrong), and the clues in bold on grey. Each title
gives the method, whether the grid is solved, and the Spearman correlation of its order
with the solver's.

Needs the MDM checkpoint of ``lohard sudoku tables`` (same --box / --scale / --work-dir)
and its test sets. Writes figures/sudoku_order_9x9.png and .json (``_4x4`` for 4x4;
``figures/sudoku_order`` for the paper-scale run) with config, seed, versions, the puzzle
and every order.

Usage::

    python simulations/sudoku_order_figure.py                  # after lohard sudoku tables
    python simulations/sudoku_order_figure.py --box 2          # after the 4x4 run
    python simulations/sudoku_order_figure.py --scale gpu      # after the paper-scale run
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class Config:
    box: int = 3
    scale: str = "cpu"  # whose tables run: cpu or gpu (lohard sudoku tables --scale)
    test_set: str = "easy"  # "easy" or "hard"
    index: int = -1  # test puzzle; -1: the first one the margin decoder solves
    # Decoding conventions; None: those of the tables run of this box and scale.
    noise_scale: float | None = None  # App. D.2 Gumbel coefficient of the adaptive scores
    noise_mode: str | None = None  # "log-annealed" or "prob"
    temperature: float | None = None  # of the value draws (0: argmax)
    seed: int = 0
    data_seed: int = 1  # as in lohard sudoku tables
    n_test: int = 0  # 0: lohard sudoku tables' default for this box and scale
    device: str = "cpu"
    work_dir: str = ""
    out: str = ""  # figures/sudoku_order_9x9, _4x4, or sudoku_order (gpu): default_out


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                    help="the tables run of this scale (default cpu)")
    ap.add_argument("--box", type=int, choices=(2, 3), default=3)
    ap.add_argument("--test-set", choices=("easy", "hard"))
    for name, typ in (("index", int), ("noise-scale", float), ("temperature", float),
                      ("seed", int), ("data-seed", int), ("n-test", int)):
        ap.add_argument(f"--{name}", type=typ)
    ap.add_argument("--noise-mode", choices=("log-annealed", "prob"))
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--work-dir")
    ap.add_argument("--out")
    args = vars(ap.parse_args(argv))
    cfg = Config(**{k: v for k, v in args.items() if v is not None})
    from lohard.experiments.sudoku_tables import default_out, sudoku_tables_config

    tables = sudoku_tables_config(cfg.box, cfg.scale)
    if not cfg.work_dir:
        cfg.work_dir = tables.work_dir
    if not cfg.out:
        cfg.out = default_out("figures/sudoku_order", cfg.box, cfg.scale)
    if not cfg.n_test:
        cfg.n_test = tables.n_test
    for name in ("noise_scale", "noise_mode", "temperature"):
        if getattr(cfg, name) is None:
            setattr(cfg, name, getattr(tables, name))
    return cfg


def main(argv=None) -> int:
    cfg = parse(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from lohard._util import atomic_write, atomic_write_json, provenance
    from lohard.mdm._sudoku_decode import bp_oracle_decode, mdm_decode
    from lohard.mdm._sudoku_eval import order_agreement, solver_steps
    from lohard.mdm._sudoku_train import load_sudoku_model
    from lohard.mdm._train import CKPT_NAME
    from lohard.sudoku import load_puzzles

    torch.set_num_threads(1)
    work = Path(cfg.work_dir)
    ckpt = work / "mdm" / CKPT_NAME
    if not ckpt.exists():
        raise SystemExit(f"no MDM checkpoint at {ckpt}: run lohard sudoku tables --scale "
                         f"{cfg.scale} --box {cfg.box} first")
    sm = load_sudoku_model(ckpt, device=cfg.device)
    seed = cfg.data_seed + (1 if cfg.test_set == "easy" else 2)
    path = work / "data" / f"{cfg.test_set}_{cfg.test_set}_n{cfg.n_test}_s{seed}.npz"
    if not path.exists():
        raise SystemExit(f"no test set at {path}: run lohard sudoku tables first")
    test = load_puzzles(path)
    # The test puzzles the tables use: those seen in training are dropped (4x4 only).
    train_files = sorted((work / "data").glob(f"train_easy_n*_s{cfg.data_seed}.npz"))
    if len(train_files) == 1:
        seen = {q.tobytes() for q in load_puzzles(train_files[0]).puzzles}
        keep = np.flatnonzero([q.tobytes() not in seen for q in test.puzzles])
        if keep.size < len(test):
            test = test[keep]
    solver = solver_steps(test.orders, test.puzzles)
    if cfg.index >= len(test):
        raise SystemExit(f"--index {cfg.index}: the test set holds {len(test)} puzzles")
    # Decoding depends on the whole batch (one generator per batch), so every MDM order
    # shown comes from one decode of the same batch, read at row idx.
    batch = test.puzzles[:max(200, cfg.index + 1)].astype(np.int64)
    decoded = {method: mdm_decode(sm.model, batch, method=method, noise_scale=cfg.noise_scale,
                                  noise_mode=cfg.noise_mode, temperature=cfg.temperature,
                                  seed=cfg.seed)
               for method in ("margin", "top-prob")}
    if cfg.index >= 0:
        idx = cfg.index
    else:
        # The first puzzle the margin decoder solves (a failure is shown by --index).
        solved = np.flatnonzero(decoded["margin"].solved)
        idx = int(solved[0]) if solved.size else 0
    p = test.puzzles[idx:idx + 1].astype(np.int64)
    sol = test.solutions[idx].astype(np.int64)
    methods = {"strategy solver": (sol, solver[idx])}
    for name, method in (("MDM, top-prob margin", "margin"), ("MDM, top probability",
                                                                "top-prob")):
        methods[name] = (decoded[method].grids[idx], decoded[method].steps[idx])
    d = bp_oracle_decode(p, box=cfg.box)
    methods["BP (margin), BP values"] = (d.grids[0], d.steps[0])

    n = cfg.box**2
    vmax = max(int(s.max()) for _, s in methods.values())
    fig, axes = plt.subplots(1, len(methods), figsize=(3.3 * len(methods), 3.9))
    cmap = plt.get_cmap("viridis")
    summary = {}
    for ax, (name, (grid, steps)) in zip(axes, methods.items(), strict=True):
        rho = float(order_agreement(steps[None], solver[idx][None])[0])
        ok = bool((grid == sol).all())
        summary[name] = {"grid": grid, "steps": steps, "spearman_vs_solver": rho,
                         "solved": ok}
        img = np.full((n, n, 4), (0.85, 0.85, 0.85, 1.0))
        for c in range(n * n):
            r, col = divmod(c, n)
            if p[0, c] == 0 and steps[c] >= 0:
                img[r, col] = cmap(steps[c] / max(vmax, 1))
        ax.imshow(img, extent=(0, n, n, 0))
        for c in range(n * n):
            r, col = divmod(c, n)
            clue = p[0, c] > 0
            v = int(grid[c])
            color = "black" if clue else ("red" if v != sol[c] else "white")
            ax.text(col + 0.5, r + 0.5, str(v) if v else "", ha="center", va="center",
                    fontsize=12 if n <= 4 else 9, fontweight="bold" if clue else "normal",
                    color=color)
        for k in range(n + 1):
            lw = 2.0 if k % cfg.box == 0 else 0.5
            ax.axhline(k, color="black", lw=lw)
            ax.axvline(k, color="black", lw=lw)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name}\n{'solved' if ok else 'NOT solved'}, Spearman rho vs solver = "
                     f"{rho:.2f}", fontsize=8)
    sc = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, vmax))
    cb = fig.colorbar(sc, ax=list(axes), fraction=0.025, pad=0.02)
    cb.set_label("decoding step of the cell (0 = first); grey: clue (bold)")
    scale = (f"CPU-scale {sm.config.model} MDM" if cfg.scale == "cpu"
             else f"{sm.config.model} MDM")
    fig.suptitle(f"Order of filling one {cfg.test_set} {n}x{n} puzzle (test #{idx}); "
                 f"{scale}, {sm.step} steps, seed {sm.config.seed}; red digits are wrong",
                 fontsize=9)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out.with_suffix(".png"),
                 lambda tmp: fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight"))
    atomic_write_json(out.with_suffix(".json"), {
        **provenance(dataclasses.asdict(cfg), cfg.seed), "model": sm.summary(),
        "test_file": str(path), "index": idx, "puzzle": p[0], "solution": sol,
        "methods": summary,
        "scale": "CPU-scale run, not the paper-scale GPU run" if cfg.scale == "cpu"
        else "paper-scale run"})
    for name, s in summary.items():
        print(f"{name:26s} solved={s['solved']} rho={s['spearman_vs_solver']:.3f}")
    print(f"wrote {out.with_suffix('.png')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
