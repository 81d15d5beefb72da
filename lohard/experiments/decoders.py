"""Decoders side by side: the paper's orders and those beyond it, on the CPU Table 1 models
and the 9x9 Sudoku model.

Every decoder of :func:`lohard.mdm.sample` (L&O-NAE-SAT) and of
:func:`lohard.mdm.mdm_decode` (Sudoku) runs on the same trained models as the CPU-scale
tables (``lohard table1 --scale cpu``: five N = 10 presets, the 1M model; ``lohard sudoku
tables --box 3``: the 1M MDM), trained (or resumed) from their run folders when missing.
For each decoder the outputs record accuracy with a 95% interval and the model calls
each sequence needed (forward passes of a decoder running that sequence alone).

* Table 1 (observation accuracy, 500 sequences per decoder, normal interval over
  sequences): vanilla, top-prob, margin, entropy, margin with Gumbel noise, confidence
  threshold (several tau), left to right (semi-ar, B = 1), semi-ar blocks where a
  divisor of L exists, remasking (ReMDM-style random on vanilla, confidence on margin),
  BP order (BP marginals on the CSP rank the positions, the MDM gives the values) and
  exact order (the exact posterior ranks them), and fixed-step decoders at other T for
  the speed-accuracy plot.
* Sudoku 9x9 (share of puzzles solved, Wilson interval; 1000 easy, 500 hard): the same
  orders one cell per step (values by argmax, as the tables), semi-ar by rows (B = 9)
  and bands (B = 27), thresholds, remasking, BP order with MDM values and with BP's own
  values (first ``bp_limit`` puzzles), and several cells per step for the plot.

Writes ``figures/decoders_table1_cpu.{md,csv,json}``, ``figures/decoders_sudoku_9x9.{md,
csv,json}`` and ``figures/decoders_pareto.png`` (accuracy against model calls). Every
(preset or test set, decoder) result is cached under the run folders, keyed by the
checkpoint step and the decoder's settings, so an interrupted run resumes and separate
processes can share the work (``--only``).

The CLI verb is ``lohard decoders table1|sudoku|plot``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

#: Confidence thresholds of the ``threshold`` decoder.
TAUS = (0.5, 0.7, 0.9, 0.95, 0.99)
#: Reverse steps of the fixed-step decoders in the speed-accuracy plot (Table 1; 50 is the
#: main one).
PARETO_STEPS = (5, 10, 20, 100)
#: Cells per step of the fixed-step decoders in the plot (Sudoku; 1 is the main one).
PARETO_CELLS = (2, 4, 8)
#: Remasking schedules of the tables (:class:`lohard.mdm.Remask` fields).
REMASK_RANDOM = {"mode": "random", "eta": 0.5, "t_on": 0.6, "t_off": 0.1}
REMASK_CONF = {"mode": "confidence", "eta": 0.5, "t_on": 0.6, "t_off": 0.1}
#: Row groups (``--only``): what each process of a split run computes.
GROUPS = ("model", "bp")


@dataclasses.dataclass
class DecodersConfig:
    """Settings of the side-by-side runs (Table 1 and Sudoku share the seed and device)."""

    presets: tuple = ()  # (N, P) of the Table 1 presets (default: the CPU ones)
    num_samples: int = 500  # sequences per decoder and preset (the CPU Table 1's)
    steps: int = 50  # reverse steps T of the fixed-step decoders (App. D.2)
    sample_batch: int = 500
    n_test: int = 1000  # Sudoku easy test puzzles (the 9x9 tables')
    n_test_hard: int = 500
    bp_limit: int = 300  # Sudoku puzzles decoded with the BP orders
    seed: int = 0
    device: str = "auto"
    compile: bool | None = None  # Sudoku training; None: the CPU tables' choice on CPU
    pareto_presets: tuple = ((10, 90),)  # presets that also get the plot's other step counts
    table1_work_dir: str = "runs/table1_cpu"
    sudoku_work_dir: str = "runs/sudoku_tables_b3_cpu"
    out_dir: str = "figures"
    only: str = ""  # "", "model" (rows needing only the MDM) or "bp" (BP-ordered rows)
    quiet: bool = False
    # Fields of the Table 1 / Sudoku tables configurations to override (tests use tiny
    # models and few steps; the committed results use none).
    table1_overrides: dict = dataclasses.field(default_factory=dict)
    sudoku_overrides: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from lohard._util import require_int
        from lohard.experiments.table1 import CPU_PRESETS

        self.presets = tuple(tuple(int(v) for v in p) for p in (self.presets or CPU_PRESETS))
        self.pareto_presets = tuple(tuple(int(v) for v in p) for p in self.pareto_presets)
        for name in ("num_samples", "steps", "sample_batch", "n_test", "n_test_hard",
                     "bp_limit"):
            setattr(self, name, require_int(getattr(self, name), name, minimum=1))
        if self.only not in ("", *GROUPS):
            raise ValueError(f"unknown row group {self.only!r}; choose one of "
                             f"{', '.join(GROUPS)}")


def _say(cfg: DecodersConfig, t0: float, msg: str) -> None:
    if not cfg.quiet:
        print(f"[decoders {time.monotonic() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _cached(path: Path, key: str):
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError:  # a damaged cache entry is recomputed
        return None
    return doc.get("result") if doc.get("key") == key else None


def _group(spec: dict) -> str:
    return "bp" if spec.get("order") in ("bp", "exact") or spec.get("method") in (
        "bp", "bp-mdm") else "model"


# -- Table 1 ---------------------------------------------------------------------------------
def block_size_for(length: int, target: int = 10) -> int | None:
    """The divisor B of L with 1 < B < L closest to ``target`` (None for a prime L)."""
    divs = [b for b in range(2, length) if length % b == 0]
    return min(divs, key=lambda b: (abs(b - target), b)) if divs else None


def table1_decoders(length: int, steps: int = 50, pareto: bool = True) -> dict[str, dict]:
    """Decoder name -> settings of :func:`lohard.mdm.sample` for a preset of length L
    (``pareto``: with the fixed-step decoders at the plot's other step counts)."""
    specs: dict[str, dict] = {
        "vanilla": {"sampler": "vanilla", "steps": steps},
        "top-prob": {"sampler": "top-prob", "steps": steps},
        "margin": {"sampler": "margin", "steps": steps},
        "margin+gumbel": {"sampler": "margin", "steps": steps, "noise": "gumbel"},
        "entropy": {"sampler": "entropy", "steps": steps},
    }
    for tau in TAUS:
        specs[f"threshold-{tau:g}"] = {"sampler": "threshold", "tau": tau}
    specs["left-to-right"] = {"sampler": "semi-ar", "block_size": 1, "steps": length,
                              "block_score": "margin"}
    b = block_size_for(length)
    if b is not None:
        n_blocks = length // b
        specs["semi-ar"] = {"sampler": "semi-ar", "block_size": b,
                                 "steps": n_blocks * math.ceil(steps / n_blocks),
                                 "block_score": "margin"}
    specs["vanilla+remask"] = {"sampler": "vanilla", "steps": steps, "remask": REMASK_RANDOM}
    specs["margin+remask"] = {"sampler": "margin", "steps": steps, "remask": REMASK_CONF}
    specs["bp-order"] = {"sampler": "bp-order", "steps": steps, "order": "bp"}
    specs["exact-order"] = {"sampler": "bp-order", "steps": steps, "order": "exact"}
    for t in PARETO_STEPS if pareto else ():
        for s in ("vanilla", "margin"):
            specs[f"{s}-T{t}"] = {"sampler": s, "steps": t}
    return specs


def _order_model(dist, order: str):
    from lohard.mdm import MAX_ORACLE_STATES, BPOracle, ExactOracle, PosteriorOracle

    if order == "bp":
        return BPOracle(dist)
    if dist.m ** dist.n_latent <= MAX_ORACLE_STATES:
        return ExactOracle(dist)
    return PosteriorOracle(dist)


def run_table1_spec(model, dist, spec: dict, *, num: int, seed: int, batch: int) -> dict:
    """Decode ``num`` sequences with one decoder; observation accuracy and model calls."""
    import torch

    from lohard.experiments.table1 import accuracy_record
    from lohard.mdm import Remask, sample

    kw = {k: v for k, v in spec.items() if k != "order"}
    if "remask" in kw:
        kw["remask"] = Remask(**kw["remask"])
    order = None
    if spec.get("order"):
        order = _order_model(dist, spec["order"])
        if spec["order"] == "exact":  # torch: rank on the model's device
            order = order.to(next(model.parameters()).device)
        kw["order_model"] = order
    t0 = time.perf_counter()
    tokens, calls = sample(model, num, length=dist.length, batch_size=batch, generator=seed,
                           return_calls=True, **kw)
    if tokens.is_cuda:
        torch.cuda.synchronize()
    rec = accuracy_record(dist, tokens.cpu().numpy(), seed=seed,
                          seconds=time.perf_counter() - t0)
    c = calls.cpu().numpy()
    rec.update(model_calls_mean=float(c.mean()), model_calls_min=int(c.min()),
               model_calls_max=int(c.max()), spec=spec)
    if spec.get("order") == "bp":
        rec["bp_not_converged"] = int(order.not_converged)
        rec["bp_runs"] = int(order.calls)
    if order is not None:
        # (sequence, step) pairs whose revealed tokens had probability 0 under the law: no
        # posterior, so the model's own margin ranked those steps.
        rec["order_fallbacks"] = int(getattr(order, "fallbacks", 0))
        rec["order_steps"] = int(num * kw["steps"])
    return rec


def run_table1_decoders(cfg: DecodersConfig) -> dict:
    """Train (or load) every CPU Table 1 preset and run every decoder on it."""
    from lohard._util import atomic_write_json
    from lohard.experiments.table1 import (
        dist_spec,
        run_dir,
        seed_for,
        table1_config,
        train_preset,
    )
    from lohard.mdm import load_checkpoint, select_device

    t0 = time.monotonic()
    tcfg = table1_config("cpu", **{"presets": cfg.presets, "device": cfg.device,
                                   "work_dir": cfg.table1_work_dir, **cfg.table1_overrides})
    device = select_device(cfg.device)
    results: dict = {}
    for n, p in tcfg.presets:
        _say(cfg, t0, f"({n}, {p}): model from {run_dir(tcfg, n, p)} (trained if missing)")
        if cfg.only != "bp":  # the bp group reads the model another process trained
            train_preset(tcfg, n, p, lambda m: _say(cfg, t0, m))
        ckpt = load_checkpoint(run_dir(tcfg, n, p), device=device)
        dist = ckpt.dist
        rows = {}
        specs = table1_decoders(dist.length, cfg.steps, (n, p) in cfg.pareto_presets)
        for idx, (name, spec) in enumerate(specs.items()):
            if cfg.only and _group(spec) != cfg.only:
                continue
            seed = seed_for(cfg.seed, n, p, 1000 + idx)
            key = _key({"step": ckpt.step, "spec": spec, "num": cfg.num_samples,
                        "seed": seed, "batch": cfg.sample_batch})
            path = run_dir(tcfg, n, p) / "decoders" / f"{name}.json"
            rec = _cached(path, key)
            if rec is None:
                rec = run_table1_spec(ckpt.model, dist, spec, num=cfg.num_samples, seed=seed,
                                      batch=cfg.sample_batch)
                atomic_write_json(path, {"key": key, "result": rec})
            rows[name] = rec
            _say(cfg, t0, f"({n}, {p}) {name:>16}: {rec['accuracy']:6.2f}% "
                          f"[{rec['ci95'][0]:.2f}, {rec['ci95'][1]:.2f}], "
                          f"{rec['model_calls_mean']:.1f} calls/sequence")
        results[dist_spec(tcfg, n, p)] = {"N": n, "P": p, "L": dist.length, "d": 6.0 * p / n,
                                          "checkpoint_step": ckpt.step, "decoders": rows}
    return {"presets": results, "device": str(device),
            "models": {"model": tcfg.model, "steps": tcfg.steps, "batch_size": tcfg.batch_size,
                       "lr": tcfg.lr, "seed": tcfg.seed, "dist_seed": tcfg.dist_seed}}


# -- Sudoku ----------------------------------------------------------------------------------
def sudoku_decoders() -> dict[str, dict]:
    """Decoder name -> settings of :func:`lohard.mdm.mdm_decode` (one cell per step unless
    said; values by argmax, noise only where named)."""
    specs: dict[str, dict] = {
        "vanilla": {"method": "vanilla"},
        "top-prob": {"method": "top-prob"},
        "margin": {"method": "margin"},
        "margin+gumbel": {"method": "margin", "noise_scale": 0.5},
        "entropy": {"method": "entropy"},
    }
    for tau in TAUS:
        specs[f"threshold-{tau:g}"] = {"method": "threshold", "tau": tau}
    specs["semi-ar-9"] = {"method": "semi-ar", "block_size": 9, "block_score": "margin"}
    specs["semi-ar-27"] = {"method": "semi-ar", "block_size": 27, "block_score": "margin"}
    specs["vanilla+remask"] = {"method": "vanilla", "remask": REMASK_RANDOM}
    specs["margin+remask"] = {"method": "margin", "remask": REMASK_CONF}
    specs["bp-order"] = {"method": "bp-mdm"}
    specs["bp-order+bp-values"] = {"method": "bp"}
    for c in PARETO_CELLS:
        for s in ("vanilla", "margin"):
            specs[f"{s}-x{c}"] = {"method": s, "cells_per_step": c}
    return specs


def run_sudoku_spec(model, test, spec: dict, *, seed: int, bp_limit: int, jobs: int,
                    progress: bool = False) -> dict:
    """Decode a test set with one decoder; share solved (Wilson interval) and model calls."""
    from lohard.mdm import Remask, bp_oracle_decode, mdm_decode
    from lohard.mdm._sudoku_eval import solver_steps, summarize_decode

    kw = dict(spec)
    method = kw.pop("method")
    if method in ("bp", "bp-mdm"):
        m = min(len(test), bp_limit)
        dec = bp_oracle_decode(test.puzzles[:m], model=model if method == "bp-mdm" else None,
                               box=test.box, temperature=0.0, seed=seed, jobs=jobs,
                               progress=progress)
    else:
        if "remask" in kw:
            kw["remask"] = Remask(**kw["remask"])
        kw.setdefault("noise_scale", 0.0)
        dec = mdm_decode(model, test.puzzles, method=method, temperature=0.0, seed=seed,
                         progress=progress, **kw)
    m = dec.solved.size
    rec = summarize_decode(dec, solver_steps(test.orders, test.puzzles)[:m])
    rec["spec"] = spec
    rec["blanks_mean"] = float((test.puzzles[:m] == 0).sum(axis=1).mean())
    return rec


def run_sudoku_decoders(cfg: DecodersConfig) -> dict:
    """Train (or load) the 9x9 CPU-scale MDM and run every decoder on both test sets."""
    import os

    from lohard._util import atomic_write_json
    from lohard.experiments.sudoku_tables import make_data, sudoku_tables_config, train_one
    from lohard.mdm import select_device

    t0 = time.monotonic()
    device = select_device(cfg.device)
    over = {"device": cfg.device, "work_dir": cfg.sudoku_work_dir, "bp_limit": cfg.bp_limit}
    if cfg.compile is not None:
        over["compile"] = cfg.compile
    if device.type == "cuda":
        over["threads"] = 0
    over.update(cfg.sudoku_overrides)
    scfg = sudoku_tables_config(3, "cpu", **over)
    work = Path(scfg.work_dir)
    sets = make_data(scfg, work)
    sm = train_one(scfg, "mdm", "solver", sets, work, 1e9)
    if not sm.finished:
        raise RuntimeError(f"the Sudoku MDM stopped at step {sm.step} of {scfg.steps}")
    jobs = os.cpu_count() or 1
    out: dict = {}
    for test_name in ("easy", "hard"):
        # The first n puzzles of the tables' own test set.
        n_dec = cfg.n_test if test_name == "easy" else cfg.n_test_hard
        test = sets[test_name][np.arange(min(n_dec, len(sets[test_name])))]
        rows = {}
        for idx, (name, spec) in enumerate(sudoku_decoders().items()):
            if cfg.only and _group(spec) != cfg.only:
                continue
            key = _key({"step": sm.step, "spec": spec, "n": len(test), "seed": cfg.seed + idx,
                        "bp_limit": cfg.bp_limit, "test": test_name})
            path = work / "decoders" / f"{test_name}_{name}.json"
            rec = _cached(path, key)
            if rec is None:
                rec = run_sudoku_spec(sm.model, test, spec, seed=cfg.seed + idx,
                                      bp_limit=cfg.bp_limit, jobs=jobs,
                                      progress=not cfg.quiet)
                atomic_write_json(path, {"key": key, "result": rec})
            rows[name] = rec
            _say(cfg, t0, f"sudoku {test_name} {name:>18}: {100 * rec['accuracy']:6.2f}% "
                          f"({rec['solved']}/{rec['num']}), "
                          f"{rec.get('model_calls_mean', float('nan')):.1f} calls/puzzle")
        out[test_name] = {"n": len(test), "decoders": rows}
    return {"test_sets": out, "model_step": sm.step, "model": sm.summary(),
            "device": str(device)}


# -- outputs ---------------------------------------------------------------------------------
LABELS = {
    "vanilla": "vanilla (random order)",
    "top-prob": "top probability",
    "margin": "top-probability margin (the paper's)",
    "margin+gumbel": "margin + Gumbel 0.5",
    "entropy": "entropy (lowest first)",
    "left-to-right": "left to right (semi-ar, B = 1)",
    "vanilla+remask": "vanilla + random remasking (ReMDM)",
    "margin+remask": "margin + confidence remasking",
    "bp-order": "BP order, MDM values",
    "exact-order": "exact-posterior order, MDM values",
    "bp-order+bp-values": "BP order, BP values (no model)",
    "semi-ar": "semi-ar blocks (the divisor B of L nearest 10), margin inside",
}


def label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    if name.startswith("threshold-"):
        return f"threshold tau = {name.split('-', 1)[1]}"
    if name.startswith("semi-ar-"):
        return f"semi-ar, B = {name.split('-')[-1]}, margin inside"
    base, _, what = name.rpartition("-")
    if what.startswith("T"):
        return f"{base}, T = {what[1:]} steps"
    if what.startswith("x"):
        return f"{base}, {what[1:]} cells per step"
    return name


def _fmt_acc(rec, scale: float) -> str:
    if rec is None:
        return "—"
    a, (lo, hi) = scale * rec["accuracy"], rec["ci95"]
    return f"{a:.1f} [{scale * lo:.1f}, {scale * hi:.1f}]"


def write_table1(cfg: DecodersConfig, doc: dict) -> Path:
    """``decoders_table1_cpu.{json,csv,md}`` from :func:`run_table1_decoders`."""
    from lohard._util import atomic_write_json, atomic_write_text, provenance, provenance_comment

    out = Path(cfg.out_dir)
    meta = provenance(dataclasses.asdict(cfg), cfg.seed)
    atomic_write_json(out / "decoders_table1_cpu.json", {**meta, **doc})
    presets = list(doc["presets"].values())
    mo = doc["models"]
    names: list[str] = []
    for pr in presets:
        names += [k for k in pr["decoders"] if k not in names]
    lines = [provenance_comment("decoders on the CPU Table 1 models", meta).rstrip("\n"),
             "preset,N,P,L,d,decoder,accuracy_pct,ci_lo,ci_hi,model_calls_mean,n_sequences"]
    for pr in presets:
        for k, r in pr["decoders"].items():
            lines.append(f"{pr['N']}-{pr['P']},{pr['N']},{pr['P']},{pr['L']},{pr['d']:.1f},{k},"
                         f"{r['accuracy']:.3f},{r['ci95'][0]:.3f},{r['ci95'][1]:.3f},"
                         f"{r['model_calls_mean']:.2f},{r['n_sequences']}")
    atomic_write_text(out / "decoders_table1_cpu.csv", "\n".join(lines) + "\n")
    head = "| decoder | " + " | ".join(f"({p['N']}, {p['P']}) d = {p['d']:.0f}, L = {p['L']}"
                                      for p in presets) + " |"
    md = ["# Decoders on L&O-NAE-SAT: the CPU Table 1 models", "",
          f"Observation accuracy (%) [95% interval over {cfg.num_samples} sequences] and, "
          f"below it, model calls per sequence (forward passes of a decoder running the "
          f"sequence alone). Models: the CPU Table 1 configuration (`{mo['model']}`, "
          f"{mo['steps']} steps of {mo['batch_size']} per preset, training seed "
          f"{mo['seed']}), device {doc.get('device')}. Fixed-step "
          f"decoders use T = {cfg.steps} reverse steps unless named. A naive guess scores "
          f"75%. `—`: not defined for this L (no block size divides a prime L). Decoding "
          f"seed {cfg.seed}; lohard {meta['lohard_version']}; the JSON holds every setting.",
          "",
          head, "|---" * (len(presets) + 1) + "|"]
    for k in names:
        if _is_pareto(k):
            continue  # the plot's extra step counts go in their own table
        cells = []
        for p in presets:
            r = p["decoders"].get(k)
            pre = f"B = {r['spec']['block_size']}: " if r and k == "semi-ar" else ""
            cells.append("—" if r is None else
                         f"{pre}{_fmt_acc(r, 1.0)}<br>{r['model_calls_mean']:.1f} calls")
        md.append(f"| {label(k)} | " + " | ".join(cells) + " |")
    md += ["", "## Fixed-step decoders at other step counts (the speed-accuracy plot)", "",
           head, "|---" * (len(presets) + 1) + "|"]
    for k in names:
        if not _is_pareto(k):
            continue
        cells = [f"{_fmt_acc(p['decoders'][k], 1.0)}<br>"
                 f"{p['decoders'][k]['model_calls_mean']:.1f} calls"
                 if k in p["decoders"] else "—" for p in presets]
        md.append(f"| {label(k)} | " + " | ".join(cells) + " |")
    md += ["", _table1_ranking(presets), "", _bp_note(presets)]
    atomic_write_text(out / "decoders_table1_cpu.md", "\n".join(md) + "\n")
    return out / "decoders_table1_cpu.md"


def _is_pareto(name: str) -> bool:
    """A fixed-step decoder at another step count or cells per step (``margin-T10``)."""
    last = name.rpartition("-")[2]
    return last[:1] in ("T", "x") and last[1:].isdigit()


def _main_rows(decoders: dict) -> dict:
    return {k: r for k, r in decoders.items() if not _is_pareto(k)}


def _table1_ranking(presets) -> str:
    every = set.intersection(*(set(_main_rows(p["decoders"])) for p in presets))
    some = set.union(*(set(_main_rows(p["decoders"])) for p in presets)) - every
    mean = {k: float(np.mean([p["decoders"][k]["accuracy"] for p in presets])) for k in every}
    order = sorted(mean, key=lambda k: -mean[k])
    body = ", ".join(f"{label(k)} {mean[k]:.1f}" for k in order)
    left = (" (left out, not defined on every preset: " + ", ".join(label(k) for k in
                                                                    sorted(some)) + ")"
            if some else "")
    return f"**Ranking** by the mean accuracy over the {len(presets)} presets{left}: {body}."


def _bp_note(presets) -> str:
    parts = []
    for p in presets:
        for k in ("bp-order", "exact-order"):
            r = p["decoders"].get(k)
            if r is not None and r.get("order_steps"):
                parts.append(f"{k} ({p['N']}, {p['P']}): {r.get('order_fallbacks', 0)} of "
                             f"{r['order_steps']}")
    if not parts:
        return ""
    bad = [(p["N"], p["P"], p["decoders"]["bp-order"].get("bp_not_converged", 0))
           for p in presets if "bp-order" in p["decoders"]]
    conv = ", ".join(f"({n}, {q}): {k}" for n, q, k in bad)
    return ("Oracle orders: once the MDM writes a value that makes the revealed tokens "
            "impossible under the law, the oracle has no posterior and the MDM's own margin "
            "ranks that sequence; (sequence, step) pairs where this happened: "
            + "; ".join(parts) + f". BP runs that did not converge (their last iterate "
            f"still ranked the positions): {conv}.")


def write_sudoku(cfg: DecodersConfig, doc: dict) -> Path:
    """``decoders_sudoku_9x9.{json,csv,md}`` from :func:`run_sudoku_decoders`."""
    from lohard._util import atomic_write_json, atomic_write_text, provenance, provenance_comment

    out = Path(cfg.out_dir)
    meta = provenance(dataclasses.asdict(cfg), cfg.seed)
    atomic_write_json(out / "decoders_sudoku_9x9.json", {**meta, **doc})
    sets = doc["test_sets"]
    head = provenance_comment("decoders on the 9x9 Sudoku CPU-scale MDM", meta)
    lines = [head.rstrip("\n"),
             "test_set,decoder,accuracy_pct,ci_lo,ci_hi,solved,num,model_calls_mean,"
             "order_spearman_mean"]
    for t, s in sets.items():
        for k, r in s["decoders"].items():
            lines.append(f"{t},{k},{100 * r['accuracy']:.3f},{100 * r['ci95'][0]:.3f},"
                         f"{100 * r['ci95'][1]:.3f},{r['solved']},{r['num']},"
                         f"{r.get('model_calls_mean', float('nan')):.2f},"
                         f"{r.get('order_spearman_mean', float('nan')):.3f}")
    atomic_write_text(out / "decoders_sudoku_9x9.csv", "\n".join(lines) + "\n")
    names = list(next(iter(sets.values()))["decoders"])
    md = ["# Decoders on 9x9 Sudoku: the CPU-scale MDM", "",
          f"Share of puzzles solved (%) [Wilson 95% interval], model calls per puzzle and "
          f"the Spearman correlation of the fill order with the strategy solver's. Model: "
          f"the 9x9 tables' CPU configuration (`cpu-1m` MDM, {doc['model']['steps']} steps "
          f"of 64), device {doc.get('device')}. Test puzzles: the first ones of the 9x9 "
          f"tables' own test sets (counts in the header). One cell per step, argmax values, "
          f"no noise unless named; BP rows on the first {cfg.bp_limit} puzzles. Decoding "
          f"seed {cfg.seed}; lohard {meta['lohard_version']}; the JSON holds every setting.",
          ""]
    md.append("| decoder | " + " | ".join(
        f"{t} ({s['n']}): solved | calls | rho" for t, s in sets.items()) + " |")
    md.append("|---" * (1 + 3 * len(sets)) + "|")
    for k in names:
        cells = []
        for s in sets.values():
            r = s["decoders"].get(k)
            if r is None:
                cells.append("—")
                continue
            calls = r.get("model_calls_mean", float("nan"))
            cells.append(f"{_fmt_acc(r, 100.0)} | {calls:.1f} | "
                         f"{r.get('order_spearman_mean', float('nan')):.2f}")
        md.append(f"| {label(k)} | " + " | ".join(cells) + " |")
    if "bp-order+bp-values" in names:
        md += ["", "BP order + BP values uses no model: its 0 calls are MDM calls (BP runs "
               "once per filled cell)."]
    main = {t: _main_rows(s["decoders"]) for t, s in sets.items()}
    for t, rows in main.items():
        order = sorted(rows, key=lambda k: -rows[k]["accuracy"])
        md += ["", f"**Ranking on {t}:** " + ", ".join(
            f"{label(k)} {100 * rows[k]['accuracy']:.1f}" for k in order) + "."]
    atomic_write_text(out / "decoders_sudoku_9x9.md", "\n".join(md) + "\n")
    return out / "decoders_sudoku_9x9.md"


def plot_pareto(cfg: DecodersConfig, preset: str = "nae-sat-10-90-t") -> Path:
    """``decoders_pareto.png``: accuracy against model calls, threshold vs fixed-step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.out_dir)
    t1 = json.loads((out / "decoders_table1_cpu.json").read_text())
    sd = json.loads((out / "decoders_sudoku_9x9.json").read_text())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    pr = t1["presets"][preset]
    _pareto_panel(axes[0], pr["decoders"], scale=1.0, steps_key="T", main_steps=cfg.steps,
                  title=f"L&O-NAE-SAT ({pr['N']}, {pr['P']}), d = {pr['d']:.0f}, "
                        f"L = {pr['L']}: CPU Table 1 model",
                  ylabel="observation accuracy (%)")
    _pareto_panel(axes[1], sd["test_sets"]["easy"]["decoders"], scale=100.0, steps_key="x",
                  main_steps=1, title=f"9x9 Sudoku, {sd['test_sets']['easy']['n']} easy "
                                      f"puzzles: CPU-scale MDM",
                  ylabel="puzzles solved (%)")
    fig.suptitle("Speed-accuracy trade-off: confidence-threshold parallel decoding against "
                 "fixed-step decoders (95% intervals)", fontsize=11)
    fig.tight_layout()
    path = out / "decoders_pareto.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _pareto_panel(ax, dec: dict, *, scale, steps_key, main_steps, title, ylabel):
    def pts(prefix, key):
        rows = []
        for k, r in dec.items():
            if k == prefix:
                rows.append((main_steps, r))
            elif k.startswith(prefix + "-" + key) and k[len(prefix) + 2:].isdigit():
                rows.append((int(k[len(prefix) + 2:]), r))
        rows.sort(key=lambda t: t[1]["model_calls_mean"])
        return rows

    def draw(rows, style, name):
        if not rows:
            return
        x = [r["model_calls_mean"] for _, r in rows]
        y = [scale * r["accuracy"] for _, r in rows]
        err = [[scale * (r["accuracy"] - r["ci95"][0]) for _, r in rows],
               [scale * (r["ci95"][1] - r["accuracy"]) for _, r in rows]]
        ax.errorbar(x, y, yerr=err, fmt=style, capsize=3, label=name)
        return rows

    what = "steps T" if steps_key == "T" else "cells per step"
    draw(pts("margin", steps_key), "o-", f"margin, fixed {what}")
    draw(pts("vanilla", steps_key), "s--", f"vanilla, fixed {what}")
    th = sorted([(float(k.split("-", 1)[1]), r) for k, r in dec.items()
                 if k.startswith("threshold-")], key=lambda t: t[1]["model_calls_mean"])
    rows = draw(th, "^-", "threshold (tau labelled)")
    for tau, r in rows or []:
        ax.annotate(f"{tau:g}", (r["model_calls_mean"], scale * r["accuracy"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=8)
    for k, style in (("entropy", "D"), ("bp-order", "P"), ("margin+remask", "X")):
        if k in dec:
            r = dec[k]
            ax.errorbar([r["model_calls_mean"]], [scale * r["accuracy"]],
                        yerr=[[scale * (r["accuracy"] - r["ci95"][0])],
                              [scale * (r["ci95"][1] - r["accuracy"])]],
                        fmt=style, capsize=3, label=label(k))
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    lo, hi = ax.get_xlim()
    ax.set_xticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200) if lo <= t <= hi])
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("model calls per sequence (forward passes, log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
