"""Command-line interface of lohard: one verb per figure, table or tool.

    lohard fig4 [--predicate nae --k 3 --m 3 --n 10000 ...]
    lohard thresholds --predicate nae --k 3 --m 3 [--cavity] [--json]
    lohard sample ... / lohard posterior ...   (L&O data, lohard.lo)
    lohard window ...                          (hardness window, lohard.cavity)
    lohard sudoku generate|rate|train|eval     (lohard.sudoku; train/eval need torch)
    lohard train-mdm / eval-mdm ...            (lohard.mdm; needs torch)
    lohard table1 / fig2 [--scale cpu|gpu]     (lohard.experiments; needs torch)
    lohard decoders table1|sudoku|plot         (decoders beyond the paper; needs torch)
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from contextlib import contextmanager

from lohard import _argtypes as T
from lohard._util import register_needs_torch, say_needs_torch, to_jsonable

DESCRIPTION = """\
lohard: where inference is hard in planted constraint satisfaction problems, and how the
order in which a masked diffusion model (MDM) decodes avoids the hard parts (Kim et al.,
ICML 2025).

It runs belief propagation on planted CSPs, computes the Kesten-Stigum and cavity
(d_sp, d_cond) thresholds, samples latent-and-observed (L&O) data with exact or BP
posteriors, generates rated Sudoku puzzles, and trains and decodes small MDMs and ARMs
(the torch extra). Degrees are d = (k-1) k P / N: the mean number of other variables
that share a clause with a variable (NAE, k = m = 3: d_KS = 64)."""

EPILOG = """\
examples:
  lohard fig4                        Figure 4: BP overlap from the truth and from a
                                     random start, planted NAE-SAT, N = 10000 (minutes)
  lohard thresholds --predicate not-equal --m 5 --cavity
                                     d_KS = 16, d_sp and d_cond (~13.23) of 5-colouring
  lohard table1 --scale cpu          Table 1 on a CPU: vanilla vs adaptive MDM decoding
  lohard sudoku generate --n 1000 --out easy.npz
                                     1000 rated easy 9x9 Sudoku puzzles

