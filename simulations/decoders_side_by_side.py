"""Decoders beyond the paper side by side (issue 18): a thin driver of
lohard.experiments.decoders, as ``lohard decoders`` with a --smoke mode (tiny models, a
few sequences) for checking the pipeline end to end in seconds.

Usage::

    python simulations/decoders_side_by_side.py table1 [--preset 10-90] [--only model|bp]
    python simulations/decoders_side_by_side.py sudoku [--only model|bp]
    python simulations/decoders_side_by_side.py plot
    python simulations/decoders_side_by_side.py all --smoke --out-dir /tmp/dec
"""

from __future__ import annotations

import argparse

from lohard.experiments import decoders as D

SMOKE = dict(num_samples=12, sample_batch=12, n_test=8, n_test_hard=4, bp_limit=2,
             table1_overrides=dict(model="tiny", steps=20, eval_points=2, eval_size=32,
                                   fig2_preset=None),
             sudoku_overrides=dict(n_train=300, n_test=8, n_test_hard=4, steps=10,
                                   mdm_model="tiny", compile=False, threads=1, jobs=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=("table1", "sudoku", "plot", "all"))
    ap.add_argument("--preset", action="append", help="table1: an N-P preset (repeatable)")
    ap.add_argument("--only", choices=D.GROUPS, help="one row group; writes no table")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--out-dir", default="figures")
    ap.add_argument("--work-root", default="runs", help="parent of the run folders")
    ap.add_argument("--sudoku-work-dir", help="the 9x9 tables' run folder (default "
                                              "<work-root>/sudoku_tables_b3_cpu)")
    ap.add_argument("--smoke", action="store_true", help="tiny models, a few sequences")
    ap.add_argument("--num-samples", type=int, help="table1: sequences per decoder (500)")
    ap.add_argument("--n-test", type=int, help="sudoku: easy test puzzles (1000)")
    ap.add_argument("--n-test-hard", type=int, help="sudoku: hard test puzzles (500)")
    ap.add_argument("--bp-limit", type=int, help="sudoku: puzzles of the BP rows (300)")
    args = ap.parse_args(argv)
    fields = dict(device=args.device, out_dir=args.out_dir, only=args.only or "",
                  compile=args.compile,
                  table1_work_dir=f"{args.work_root}/table1_cpu",
                  sudoku_work_dir=args.sudoku_work_dir
                  or f"{args.work_root}/sudoku_tables_b3_cpu")
    if args.smoke:
        fields.update(SMOKE, presets=((6, 9), (5, 9)))
    for name in ("num_samples", "n_test", "n_test_hard", "bp_limit"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.preset:
        fields["presets"] = tuple(tuple(int(v) for v in p.split("-")) for p in args.preset)
    cfg = D.DecodersConfig(**fields)
    if args.task in ("table1", "all"):
        doc = D.run_table1_decoders(cfg)
        if not cfg.only:
            print(D.write_table1(cfg, doc))
    if args.task in ("sudoku", "all"):
        doc = D.run_sudoku_decoders(cfg)
        if not cfg.only:
            print(D.write_sudoku(cfg, doc))
    if args.task in ("plot", "all") and not cfg.only:
        print(D.plot_pareto(cfg, preset="nae-sat-6-9-t" if args.smoke else "nae-sat-10-90-t"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
