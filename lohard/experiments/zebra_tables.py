"""Table 3: Zebra puzzle accuracy of an MDM (vanilla / top prob / margin) against two ARMs.

Generates (or loads) training and test sets of Zebra puzzles that the strategy solver
fills without guessing (Shah et al. 2024 style, :mod:`lohard.zebra`), trains an MDM
and two ARMs on (attribute, house, value) triples (in the solver's order, "with
ordering", and row-major, "without"), and decodes the test set:

* MDM: vanilla (random order), top probability and top-probability margin, one cell per
  step, each adaptive score with Gumbel noise (coefficient 0.5, "log-annealed"
  convention, App. D.2) and without;
* ARMs: greedy.

Accuracy: share of test puzzles whose whole solution grid is right (95% Wilson
interval). Writes ``figures/zebra_table3_cpu.{md,csv,json}`` (CPU scale) with the
paper's numbers alongside. Every stage is resumable (run folder
``runs/zebra_tables_{m}x{n}_{scale}``): data files, checkpoints and per-model results
are reused, and ``max_minutes`` stops training with a checkpoint so that a second call
continues. CLI: ``lohard zebra tables``.

References
----------
Kim et al. (ICML 2025), Sec. 4.1, Table 3; Shah et al. (2024).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import time
from pathlib import Path

from lohard.experiments.sudoku_tables import _fmt

#: Paper values (Kim et al. 2025, Table 3), accuracy in %, at the paper's sizes (up to
#: 6 x 6 puzzles): the 19M MDM and the 42M ARMs of Shah et al.
PAPER = {"mdm/vanilla": 76.9, "mdm/top-prob": 98.5, "mdm/margin": 98.3,
         "arm-row-major": 80.31, "arm-solver": 91.17}
PAPER_PARAMS = {"mdm": "19M", "arm-solver": "42M", "arm-row-major": "42M"}

#: Row keys and labels, in order.
ROWS = [
    ("arm-row-major", "ARM without ordering (row-major triples)"),
    ("arm-solver", "ARM with ordering (solver's triples)"),
    ("mdm/vanilla", "MDM, vanilla"),
    ("mdm/top-prob", "MDM, top probability (Gumbel noise)"),
    ("mdm/margin", "MDM, top probability margin (Gumbel noise)"),
    ("mdm/top-prob-nonoise", "MDM, top probability (no noise)"),
    ("mdm/margin-nonoise", "MDM, top probability margin (no noise)"),
]


@dataclasses.dataclass
class Config:
    """Settings of one Table 3 run; :data:`SCALES` holds the named defaults."""

    m: int = 3  # entities (houses)
    n: int = 3  # attributes
    max_clues: int = 0  # clue slots of the layout (0: m n)
    n_train: int = 20_000  # training puzzles (augmented per sample)
    n_test: int = 1100  # test puzzles (those also in the training set are dropped)
    steps: int = 14_000  # optimiser steps of the MDM
    arm_steps: int = 3000  # optimiser steps of each ARM (0: steps)
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    mdm_model: str = "cpu-4l"  # lohard.mdm config (learned positions added)
    arm_model: str = "cpu-4l"  # same width and depth as the MDM's
    noise_scale: float = 0.5  # App. D.2: Gumbel noise coefficient of the adaptive scores
    noise_mode: str = "log-annealed"  # the paper codebase's convention (Sudoku decoders)
    temperature: float = 0.0  # MDM value draws; 0: argmax
    seed: int = 0  # training and decoding
    data_seed: int = 1  # training puzzles; the test set uses data_seed + 1
    device: str = "cpu"
    max_minutes: float = 65.0  # whole-script budget; training stops with a checkpoint
    eval_reserve_s: float = 60.0  # seconds kept back per model for its evaluation
    jobs: int = 2  # processes for puzzle generation
    threads: int = 1  # torch CPU threads (0: torch's default; see SCALES)
    eval_batch: int = 500
    work_dir: str = ""  # default runs/zebra_tables_{m}x{n}_{scale}
    out: str = ""  # default figures/zebra_table3_{scale}
    scale: str = "cpu"

    def __post_init__(self) -> None:
        from lohard._util import require_int
        from lohard.mdm._sudoku_decode import NOISE_MODES
        from lohard.zebra import check_size

        self.m, self.n = check_size(self.m, self.n)
        for name, low in (("n_train", 1), ("n_test", 1), ("steps", 1), ("arm_steps", 0),
                          ("batch_size", 1),
                          ("warmup_steps", 0), ("max_clues", 0), ("eval_batch", 1)):
            setattr(self, name, require_int(getattr(self, name), name, minimum=low))
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {self.noise_mode!r}; choose one of "
                             f"{', '.join(NOISE_MODES)}")
        for name in ("max_minutes", "lr"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)}")
        for name in ("noise_scale", "temperature", "eval_reserve_s"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)}")
        if self.max_clues == 0:
            from lohard.zebra import default_max_clues

            self.max_clues = default_max_clues(self.m, self.n)
        if not self.work_dir:
            self.work_dir = f"runs/zebra_tables_{self.m}x{self.n}_{self.scale}"
        if not self.out:
            self.out = f"figures/zebra_table3_{self.scale}"


#: Named defaults. "cpu": 3 x 3 puzzles and 4-layer width-64 models ("cpu-4l", 0.27M
#: MDM), sized for about 50 minutes of training on one thread. Measured in the committed
#: run: 7.2 MDM steps and 6.0-7.1 ARM steps of 64 puzzles per second, 48 minutes for
#: 14,000 MDM steps and 3000 per ARM. One thread, because two threads ran at 11-13 steps
#: per second alone but fell to about 1 step per second whenever any other process (even
#: at nice 19) took a core (measured on this 2-core machine); one thread keeps its speed
#: beside other work. Learning checks before the run (5000 training puzzles, 300 test):
#: on 4 x 4 puzzles the 2-layer "tiny" and the 1M "cpu-1m" shapes sat at the plateau
#: where only the permutation structure is learned (loss 0.78-0.80, nothing solved) after
#: 600 and 350 steps; on 3 x 3, "tiny" reached a loss of 0.415 in 8000 steps and solved
#: 4-7%, the 4-layer shape 0.353 in 4000 steps and solved 8-12%. The run reached 0.23 and
#: solved 23-25% (figures/zebra_table3_cpu.md). "tiny": seconds, for tests.
SCALES = {
    "cpu": {},
    # gpu: one lent GPU session (simulations/gpu_zebra_tables.sh, under 10 minutes of
    # wall time): 4 x 4 puzzles and the 6M shapes of the Sudoku runs. Not yet run.
    "gpu": dict(m=4, n=4, n_train=100_000, n_test=1100, steps=6000, arm_steps=2000,
                batch_size=256, lr=1e-3, mdm_model="mdm-6m", arm_model="arm-6m",
                device="cuda", max_minutes=8.0, threads=0, jobs=-1, eval_batch=1100),
    "tiny": dict(m=3, n=3, n_train=60, n_test=20, steps=4, arm_steps=3, batch_size=8,
                 warmup_steps=1,
                 mdm_model="tiny", arm_model="tiny", max_minutes=5.0, eval_reserve_s=0.0,
                 jobs=1, threads=1, eval_batch=64),
}


def tables_config(scale: str = "cpu", **overrides) -> Config:
    """The Config of a named scale with overrides (None values ignored)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    fields = {**SCALES[scale], **{k: v for k, v in overrides.items() if v is not None}}
    return Config(scale=scale, **fields)