Every command takes --help. An error prints one line and exits with status 2;
--debug (anywhere on the line) shows the Python traceback instead. Ctrl-C exits with
status 130 and says what was kept."""

#: Row groups of ``lohard decoders --only`` (lohard.experiments.decoders.GROUPS).
GROUPS_CHOICES = ("model", "bp")

#: What an interrupted command leaves behind, and how to continue (Ctrl-C message).
RESUME_HINTS = {
    "fig4": "finished (degree, instance) cells are kept; rerun the same command to continue",
    "thresholds": "finished cavity results are cached; rerun the same command to continue",
    "window": "finished cavity results are cached; rerun the same command to continue",
    "train-mdm": "the last checkpoint (every --ckpt-every steps) is kept; rerun with "
                 "--resume to continue",
    "table1": "checkpoints and finished evaluations are kept; rerun the same command to "
              "continue",
    "fig2": "the trained models are kept; rerun the same command to start the "
            "measurement again",
    "sudoku": "finished chunks, checkpoints and evaluations are kept; rerun the same "
              "command to continue",
    "zebra": "finished chunks, checkpoints and evaluations are kept; rerun the same "
             "command to continue",
}


def _predicate_args(p: argparse.ArgumentParser, k_default=None, m_default=None) -> None:
    p.add_argument("--predicate", default="nae",
                   help="predicate name: nae, not-equal (colouring), xor (default: nae)")
    p.add_argument("-k", "--k", type=int, default=k_default,
                   help="arity k (default: 3 for nae/xor)")
    p.add_argument("-m", "--m", type=int, default=m_default,
                   help="number of colours m (default: 3 for nae/not-equal)")


def _one_or_list(item):
    """An argparse type: one value of type ``item``, or a comma-separated list of them
    (returned as a list only when there are several)."""

    def parse(text: str):
        parts = [x.strip() for x in text.split(",")]
        if len(parts) == 1:
            return item(parts[0])
        if not all(parts):
            raise argparse.ArgumentTypeError(f"must be a number or comma-separated numbers, "
                                             f"got {text!r}")
        return [item(x) for x in parts]

    parse.__name__ = item.__name__
    return parse


def _fig4_degrees(args: argparse.Namespace, pred, sizes: list[int], finite_size: bool):
    """The degree list of ``lohard fig4``: --degrees, else the default grid."""
    from lohard.experiments.fig4 import default_degrees, default_finite_size_degrees

    if args.degrees is None:
        if finite_size:
            return default_finite_size_degrees(pred, args.points or 7)
        return default_degrees(pred, args.points or 15)
    try:
        degrees = [float(x) for x in args.degrees.split(",") if x.strip()]
    except ValueError as err:
        raise ValueError(f"--degrees must be comma-separated numbers, got "
                         f"{args.degrees!r}") from err
    # P = d N / ((k-1) k) clauses, each stored as k variable indices. (Fig4Config
    # refuses an empty list, NaN and negative degrees.)
    max_clauses = 10**8
    n = max(sizes)
    top = max_clauses * (pred.k - 1) * pred.k / n
    bad = [d for d in degrees if d > top]
    if bad:
        raise ValueError(f"--degrees: a degree d = (k-1) k P / N must give at most "
                         f"P = {max_clauses:.0e} clauses (d <= {top:.4g} at N = {n}), "
                         f"got {bad[0]:g}")
    return degrees


def _cmd_fig4(args: argparse.Namespace) -> int:
    from lohard.experiments.fig4 import Fig4Config, run_fig4
    from lohard.predicates import predicate_by_name

    pred = predicate_by_name(args.predicate, k=args.k, m=args.m)
    sizes = args.n if isinstance(args.n, list) else [args.n]
    if len(sizes) > 1:
        return _cmd_fig4_finite_size(args, pred, sizes)
    if isinstance(args.seeds, list):
        raise ValueError("--seeds takes one count unless --n lists several sizes N")
    degrees = _fig4_degrees(args, pred, sizes, finite_size=False)
    cfg = Fig4Config(predicate=args.predicate, k=args.k, m=args.m, n=sizes[0], degrees=degrees,
                     seeds=2 if args.seeds is None else args.seeds, max_iter=args.max_iter,
                     critical_sweeps=args.critical_sweeps, **_truth_caps(args),
                     max_iter_ceiling=args.max_iter_ceiling, damping=args.damping,
                     root_seed=args.seed, n_jobs=args.jobs, backend=args.backend,
                     scheduler=args.scheduler, threads_per_worker=args.threads_per_worker)
    summary = run_fig4(cfg, out_dir=args.out, progress=not args.quiet)
    if args.json:
        print(json.dumps(to_jsonable(summary), indent=2))
        return 0

    def between(key: str, what: str) -> str:
        b = summary[key]
        return (f"{what} rises most between d = {b[0]:.4g} and {b[1]:.4g}" if b else
                f"{what} rises by no more than 0.3 between grid points")

    print(f"{pred.name}, N = {cfg.n}: analytic d_KS = {summary['d_ks']:.4g}; "
          f"{between('d_jump_truth_between', 'ground-truth curve')}; "
          f"{between('d_rise_random_between', 'random-start curve')}")
    _print_cavity(summary)
    print(f"sweep caps: from the truth {summary['sweep_caps']['truth']} (C_truth = "
          f"{cfg.truth_critical_sweeps:g}); from a random start "
          f"{summary['sweep_caps']['random']} (C = {cfg.critical_sweeps:g})")
    print(f"{'d':>8} {'truth':>8} {'random':>8}   (* some instance not converged within "
          "its sweep cap)")
    for p in summary["points"]:
        flag = {lab: " " if p[f"converged_{lab}_frac"] == 1.0 else "*"
                for lab in ("truth", "random")}
        print(f"{p['degree']:8.2f} {p['overlap_truth_mean']:8.3f}{flag['truth']}"
              f"{p['overlap_random_mean']:8.3f}{flag['random']}")
    for kind, path in summary["files"].items():
        print(f"wrote {kind}: {path}")
    return 0


def _truth_caps(args: argparse.Namespace) -> dict:
    """--truth-critical-sweeps if given (else each figure's own default)."""
    t = args.truth_critical_sweeps
    return {} if t is None else {"truth_critical_sweeps": t}


def _print_cavity(summary: dict) -> None:
    cav = summary["cavity"]
    if cav["available"]:
        print(f"cavity (lohard's table): d_sp = {cav['d_sp']:.4g} ± "
              f"{cav['d_sp_err']:.2g}, "
              f"d_cond = {cav['d_cond']:.4g} ± {cav['d_cond_err']:.2g}")


def _cmd_fig4_finite_size(args: argparse.Namespace, pred, sizes: list[int]) -> int:
    """``lohard fig4 --n N1,N2,...``: Figure 4 at several N, in one figure."""
    from lohard.experiments.fig4 import FiniteSizeConfig, run_fig4_finite_size

    seeds = args.seeds
    if isinstance(seeds, int):
        seeds = [seeds] * len(sizes)
    degrees = _fig4_degrees(args, pred, sizes, finite_size=True)
    cfg = FiniteSizeConfig(predicate=args.predicate, k=args.k, m=args.m, sizes=sizes,
                           degrees=degrees, seeds=seeds, max_iter=args.max_iter,
                           critical_sweeps=args.critical_sweeps, **_truth_caps(args),
                           max_iter_ceiling=args.max_iter_ceiling, damping=args.damping,
                           root_seed=args.seed, n_jobs=args.jobs, backend=args.backend,
                           scheduler=args.scheduler,
                           threads_per_worker=args.threads_per_worker)
    summary = run_fig4_finite_size(cfg, out_dir=args.out, progress=not args.quiet)
    if args.json:
        print(json.dumps(to_jsonable(summary), indent=2))
        return 0
    print(f"{pred.name}: analytic d_KS = {summary['d_ks']:.4g}")
    _print_cavity(summary)
    order = sorted(cfg.sizes)
    print(f"{'d':>8} " + " ".join(f"{'N=' + str(n):>17}" for n in order)
          + "   (truth/random overlap; * some instance not converged within its sweep cap)")
    cell = {(p["n"], p["degree"]): p for p in summary["points"]}
    for d in sorted(set(cfg.degrees)):
        parts = []
        for n in order:
            p = cell[(n, d)]
            flag = {lab: " " if p[f"converged_{lab}_frac"] == 1.0 else "*"
                    for lab in ("truth", "random")}
            parts.append(f"{p['overlap_truth_mean']:.3f}{flag['truth']}/"
                         f"{p['overlap_random_mean']:.3f}{flag['random']}")
        print(f"{d:8.2f} " + " ".join(f"{x:>17}" for x in parts))
    for kind, path in summary["files"].items():
        print(f"wrote {kind}: {path}")
    return 0


def thresholds_dict(pred, *, cavity: bool = False, seed: int = 0) -> dict:
    """The thresholds report printed by ``lohard thresholds`` (library function)."""
    import numpy as np

    out = {"predicate": pred.name, "k": pred.k, "m": pred.m, "gamma": pred.gamma,
           "balanced": pred.balanced, "slot_symmetric": pred.slot_symmetric,
           "degree_convention": "d = (k-1) k P / N"}
    ev = pred.transfer_eigenvalues()
    out["transfer_eigenvalues"] = [complex(x) if np.iscomplexobj(ev) else float(x) for x in ev]
    out["lambda"] = pred.lam
    if pred.balanced:
        out["d_ks"] = pred.d_ks
        if not np.isfinite(out["d_ks"]):
            out["d_ks_note"] = ("lambda = 0: a small perturbation of the uniform messages does "
                                "not propagate linearly, so there is no Kesten-Stigum point "
                                "(k-XOR is hard for local algorithms up to the 2-core/SAT region)")
    else:
        out["d_ks"] = None
        out["d_ks_note"] = ("not balanced (Assumption B.11): uniform messages are not a BP fixed "
                            "point, so the Kesten-Stigum threshold of Def. B.12 is undefined")
    if cavity:
        try:
            from lohard.cavity import thresholds_report
        except ImportError as err:
            raise RuntimeError("the cavity thresholds are not available in this build") from err
        out.update(thresholds_report(pred, rng=seed))
    return out


def _cmd_thresholds(args: argparse.Namespace) -> int:
    from lohard.predicates import predicate_by_name

    pred = predicate_by_name(args.predicate, k=args.k, m=args.m, allow_large=args.allow_large)
    out = thresholds_dict(pred, cavity=args.cavity, seed=args.seed)
    if args.json:
        print(json.dumps(to_jsonable(out), indent=2))
    else:
        print("\n".join(_report_lines(to_jsonable(out))))
    return 0


def _report_lines(obj: dict, indent: int = 0) -> list[str]:
    """A nested report as aligned ``key: value`` lines: numbers to 6 digits, nested
    dicts indented after the scalars, long lists shortened to their ends and lists of
    records to their count (``--json`` prints everything)."""

    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
            return f"({len(v)} records; see --json)"
        if isinstance(v, list):
            items = [fmt(x) for x in v]
            if len(items) > 6:
                return f"[{', '.join(items[:3])}, ..., {items[-1]}] ({len(items)} values)"
            return f"[{', '.join(items)}]"
        return str(v)

    width = max((len(str(k)) for k in obj), default=0)
    lines = []
    # Scalars first (the thresholds), then the nested diagnostics.
    for key, val in sorted(obj.items(), key=lambda kv: isinstance(kv[1], dict)):
        if isinstance(val, dict):
            lines.append(f"{' ' * indent}{key}:")
            lines += _report_lines(val, indent + 2)
        else:
            lines.append(f"{' ' * indent}{str(key):>{width}}: {fmt(val)}")
    return lines


def _parse_presets(text: str) -> tuple:
    """``"10-90,17-83"`` -> ((10, 90), (17, 83))."""
    out = []
    for item in text.split(","):
        parts = item.strip().split("-")
        if len(parts) != 2 or not all(x.strip().isdigit() for x in parts):
            raise ValueError(f"a preset is N-P with integers N, P (e.g. 10-90), got "
                             f"{item.strip()!r}")
        out.append((int(parts[0]), int(parts[1])))
    return tuple(out)


def _needs_torch(command: str) -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        say_needs_torch(command)
        return True
    return False


def _cmd_table1(args: argparse.Namespace) -> int:
    if _needs_torch("table1"):
        return 2
    from lohard.experiments.table1 import run_table1, table1_config

    overrides = {k: getattr(args, k) for k in ("model", "steps", "batch_size", "lr", "min_lr",
                                                "warmup_steps", "eval_size", "num_samples",
                                                "sample_steps", "seed",
                                                "device", "work_dir", "out_dir",
                                                "oracle_samples")}
    if args.presets:
        overrides["presets"] = _parse_presets(args.presets)
    if args.fig2_preset:
        overrides["fig2_preset"] = _parse_presets(args.fig2_preset)[0]
    if args.learned_pos:
        overrides["model_overrides"] = {"learned_pos": True}
    if args.compile:
        overrides["compile"] = True
    if args.variants:
        overrides["variants"] = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    cfg = table1_config(args.scale, **overrides)
    doc = run_table1(cfg, progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(to_jsonable({"presets": doc.get("presets", []),
                                      "wall_seconds": doc.get("wall_seconds")})))
    return 0


def _cmd_fig2(args: argparse.Namespace) -> int:
    if _needs_torch("fig2"):
        return 2
    from lohard.experiments.fig2 import Fig2Config, run_fig2

    fields = {k: getattr(args, k) for k in ("scale", "checkpoint", "proxy_checkpoint",
                                             "masks_per_l", "seed", "device", "workers",
                                             "out_dir")}
    if args.ells:
        try:
            fields["ells"] = tuple(int(x) for x in args.ells.split(",") if x.strip())
        except ValueError as err:
            raise ValueError(f"--ells must be comma-separated integers, got "
                             f"{args.ells!r}") from err
    if args.no_bp:
        fields["bp"] = False
    t1 = {k: getattr(args, k) for k in ("work_dir", "steps") if getattr(args, k) is not None}
    if t1:
        fields["table1_overrides"] = t1
    cfg = Fig2Config(**{k: v for k, v in fields.items() if v is not None})
    doc = run_fig2(cfg, progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(to_jsonable({k: doc[k] for k in ("checkpoint", "checkpoint_step",
                                                          "proxy_checkpoint", "proxy_step",
                                                          "proxy_summary", "wall_seconds")})))
    return 0


def _cmd_decoders(args: argparse.Namespace) -> int:
    if _needs_torch("decoders"):
        return 2
    from lohard.experiments import decoders as D

    fields = {k: getattr(args, k) for k in ("num_samples", "steps", "n_test", "n_test_hard",
                                             "bp_limit", "seed", "device", "table1_work_dir",
                                             "sudoku_work_dir", "out_dir", "only")}
    if args.presets:
        fields["presets"] = _parse_presets(args.presets)
    if args.compile is not None:
        fields["compile"] = args.compile
    cfg = D.DecodersConfig(**{k: v for k, v in fields.items() if v is not None},
                           quiet=args.quiet or args.json)
    written = []
    if args.task == "table1":
        doc = D.run_table1_decoders(cfg)
        if not cfg.only:
            written.append(str(D.write_table1(cfg, doc)))
    elif args.task == "sudoku":
        doc = D.run_sudoku_decoders(cfg)
        if not cfg.only:
            written.append(str(D.write_sudoku(cfg, doc)))
    else:
        written.append(str(D.plot_pareto(cfg)))
    if args.json:
        print(json.dumps({"task": args.task, "written": written}))
    elif written and not args.quiet:
        print("wrote " + ", ".join(written), file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lohard", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from lohard import __version__

    parser.add_argument("--version", action="version", version=f"lohard {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "fig4", help="reproduce Figure 4: BP overlap from truth vs random start",
        description="Figure 4 of the paper: on planted instances with N variables, run BP "
                    "from the planted assignment and from a random start at each degree "
                    "d = (k-1) k P / N, and plot the overlap with the planted assignment "
                    "(the largest colour agreement over colour permutations, rescaled so "
                    "that 0 is chance and 1 is exact). Below d_KS the random start stays "
                    "at 0; the ground-truth curve shows where a good solution exists. BP "
                    "from a random start slows down near d_KS, so it gets more sweeps "
                    "there: ceil(C (ln N / ln 10^4) / |ln(d / d_KS)|), between --max-iter "
                    "and --max-iter-ceiling; BP from the truth slows down near the spinodal "
                    "d_sp, so it gets ceil(C_truth / |ln(d / d_sp)|) there, between the "
                    "same bounds. Every instance that stops at its cap without "
                    "converging is drawn hollow. The d_KS line is analytic; d_sp and d_cond "
                    "come from lohard's shipped thresholds table (the same on every "
                    "machine; none for a predicate it does not hold). Writes "
                    "<out>/fig4_overlap.{png,csv,json} for the default settings "
                    "(fig4_overlap_<predicate>_k<k>_m<m> for another predicate); any other "
                    "N, degrees, seeds or BP setting adds a hash of them to the name, so a "
                    "variant never overwrites the default figure. With several sizes "
                    "(--n 1000,10000,100000,1000000) it draws both curves for every N in "
                    "one figure, <out>/fig4_finite_size.{png,csv,json} (about 40 minutes on 2 "
                    "cores for that list). Resumable.")
    _predicate_args(p)
    p.add_argument("-n", "--n", type=_one_or_list(T.integer(10)), default=10_000,
                   help="number of variables N (default 10000), or several, comma-separated, "
                        "for the finite-size figure")
    p.add_argument("--degrees", default=None,
                   help="comma-separated degrees d = (k-1)kP/N (default: --points evenly "
                        "spaced degrees, on [40, 82] for nae with k = m = 3 and on "
                        "[0.6 d_KS, 1.3 d_KS] for other predicates, [60/13, 10] if d_KS is "
                        "infinite or undefined; with several N, 49, 51, 53, 58, 64, 68, 72 "
                        "for nae with k = m = 3)")
    p.add_argument("--points", type=T.POSITIVE, default=None,
                   help="number of degree points when --degrees is not given (default 15; "
                        "7 with several N)")
    p.add_argument("--seeds", type=_one_or_list(T.POSITIVE), default=None,
                   help="instances per degree (default 2); with several N, one count for "
                        "all or one per N (default 16, 8, 2, 1 for N up to 10^3, 10^4, "
                        "10^5, above)")
    p.add_argument("--max-iter", type=T.POSITIVE, default=120,
                   help="fewest BP sweeps from the ground truth and from a random start "
                        "(default 120)")
    p.add_argument("--truth-critical-sweeps", type=T.NONNEG_REAL, default=None,
                   help="C_truth in the ground-truth sweep cap C_truth / |ln(d / d_sp)|, with "
                        "d_sp from lohard's cavity table (default 10; 0 with several N, to "
                        "fit the hour: --max-iter sweeps everywhere)")
    p.add_argument("--critical-sweeps", type=T.NONNEG_REAL, default=20.0,
                   help="C in the random-start sweep cap C (ln N / ln 10^4) / |ln(d / d_KS)| "
                        "(default 20; 0: --max-iter sweeps everywhere)")
    p.add_argument("--max-iter-ceiling", type=T.POSITIVE, default=600,
                   help="most sweeps of either start, reached near d_KS (random start) and "
                        "d_sp (truth start) (default 600)")
    p.add_argument("--damping", type=T.real(0, 1, high_open=True), default=0.3,
                   help="BP damping in [0, 1): new message = (1 - damping) update + damping "
                        "old (default 0.3)")
    p.add_argument("--seed", type=T.SEED, default=2025, help="root seed (default 2025)")
    p.add_argument("--jobs", type=T.JOBS, default=-1, help="parallel workers (-1: all cores)")
    p.add_argument("--backend", default="loky",
                   help="joblib backend: loky, threading, sequential, dask, ray")
    p.add_argument("--scheduler", default=None, help="dask/ray scheduler address")
    p.add_argument("--threads-per-worker", type=T.POSITIVE, default=None,
                   help="numba threads of each cell on a worker (default: 1 on dask and ray, "
                        "so one worker thread per core uses each core once; joblib's own "
                        "cap on loky)")
    p.add_argument("--out", default="figures", help="output folder (default figures/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_fig4)

    p = sub.add_parser(
        "thresholds", help="KS (and cavity) thresholds of a predicate",
        description="Thresholds of the planted CSP of a predicate, as degrees d = (k-1) k P "
                    "/ N: the Kesten-Stigum point d_KS = 1 / ((k-1) lambda^2), from the "
                    "second eigenvalue lambda of the predicate's transfer matrix (above it "
                    "BP from a random start recovers the planted assignment), and with "
                    "--cavity the dynamical (d_sp) and condensation (d_cond) thresholds by "
                    "population dynamics of the one-step replica-symmetry-breaking cavity "
                    "equations (minutes; cached). Examples: nae k = m = 3: d_KS = 64; "
                    "not-equal m = 5 (5-colouring): d_KS = 16, d_cond ~ 13.23.")
    _predicate_args(p)
    p.add_argument("--cavity", action="store_true",
                   help="also compute d_sp and d_cond by population dynamics (cached)")
    p.add_argument("--seed", type=T.SEED, default=0, help="seed for population dynamics")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", action="store_true",
                   help="no progress log lines on stderr during the cavity computation")
    p.add_argument("--allow-large", action="store_true",
                   help="build a predicate table above the 2 GiB size limit, and compute "
                        "eigenvalues and d_KS above the 1e9-operation limit, instead of "
                        "refusing")
    p.set_defaults(func=_cmd_thresholds)

    p = sub.add_parser(
        "table1", help="reproduce Table 1: vanilla vs adaptive MDM decoding on L&O-NAE-SAT",
        description="Train one MDM per L&O-NAE-SAT preset and score vanilla, top-prob and "
                    "margin decoding (with and without Gumbel noise) and an exact oracle by "
                    "observation accuracy. Resumable: a second call continues unfinished "
                    "training and reuses finished evaluations. Writes <out-dir>/<name>"
                    ".{md,csv,json,png} (table1_cpu at --scale cpu, table1 at gpu). "
                    "Needs the torch extra.")
    p.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                   help="cpu: five N = 10 presets at the paper's clause densities, 1M model, "
                        "about an hour on 2 cores (default); gpu: the paper's presets and "
                        "19M model")
    p.add_argument("--presets", help="comma-separated N-P pairs (default: the scale's)")
    p.add_argument("--model", help="model shape (cpu-1m at cpu scale, mdm-19m at gpu)")
    p.add_argument("--learned-pos", action="store_true",
                   help="add a learned absolute position embedding to the model (cpu-1m has "
                        "one already)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model for training (faster after a compilation "
                        "of about 25 s per sequence length; the committed CPU table was "
                        "trained without it)")
    p.add_argument("--fig2-preset", help="the N-P preset that keeps a checkpoint at half its "
                                         "steps for lohard fig2 (default 10-110 at cpu scale)")
    p.add_argument("--steps", type=T.POSITIVE, help="optimiser steps per preset")
    p.add_argument("--batch-size", type=T.POSITIVE, help="training batch size")
    p.add_argument("--lr", type=T.POSITIVE_REAL, help="peak learning rate (cosine schedule)")
    p.add_argument("--min-lr", type=T.NONNEG_REAL, help="final learning rate")
    p.add_argument("--warmup-steps", type=T.COUNT, help="linear warm-up steps")
    p.add_argument("--eval-size", type=T.POSITIVE,
                   help="held-out sequences of each loss evaluation (default 512)")
    p.add_argument("--num-samples", type=T.integer(2), help="generated sequences per sampler")
    p.add_argument("--sample-steps", type=T.POSITIVE, help="reverse steps T (default 50)")
    p.add_argument("--oracle-samples", type=T.POSITIVE, help="sequences per exact-oracle order")
    p.add_argument("--variants", help="comma-separated samplers: vanilla, top-prob, margin, "
                                      "top-prob+gumbel, margin+gumbel, exact-oracle")
    p.add_argument("--seed", type=T.SEED, help="training root seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="auto: CUDA when present")
    p.add_argument("--work-dir", help="run folders (default runs/table1_<scale>)")
    p.add_argument("--out-dir", help="output folder (default figures/)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_cmd_table1)

    p = sub.add_parser(
        "fig2", help="reproduce Figure 2 (right): an MDM's per-mask error vs exact posteriors",
        description="Per-mask squared log-likelihood error of an MDM on L&O-NAE-SAT against "
                    "the exact posterior, the BP proxy and the paper's proxy (the same run "
                    "trained twice as long), on App. C.2.1 masks, against l. By default the "
                    "model is the Table 1 run's Figure 2 preset at half its steps (trained "
                    "first if needed). Writes <out-dir>/fig2_per_mask_error.{png,csv,json}. "
                    "Needs the torch extra.")
    p.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                   help="whose Table 1 run holds the model: cpu (10, 110) or gpu (20, 280)")
    p.add_argument("--checkpoint", help="measure this run instead of the Table 1 model")
    p.add_argument("--proxy-checkpoint", help="with --checkpoint: the longer-trained proxy")
    p.add_argument("--work-dir", help="the Table 1 run folders (default runs/table1_<scale>)")
    p.add_argument("--steps", type=T.POSITIVE,
                   help="the Table 1 run's steps per preset, if not the scale's default")
    p.add_argument("--ells", help="comma-separated l values (default 1..N-1)")
    p.add_argument("--masks-per-l", type=T.POSITIVE, help="masks per l (default 1000, the paper's)")
    p.add_argument("--no-bp", action="store_true", help="skip the BP reference")
    p.add_argument("--seed", type=T.SEED, help="data and mask seed (default 0)")
    p.add_argument("--workers", type=T.COUNT, help="posterior processes (0: all cores)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="auto: CUDA when present")
    p.add_argument("--out-dir", help="output folder (default figures/)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_cmd_fig2)

    p = sub.add_parser(
        "decoders", help="decoders beyond the paper side by side (entropy, threshold, "
                         "semi-ar, remasking, BP order) on the CPU Table 1 and Sudoku models",
        description="Run every decoder on the CPU Table 1 models (table1) or the 9x9 "
                    "Sudoku CPU-scale MDM (sudoku), training the models from their run "
                    "folders if missing, and write figures/decoders_table1_cpu.* or "
                    "figures/decoders_sudoku_9x9.*; plot draws figures/decoders_pareto.png "
                    "(accuracy against model calls) from both. Resumable: every (model, "
                    "decoder) result is cached. Needs the torch extra.")
    p.add_argument("task", choices=("table1", "sudoku", "plot"), help="what to run")
    p.add_argument("--presets", help="table1: comma-separated N-P pairs (default: the CPU "
                                     "Table 1's five)")
    p.add_argument("--num-samples", type=T.integer(2),
                   help="table1: sequences per decoder (default 500)")
    p.add_argument("--steps", type=T.POSITIVE, help="table1: reverse steps T (default 50)")
    p.add_argument("--n-test", type=T.POSITIVE, help="sudoku: easy test puzzles (default 1000)")
    p.add_argument("--n-test-hard", type=T.POSITIVE,
                   help="sudoku: hard test puzzles (default 500)")
    p.add_argument("--bp-limit", type=T.POSITIVE,
                   help="sudoku: puzzles decoded with the BP orders (default 300)")
    p.add_argument("--only", choices=GROUPS_CHOICES,
                   help="compute only one group of rows (model: those needing only the MDM; "
                        "bp: the BP- and exact-ordered ones) and write no table, so that "
                        "two processes can share a run")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="sudoku: torch.compile the MDM for training (default: the 9x9 "
                        "tables' choice)")
    p.add_argument("--seed", type=T.SEED, help="decoding seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="auto: CUDA when present")
    p.add_argument("--table1-work-dir", help="Table 1 run folders (default runs/table1_cpu)")
    p.add_argument("--sudoku-work-dir",
                   help="Sudoku run folder (default runs/sudoku_tables_b3_cpu)")
    p.add_argument("--out-dir", help="output folder (default figures/)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the files written as JSON")
    p.set_defaults(func=_cmd_decoders)

    # Subcommands contributed by subpackages.
    for mod in ("lohard.lo.cli", "lohard.cavity.cli", "lohard.sudoku.cli", "lohard.mdm.cli",
                "lohard.zebra.cli"):
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if mod == "lohard.mdm.cli" and err.name == "torch":
                register_needs_torch(sub, ("train-mdm", "eval-mdm"))
                continue
            if err.name != mod:
                raise
            continue
        module.register(sub)
    return parser


#: Commands that can run for minutes without a progress bar: their progress goes to
#: the ``lohard`` logger, which the CLI shows on stderr (stdout stays clean for --json).
LOGGED_COMMANDS = ("thresholds", "window")


@contextmanager
def _progress_log(enabled: bool):
    """Show INFO records of the ``lohard`` logger on stderr while a command runs."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("lohard")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("lohard: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _verb_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The deepest subcommand parser named on the line (for its own usage line)."""
    current = parser
    for word in argv:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            if word.startswith("-"):
                continue
            break
        current = subs[0].choices[word]
    return current


def _verb_name(args: argparse.Namespace) -> str:
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if args.command in ("sudoku", "zebra") and sub else \
        str(args.command)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        # argparse reports a bad option itself (usage, one line, exit status 2) and
        # --help / --version exit 0; both become return values here.
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "_needs_torch", False):
            _verb_parser(parser, argv).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    verb = _verb_name(args)
    show_log = args.command in LOGGED_COMMANDS and not getattr(args, "quiet", False)
    try:
        with _progress_log(show_log):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        hint = RESUME_HINTS.get(args.command, "outputs are written atomically, so nothing "
                                "is left half-written")
        print(f"\nlohard {verb}: interrupted; {hint}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 -- the one error path of the CLI
        if debug:
            raise
        print(f"lohard {verb}: error: {_describe(err)}", file=sys.stderr)
        expected = (ValueError, TypeError, OSError, ArithmeticError, MemoryError, ImportError)
        return 2 if isinstance(err, expected) else 1


def _describe(err: BaseException) -> str:
    """One line for an exception: its message, with a hint for the cases that need one."""
    from lohard._util import extra_hint

    msg = str(err) or type(err).__name__
    if isinstance(err, MemoryError):
        return ("out of memory" + (f" ({msg})" if str(err) else "") + "; try a smaller size "
                "(the command's --help names the sizes)")
    if isinstance(err, ModuleNotFoundError) and err.name:
        extra = {"torch": "torch", "dask": "dask", "distributed": "dask",
                 "ray": "ray"}.get(err.name.split(".")[0])
        if extra:
            return f"this needs the optional package {err.name!r}; {extra_hint(extra)}"
        return f"the Python package {err.name!r} is not installed"
    if isinstance(err, (ValueError, TypeError, OSError, ArithmeticError, ImportError)):
        return msg
    return (f"internal error ({type(err).__name__}: {msg}); rerun with --debug for the "
            "traceback and please report it")


if __name__ == "__main__":
    raise SystemExit(main())
