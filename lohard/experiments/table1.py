"""Table 1: observation accuracy of vanilla and adaptive MDM inference on L&O-NAE-SAT.

For each preset (N, P) one MDM is trained on fresh samples of ``nae-sat-N-P-t``
(the App. C.2.1 constant trailing token; triples drawn from ``dist_seed``), then
sequences are generated unconditionally with each sampler variant and scored by
observation accuracy: the fraction of generated observation tokens equal to NAE of
the generated latents (:func:`lohard.mdm.observation_accuracy`; a naive guess scores
75%).

Two scales:

* ``cpu`` (default): five presets with N = 10 latents at the clause densities
  d = 6 P / N of the paper's presets relative to d_KS = 64 (66, 54, 40, 30 and 12;
  L = 31 to 121), which a 1M-parameter model (``cpu-1m``) learns on a 2-core CPU in
  2500 steps each (:data:`CPU_PRESETS` says why N is not scaled with the paper's N / L),
  500 sequences per sampler.
* ``gpu``: the paper's five presets (L = 301) and its 19M model (App. C.2.1, D.1.1).

Every preset is a resumable lohard run folder under ``work_dir``: training continues
from its checkpoint, and a finished evaluation is reused. Outputs are rewritten after
every preset, so an interrupted run leaves the finished rows.

References
----------
Kim et al. (ICML 2025), Sec. 3.3, Table 1, App. C.2, D.1.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from lohard._util import require_int

#: Table 1 of the paper, observation accuracy in %: vanilla and adaptive
#: (top-probability margin, App. D.1.1).
PAPER_TABLE1 = {
    (25, 275): {"vanilla": 78.06, "adaptive": 93.76},
    (30, 270): {"vanilla": 75.70, "adaptive": 93.54},
    (40, 260): {"vanilla": 74.60, "adaptive": 92.21},
    (50, 250): {"vanilla": 67.94, "adaptive": 90.01},
    (100, 200): {"vanilla": 62.84, "adaptive": 88.91},
}
#: CPU presets: N = 10 latents at the clause densities d = 6 P / N of the paper's five
#: presets (the paper preset each stands for is the value), L = N + P + 1 = 31 to 121.
#: Why not the paper's N / L ratios too: an NAE observation says nothing about any one of
#: its latents (P(NAE = 1 | x_a) = 3/4 whatever x_a), so the model must find its pairs, and
#: the samples that takes grow with N. Measured with the cpu-1m model, 2500 steps of 64:
#: (10, 90) reached a held-out loss 0.043 nats/token above its floor; (17, 83), the paper's
#: N / L of (50, 250), stayed 0.29 above (vanilla 65%, margin 70%: nothing learned yet).
CPU_PRESETS = {
    (10, 110): (25, 275),  # d = 66 (paper 66): above d_KS = 64
    (10, 90): (30, 270),  # d = 54 (54)
    (10, 67): (40, 260),  # d = 40.2 (39)
    (10, 50): (50, 250),  # d = 30 (30)
    (10, 20): (100, 200),  # d = 12 (12)
}
#: A naive guess (every observation 1) is right with probability 3/4 (App. C.2).
NAIVE_GUESS = 0.75
#: Sampler variants: name -> (sampler, noise). Gumbel coefficient 0.5 (App. D.2).
VARIANTS = {
    "vanilla": ("vanilla", None),
    "top-prob": ("top-prob", None),
    "margin": ("margin", None),
    "top-prob+gumbel": ("top-prob", "gumbel"),
    "margin+gumbel": ("margin", "gumbel"),
}
#: The sanity row: the same reverse process with the exact Bayes conditionals in place of
#: the model (any order then samples p_data exactly, so it must score 100%).
EXACT_ORACLE = "exact-oracle"
#: Normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


@dataclasses.dataclass
class Table1Config:
    """Settings of one Table 1 run; :func:`table1_config` fills a scale's defaults."""

    scale: str = "cpu"  # cpu | gpu: which defaults were taken (recorded)
    presets: tuple = tuple(CPU_PRESETS)  # (N, P) pairs
    trailing_token: bool = True  # App. C.2.1: a constant token after the sequence
    dist_seed: int = 0  # structure seed of every nae-sat-N-P (the triples)
    model: str = "cpu-1m"  # lohard.mdm.MODEL_CONFIGS name
    model_overrides: dict = dataclasses.field(default_factory=dict)  # fields of its config
    steps: int = 2500  # optimiser steps per preset
    batch_size: int = 64
    lr: float = 1e-3  # peak of the cosine schedule (1M model on CPU)
    min_lr: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0  # training root seed; sampling seeds derive from it
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA only
    compile: bool = False  # torch.compile the model for training (1.36x on this CPU, measured)
    eval_points: int = 10  # held-out loss evaluations per model (the learning curve)
    eval_size: int = 512  # held-out masked sequences per evaluation
    num_samples: int = 500  # generated sequences per sampler variant
    sample_steps: int = 50  # reverse steps T (App. D.2: 50)
    sample_batch: int = 500
    variants: tuple = (*VARIANTS, EXACT_ORACLE)
    noise_scale: float = 0.5  # App. D.2 Gumbel coefficient
    oracle_samples: int = 100  # sequences per order of the exact-oracle row (one token/step)
    oracle_orders: tuple = ("random", "margin")  # orders the exact oracle is run with
    oracle_max_states: int = 1 << 22  # largest component the exact oracle enumerates
    fig2_preset: tuple | None = (10, 110)  # keeps a half-way checkpoint for Figure 2
    work_dir: str = "runs/table1_cpu"
    out_dir: str = "figures"
    out_name: str = "table1_cpu"

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of "
                             f"{', '.join(SCALES)}")
        self.presets = tuple((require_int(n, "N"), require_int(p, "P"))
                             for n, p in self.presets)
        if not self.presets:
            raise ValueError("no presets given")
        for n, p in self.presets:
            if n < 3 or p < 1:
                raise ValueError(f"L&O-NAE-SAT needs N >= 3 latents and P >= 1 observations, "
                                 f"got preset (N, P) = ({n}, {p})")
        for name, low in (("steps", 1), ("batch_size", 1), ("warmup_steps", 0),
                          ("eval_points", 1), ("eval_size", 1), ("num_samples", 2),
                          ("sample_steps", 1), ("sample_batch", 1), ("oracle_samples", 1),
                          ("oracle_max_states", 1)):
            setattr(self, name, require_int(getattr(self, name), name, minimum=low))
        bad = [v for v in self.variants if v not in VARIANTS and v != EXACT_ORACLE]
        if bad or not self.variants:
            raise ValueError(f"unknown sampler variant {bad[0] if bad else ''!r}; choose from "
                             f"{', '.join((*VARIANTS, EXACT_ORACLE))}")
        self.variants = tuple(self.variants)
        if not (self.noise_scale >= 0 and math.isfinite(self.noise_scale)):
            raise ValueError(f"noise_scale must be finite and >= 0, got {self.noise_scale}")
        if self.fig2_preset is not None:
            self.fig2_preset = tuple(int(x) for x in self.fig2_preset)


