"""Figure: test likelihood of pi-learners against training compute, one line per order (Sec. 3.2).

For an L&O distribution (default: L&O-NAE-SAT with (N, P) = (20, 280), the
App. C.2.1 preset) this trains one pi-learner (lohard.mdm._pilearner) per
(order, model size) and plots the held-out NLL per token (nats) against the
training FLOPs (6 * non-embedding parameters * tokens), log x. Orders:
natural (latents first), closer (K disjoint random swaps of the natural
order, K = round(sqrt(L)) or round(L / 10)), uniform (a fresh random order per
sequence: the MDM's any-order objective). A horizontal line marks the exact
entropy per token H / L. ``--mdm-log`` adds an MDM learning curve from a JSON
file with lists ``flops`` and ``test_nll`` (or a ``curve`` list of dicts with
those keys). Expected shape (Sec. 3.2): natural lowest, uniform highest.

Writes figures/pilearner_likelihood.png and .json (config, seed, versions,
every curve). Runs checkpoint under runs/pilearner_likelihood/ and resume.
Usage::

    python simulations/pilearner_likelihood.py --quick          # CPU, a few minutes
    python simulations/pilearner_likelihood.py --device cuda    # the (20, 280) preset
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

#: CPU-affordable distribution of --quick / --dist small: NAE-SAT with (N, P) = (10, 40).
SMALL_NP = (10, 40)


@dataclasses.dataclass
class Config:
    dist: str = "nae-20-280"  # "nae-20-280" (App. C.2.1 preset) or "small" (N, P = 10, 40)
    trailing_token: bool = False  # append App. C.2.1's constant trailing token
    orders: tuple = ("natural", "closer-sqrt", "closer-tenth", "uniform")
    sizes: tuple = ("small", "medium", "large")
    steps: int = 5000
    batch_size: int = 256
    lr: float = 1e-3
    warmup_steps: int = 200
    eval_points: int = 12
    test_size: int = 512
    eval_orders: int = 4
    seed: int = 0  # structure of the distribution, model init, data and orders
    device: str = "auto"
    amp: bool = False
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    mdm_log: str | None = None
    max_minutes: float | None = None  # whole-run budget, shared equally by the runs left
    work_dir: str = "runs/pilearner_likelihood"
    out: str = "figures/pilearner_likelihood"


QUICK = dict(dist="small", orders=("natural", "closer-sqrt", "uniform"), sizes=("tiny", "small"),
             steps=800, batch_size=64, lr=3e-3, warmup_steps=50, eval_points=8, test_size=256,
             eval_orders=2, threads=1)


def parse(argv: list[str] | None) -> Config:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="CPU run of a few minutes: N, P = 10, 40, sizes tiny and small")
    ap.add_argument("--dist", choices=("nae-20-280", "small"))
    ap.add_argument("--trailing-token", action="store_true", default=None)
    ap.add_argument("--orders", nargs="+")
    ap.add_argument("--sizes", nargs="+")
    for name, typ in (("steps", int), ("batch-size", int), ("lr", float),
                      ("warmup-steps", int), ("eval-points", int), ("test-size", int),
                      ("eval-orders", int), ("seed", int), ("threads", int),
                      ("max-minutes", float)):
        ap.add_argument(f"--{name}", type=typ)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--amp", action="store_true", default=None, help="bfloat16 autocast (cuda)")
    ap.add_argument("--mdm-log", help="JSON training log of an MDM (flops, test_nll)")
    ap.add_argument("--work-dir")
    ap.add_argument("--out")
    args = vars(ap.parse_args(argv))
    fields = dict(QUICK) if args.pop("quick") else {}
    if fields:
        fields["device"] = "cpu"
    for k, v in args.items():
        if v is not None:
            fields[k] = tuple(v) if isinstance(v, list) else v
    return Config(**fields)


def make_distribution(cfg: Config):
    from lohard.lo import nae_sat, nae_sat_preset

    if cfg.dist == "nae-20-280":
        return nae_sat_preset(20, trailing_token=cfg.trailing_token, rng=cfg.seed)
    return nae_sat(*SMALL_NP, trailing_token=cfg.trailing_token, rng=cfg.seed)


def load_mdm_log(path: str | None) -> dict | None:
    """The MDM curve ``{"flops": [...], "test_nll": [...]}`` or None if no file is given."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        print(f"--mdm-log {p} does not exist; no MDM curve")
        return None
    data = json.loads(p.read_text())
    if "flops" not in data and isinstance(data.get("curve"), list):
        data = {"flops": [r["flops"] for r in data["curve"]],
                "test_nll": [r["test_nll"] for r in data["curve"]]}
    if "flops" not in data or "test_nll" not in data:
        raise ValueError(f"{p} needs lists 'flops' and 'test_nll' (or a 'curve' list of "
                         f"dicts with those keys)")
    flops = np.asarray(data["flops"], dtype=np.float64)
    nll = np.asarray(data["test_nll"], dtype=np.float64)
    if flops.shape != nll.shape or flops.ndim != 1:
        raise ValueError(f"{p}: 'flops' and 'test_nll' must be lists of equal length")
    return {"path": str(p), "flops": flops.tolist(), "test_nll": nll.tolist()}