def make_data(cfg: Config, work: Path) -> dict:
    """Train and test sets (generated once into ``work/data``, then loaded)."""
    from lohard.zebra import ZebraGenConfig, generate_dataset

    sets = {}
    for name, num, seed in (("train", cfg.n_train, cfg.data_seed),
                            ("test", cfg.n_test, cfg.data_seed + 1)):
        gcfg = ZebraGenConfig(num=num, m=cfg.m, n=cfg.n, max_clues=cfg.max_clues, seed=seed)
        t0 = time.perf_counter()
        ps = generate_dataset(work / "data" / f"{name}_{cfg.m}x{cfg.n}_n{num}_s{seed}.jsonl",
                              gcfg, n_jobs=cfg.jobs, progress=True)
        sets[name] = ps
        print(f"data {name}: {len(ps)} {cfg.m}x{cfg.n} puzzles, {ps.n_clues.mean():.1f} "
              f"clues on average ({time.perf_counter() - t0:.1f} s)", flush=True)
    seen = {_key(sets["train"], i) for i in range(len(sets["train"]))}
    keep = [i for i in range(len(sets["test"])) if _key(sets["test"], i) not in seen]
    sets["overlap_dropped"] = len(sets["test"]) - len(keep)
    if sets["overlap_dropped"]:
        import numpy as np

        sets["test"] = sets["test"][np.asarray(keep)]
    return sets