#: Defaults of each scale; any field can be overridden on top.
SCALES = {
    "cpu": {},
    # The paper's five presets and (20, 280), the model of Figure 2 (App. C.2.1).
    "gpu": dict(presets=(*PAPER_TABLE1, (20, 280)), model="mdm-19m", steps=2000,
                batch_size=256, lr=4e-4, min_lr=4e-5, num_samples=1000, sample_batch=1000,
                fig2_preset=(20, 280), work_dir="runs/table1_gpu", out_name="table1",
                # The exact oracle enumerates 2^N states per call on one CPU core: at N = 20
                # its row did not end in the 250 s left of a 380 s GPU stage (measured
                # 2026-12-04), so at this scale it declines and says so.
                oracle_max_states=1 << 16),
}


def table1_config(scale: str = "cpu", **overrides) -> Table1Config:
    """The configuration of ``scale`` (``"cpu"`` or ``"gpu"``) with fields overridden."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    fields = dict(SCALES[scale])
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return Table1Config(scale=scale, **fields)


# -- training ------------------------------------------------------------------------------
def dist_spec(cfg: Table1Config, n: int, p: int) -> str:
    """Distribution name of one preset, e.g. ``nae-sat-10-90-t``."""
    return f"nae-sat-{n}-{p}" + ("-t" if cfg.trailing_token else "")


def run_dir(cfg: Table1Config, n: int, p: int) -> Path:
    """Run folder of one preset (a second call with other settings is refused by train)."""
    return Path(cfg.work_dir) / dist_spec(cfg, n, p)


def train_config(cfg: Table1Config, n: int, p: int):
    """The :class:`lohard.mdm.TrainConfig` of one preset.

    Raises
    ------
    ValueError
        If the preset's L exceeds the model's ``max_seq_len``.
    """
    from lohard.mdm import TrainConfig, model_config

    length = n + p + int(cfg.trailing_token)
    mcfg = model_config(cfg.model, **cfg.model_overrides)
    if length > mcfg.max_seq_len:
        raise ValueError(f"preset (N, P) = ({n}, {p}) has L = {length} tokens, more than the "
                         f"max_seq_len = {mcfg.max_seq_len} of model {cfg.model!r}; choose a "
                         f"preset with N + P + 1 <= {mcfg.max_seq_len} or another --model")
    return TrainConfig(
        dist=dist_spec(cfg, n, p), dist_seed=cfg.dist_seed, model=cfg.model,
        model_overrides=dict(cfg.model_overrides),
        steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, min_lr=cfg.min_lr,
        warmup_steps=min(cfg.warmup_steps, cfg.steps - 1), seed=cfg.seed, device=cfg.device,
        amp=cfg.amp, compile=cfg.compile, eval_every=max(1, cfg.steps // cfg.eval_points),
        eval_size=cfg.eval_size,
        log_every=max(1, min(50, cfg.steps // 20)), ckpt_every=max(1, cfg.steps // 5))


def snapshot_steps(cfg: Table1Config, n: int, p: int) -> tuple:
    """Figure 2's preset keeps its checkpoint at half its steps: the model measured there,
    against the final one (trained twice as long, the paper's proxy)."""
    if cfg.fig2_preset is not None and (n, p) == tuple(cfg.fig2_preset) and cfg.steps >= 2:
        return (cfg.steps // 2,)
    return ()


def train_preset(cfg: Table1Config, n: int, p: int, say) -> dict:
    """Train (or resume) the model of one preset; returns the training record."""
    from lohard.mdm import train

    tcfg = train_config(cfg, n, p)
    last = [time.monotonic()]

    def hook(entry: dict) -> None:
        now = time.monotonic()
        if "eval_loss" in entry or now - last[0] > 10.0:
            last[0] = now
            what = (f"held-out loss {entry['eval_loss']:.4f}" if "eval_loss" in entry
                    else f"train loss {entry['train_loss']:.4f}")
            say(f"  ({n}, {p}) step {entry['step']}/{cfg.steps}: {what} nats/token")

    t0 = time.perf_counter()
    result = train(tcfg, run_dir(cfg, n, p), resume=True, progress=False, log=hook,
                   snapshots=snapshot_steps(cfg, n, p))
    return {"train_config": tcfg.to_dict(), "call_seconds": time.perf_counter() - t0,
            "finished": result.finished}


def seed_for(root: int, n: int, p: int, index: int) -> int:
    """Sampling seed of one (preset, variant): SeedSequence([root, 1, N, P, index])."""
    return int(np.random.SeedSequence([int(root), 1, int(n), int(p), int(index)])
               .generate_state(1)[0])


# -- evaluation ----------------------------------------------------------------------------
def accuracy_record(dist, tokens, *, seed: int, seconds: float) -> dict:
    """Observation accuracy of generated sequences with a normal 95% interval.

    The per-sequence accuracy is the unit (observations of one sequence are correlated),
    so the standard error is that of a mean over sequences.
    """
    from lohard.mdm import observation_correct

    per_seq = observation_correct(dist, np.asarray(tokens)).mean(axis=1)
    acc = float(per_seq.mean())
    se = float(per_seq.std(ddof=1) / math.sqrt(per_seq.size)) if per_seq.size > 1 else 0.0
    return {"accuracy": 100 * acc, "ci95": [100 * (acc - Z95 * se), 100 * (acc + Z95 * se)],
            "stderr": 100 * se, "n_sequences": int(per_seq.size),
            "all_correct_fraction": float((per_seq == 1.0).mean()), "seed": seed,
            "seconds": seconds}


def evaluate_model(cfg: Table1Config, model, dist, n: int, p: int, say) -> dict:
    """Every MDM sampler variant of ``cfg.variants`` on ``model``: name -> record."""
    import torch

    from lohard.mdm import sample

    out = {}
    for idx, name in enumerate(VARIANTS):
        if name not in cfg.variants:
            continue
        sampler, noise = VARIANTS[name]
        seed = seed_for(cfg.seed, n, p, idx)
        t0 = time.perf_counter()
        tokens = sample(model, cfg.num_samples, sampler=sampler, steps=cfg.sample_steps,
                        length=dist.length, noise=noise, noise_scale=cfg.noise_scale,
                        batch_size=cfg.sample_batch, generator=seed, amp=cfg.amp)
        if tokens.is_cuda:
            torch.cuda.synchronize()
        rec = accuracy_record(dist, tokens.cpu().numpy(), seed=seed,
                              seconds=time.perf_counter() - t0)
        rec.update(sampler=sampler, noise=noise,
                   noise_scale=cfg.noise_scale if noise else None)
        out[name] = rec
        say(f"  ({n}, {p}) {name:>16}: {rec['accuracy']:.2f}% "
            f"[{rec['ci95'][0]:.2f}, {rec['ci95'][1]:.2f}] over {rec['n_sequences']} "
            f"sequences, {rec['n_sequences'] / rec['seconds']:.1f} sequences/s")
    return out


def evaluate_oracle(cfg: Table1Config, dist, n: int, p: int, say) -> dict:
    """The exact-oracle row: the reverse process with p_data's own conditionals.

    One token per step (``steps = L``), so every order samples p_data exactly and must
    score 100%; with several tokens per step the independent draws of one step can
    contradict each other. The record holds each order, and the lowest accuracy at the
    top. Where an exact conditional needs more than ``oracle_max_states`` assignments of
    one component, the row records why it was not run.
    """
    from lohard.mdm import PosteriorOracle, sample

    oracle = PosteriorOracle(dist, max_states=cfg.oracle_max_states)
    orders = {}
    for idx, order in enumerate(cfg.oracle_orders):
        seed = seed_for(cfg.seed, n, p, 100 + idx)
        t0 = time.perf_counter()
        try:
            tokens = sample(oracle, cfg.oracle_samples, sampler=order, steps=dist.length,
                            length=dist.length, batch_size=cfg.oracle_samples, generator=seed)
        except ValueError as err:
            if "max_states" not in str(err):
                raise
            note = (f"not run: an exact conditional needs a component of more than "
                    f"{cfg.oracle_max_states} latent assignments ({err})")
            say(f"  ({n}, {p}) exact oracle: {note}")
            return {"accuracy": None, "ci95": None, "n_sequences": 0, "note": note}
        rec = accuracy_record(dist, tokens.numpy(), seed=seed,
                              seconds=time.perf_counter() - t0)
        orders[order] = rec
        say(f"  ({n}, {p}) exact oracle, {order} order: {rec['accuracy']:.2f}% over "
            f"{rec['n_sequences']} sequences ({rec['seconds']:.0f} s)")
    worst = min(orders.values(), key=lambda r: r["accuracy"])
    return {"accuracy": worst["accuracy"], "ci95": worst["ci95"],
            "n_sequences": sum(r["n_sequences"] for r in orders.values()),
            "steps": dist.length, "orders": orders,
            "note": "exact conditionals, one token per step; accuracy is the lowest order's"}


def eval_key(cfg: Table1Config, step: int) -> dict:
    """What an evaluation depends on besides the checkpoint (a cached one must match)."""
    keys = ("num_samples", "sample_steps", "sample_batch", "variants", "noise_scale", "seed",
            "amp", "oracle_samples", "oracle_orders", "oracle_max_states")
    import json

    from lohard._util import to_jsonable

    # As it reads back from JSON (tuples become lists), so a cached key compares equal.
    return json.loads(json.dumps(to_jsonable({"step": step,
                                              **{k: getattr(cfg, k) for k in keys}})))


def train_seconds(history: list[dict]) -> float:
    """Training wall time from a run's log: the sum over its calls (a resumed call's
    clock starts again at 0)."""
    total, last = 0.0, 0.0
    for entry in history:
        if "seconds" not in entry:
            continue
        if entry["seconds"] < last:
            total += last
        last = float(entry["seconds"])
    return total + last


def preset_record(cfg: Table1Config, n: int, p: int, ckpt) -> dict:
    """Everything about one preset except the sampler results."""
    dist = ckpt.dist
    evals = [h for h in ckpt.history if "eval_loss" in h]
    return {
        "N": n, "P": p, "L": dist.length, "d": 6.0 * p / n,
        "paper_preset": list(CPU_PRESETS.get((n, p), (n, p))) if cfg.scale == "cpu"
        else [n, p],
        "steps": ckpt.step, "steps_scheduled": cfg.steps, "batch_size": cfg.batch_size,
        "train_seconds": train_seconds(ckpt.history),
        "heldout_loss_nats_per_token": float(evals[-1]["eval_loss"]) if evals else None,
        "entropy_floor_nats_per_token": n * math.log(2) / dist.length,
        "learning_curve": [[int(h["step"]), float(h["eval_loss"])] for h in evals],
        "model": cfg.model, "n_params": int(ckpt.model.n_params),
        "run_dir": str(run_dir(cfg, n, p)), "dist_seed": cfg.dist_seed,
        "train_seed": cfg.seed, "distribution_hash": ckpt.dist_hash,
    }


def hardware() -> str:
    """One line naming the machine the run used (CPU model, cores, torch threads)."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads")


def run_table1(cfg: Table1Config, *, progress: bool = True, train_only: bool = False) -> dict:
    """Train (or resume) and evaluate every preset; write the outputs after each one.

    Parameters
    ----------
    cfg : Table1Config
    progress : bool
        Log lines (stderr) during training and sampling.
    train_only : bool
        Train every preset and stop (no evaluation, no outputs).

    Returns
    -------
    dict
        The JSON written to ``<out_dir>/<out_name>.json``.
    """
    import sys

    import torch

    from lohard._util import atomic_write_json, provenance
    from lohard.mdm import load_checkpoint, resolve_distribution, select_device

    t_start = time.monotonic()

    def say(msg: str) -> None:
        if progress:
            print(f"[table1 {time.monotonic() - t_start:7.1f}s] {msg}", file=sys.stderr,
                  flush=True)

    for n, p in cfg.presets:  # refuse a preset that does not exist or fit before training
        resolve_distribution(dist_spec(cfg, n, p), seed=cfg.dist_seed)
        train_config(cfg, n, p)
    device = select_device(cfg.device)
    say(f"scale {cfg.scale}: presets {list(cfg.presets)}, model {cfg.model}, {cfg.steps} steps "
        f"of {cfg.batch_size}; device {device}; {hardware()}")
    rows: list[dict] = []
    result: dict = {}
    for n, p in cfg.presets:
        t0 = time.monotonic()
        say(f"({n}, {p}): training (resumes from {run_dir(cfg, n, p)} if it holds a run)")
        train_preset(cfg, n, p, say)
        if train_only:
            continue
        ckpt = load_checkpoint(run_dir(cfg, n, p), device=device)
        row = preset_record(cfg, n, p, ckpt)
        eval_file = run_dir(cfg, n, p) / "table1_eval.json"
        key = eval_key(cfg, ckpt.step)
        cached = _read_json(eval_file)
        if cached is not None and cached.get("key") == key:
            samplers = cached["samplers"]
            say(f"({n}, {p}): evaluation reused from {eval_file}")
        else:
            say(f"({n}, {p}): sampling {cfg.num_samples} sequences per variant")
            samplers = evaluate_model(cfg, ckpt.model, ckpt.dist, n, p, say)
            if EXACT_ORACLE in cfg.variants:
                samplers[EXACT_ORACLE] = evaluate_oracle(cfg, ckpt.dist, n, p, say)
            atomic_write_json(eval_file, {**provenance(key, cfg.seed), "key": key,
                                          "samplers": samplers})
        row["samplers"] = samplers
        row["preset_wall_seconds"] = time.monotonic() - t0
        rows.append(row)
        del ckpt
        if device.type == "cuda":
            torch.cuda.empty_cache()
        result = write_outputs(cfg, rows, {"hardware": hardware(), "device": str(device),
                                           "wall_seconds": time.monotonic() - t_start})
    if not train_only:
        say(f"done: {Path(cfg.out_dir) / cfg.out_name}.md (.csv, .json, .png)")
    return result


def _read_json(path: Path) -> dict | None:
    import json

    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:  # a damaged cache file is recomputed, not trusted
        return None


# -- outputs -------------------------------------------------------------------------------
def paper_row(cfg: Table1Config, row: dict) -> dict | None:
    """The paper's Table 1 numbers for a row (the matched paper preset at CPU scale)."""
    return PAPER_TABLE1.get(tuple(row["paper_preset"]))


def write_outputs(cfg: Table1Config, rows: list[dict], meta: dict) -> dict:
    """Write ``<out_name>.json``, ``.csv``, ``.md`` and ``.png`` atomically; return the JSON."""
    import csv
    import io

    from lohard._util import (
        atomic_write_json,
        atomic_write_text,
        provenance,
        provenance_comment,
    )

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(dataclasses.asdict(cfg), cfg.seed)
    doc = {**prov, **meta,
           "metric": "observation accuracy (%): fraction of generated observation tokens "
                     "equal to NAE of the generated latents; 95% normal interval over "
                     "sequences",
           "naive_guess_percent": 100 * NAIVE_GUESS,
           "paper": {f"{n}-{p}": v for (n, p), v in PAPER_TABLE1.items()},
           "presets": rows}
    atomic_write_json(out / f"{cfg.out_name}.json", doc)

    buf = io.StringIO()
    buf.write(provenance_comment("lohard table1", prov))
    w = csv.writer(buf)
    w.writerow(["N", "P", "L", "d", "paper_N", "paper_P", "steps", "train_seconds",
                "heldout_loss_nats_per_token", "entropy_floor_nats_per_token", "sampler",
                "accuracy", "ci95_low", "ci95_high", "n_sequences", "seed", "paper_vanilla",
                "paper_adaptive"])
    for r in rows:
        paper = paper_row(cfg, r) or {}
        for name, v in r["samplers"].items():
            ci = v.get("ci95") or [None, None]
            w.writerow([r["N"], r["P"], r["L"], f"{r['d']:.2f}", *r["paper_preset"], r["steps"],
                        f"{r['train_seconds']:.1f}", r["heldout_loss_nats_per_token"],
                        r["entropy_floor_nats_per_token"], name, v.get("accuracy"), *ci,
                        v.get("n_sequences"), v.get("seed"), paper.get("vanilla"),
                        paper.get("adaptive")])
    atomic_write_text(out / f"{cfg.out_name}.csv", buf.getvalue())
    atomic_write_text(out / f"{cfg.out_name}.md", markdown(cfg, rows, meta, prov))
    plot_table1(cfg, rows, out / f"{cfg.out_name}.png")
    return doc


def _cell(v: dict | None) -> str:
    if v is None:
        return "-"
    if v.get("accuracy") is None:
        return "not run"
    lo, hi = v["ci95"]
    return f"{v['accuracy']:.1f} [{lo:.1f}, {hi:.1f}]"


def markdown(cfg: Table1Config, rows: list[dict], meta: dict, prov: dict) -> str:
    """The table as Markdown, with the paper's numbers, hardware, wall time and losses."""
    names = list(cfg.variants)
    train_min = sum(r["train_seconds"] for r in rows) / 60
    sample_min = sum(v.get("seconds", 0.0) + sum(o["seconds"] for o in
                                                 v.get("orders", {}).values())
                     for r in rows for v in r["samplers"].values()) / 60
    scale = ("CPU scale: N = 10 latents, presets matched to the paper's by clause density "
             "d = 6P/N (L = N + P + 1)" if cfg.scale == "cpu"
             else "The paper's presets (L = 301)")
    lines = [
        "# Table 1: L&O-NAE-SAT observation accuracy (%), vanilla vs adaptive MDM inference",
        "",
        f"{scale}. Model `{cfg.model}`, {cfg.steps} steps of batch {cfg.batch_size} per "
        f"preset (lr {cfg.lr:g} to {cfg.min_lr:g}, cosine), training seed {cfg.seed}, "
        f"distribution seed {cfg.dist_seed}. {cfg.num_samples} generated sequences per "
        f"sampler, {cfg.sample_steps} reverse steps; `+gumbel`: Gumbel noise x "
        f"{cfg.noise_scale} on the position score (App. D.2). Entries: accuracy [95% "
        f"interval over sequences]. A naive guess scores 75%. `exact-oracle`: p_data's own "
        f"conditionals, one token per step, orders {', '.join(cfg.oracle_orders)} "
        f"({cfg.oracle_samples} sequences each; the lowest shown).",
        "",
        f"Hardware: {meta['hardware']}. Training: {train_min:.1f} min in all; sampling: "
        f"{sample_min:.1f} min in all; wall time of the call that wrote this file (which "
        f"reuses finished training and evaluations): {meta['wall_seconds'] / 60:.1f} min; "
        f"lohard {prov['lohard_version']}.",
        "",
        "| (N, P) | d | paper preset | " + " | ".join(names)
        + " | paper vanilla | paper margin |",
        "|---|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for r in rows:
        paper = paper_row(cfg, r)
        cells = [_cell(r["samplers"].get(name)) for name in names]
        pv = "-" if paper is None else f"{paper['vanilla']:.2f}"
        pa = "-" if paper is None else f"{paper['adaptive']:.2f}"
        lines.append(f"| ({r['N']}, {r['P']}) | {r['d']:.1f} | ({r['paper_preset'][0]}, "
                     f"{r['paper_preset'][1]}) | " + " | ".join(cells) + f" | {pv} | {pa} |")
    lines += ["", "## Training", "",
              "| (N, P) | parameters | steps | train time (min) | held-out loss | "
              "entropy floor N ln2 / L | loss - floor |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        loss, floor = r["heldout_loss_nats_per_token"], r["entropy_floor_nats_per_token"]
        gap = "-" if loss is None else f"{loss - floor:.4f}"
        lines.append(f"| ({r['N']}, {r['P']}) | {r['n_params']:,} | {r['steps']} | "
                     f"{r['train_seconds'] / 60:.1f} | "
                     f"{'-' if loss is None else f'{loss:.4f}'} | {floor:.4f} | {gap} |")
    lines += ["", "Losses in nats per token (L tokens, trailing token included); the held-out "
              "loss is the MDM ELBO (Prop. 2.1) on fresh sequences, an upper bound on the "
              "data's entropy per token.", ""]
    lines += ["## The paper's Table 1 (19M MDM, L = 301)", "",
              "| (N, P) | d | vanilla | top-probability margin |", "|---|---|---|---|"]
    lines += [f"| ({n}, {p}) | {6 * p / n:.0f} | {v['vanilla']:.2f} | {v['adaptive']:.2f} |"
              for (n, p), v in PAPER_TABLE1.items()]
    lines.append("")
    notes = [f"- ({r['N']}, {r['P']}) {name}: {v['note']}" for r in rows
             for name, v in r["samplers"].items()
             if v.get("accuracy") is None and v.get("note")]
    if notes:
        lines += ["Rows not run:", "", *notes, ""]
    return "\n".join(lines)


def plot_table1(cfg: Table1Config, rows: list[dict], path: Path) -> None:
    """Bar chart: accuracy per preset and sampler with 95% intervals, paper values marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lohard._util import atomic_write

    names = [v for v in cfg.variants if v != EXACT_ORACLE]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(rows) + 2), 4.6))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(rows))
    for j, name in enumerate(names):
        acc = np.array([r["samplers"].get(name, {}).get("accuracy") or np.nan for r in rows])
        lo = np.array([(r["samplers"].get(name, {}).get("ci95") or [np.nan])[0] for r in rows])
        hi = np.array([(r["samplers"].get(name, {}).get("ci95") or [np.nan, np.nan])[1]
                       for r in rows])
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(pos, acc, width, label=name, color=f"C{j}")
        ax.errorbar(pos, acc, yerr=[acc - lo, hi - acc], fmt="none", ecolor="k", lw=0.8,
                    capsize=2)
    for i, r in enumerate(rows):
        paper = paper_row(cfg, r)
        if paper is None:
            continue
        for key, marker, label in (("vanilla", "v", "paper vanilla"),
                                   ("adaptive", "^", "paper margin")):
            ax.plot([i - 0.4, i + 0.4], [paper[key]] * 2, color="k",
                    ls="--" if key == "vanilla" else "-", lw=1.2,
                    label=label if i == 0 else None)
    ax.axhline(100 * NAIVE_GUESS, color="grey", ls=":", lw=1, label="naive guess (75%)")
    ticks = [f"({r['N']}, {r['P']})\nd = {r['d']:.0f}" for r in rows]
    if cfg.scale == "cpu":
        ticks = [t + f"\npaper ({r['paper_preset'][0]}, {r['paper_preset'][1]})"
                 for t, r in zip(ticks, rows)]
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_xlabel("preset (N latents, P observations); clause density d = 6P/N, d_KS = 64")
    ax.set_ylabel("observation accuracy (%)")
    ax.set_ylim(40, 112)
    ax.set_title(f"Table 1 ({cfg.scale.upper()} scale, model {cfg.model}, "
                 f"{cfg.num_samples} sequences per bar, 95% intervals)", fontsize=10)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))
    plt.close(fig)


# -- the MDM learning curve for the pi-learner figure --------------------------------------
def nonembedding_params(model) -> int:
    """Parameters except the token and position embedding tables (the output head counts)."""
    n = model.n_params - model.embed.weight.numel()
    if getattr(model, "pos", None) is not None:
        n -= model.pos.weight.numel()
    return int(n)


def mdm_curve(ckpt) -> dict:
    """The held-out loss curve of a checkpoint in the pi-learner figure's units.

    ``flops = 6 * non-embedding params * step * batch * L`` (Kaplan et al.), ``test_nll``
    the held-out MDM loss (an upper bound on -log p / token, Prop. 2.1) rescaled to nats
    per data token: loss * L / (N + P), so that a trailing constant token (which costs
    nothing once learned) does not dilute it.
    """
    from lohard._util import to_jsonable

    dist, tcfg = ckpt.dist, ckpt.train_config
    nonemb = nonembedding_params(ckpt.model)
    length = dist.length
    data_tokens = dist.n_latent + dist.n_obs
    pts = [h for h in ckpt.history if "eval_loss" in h]
    steps = [int(h["step"]) for h in pts]
    return {
        "flops": [6.0 * nonemb * s * tcfg.batch_size * length for s in steps],
        "test_nll": [float(h["eval_loss"]) * length / data_tokens for h in pts],
        "steps": steps, "tokens": [s * tcfg.batch_size * length for s in steps],
        "n_params": ckpt.model.n_params, "n_params_nonembedding": nonemb,
        "batch_size": tcfg.batch_size, "L": length, "data_tokens_per_sequence": data_tokens,
        "eval_size": tcfg.eval_size,
        "flops_convention": "6 * n_params_nonembedding * steps * batch_size * L",
        "test_nll_convention": "held-out MDM loss (ELBO, Prop. 2.1; upper bound on "
                               "-log p(x) / token) * L / (N + P): nats per data token",
        "distribution": to_jsonable(dist.header()), "model": ckpt.model_config.to_dict(),
    }
