"""CLI hooks: ``lohard zebra generate|solve|eval|tables``.

``eval`` and ``tables`` need torch; it is imported inside their command functions only,
so the parser builds without it.
"""

from __future__ import annotations

import argparse
import json
import time

from lohard import _argtypes as T
from lohard._util import to_jsonable
from lohard.zebra._puzzle import MAX_SIZE, MIN_SIZE

SIZE = T.integer(MIN_SIZE, MAX_SIZE)


def register(subparsers) -> argparse._SubParsersAction:
    """Add ``zebra`` and its subcommands to an argparse subparsers object."""
    zp = subparsers.add_parser(
        "zebra", help="Zebra (Einstein) puzzles: generate, solve, Table 3",
        description="Zebra puzzles of m entities x n attributes (2..6 each) with the clue "
                    "types of Shah et al. (2024); a strategy solver that records its order.")
    sub = zp.add_subparsers(dest="zebra_command", metavar="SUBCOMMAND")
    zp.set_defaults(func=lambda args: _help(zp))

    g = sub.add_parser(
        "generate", help="generate uniquely solvable puzzles to a text file",
        description="Random solution, random true clues until the strategies solve it, "
                    "then redundant clues dropped. Puzzle i depends only on (seed, i), not "
                    "on --jobs. Resumable (finished chunks are kept).")
    g.add_argument("--n-puzzles", "--num", dest="num", type=T.POSITIVE, required=True,
                   help="number of puzzles")
    g.add_argument("--m", type=SIZE, default=4, help="entities (houses), 2..6 (default 4)")
    g.add_argument("--n", type=SIZE, default=4, help="attributes, 2..6 (default 4)")
    g.add_argument("--max-clues", type=T.COUNT, default=0,
                   help="clue slots; puzzles with more are redrawn (0: m n)")
    g.add_argument("--seed", type=T.SEED, default=0, help="root seed (default 0)")
    g.add_argument("--jobs", type=T.JOBS, default=1, help="processes (-1: all cores)")
    g.add_argument("--out", required=True, help="output file (.jsonl)")
    g.add_argument("--quiet", action="store_true", help="no progress")
    g.add_argument("--json", action="store_true", help="print the summary as JSON")
    g.set_defaults(func=_cmd_generate)

    s = sub.add_parser(
        "solve", help="solve puzzles of a file with the strategies, showing the order",
        description="Solve with naked/hidden singles and clue elimination, guessing only "
                    "when they stall; prints the clues, the solution, and the order and "
                    "strategy of every fixed cell.")
    s.add_argument("file", help="puzzle file from `lohard zebra generate`")
    s.add_argument("--index", type=T.COUNT, default=0, help="puzzle to show (default 0)")
    s.add_argument("--all", action="store_true",
                   help="solve every puzzle and print counts (unique, guesses)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_solve)

    e = sub.add_parser("eval", help="decode a puzzle file with a trained model",
                       description="Accuracy (whole grid right) with a 95% interval.")
    e.add_argument("--model", required=True, help="run folder or checkpoint.pt")
    e.add_argument("--data", required=True, help="puzzle file")
    e.add_argument("--decoders", default=None,
                   help="comma-separated MDM decoders (default: all of vanilla, top-prob, "
                        "margin, top-prob-nonoise, margin-nonoise)")
    e.add_argument("--seed", type=T.SEED, default=0, help="decoding seed (default 0)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=_cmd_eval)

    t = sub.add_parser(
        "tables", help="Table 3 at CPU scale: train an MDM and two ARMs, decode, write tables",
        description="Generate train/test puzzles, train the MDM and the ARMs (solver's "
                    "order, row-major), decode the test set and write "
                    "figures/zebra_table3_<scale>.{md,csv,json}. Resumable: rerun the same "
                    "command to continue after an interruption or the --max-minutes budget.")
    t.add_argument("--scale", choices=("cpu", "gpu", "tiny"), default="cpu",
                   help="cpu: 3x3 puzzles, 4-layer 0.27M models, 14000 MDM and 3000 ARM "
                        "steps (~60 min on one thread); gpu: 4x4 puzzles, 6M models, one "
                        "GPU session (~8 min); tiny: seconds")
    t.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="training and decoding device (default: the scale's)")
    t.add_argument("--m", type=SIZE, default=None, help="entities (houses)")
    t.add_argument("--n", type=SIZE, default=None, help="attributes")
    t.add_argument("--n-train", type=T.POSITIVE, default=None, help="training puzzles")
    t.add_argument("--n-test", type=T.POSITIVE, default=None, help="test puzzles")
    t.add_argument("--steps", type=T.POSITIVE, default=None, help="MDM optimiser steps")
    t.add_argument("--arm-steps", type=T.POSITIVE, default=None,
                   help="optimiser steps of each ARM")
    t.add_argument("--batch-size", type=T.POSITIVE, default=None, help="puzzles per step")
    t.add_argument("--max-minutes", type=T.POSITIVE_REAL, default=None,
                   help="whole-run budget; training stops with a checkpoint")
    t.add_argument("--threads", type=T.COUNT, default=None,
                   help="torch threads (0: torch's default; cpu scale: 1)")
    t.add_argument("--jobs", type=T.JOBS, default=None, help="generation processes")
    t.add_argument("--seed", type=T.SEED, default=None,
                   help="training and decoding seed (default 0)")
    t.add_argument("--work-dir", default=None, help="run folder")
    t.add_argument("--out", default=None, help="output stem (default figures/zebra_table3_"
                                                "<scale>)")
    t.set_defaults(func=_cmd_tables)
    return sub


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _cmd_generate(args) -> int:
    from lohard.zebra._dataset import ZebraGenConfig, generate_dataset

    cfg = ZebraGenConfig(num=args.num, m=args.m, n=args.n, max_clues=args.max_clues,
                         seed=args.seed)
    t0 = time.perf_counter()
    ps = generate_dataset(args.out, cfg, n_jobs=args.jobs, progress=not args.quiet)
    dt = time.perf_counter() - t0
    summary = {"out": args.out, "seconds": dt, **ps.summary()}
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        print(f"wrote {len(ps)} {cfg.m}x{cfg.n} Zebra puzzles to {args.out} in {dt:.1f} s "
              f"({summary['clues_mean']:.1f} clues on average)")
    return 0


def _cmd_solve(args) -> int:
    from lohard.zebra._dataset import load_puzzles
    from lohard.zebra._solver import solve

    ps = load_puzzles(args.file)
    if args.all:
        uniq = guesses = 0
        t0 = time.perf_counter()
        for i in range(len(ps)):
            sol = solve(ps.puzzle(i))
            uniq += sol.unique
            guesses += sol.guesses > 0
        dt = time.perf_counter() - t0
        out = {"num": len(ps), "unique": uniq, "needed_guess": guesses, "seconds": dt}
        print(json.dumps(out) if args.json else
              f"{len(ps)} puzzles: {uniq} uniquely solvable, {guesses} needed a guess "
              f"({len(ps) / max(dt, 1e-9):.0f} puzzles/s)")
        return 0
    if args.index >= len(ps):
        raise ValueError(f"--index must be < {len(ps)} (puzzles in {args.file}), got "
                         f"{args.index}")
    p = ps.puzzle(args.index)
    sol = solve(p)
    steps = [{"attribute": int(c // p.m), "house": int(c % p.m),
              "value": int(sol.grid[c // p.m, c % p.m]), "strategy": s}
             for c, s in zip(sol.order, sol.strategies, strict=True)]
    if args.json:
        print(json.dumps(to_jsonable({"clues": [str(c) for c in p.clues],
                                      "solution": sol.grid, "unique": sol.unique,
                                      "guesses": sol.guesses, "steps": steps})))
        return 0
    print(f"puzzle {args.index} ({p.m} entities x {p.n} attributes, {len(p.clues)} clues):")
    print(p.describe())
    print("solution (rows: attributes A.., columns: houses 1..m; values 1..m):")
    for a in range(p.n):
        print(f"  {chr(65 + a)}: " + " ".join(str(int(v) + 1) for v in sol.grid[a]))
    print(f"{'unique' if sol.unique else 'NOT unique'}; {sol.guesses} guesses; order:")
    for k, st in enumerate(steps):
        print(f"  {k + 1:2d}. {chr(65 + st['attribute'])} in house {st['house'] + 1} = "
              f"{st['value'] + 1}  ({st['strategy']})")
    return 0


def _cmd_eval(args) -> int:
    from lohard.mdm._zebra_decode import evaluate_zebra
    from lohard.mdm._zebra_train import load_zebra_model
    from lohard.zebra._dataset import load_puzzles

    zm = load_zebra_model(args.model)
    ps = load_puzzles(args.data)
    zm.check_size(ps)
    decoders = None if args.decoders is None else [d.strip() for d in args.decoders.split(",")]
    res, _ = evaluate_zebra(zm, ps, decoders=decoders, seed=args.seed)
    if args.json:
        print(json.dumps(to_jsonable(res)))
    else:
        for name, r in res.items():
            lo, hi = r["ci95"]
            print(f"{name:17s} {100 * r['accuracy']:6.2f}% ({r['solved']}/{r['num']}; 95% CI "
                  f"{100 * lo:.1f}-{100 * hi:.1f})")
    return 0


def _cmd_tables(args) -> int:
    from lohard.experiments.zebra_tables import run_zebra_tables, tables_config

    cfg = tables_config(args.scale, m=args.m, n=args.n, n_train=args.n_train,
                        n_test=args.n_test, steps=args.steps, arm_steps=args.arm_steps,
                        device=args.device,
                        batch_size=args.batch_size,
                        max_minutes=args.max_minutes, threads=args.threads, jobs=args.jobs,
                        seed=args.seed, work_dir=args.work_dir, out=args.out)
    return run_zebra_tables(cfg)
