"""Table 1: observation accuracy of vanilla and adaptive MDM inference on L&O-NAE-SAT.

For each L&O-NAE-SAT preset (N, P) (default the five of Table 1 / App. D.1.1:
(25, 275), (30, 270), (40, 260), (50, 250), (100, 200); N + P = 300) this trains one
MDM (default ``mdm-19m``, the 19M model of App. C.2.1 / D.1.1) on fresh samples of
``nae-sat-N-P-t`` (the App. C.2.1 constant trailing token, L = 301; triples drawn
from ``--dist-seed``), then generates ``--num-samples`` sequences unconditionally
with each sampler:

* ``vanilla``: random unmasking (Sec. 2);
* ``top-prob`` / ``margin``: adaptive, K per step matching the vanilla expectation
  (App. D.1.2, deterministic K), no noise in the oracle;
* ``top-prob+gumbel`` / ``margin+gumbel``: the same with Gumbel noise of coefficient
  0.5 on the position score (App. D.2).

The metric (Table 1, :func:`lohard.mdm.observation_accuracy`) is the fraction of
generated observation tokens equal to NAE of the generated latents; a naive guess
scores 75%. The paper reports vanilla 62.8-78.1% and adaptive (top-probability
margin, D.1.1) 88.9-93.8%. Each accuracy carries its standard error over sequences
(the per-sequence accuracy is the unit, so correlations inside a sequence are
accounted for) and a normal 95% confidence interval.

Time budget: with ``--time-budget-min`` and no ``--steps``, the steps of each model
are planned from a measured training rate so that the presets share the budget
(re-planned after each preset from the measured rate and evaluation time); with
``--steps`` the schedule is fixed and the budget only stops training (at the last
checkpoint) when a preset's share runs out. Every model is a resumable lohard
checkpoint under ``--work-dir``: a second call with the same arguments continues
unfinished models (keeping their schedule) and reuses finished evaluations.

Writes ``<out-dir>/table1.md``, ``.csv`` and ``.json`` (configs, steps per model,
seeds, device, wall time, the paper's numbers alongside); the outputs are rewritten
after every preset, so an interrupted run leaves the finished rows.
``--mdm-log-out PATH`` writes the held-out loss curve of the (20, 280) model (when
``20-280`` is among the presets) as ``{"flops": [...], "test_nll": [...]}`` for
``simulations/pilearner_likelihood.py --mdm-log``.

Usage::

    python simulations/table1_nae.py --quick                       # CPU, tiny, ~1 min
    python simulations/table1_nae.py --device cuda --time-budget-min 6
    python simulations/table1_nae.py --device cuda --steps 2000 --presets 25-275,30-270
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Table 1 of the paper (Kim et al. 2025), observation accuracy in %: vanilla and
#: adaptive (top-probability margin, App. D.1.1). The (100, 200) row is missing from the
#: translation at hand; its values are the ends of the ranges the digest quotes (vanilla
#: 62.8-78.1%, adaptive 88.9-93.8%), hence one decimal only and ``approx``.
PAPER_TABLE1 = {
    (25, 275): {"vanilla": 78.06, "adaptive": 93.76, "approx": False},
    (30, 270): {"vanilla": 75.70, "adaptive": 93.54, "approx": False},
    (40, 260): {"vanilla": 74.60, "adaptive": 92.21, "approx": False},
    (50, 250): {"vanilla": 67.94, "adaptive": 90.01, "approx": False},
    (100, 200): {"vanilla": 62.8, "adaptive": 88.9, "approx": True},
}
TABLE1_PRESETS = tuple(PAPER_TABLE1)
#: A naive guess (every observation 1) is right with probability 3/4 (App. C.2).
NAIVE_GUESS = 0.75
#: Sampler variants: name -> (sampler, noise). Gumbel coefficient from App. D.2.
VARIANTS = {
    "vanilla": ("vanilla", None),
    "top-prob": ("top-prob", None),
    "margin": ("margin", None),
    "top-prob+gumbel": ("top-prob", "gumbel"),
    "margin+gumbel": ("margin", "gumbel"),
}
#: Normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
#: Steps of the throw-away run that measures the training rate (the first logged window,
#: which holds compilation and warm-up, is left out of the rate).
CALIBRATION_STEPS = 40
#: Fraction of a preset's training time the planner fills with steps: the rate varies
#: (evaluations, checkpoints), and a model stopped by its deadline ends mid-schedule.
PLAN_SAFETY = 0.9
#: Below this many seconds of budget left, the remaining presets are skipped (reported).
MIN_SECONDS_LEFT = 5.0
#: Smallest schedule the planner gives a model: warm-up (100 steps) plus a little decay.
MIN_PLANNED_STEPS = 150


@dataclasses.dataclass
class Table1Config:
    presets: tuple = TABLE1_PRESETS  # (N, P) pairs
    trailing_token: bool = True  # App. C.2.1: a constant token (value 2) after the sequence
    dist_seed: int = 0  # structure seed of every nae-sat-N-P (the triples)
    model: str = "mdm-19m"  # App. C.2.1 / D.1.1: the 19M MDM
    learned_pos: bool = False  # paper: RoPE only; True adds a learned absolute embedding
    steps: int | None = None  # None: planned from --time-budget-min, else DEFAULT_STEPS
    batch_size: int = 256
    lr: float = 4e-4  # lohard.mdm.TrainConfig defaults (App. C.1)
    min_lr: float = 4e-5
    warmup_steps: int = 100
    seed: int = 0  # training root seed (init, batches, masks); sampling seeds derive from it
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (training and sampling)
    compile: bool = False  # torch.compile the model for training
    eval_points: int = 10  # held-out loss evaluations per model (for the learning curve)
    eval_size: int = 512
    num_samples: int = 1000  # generated sequences per sampler variant
    sample_steps: int = 50  # reverse steps T (App. D.2: 50)
    sample_batch: int = 1000
    variants: tuple = tuple(VARIANTS)
    noise_scale: float = 0.5  # App. D.2 Gumbel coefficient
    time_budget_min: float | None = None
    calibration_steps: int = CALIBRATION_STEPS
    min_steps: int = MIN_PLANNED_STEPS
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    work_dir: str = "runs/table1_nae"
    out_dir: str = "figures"
    mdm_log_out: str | None = None
    mdm_log_preset: tuple = (20, 280)
    proxy_snapshot: bool = False  # keep the mdm_log_preset model at half its steps (Fig. 2)


DEFAULT_STEPS = 2000  # App. C.2.1 trains the 19M MDM for 2e3 iterations
QUICK = dict(presets=((8, 40),), model="tiny", steps=40, batch_size=16, warmup_steps=5,
             eval_points=4, eval_size=32, num_samples=48, sample_steps=8, sample_batch=48,
             device="cpu", threads=1, calibration_steps=8, min_steps=10,
             work_dir="runs/table1_nae_quick")


def parse_presets(text: str) -> tuple:
    """``"25-275,30-270"`` or ``"table1"`` -> ((25, 275), (30, 270))."""
    if text.strip() == "table1":
        return TABLE1_PRESETS
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split("-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"a preset is N-P with integers N, P (e.g. 25-275), got {item!r}")
        n, p = int(parts[0]), int(parts[1])
        if n < 3 or p < 1:
            raise ValueError(f"L&O-NAE-SAT needs N >= 3 latents and P >= 1 observations, got "
                             f"N = {n}, P = {p}")
        out.append((n, p))
    if not out:
        raise ValueError("no presets given")
    return tuple(out)


def parse(argv: list[str] | None) -> Table1Config:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="CPU run in seconds: tiny model, N, P = 8, 40, 40 steps")
    ap.add_argument("--presets", help="comma-separated N-P pairs, or 'table1' (default)")
    ap.add_argument("--no-trailing-token", action="store_true",
                    help="leave out the App. C.2.1 trailing token")
    ap.add_argument("--config", dest="model", help="model shape (default mdm-19m)")
    ap.add_argument("--learned-pos", action="store_true", default=None,
                    help="add a learned absolute position embedding (paper: RoPE only)")
    ap.add_argument("--batch", dest="batch_size", type=int, help="training batch size (256)")
    for name, typ in (("steps", int), ("lr", float), ("min-lr", float), ("warmup-steps", int),
                      ("seed", int), ("dist-seed", int), ("eval-points", int),
                      ("eval-size", int), ("num-samples", int), ("sample-steps", int),
                      ("sample-batch", int), ("noise-scale", float), ("time-budget-min", float),
                      ("calibration-steps", int), ("min-steps", int), ("threads", int)):
        ap.add_argument(f"--{name}", type=typ)
    ap.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    ap.add_argument("--compile", action="store_true", default=None,
                    help="torch.compile the model for training")
    ap.add_argument("--work-dir", help="run folders (checkpoints) (default runs/table1_nae)")
    ap.add_argument("--out-dir", help="where table1.md/.csv/.json go (default figures)")
    ap.add_argument("--mdm-log-out",
                    help="write the (20, 280) model's held-out loss curve (flops, test_nll)")
    ap.add_argument("--mdm-log-preset", help="preset of --mdm-log-out (default 20-280)")
    ap.add_argument("--proxy-snapshot", action="store_true", default=None,
                    help="keep that preset's checkpoint at half its steps, so that Figure 2 "
                         "can measure it against the final (twice as long trained) model")
    args = vars(ap.parse_args(argv))
    fields = dict(QUICK) if args.pop("quick") else {}
    if args["time_budget_min"] is not None and args["steps"] is None:
        fields.pop("steps", None)  # a budget without --steps plans the steps
    if args.pop("no_trailing_token"):
        fields["trailing_token"] = False
    if args.pop("no_amp"):
        fields["amp"] = False
    presets = args.pop("presets")
    if presets is not None:
        fields["presets"] = parse_presets(presets)
    mlp = args.pop("mdm_log_preset")
    if mlp is not None:
        fields["mdm_log_preset"] = parse_presets(mlp)[0]
    variants = args.pop("variants")
    if variants is not None:
        names = tuple(v.strip() for v in variants.split(",") if v.strip())
        bad = [v for v in names if v not in VARIANTS]
        if bad or not names:
            raise SystemExit(f"unknown sampler variant {bad[0] if bad else ''!r}; choose from "
                             f"{', '.join(VARIANTS)}")
        fields["variants"] = names
    for k, v in args.items():
        if v is not None:
            fields[k] = v
    cfg = Table1Config(**fields)
    if cfg.time_budget_min is not None and not cfg.time_budget_min > 0:
        raise SystemExit(f"--time-budget-min must be > 0, got {cfg.time_budget_min}")
    # Checked here, before any training spends the budget.
    for name, low in (("steps", 1), ("batch_size", 1), ("num_samples", 2), ("sample_steps", 1),
                      ("sample_batch", 1), ("eval_points", 1), ("eval_size", 1),
                      ("calibration_steps", 1), ("min_steps", 1)):
        val = getattr(cfg, name)
        if val is not None and val < low:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= {low}, got {val}")
    if not (cfg.noise_scale >= 0 and math.isfinite(cfg.noise_scale)):
        raise SystemExit(f"--noise-scale must be finite and >= 0, got {cfg.noise_scale}")
    return cfg


# -- training ------------------------------------------------------------------------------
def dist_spec(n: int, p: int, trailing: bool) -> str:
    return f"nae-sat-{n}-{p}" + ("-t" if trailing else "")


def train_config(cfg: Table1Config, spec: str, length: int, steps: int, *,
                 calibrate: bool = False):
    """The lohard TrainConfig of one preset (``calibrate``: the throw-away rate run)."""
    from lohard.mdm import TrainConfig, model_config

    mcfg = model_config(cfg.model)
    overrides = {} if mcfg.max_seq_len >= length else {"max_seq_len": int(length)}
    if cfg.learned_pos:
        overrides["learned_pos"] = True
    log_every = max(1, min(50, steps // 20))
    if calibrate:
        log_every = max(1, steps // 4)
    return TrainConfig(
        dist=spec, dist_seed=cfg.dist_seed, model=cfg.model, model_overrides=overrides,
        steps=int(steps), batch_size=cfg.batch_size, lr=cfg.lr, min_lr=cfg.min_lr,
        warmup_steps=min(cfg.warmup_steps, max(0, steps - 1)), seed=cfg.seed,
        device=cfg.device, amp=cfg.amp, compile=cfg.compile,
        eval_every=0 if calibrate else max(1, steps // max(1, cfg.eval_points)),
        eval_size=0 if calibrate else cfg.eval_size, log_every=log_every,
        ckpt_every=0 if calibrate else max(1, steps // 4))


def run_dir_for(cfg: Table1Config, spec: str) -> Path:
    """Run folder of one preset; the hash covers every field that shapes the training."""
    key = json.dumps([spec, cfg.dist_seed, cfg.model, cfg.learned_pos, cfg.batch_size, cfg.lr,
                      cfg.min_lr, cfg.warmup_steps, cfg.seed, cfg.eval_points, cfg.eval_size,
                      cfg.amp])
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(cfg.work_dir) / f"{spec}_{cfg.model}_{digest}"


def snapshot_steps(cfg: Table1Config, n: int, p: int, steps: int) -> tuple:
    """With ``--proxy-snapshot``, the ``mdm_log_preset`` model keeps its checkpoint at half
    its schedule: Figure 2 then measures that model against the final one, a model trained
    twice as long (the paper's proxy), and both against the exact posterior."""
    if cfg.proxy_snapshot and (n, p) == tuple(cfg.mdm_log_preset) and steps >= 2:
        return (steps // 2,)
    return ()


def stored_progress(run_dir: Path) -> tuple[int, int] | None:
    """(steps done, scheduled steps) of the checkpoint in ``run_dir``, or None."""
    from lohard.mdm._train import CKPT_NAME, read_state

    path = run_dir / CKPT_NAME
    if not path.exists():
        return None
    state = read_state(path)
    return int(state["step"]), int(state["train_config"]["steps"])


def measured_rate(entries: list[dict]) -> float | None:
    """Steps per second from train log entries of one call, first window left out."""
    pts = [(e["step"], e["seconds"]) for e in entries if "seconds" in e]
    if len(pts) >= 2 and pts[-1][1] > pts[0][1]:
        return (pts[-1][0] - pts[0][0]) / (pts[-1][1] - pts[0][1])
    return None


def calibrate_rate(cfg: Table1Config, spec: str, length: int, say) -> dict:
    """Train a throw-away model for a few steps and measure steps per second."""
    from lohard.mdm import train

    tcfg = train_config(cfg, spec, length, cfg.calibration_steps, calibrate=True)
    entries: list[dict] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(tcfg, tmp, progress=False, log=entries.append)
    wall = time.perf_counter() - t0
    rate = measured_rate(entries)
    if rate is None:
        rate = cfg.calibration_steps / wall
    say(f"calibration: {cfg.calibration_steps} steps of {spec} in {wall:.1f} s (with set-up "
        f"and compilation); {rate:.2f} steps/s after the first window")
    return {"steps": cfg.calibration_steps, "wall_seconds": wall, "steps_per_second": rate}


def train_preset(cfg: Table1Config, spec: str, length: int, steps: int, run_dir: Path,
                 deadline: float | None, say, snapshots=()) -> dict:
    """Train (or resume) one preset until its schedule ends or ``deadline`` passes;
    ``snapshots``: steps after which a copy of the checkpoint is kept."""
    from lohard.mdm import train

    tcfg = train_config(cfg, spec, length, steps)
    entries: list[dict] = []
    last_print = [time.monotonic()]

    def hook(entry: dict) -> None:
        entries.append(entry)
        now = time.monotonic()
        if "eval_loss" in entry or now - last_print[0] > 5.0:
            last_print[0] = now
            what = (f"eval loss {entry['eval_loss']:.4f}" if "eval_loss" in entry
                    else f"train loss {entry['train_loss']:.4f}")
            say(f"  {spec} step {entry['step']}/{steps}: {what} (nats/token)")
    t0 = time.perf_counter()
    stopped = None
    budget = None if deadline is None else max(0.0, deadline - time.monotonic())
    # train() stops after the first step past the budget and checkpoints it.
    result = train(tcfg, run_dir, resume=True, progress=False, log=hook, max_seconds=budget,
                   snapshots=snapshots)
    finished = result.finished
    if not finished:
        stopped = f"{spec}: time share spent at step {result.step}"
        say(f"  {stopped}; a second call continues from that checkpoint")
    wall = time.perf_counter() - t0
    return {"train_config": tcfg.to_dict(), "wall_seconds": wall, "finished": finished,
            "stopped": stopped, "steps_per_second": measured_rate(entries),
            "log_entries": len(entries)}


# -- evaluation ----------------------------------------------------------------------------
def variant_seed(root: int, n: int, p: int, index: int) -> int:
    """Sampling seed of one (preset, variant): SeedSequence([root, N, P, variant])."""
    return int(np.random.SeedSequence([int(root), 1, int(n), int(p), int(index)])
               .generate_state(1)[0])


def evaluate_variants(model, dist, cfg: Table1Config, n: int, p: int, say) -> dict:
    """Observation accuracy of each sampler variant, with standard errors and 95% CIs."""
    import torch

    from lohard.mdm import observation_correct, sample

    out = {}
    for idx, name in enumerate(VARIANTS):
        if name not in cfg.variants:
            continue
        sampler, noise = VARIANTS[name]
        seed = variant_seed(cfg.seed, n, p, idx)
        t0 = time.perf_counter()
        tokens = sample(model, cfg.num_samples, sampler=sampler, steps=cfg.sample_steps,
                        length=dist.length, noise=noise, noise_scale=cfg.noise_scale,
                        batch_size=cfg.sample_batch, generator=seed, amp=cfg.amp)
        if tokens.is_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        ok = observation_correct(dist, tokens.cpu().numpy())  # (num, P)
        per_seq = ok.mean(axis=1)
        acc = float(per_seq.mean())
        se = float(per_seq.std(ddof=1) / math.sqrt(per_seq.size)) if per_seq.size > 1 else None
        out[name] = {
            "sampler": sampler, "noise": noise,
            "noise_scale": cfg.noise_scale if noise else None, "seed": seed,
            "accuracy": acc, "stderr": se,
            "ci95": [acc - Z95 * se, acc + Z95 * se] if se is not None else None,
            "all_correct_fraction": float(ok.all(axis=1).mean()),
            "num": int(per_seq.size), "seconds": seconds,
        }
        se_txt = "" if se is None else f" +- {100 * se:.2f}"
        say(f"  {name:>16}: {100 * acc:.2f}%{se_txt} (SE) over {per_seq.size} sequences, "
            f"{seconds:.1f} s")
    return out


def eval_key(cfg: Table1Config, step: int) -> dict:
    return {"step": step, "num_samples": cfg.num_samples, "sample_steps": cfg.sample_steps,
            "sample_batch": cfg.sample_batch, "variants": list(cfg.variants),
            "noise_scale": cfg.noise_scale, "seed": cfg.seed, "amp": cfg.amp}


def nonembedding_params(model) -> int:
    """Parameters except the token and position embedding tables (the output head counts)."""
    n = model.n_params - model.embed.weight.numel()
    if getattr(model, "pos", None) is not None:
        n -= model.pos.weight.numel()
    return int(n)


def mdm_curve(ckpt) -> dict:
    """The held-out loss curve of a checkpoint in the pi-learner figure's units.

    ``flops = 6 * non-embedding params * step * batch * L`` (Kaplan et al.), ``test_nll``
    the held-out MDM loss (an upper bound on -log p / token, Prop. 2.1) rescaled to
    nats per data token: loss * L / (N + P), so that a trailing constant token (which
    costs nothing once learned) does not dilute it.
    """
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
        "distribution": to_jsonable_header(dist), "model": ckpt.model_config.to_dict(),
    }


def to_jsonable_header(dist) -> dict:
    from lohard._util import to_jsonable

    return to_jsonable(dist.header())


# -- outputs -------------------------------------------------------------------------------
def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def write_outputs(cfg: Table1Config, rows: list[dict], meta: dict) -> None:
    from lohard._util import atomic_write_json, atomic_write_text, provenance, provenance_comment

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(dataclasses.asdict(cfg), cfg.seed)
    atomic_write_json(out / "table1.json", {
        **prov, **meta, "metric": "fraction of generated observation tokens equal to NAE of "
                                  "the generated latents (observation_accuracy, rule "
                                  "'support'); stderr over sequences",
        "naive_guess": NAIVE_GUESS,
        "paper": {f"{n}-{p}": v for (n, p), v in PAPER_TABLE1.items()}, "rows": rows})

    buf = io.StringIO()
    buf.write(provenance_comment("simulations/table1_nae.py", prov))
    w = csv.writer(buf)
    w.writerow(["N", "P", "L", "model", "steps_done", "steps_scheduled", "finished", "variant",
                "accuracy", "stderr", "ci95_low", "ci95_high", "all_correct_fraction", "num",
                "sample_seed", "paper_vanilla", "paper_adaptive", "train_seed", "dist_seed",
                "device"])
    for r in rows:
        paper = PAPER_TABLE1.get((r["N"], r["P"]), {})
        for name, v in (r.get("results") or {}).items():
            w.writerow([r["N"], r["P"], r["L"], cfg.model, r["steps_done"],
                        r["steps_scheduled"], r["finished"], name, v["accuracy"], v["stderr"],
                        *(v["ci95"] or [None, None]), v["all_correct_fraction"], v["num"],
                        v["seed"], paper.get("vanilla"), paper.get("adaptive"), cfg.seed,
                        cfg.dist_seed, meta["device"]])
    atomic_write_text(out / "table1.csv", buf.getvalue())

    names = [v for v in VARIANTS if v in cfg.variants]
    lines = [
        "# Table 1: L&O-NAE-SAT observation accuracy (%), vanilla vs adaptive MDM inference",
        "",
        f"Model `{cfg.model}`, distribution `nae-sat-N-P{'-t' if cfg.trailing_token else ''}` "
        f"(dist seed {cfg.dist_seed}), batch {cfg.batch_size}, training seed {cfg.seed}, "
        f"device {meta['device']}; {cfg.num_samples} generated sequences per sampler, "
        f"{cfg.sample_steps} reverse steps, Gumbel coefficient {cfg.noise_scale} for the "
        f"`+gumbel` variants (App. D.2). Entries: accuracy +- standard error over sequences. "
        f"Naive guess: 75%. Paper: Table 1 (adaptive = top-probability margin, App. D.1.1).",
        "",
        "| (N, P) | steps | " + " | ".join(names) + " | paper vanilla | paper adaptive |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for r in rows:
        paper = PAPER_TABLE1.get((r["N"], r["P"]))
        res = r.get("results") or {}
        cells = []
        for name in names:
            v = res.get(name)
            cells.append("-" if v is None else
                         f"{pct(v['accuracy'])} +- {pct(v['stderr']) if v['stderr'] else '-'}")
        steps = f"{r['steps_done']}/{r['steps_scheduled']}" if r["steps_scheduled"] else "-"
        if r.get("note"):
            steps += f" ({r['note']})"
        pv = "-" if paper is None else f"{paper['vanilla']}" + ("~" if paper["approx"] else "")
        pa = "-" if paper is None else f"{paper['adaptive']}" + ("~" if paper["approx"] else "")
        lines.append(f"| ({r['N']}, {r['P']}) | {steps} | " + " | ".join(cells)
                     + f" | {pv} | {pa} |")
    lines += ["", "`~`: the (100, 200) row is missing from the translation at hand; the values "
              "are the ends of the ranges quoted in the digest. Rows without a paper value are "
              "not in the paper's Table 1 (e.g. (20, 280), the model of Figure 2).",
              f"Wall time {meta['wall_seconds']:.0f} s; lohard {prov['lohard_version']}.", ""]
    atomic_write_text(out / "table1.md", "\n".join(lines))


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    import torch

    from lohard._util import atomic_write_json, provenance
    from lohard.mdm import load_checkpoint, resolve_distribution, select_device, snapshot_path

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.monotonic()
    budget = None if cfg.time_budget_min is None else 60.0 * cfg.time_budget_min
    device = select_device(cfg.device)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    def say(msg: str) -> None:
        print(f"[table1 {time.monotonic() - t_start:6.1f}s] {msg}", flush=True)

    say(f"device {device} ({dev_name}); presets {list(cfg.presets)}; model {cfg.model}; "
        f"budget {'none' if budget is None else f'{budget:.0f} s'}")
    plans = []
    for n, p in cfg.presets:
        spec = dist_spec(n, p, cfg.trailing_token)
        dist = resolve_distribution(spec, seed=cfg.dist_seed)
        run_dir = run_dir_for(cfg, spec)
        plans.append({"N": n, "P": p, "spec": spec, "dist": dist, "run_dir": run_dir,
                      "progress": stored_progress(run_dir)})

    # Steps: fixed, or planned from a measured rate (only when some model needs a schedule).
    auto = cfg.steps is None and budget is not None
    calibration = None
    rate = None
    rate_len = 1  # sequence length the rate was measured at (cost per step ~ L)
    if auto and any(pl["progress"] is None for pl in plans):
        first = next(pl for pl in plans if pl["progress"] is None)
        calibration = calibrate_rate(cfg, first["spec"], first["dist"].length, say)
        rate = calibration["steps_per_second"]
        rate_len = first["dist"].length
    overhead = None  # measured seconds per preset outside the training steps
    rows: list[dict] = []
    meta = {"device": f"{device} ({dev_name})", "torch": torch.__version__,
            "calibration": calibration, "wall_seconds": 0.0,
            "time_budget_seconds": budget, "steps_mode": "planned from the time budget" if auto
            else "fixed"}
    for i, pl in enumerate(plans):
        n, p, spec, dist, run_dir = pl["N"], pl["P"], pl["spec"], pl["dist"], pl["run_dir"]
        t_preset = time.monotonic()
        row = {"N": n, "P": p, "L": dist.length, "spec": spec, "run_dir": str(run_dir),
               "dist_seed": cfg.dist_seed, "train_seed": cfg.seed, "note": None,
               "paper": PAPER_TABLE1.get((n, p))}
        share = None
        if budget is not None:
            share = (budget - (t_preset - t_start)) / (len(plans) - i)
        prog = pl["progress"]
        if prog is not None:
            steps = prog[1]  # keep the stored schedule
        elif auto:
            spend = share - (overhead if overhead is not None else 0.3 * share)
            rate_here = rate * rate_len / dist.length
            steps = int(PLAN_SAFETY * spend * rate_here) // 10 * 10
            if steps < cfg.min_steps:
                steps = cfg.min_steps
            say(f"{spec}: {share:.0f} s share, planned {steps} steps at {rate_here:.2f} "
                f"steps/s")
        else:
            steps = cfg.steps if cfg.steps is not None else DEFAULT_STEPS
        row["steps_scheduled"] = steps
        if budget is not None and budget - (t_preset - t_start) < MIN_SECONDS_LEFT:
            row.update(steps_done=prog[0] if prog else 0, finished=False, results=None,
                       note="skipped: time budget spent")
            say(f"{spec}: skipped, time budget spent")
            rows.append(row)
            write_outputs(cfg, rows, {**meta, "wall_seconds": time.monotonic() - t_start})
            continue
        train_info = None
        if prog is None or prog[0] < prog[1]:
            # Keep time for loading and sampling: half the measured overhead of the last
            # preset (the plan above reserved all of it), 15% of the share at first.
            deadline = None
            if share is not None:
                reserve = 0.15 * share if overhead is None else 0.5 * overhead
                deadline = t_preset + share - reserve
            say(f"{spec}: training {steps} steps in {run_dir}")
            train_info = train_preset(cfg, spec, dist.length, steps, run_dir, deadline, say,
                                      snapshots=snapshot_steps(cfg, n, p, steps))
            if train_info["steps_per_second"]:
                rate, rate_len = train_info["steps_per_second"], dist.length
        row["train"] = train_info
        row["snapshots"] = {str(x): str(snapshot_path(run_dir, x))
                            for x in snapshot_steps(cfg, n, p, steps)
                            if snapshot_path(run_dir, x).exists()}
        progress = stored_progress(run_dir)
        if progress is None:
            row.update(steps_done=0, finished=False, results=None,
                       note="no checkpoint yet (time share too short)")
            rows.append(row)
            write_outputs(cfg, rows, {**meta, "wall_seconds": time.monotonic() - t_start})
            continue
        row["steps_done"], row["finished"] = progress[0], progress[0] >= progress[1]
        ckpt = load_checkpoint(run_dir, device=device, dist=dist)
        trains = [h["train_loss"] for h in ckpt.history if "train_loss" in h]
        evals = [h["eval_loss"] for h in ckpt.history if "eval_loss" in h]
        row.update(final_train_loss=trains[-1] if trains else None,
                   final_eval_loss=evals[-1] if evals else None,
                   n_params=ckpt.model.n_params, model_config=ckpt.model_config.to_dict(),
                   dist_hash=ckpt.dist_hash)
        if not row["finished"]:
            row["note"] = "schedule not finished"
        # Evaluation, reused when the checkpoint and the evaluation settings are unchanged.
        eval_file = run_dir / "table1_eval.json"
        key = eval_key(cfg, progress[0])
        cached = json.loads(eval_file.read_text()) if eval_file.exists() else None
        t_eval = time.monotonic()
        if cached is not None and cached.get("key") == key:
            results = cached["results"]
            say(f"{spec}: evaluation reused from {eval_file}")
        else:
            say(f"{spec}: sampling {cfg.num_samples} sequences x {len(cfg.variants)} samplers "
                f"(step {progress[0]})")
            results = evaluate_variants(ckpt.model, dist, cfg, n, p, say)
            atomic_write_json(eval_file, {**provenance(key, cfg.seed), "key": key,
                                          "results": results})
        row["results"] = results
        row["eval_seconds"] = time.monotonic() - t_eval
        if cfg.mdm_log_out and (n, p) == tuple(cfg.mdm_log_preset):
            curve = mdm_curve(ckpt)
            atomic_write_json(cfg.mdm_log_out, {**provenance(dataclasses.asdict(cfg), cfg.seed),
                                                "checkpoint": str(run_dir), **curve})
            say(f"{spec}: MDM learning curve ({len(curve['flops'])} points) -> "
                f"{cfg.mdm_log_out}")
        wall = time.monotonic() - t_preset
        row["wall_seconds"] = wall
        if train_info is not None and rate:
            trained = progress[0] - (prog[0] if prog else 0)
            overhead = max(0.0, wall - trained / (rate * rate_len / dist.length))
        rows.append(row)
        del ckpt
        if device.type == "cuda":
            torch.cuda.empty_cache()
        meta["wall_seconds"] = time.monotonic() - t_start
        write_outputs(cfg, rows, meta)
    meta["wall_seconds"] = time.monotonic() - t_start
    write_outputs(cfg, rows, meta)
    if cfg.mdm_log_out and tuple(cfg.mdm_log_preset) not in [tuple(x) for x in cfg.presets]:
        say(f"--mdm-log-out: preset {cfg.mdm_log_preset} is not among the presets; nothing "
            f"written")
    say(f"done; wrote {Path(cfg.out_dir) / 'table1.md'} (.csv, .json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