def _key(ps, i: int) -> bytes:
    return ps.clues[i, :int(ps.n_clues[i])].tobytes() + ps.solutions[i].tobytes()


#: Seconds per optimiser step relative to the MDM's (ARM: 3N triple tokens and the
#: two-stream PiLearner; measured at 3 x 3 on one thread: 7.2 MDM and 6.0-7.1 ARM steps
#: per second).
_STEP_COST = {"mdm": 1.0, "arm": 1.2}


def _steps(cfg: Config, kind: str) -> int:
    return cfg.steps if kind == "mdm" or not cfg.arm_steps else cfg.arm_steps


def train_one(cfg: Config, kind: str, order: str, sets: dict, work: Path, budget: float):
    """Train (or resume, or load) one model for at most ``budget`` seconds."""
    from lohard.mdm._zebra_train import ZebraTrainConfig, train_zebra

    tcfg = ZebraTrainConfig(kind=kind, arm_order=order, m=cfg.m, n=cfg.n,
                            max_clues=cfg.max_clues,
                            model=cfg.mdm_model if kind == "mdm" else cfg.arm_model,
                            steps=_steps(cfg, kind), batch_size=cfg.batch_size, lr=cfg.lr,
                            min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps, seed=cfg.seed,
                            device=cfg.device, log_every=max(1, min(50, cfg.steps)),
                            ckpt_every=max(1, _steps(cfg, kind) // 10))
    zm = train_zebra(tcfg, sets["train"], work / tcfg.name, resume=True, max_seconds=budget,
                     progress=True)
    print(f"train {tcfg.name}: {zm.step}/{tcfg.steps} steps, loss "
          f"{_fmt(zm.summary()['final_train_loss'], 4)}, {zm.train_seconds:.0f} s", flush=True)
    return zm


#: Part of the evaluation cache key; 2: results carry ``step_accuracy``.
_EVAL_VERSION = 2


def evaluate(cfg: Config, zm, test, work: Path) -> dict:
    """Results of one model on the test set (cached by checkpoint and settings)."""
    import numpy as np

    from lohard._util import atomic_write, atomic_write_json
    from lohard.mdm._zebra_decode import evaluate_zebra

    blob = json.dumps([zm.summary()["config"], zm.step, test.digest(), cfg.noise_scale,
                       cfg.temperature, cfg.seed, cfg.noise_mode, _EVAL_VERSION])
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    path = work / "eval" / f"{zm.name}_{key}.json"
    if path.exists():
        print(f"eval {zm.name}: cached ({path})", flush=True)
        return json.loads(path.read_text())["results"]
    t0 = time.perf_counter()
    res, decs = evaluate_zebra(zm, test, noise_scale=cfg.noise_scale,
                               temperature=cfg.temperature, seed=cfg.seed,
                               batch_size=cfg.eval_batch, noise_mode=cfg.noise_mode,
                               progress=True)
    truth = test.solutions.reshape(len(test), -1)
    for name, d in decs.items():
        right = np.asarray(d.grids) == truth
        res[name]["step_accuracy"] = [
            float(right[d.steps == s].mean()) if (d.steps == s).any() else None
            for s in range(truth.shape[1])]
    for name, r in res.items():
        print(f"eval {zm.name}: {name:17s} {100 * r['accuracy']:6.2f}% "
              f"({r['solved']}/{r['num']}), order rho vs solver "
              f"{r.get('order_spearman_mean', float('nan')):.3f}", flush=True)
    atomic_write_json(path, {"results": res, "seconds": time.perf_counter() - t0})

    def writer(tmp, decs=decs):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{f"{k}_steps": d.steps for k, d in decs.items()},
                                **{f"{k}_solved": d.solved for k, d in decs.items()})

    atomic_write(path.with_suffix(".npz"), writer)
    return res


def write_tables(cfg: Config, sets: dict, models: dict, results: dict, device_info: dict,
                 seconds: float) -> dict:
    from lohard._util import atomic_write_json, atomic_write_text, provenance, provenance_comment

    rows = []
    for key, label in ROWS:
        model_name, _, dec = key.partition("/")
        zm = models.get(model_name)
        r = results.get(model_name, {}).get(dec or "arm")
        info = zm.summary() if zm is not None else None
        rows.append({
            "key": key, "method": label, "model": model_name,
            "params": info["n_params"] if info else None,
            "steps": info["step"] if info else None,
            "finished": info["finished"] if info else False,
            "accuracy": 100 * r["accuracy"] if r else None,
            "ci95_low": 100 * r["ci95"][0] if r else None,
            "ci95_high": 100 * r["ci95"][1] if r else None,
            "solved": r["solved"] if r else None, "num": r["num"] if r else None,
            "order_spearman": r.get("order_spearman_mean") if r else None,
            "paper": PAPER.get(key), "paper_params": PAPER_PARAMS.get(model_name),
        })
    scale = f"CPU-scale run ({cfg.m} x {cfg.n} puzzles, scale {cfg.scale!r}); NOT the paper's"
    meta = provenance(dataclasses.asdict(cfg), cfg.seed)
    meta.update({"scale": scale, "puzzle_size": {"m": cfg.m, "n": cfg.n},
                 "device": device_info, "script_seconds": seconds,
                 "models": {k: v.summary() for k, v in models.items() if v is not None},
                 "data": {k: v.summary() for k, v in sets.items() if hasattr(v, "summary")},
                 "test_puzzles_dropped_as_seen_in_training": sets["overlap_dropped"],
                 "learning_curves": {k: [{"step": h["step"], "train_loss": h["train_loss"]}
                                         for h in v.history if "train_loss" in h]
                                     for k, v in models.items() if v is not None}})
    out = Path(cfg.out)
    atomic_write_json(out.with_suffix(".json"), {**meta, "rows": rows, "raw": results})
    buf = io.StringIO()
    buf.write(provenance_comment("lohard zebra tables", meta))
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(out.with_suffix(".csv"), buf.getvalue())

    test = sets["test"]
    lines = [f"# Zebra puzzles {cfg.m} x {cfg.n}: Table 3 of Kim et al. (ICML 2025)", "",
             f"**{scale}.** The paper's numbers (last column) are for Shah et al.'s puzzles "
             "(up to 6 x 6) with a 19M MDM and 42M ARMs.", "",
             f"Generated by `lohard zebra tables` (lohard {meta['lohard_version']}, "
             f"{meta['created']}); device: {device_info.get('name')}, "
             f"{device_info.get('threads')} threads; script wall time {seconds:.0f} s.", "",
             f"Test set: {len(test)} puzzles of {cfg.m} entities x {cfg.n} attributes, "
             f"{test.n_clues.mean():.1f} clues on average (seed {cfg.data_seed + 1}), each "
             "solved by the strategy solver without guessing (unique solution). Accuracy: "
             "share of puzzles whose whole solution grid is right, with its 95% Wilson "
             "interval. Order rho: mean Spearman correlation between the step at which a "
             "cell was decoded and the step at which the solver fixed it. MDM decoding is "
             "one cell per step, values by argmax"
             + ("" if cfg.temperature == 0 else f" at temperature {cfg.temperature}")
             + f"; Gumbel noise x {cfg.noise_scale} on the adaptive scores ("
             + ("log score, scaled by the share still masked" if cfg.noise_mode ==
                "log-annealed" else "probability score")
             + ") unless marked 'no noise'; ARMs decode greedily.", "",
             "| Method | Params | Steps | Accuracy (%) | 95% CI | Order rho vs solver | n | "
             "Paper (%) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        steps = "—" if r["steps"] is None else (
            f"{r['steps']}" + ("" if r["finished"] else " (unfinished)"))
        params = "—" if r["params"] is None else f"{r['params'] / 1e6:.2f}M"
        ci = "—" if r["ci95_low"] is None else f"{r['ci95_low']:.1f}–{r['ci95_high']:.1f}"
        paper = "—" if r["paper"] is None else f"{r['paper']:.2f} ({r['paper_params']})"
        lines.append(f"| {r['method']} | {params} | {steps} | {_fmt(r['accuracy'])} | {ci} | "
                     f"{_fmt(r['order_spearman'], 3)} | {r['num'] or '—'} | {paper} |")
    lines += ["", "## Cell accuracy by decoding step", "",
              "Share of cells right among those decoded at each step (MDM: one cell per "
              "step; ARM: the cell its triple names), over all test puzzles. An error "
              "early in a grid makes later cells wrong as well.", "",
              "| Method | " + " | ".join(str(s + 1) for s in range(cfg.m * cfg.n)) + " |",
              "|---|" + "---|" * (cfg.m * cfg.n)]
    for key, label in ROWS:
        model_name, _, dec = key.partition("/")
        acc = results.get(model_name, {}).get(dec or "arm", {}).get("step_accuracy")
        if acc:
            lines.append(f"| {label} | " + " | ".join(
                "—" if a is None else f"{100 * a:.0f}" for a in acc) + " |")
    lines += ["", "## Runs", "", "| Model | Config | Params | Steps | Seed | Train time (s) | "
              "Final train loss |", "|---|---|---|---|---|---|---|"]
    for name, zm in models.items():
        if zm is None:
            lines.append(f"| {name} | — | — | not trained | — | — | — |")
            continue
        s = zm.summary()
        lines.append(f"| {name} | {s['config']['model']} | {s['n_params']:,} | {s['step']}/"
                     f"{s['steps']} | {s['seed']} | {s['train_seconds']:.0f} | "
                     f"{_fmt(s['final_train_loss'], 4)} |")
    lines += ["", "## Learning curves", "",
              "Training loss (MDM: ELBO in nats per solution cell; ARM: nats per triple "
              "token) at up to 10 logged steps; every logged step is in the .json "
              "(`learning_curves`). An MDM that has learned only that each attribute is a "
              f"permutation, and not yet to read the clues, sits at "
              f"{_permutation_plateau(cfg.m):.3f} (computed: E_t E log(1 + Bin(m - 1, t)) "
              "nats per cell; every cell is right when it is the only one masked in its "
              f"attribute, and right by chance, 1/{cfg.m}, when all are).", ""]
    for name, curve in meta["learning_curves"].items():
        pick = curve[::max(1, -(-len(curve) // 10))] + curve[-1:]
        seen, pts = set(), []
        for h in pick:
            if h["step"] not in seen:
                seen.add(h["step"])
                pts.append(f"{h['step']}: {h['train_loss']:.3f}")
        lines.append(f"- {name}: " + (", ".join(pts) if pts else "no log entry"))
    lines += ["",
              f"Training: {cfg.n_train} puzzles (seed {cfg.data_seed}), batch "
              f"{cfg.batch_size}, AdamW lr {cfg.lr} -> {cfg.min_lr} (cosine, "
              f"{cfg.warmup_steps} warm-up steps); each sample's values relabelled, "
              "attributes and clues reordered at random. Test puzzles also in the training "
              f"set were dropped: {sets['overlap_dropped']}. Full configs, versions and raw "
              "results: the .json next to this file.", ""]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    plot_learning(cfg, meta, rows, Path(f"{out}_learning.png"))
    return meta


def plot_learning(cfg: Config, meta: dict, rows: list[dict], path: Path) -> Path:
    """Training loss against step: the MDM (nats per cell, with the permutation-only
    plateau) and the ARMs (nats per triple token), each labelled with its test accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lohard._util import atomic_write

    acc = {r["key"]: r["accuracy"] for r in rows}

    def pct(key: str) -> str:
        return "—" if acc.get(key) is None else f"{acc[key]:.1f}%"

    curves = meta["learning_curves"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    if curves.get("mdm"):
        st = [h["step"] for h in curves["mdm"]]
        ax.plot(st, [h["train_loss"] for h in curves["mdm"]], color="C0",
                label=f"MDM; solved: vanilla {pct('mdm/vanilla')}, top prob "
                      f"{pct('mdm/top-prob-nonoise')}, margin {pct('mdm/margin-nonoise')}")
    ax.axhline(_permutation_plateau(cfg.m), color="0.4", ls="--",
               label=f"permutation-only plateau ({_permutation_plateau(cfg.m):.3f})")
    _loss_axis(ax, "training ELBO (nats per solution cell)", "MDM")
    ax = axes[1]
    for i, (name, label) in enumerate((("arm-solver", "ARM, solver's order"),
                                       ("arm-row-major", "ARM, row-major"))):
        if curves.get(name):
            ax.plot([h["step"] for h in curves[name]],
                    [h["train_loss"] for h in curves[name]], color=f"C{i + 1}",
                    label=f"{label}; solved {pct(name)}")
    _loss_axis(ax, "training cross-entropy (nats per triple token)",
               "ARMs (attribute, house, value triples)")
    fig.suptitle(f"Zebra {cfg.m} x {cfg.n}, CPU scale (lohard {meta['lohard_version']}, "
                 f"seed {cfg.seed}): learning curves; solved = whole grid right on "
                 f"{rows[0]['num'] or 0} test puzzles", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    plt.close(fig)
    return path


def _loss_axis(ax, ylabel: str, title: str) -> None:
    """Labels, limits and legend of one panel of the learning curves."""
    ax.set_xlabel("optimiser step (batch of 64 puzzles)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=7)


def _permutation_plateau(m: int) -> float:
    """ELBO per cell of a model that knows only that each attribute's m values are a
    permutation: a masked cell is uniform over the values still missing from its
    attribute, and with t ~ U(0, 1] the 1/t weight cancels the masking probability:
    ``E_t E[log(1 + Bin(m - 1, t))]`` (Beta integrals, exact)."""
    # E_t[C(m-1, j) t^j (1-t)^(m-1-j)] = 1/m for every j: Bin(m - 1, U) is uniform.
    return sum(math.log(1 + j) for j in range(m)) / m


def _done_steps(run_dir: Path) -> int:
    """Steps already in a run folder's training log (0 when none)."""
    log = run_dir / "log.jsonl"
    if not log.exists():
        return 0
    done = 0
    for line in log.read_text().splitlines():
        try:
            done = max(done, int(json.loads(line).get("step", 0)))
        except (ValueError, AttributeError):
            continue
    return done


def run_zebra_tables(cfg: Config) -> int:
    """Generate the data, train the three models, decode the test set, write the tables.

    Each unfinished model gets an equal share of the time left before ``max_minutes``
    (less ``eval_reserve_s`` per model); a model the budget stopped short is decoded as
    it is and marked "(unfinished)".

    Returns 0 when every model finished its schedule, 3 otherwise (rerun to continue).
    """
    import torch

    start = time.time()
    deadline = start + 60 * cfg.max_minutes
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from lohard.mdm._train import select_device

    dev = select_device(cfg.device)
    device_info = {"type": dev.type, "name": torch.cuda.get_device_name(dev)
                   if dev.type == "cuda" else "cpu", "torch": torch.__version__,
                   "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                   "loadavg_at_start": list(os.getloadavg())}
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"zebra tables: {cfg.m}x{cfg.n} puzzles, {cfg.steps} MDM and {_steps(cfg, 'arm')} "
          f"ARM steps, device "
          f"{device_info['name']}, work dir {work}", flush=True)
    sets = make_data(cfg, work)
    specs = (("mdm", "mdm", "solver"), ("arm-solver", "arm", "solver"),
             ("arm-row-major", "arm", "row-major"))
    models, results = {}, {}
    for i, (name, kind, order) in enumerate(specs):
        # The time left goes to the models still to train in proportion to their
        # expected cost (steps left x relative cost per step).
        left = deadline - time.time() - cfg.eval_reserve_s * len(specs)
        cost = [_STEP_COST[k] * max(0, _steps(cfg, k) - _done_steps(work / nm))
                for nm, k, _ in specs[i:]]
        share = cost[0] / sum(cost) if sum(cost) > 0 else 1.0 / (len(specs) - i)
        models[name] = train_one(cfg, kind, order, sets, work, max(0.0, left * share))
    for name, zm in models.items():
        if zm.step > 0:
            results[name] = evaluate(cfg, zm, sets["test"], work)
    meta = write_tables(cfg, sets, models, results, device_info, time.time() - start)
    print(f"wrote {cfg.out}.md/.json/.csv and {cfg.out}_learning.png ({meta['scale']}) in "
          f"{time.time() - start:.0f} s", flush=True)
    if not all(zm.finished for zm in models.values()):
        print("some models are unfinished: rerun the same command to continue", flush=True)
        return 3
    return 0