def run_tag(cfg: Config, digest: str, order: str, size: str) -> str:
    h = hashlib.sha256(json.dumps([digest, order, size, cfg.steps, cfg.batch_size, cfg.lr,
                                   cfg.warmup_steps, cfg.eval_points, cfg.test_size,
                                   cfg.eval_orders, cfg.seed, cfg.amp]).encode())
    return f"{order}_{size}_{h.hexdigest()[:12]}"


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from lohard._util import atomic_write, atomic_write_json, provenance
    from lohard.mdm._pilearner import (
        PiTrainConfig,
        dist_digest,
        lo_entropy,
        n_swaps_for,
        pilearner_config,
        train_pilearner,
    )

    if cfg.threads:
        # On a shared CPU, extra intra-op threads oversubscribe the cores and a small
        # model runs tens of times slower; --quick uses one.
        torch.set_num_threads(cfg.threads)
    dist = make_distribution(cfg)
    L = dist.length
    h_tok = lo_entropy(dist) / L
    mdm = load_mdm_log(cfg.mdm_log)
    digest = dist_digest(dist)
    # Names are checked before the first model trains.
    try:
        for size in cfg.sizes:
            pilearner_config(size, dist)
        for order in cfg.orders:
            if order not in ("natural", "uniform") and n_swaps_for(order, L) is None:
                raise ValueError(f"unknown order {order!r}; choose natural, closer-sqrt, "
                                 f"closer-tenth, closer:K or uniform")
    except ValueError as err:
        raise SystemExit(f"pilearner_likelihood: {err}") from None
    print(f"{dist}: exact entropy {h_tok:.4f} nats per token; orders {cfg.orders}, "
          f"sizes {cfg.sizes}, {cfg.steps} steps of {cfg.batch_size}")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise SystemExit(f"pilearner_likelihood: --max-minutes must be > 0, got "
                         f"{cfg.max_minutes}")
    deadline = None if cfg.max_minutes is None else time.monotonic() + 60 * cfg.max_minutes
    runs_left = len(cfg.sizes) * len(cfg.orders)
    results = []
    for size in cfg.sizes:
        for order in cfg.orders:
            # Each run gets an equal share of the time left; a run stopped by it keeps its
            # checkpoint (a second call continues) and is plotted as far as it got.
            share = None if deadline is None else max(0.0, (deadline - time.monotonic())
                                                       / runs_left)
            runs_left -= 1
            tcfg = PiTrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                 warmup_steps=cfg.warmup_steps, eval_points=cfg.eval_points,
                                 test_size=cfg.test_size, eval_orders=cfg.eval_orders,
                                 seed=cfg.seed, device=cfg.device, amp=cfg.amp,
                                 checkpoint_every=max(cfg.steps // 10, 1))
            ckpt = Path(cfg.work_dir) / f"{run_tag(cfg, digest, order, size)}.pt"
            t0 = time.perf_counter()
            run = train_pilearner(dist, order, pilearner_config(size, dist), tcfg,
                                  checkpoint=ckpt, progress=True, max_seconds=share)
            stopped = "" if run.completed else f" (time share spent at step {run.steps_done})"
            print(f"  {size:>6} {order:>12}{stopped}: test NLL {run.final_test_nll:.4f} "
                  f"nats/token "
                  f"({run.n_params_nonembedding:,} non-embedding params, "
                  f"{run.curve[-1]['flops'] if run.curve else 0.0:.2e} FLOPs, "
                  f"{time.perf_counter() - t0:.0f} s)",
                  flush=True)
            results.append({"size": size, "swaps": n_swaps_for(order, L), **run.to_dict()})

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = {o: f"C{i}" for i, o in enumerate(cfg.orders)}
    # Colour: order. Size: line style and marker (both, so the legend tells sizes apart).
    styles = [("-", "o"), ("--", "^"), (":", "s"), ("-.", "D")]
    for r in results:
        f = [c["flops"] for c in r["curve"]]
        y = [c["test_nll"] for c in r["curve"]]
        ls, mk = styles[list(cfg.sizes).index(r["size"]) % len(styles)]
        k = f", K={r['swaps']}" if r["swaps"] is not None else ""
        cut = "" if r["completed"] else f" (stopped at step {r['steps_done']})"
        ax.plot(f, y, ls, marker=mk, ms=4, color=colors[r["order_spec"]],
                label=f"{r['order_spec']}{k}, {r['size']}{cut}")
    if mdm is not None:
        ax.plot(mdm["flops"], mdm["test_nll"], "k-", marker="s", ms=3, label="MDM (--mdm-log)")
    ax.axhline(h_tok, color="gray", ls="--", lw=1,
               label=f"exact entropy H/L = {h_tok:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("training compute (FLOPs = 6 × non-embedding params × tokens)")
    ax.set_ylabel("held-out NLL per token (nats)")
    ax.set_title(f"pi-learners on {dist!r}: order matters (Sec. 3.2)\n"
                 f"{cfg.steps} steps of batch {cfg.batch_size} on {cfg.device}, seed {cfg.seed}",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2, handlelength=3.5)
    fig.tight_layout()
    out = Path(cfg.out)
    atomic_write(out.with_suffix(".png"),
                 lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    meta = provenance(dataclasses.asdict(cfg), cfg.seed)
    meta["torch"] = torch.__version__
    atomic_write_json(out.with_suffix(".json"), {
        "meta": meta, "distribution": dist.header(), "distribution_sha256": digest,
        "entropy_per_token": h_tok, "entropy_per_token_formula":
            "(N H(prior) + sum_j E H(O_j | x_S)) / L; NAE-SAT: N log 2 / L",
        "flops_convention": "6 * n_params_nonembedding * steps * batch_size * L",
        "runs": results, "mdm": mdm})
    final = {(r["order_spec"], r["size"]): r["final_test_nll"] for r in results}
    for size in cfg.sizes:
        row = ", ".join(f"{o} {final[(o, size)]:.4f}" for o in cfg.orders)
        print(f"final NLL/token, {size}: {row}")
    print(f"wrote {out.with_suffix('.png')} and .json")
    if not all(math.isfinite(v) for v in final.values()):
        raise FloatingPointError("a run ended with a non-finite test NLL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
