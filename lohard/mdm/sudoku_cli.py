"""CLI hooks: ``lohard sudoku train|eval|tables ...`` (Sudoku MDM and ARMs).

:func:`register_sudoku` is found by :mod:`lohard.sudoku.cli` and receives the ``sudoku``
subparsers object. torch is imported inside the command functions only, so the parser
builds without it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lohard import _argtypes as T
from lohard._util import atomic_write_json, provenance, to_jsonable

#: Model names of ``lohard sudoku train --model``.
MODEL_NAMES = ("mdm", "arm-solver", "arm-row-major")
#: Decoders of ``lohard sudoku eval`` for an MDM (an ARM has one, ``arm``).
MDM_EVAL_DECODERS = ("vanilla", "top-prob", "margin", "top-prob-nonoise", "margin-nonoise",
                     "bp", "bp-mdm")


def register_sudoku(sub) -> None:
    """Add ``train``, ``eval`` and ``tables`` to the ``lohard sudoku`` subparsers object."""
    t = sub.add_parser(
        "train", help="train a Sudoku MDM or ARM (resumable)",
        description="Train the Sudoku MDM (clue tokens then solution tokens; only blank "
                    "cells masked) or an ARM on (row, column, value) triples in the solver's "
                    "order or row-major order. AdamW with linear warm-up and cosine decay, "
                    "bf16 autocast on CUDA, digits relabelled at random per sample. Writes "
                    "checkpoint.pt (atomic), config.json, log.jsonl and summary.json to --out.")
    t.add_argument("--model", choices=MODEL_NAMES, default="mdm",
                   help="mdm, arm-solver (with ordering) or arm-row-major (default mdm)")
    t.add_argument("--config", default=None,
                   help="model shape: an MDM config (mdm-6m, mdm-19m, tiny) or an ARM size "
                        "(arm-6m, arm-19m, tiny); default mdm-6m / arm-6m")
    t.add_argument("--data", default=None,
                   help="training puzzles (.npz from `lohard sudoku generate`)")
    t.add_argument("--n-train", type=T.POSITIVE, default=None,
                   help="without --data: generate this many easy puzzles into OUT/train.npz")
    t.add_argument("--data-seed", type=T.SEED, default=1,
                   help="seed of generated puzzles (default 1)")
    t.add_argument("--box", type=int, choices=(2, 3), default=3,
                   help="box size b: 2 (4x4) or 3 (9x9)")
    t.add_argument("--steps", type=T.POSITIVE, default=4000,
                   help="optimiser steps (default 4000)")
    t.add_argument("--batch-size", type=T.POSITIVE, default=256,
                   help="puzzles per step (default 256)")
    t.add_argument("--lr", type=T.POSITIVE_REAL, default=1e-3,
                   help="peak AdamW learning rate, cosine decay (default 1e-3)")
    t.add_argument("--min-lr", type=T.NONNEG_REAL, default=1e-4,
                   help="final learning rate (default 1e-4)")
    t.add_argument("--warmup-steps", type=T.COUNT, default=200,
                   help="linear warm-up steps (default 200)")
    t.add_argument("--weight-decay", type=T.NONNEG_REAL, default=0.1,
                   help="AdamW weight decay on the weight matrices (default 0.1)")
    t.add_argument("--grad-clip", type=T.POSITIVE_REAL, default=1.0,
                   help="gradient norm clipping (default 1)")
    t.add_argument("--no-augment", action="store_true", help="no random digit relabelling")
    t.add_argument("--seed", type=T.SEED, default=0, help="root seed (default 0)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA when present")
    t.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    t.add_argument("--log-every", type=T.COUNT, default=50,
                   help="steps between log lines, 0: none (default 50)")
    t.add_argument("--ckpt-every", type=T.COUNT, default=500,
                   help="steps between checkpoints, 0: only at the end (default 500)")
    t.add_argument("--max-minutes", type=T.POSITIVE_REAL, default=None,
                   help="stop (with a checkpoint) after this long; rerun with --resume")
    t.add_argument("--jobs", type=T.JOBS, default=-1, help="Numba threads for generation")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print a JSON summary")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser(
        "eval", help="decode test puzzles with a trained Sudoku model",
        description="Decode test puzzles one cell per step and report the share of grids "
                    "that are valid solutions keeping every clue, with a 95% Wilson "
                    "interval, and the Spearman correlation between the decoding order and "
                    "the strategy solver's order.")
    e.add_argument("checkpoint", help="checkpoint.pt or its run folder")
    e.add_argument("--test", default=None, help="test puzzles (.npz)")
    e.add_argument("--n-test", type=T.POSITIVE, default=1000,
                   help="without --test: generate this many puzzles (default 1000)")
    e.add_argument("--difficulty", choices=("easy", "hard"), default="easy",
                   help="difficulty of generated test puzzles")
    e.add_argument("--test-seed", type=T.SEED, default=2, help="seed of generated test puzzles")
    e.add_argument("--decoders", default=None,
                   help=f"comma-separated, from {', '.join(MDM_EVAL_DECODERS)} (MDM; default "
                        "vanilla,top-prob,margin,bp,bp-mdm); an ARM has only 'arm'")
    e.add_argument("--noise-scale", type=T.NONNEG_REAL, default=0.5,
                   help="Gumbel noise coefficient of the adaptive scores (App. D.2: 0.5)")
    e.add_argument("--noise-mode", choices=("log-annealed", "prob"), default="log-annealed",
                   help="log-annealed: noise on the log score, scaled by the share of blanks "
                        "still masked (the paper's codebase; default); prob: on the "
                        "probability score, constant")
    e.add_argument("--temperature", type=T.NONNEG_REAL, default=0.0,
                   help="of the MDM's value draws (0: argmax, the default)")
    e.add_argument("--cells-per-step", type=T.POSITIVE, default=1,
                   help="cells unmasked per forward pass (default 1)")
    e.add_argument("--bp-limit", type=T.COUNT, default=None,
                   help="decode only the first N puzzles with the BP decoders")
    e.add_argument("--seed", type=T.SEED, default=0, help="decoding seed (default 0)")
    e.add_argument("--batch-size", type=T.POSITIVE, default=1024,
                   help="puzzles per forward pass (default 1024)")
    e.add_argument("--jobs", type=T.POSITIVE, default=1, help="processes for pure BP decoding")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA when present")
    e.add_argument("--out", default=None, help="write the results JSON here")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=_cmd_eval)

    tb = sub.add_parser(
        "tables", help="reproduce Tables 2 and 5: MDM decoders against ARMs (resumable)",
        description="Generate easy training puzzles and easy/hard test sets, train the MDM "
                    "and the two ARMs (row-major; the solver's order), decode every test set "
                    "with every decoder (MDM vanilla, top-prob and margin with and without "
                    "Gumbel noise, BP order with MDM or BP values, the ARMs) and write "
                    "<out>.md/.csv/.json with 95%% intervals and the paper's numbers. A second "
                    "call reuses data, checkpoints and results. Exit code 3: some model "
                    "stopped at --max-minutes (rerun to continue).")
    tb.add_argument("--box", type=int, choices=(2, 3), default=3,
                    help="box size b: 3 (9x9, the paper; default) or 2 (4x4)")
    tb.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                    help="cpu: small models sized for a 2-core CPU (default); gpu: mdm-6m / "
                         "arm-6m, the paper-scale run")
    for name, typ, what in (("steps", T.POSITIVE, "optimiser steps of every model"),
                            ("n-train", T.POSITIVE, "easy training puzzles"),
                            ("n-test", T.POSITIVE, "easy test puzzles"),
                            ("n-test-hard", T.COUNT, "hard test puzzles (default: --n-test)"),
                            ("bp-limit", T.COUNT, "test puzzles decoded with the BP orders"),
                            ("batch-size", T.POSITIVE, "training batch size"),
                            ("lr", T.POSITIVE_REAL, "peak learning rate"),
                            ("seed", T.SEED, "training and decoding seed"),
                            ("data-seed", T.SEED, "seed of the training puzzles (tests: +1, "
                                                  "+2)"),
                            ("max-minutes", T.POSITIVE_REAL, "budget of the whole call; "
                                                             "training stops with a checkpoint"),
                            ("jobs", T.JOBS, "CPU workers for generation and BP (-1: all)"),
                            ("threads", T.COUNT, "torch CPU threads (0: torch's default)"),
                            ("noise-scale", T.NONNEG_REAL, "Gumbel noise of the adaptive "
                                                           "scores"),
                            ("temperature", T.NONNEG_REAL, "of the MDM's value draws (0: "
                                                           "argmax)")):
        tb.add_argument(f"--{name}", type=typ, help=what)
    tb.add_argument("--noise-mode", choices=("log-annealed", "prob"),
                    help="where the Gumbel noise goes (default log-annealed; 4x4 cpu: prob)")
    tb.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="train through torch.compile (default: on at cpu scale for 9x9)")
    tb.add_argument("--train-only", action="store_true", default=None,
                    help="train (or resume) the three models and stop before decoding")
    tb.add_argument("--mdm-model", help="MDM config (lohard.mdm.MODEL_CONFIGS)")
    tb.add_argument("--arm-model", help="ARM size (arm-6m, arm-19m, cpu-1m, tiny)")
    tb.add_argument("--device", choices=("auto", "cpu", "cuda"),
                    help="auto: CUDA when present (default: cpu at cpu scale, auto at gpu)")
    tb.add_argument("--work-dir", help="run folder (default runs/sudoku_tables_b<box>_<scale>)")
    tb.add_argument("--out", help="output stem (default figures/sudoku_tables_9x9 at cpu "
                                  "scale)")
    tb.set_defaults(func=_cmd_tables)


def _cmd_tables(args) -> int:
    from lohard.experiments.sudoku_tables import run_sudoku_tables, sudoku_tables_config

    keys = ("steps", "n_train", "n_test", "n_test_hard", "bp_limit", "batch_size", "lr", "seed",
            "data_seed", "max_minutes", "jobs", "threads", "noise_scale", "noise_mode",
            "temperature",
            "mdm_model", "arm_model", "device", "work_dir", "out", "compile", "train_only")
    cfg = sudoku_tables_config(args.box, args.scale, **{k: getattr(args, k) for k in keys})
    return run_sudoku_tables(cfg)


def _puzzles(path, n, difficulty, box, seed, out_path, jobs, quiet):
    from lohard.sudoku import GeneratorConfig, generate_dataset, load_puzzles

    if path is not None:
        ps = load_puzzles(path)
        if ps.box != box:
            raise ValueError(f"{path} holds {ps.box**2}x{ps.box**2} puzzles, --box asks for "
                             f"b = {box}")
        return ps, str(path)
    if n is None or n < 1:
        raise ValueError("give --data (a puzzle file) or --n-train >= 1")
    cfg = GeneratorConfig(num=n, difficulty=difficulty, box=box, seed=seed)
    ps = generate_dataset(out_path, cfg, chunk_size=10_000, jobs=jobs, progress=not quiet)
    return ps, str(out_path)


def _cmd_train(args) -> int:
    from lohard.mdm._distributed import env_world
    from lohard.mdm._sudoku_config import SudokuTrainConfig
    from lohard.mdm._sudoku_train import train_sudoku

    world = env_world()
    if world.size > 1 and not args.data:
        raise ValueError(f"under torchrun ({world.size} ranks) give the training puzzles with "
                         f"--data (make them first with lohard sudoku generate): the ranks "
                         f"must not each generate them")

    kind = "mdm" if args.model == "mdm" else "arm"
    order = "solver" if args.model != "arm-row-major" else "row-major"
    model = args.config or ("mdm-6m" if kind == "mdm" else "arm-6m")
    cfg = SudokuTrainConfig(
        kind=kind, arm_order=order, box=args.box, model=model, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, augment=not args.no_augment, seed=args.seed,
        device=args.device, amp=not args.no_amp, log_every=args.log_every,
        ckpt_every=args.ckpt_every)
    out = Path(args.out)
    train_set, data = _puzzles(args.data, args.n_train, "easy", cfg.box, args.data_seed,
                               out / "train.npz", args.jobs, args.quiet)
    log = None
    if args.quiet and not args.json:
        def log(entry):
            print(json.dumps(to_jsonable(entry)), file=sys.stderr)
    start = time.perf_counter()
    sm = train_sudoku(cfg, train_set, out, resume=args.resume,
                      max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                      progress=not args.quiet, log=log)
    if not world.is_main:  # under torchrun: rank 0 reports for all
        return 0
    summary = {**provenance(cfg.to_dict(), cfg.seed), "data": data,
               "train_puzzles": len(train_set), "session_seconds": time.perf_counter() - start,
               **sm.summary()}
    atomic_write_json(out / "summary.json", summary)
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        state = "finished" if sm.finished else "stopped early (rerun with --resume)"
        print(f"{cfg.name}: {sm.step}/{cfg.steps} steps, {state}; final train loss "
              f"{summary['final_train_loss']}; {sm.train_seconds:.1f} s training "
              f"({sm.gpu_seconds:.1f} s on GPU); checkpoint {sm.path}")
    return 0


def _cmd_eval(args) -> int:
    from lohard.mdm._sudoku_eval import evaluate_sudoku
    from lohard.mdm._sudoku_train import load_sudoku_model

    sm = load_sudoku_model(args.checkpoint, device=args.device)
    box = sm.config.box
    if args.test is None:
        folder = Path(args.checkpoint)
        folder = folder if folder.is_dir() else folder.parent
        gen_path = folder / f"test_{args.difficulty}_{args.n_test}_s{args.test_seed}.npz"
    else:
        gen_path = None
    test, data = _puzzles(args.test, args.n_test, args.difficulty, box, args.test_seed,
                          gen_path, -1, args.quiet)
    if sm.kind == "arm":
        decoders = ["arm"]
    elif args.decoders is None:
        decoders = ["vanilla", "top-prob", "margin", "bp", "bp-mdm"]
    else:
        decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
        bad = [d for d in decoders if d not in MDM_EVAL_DECODERS]
        if bad:
            raise ValueError(f"unknown decoder(s) {bad}; choose from "
                             f"{', '.join(MDM_EVAL_DECODERS)}")
    results, _ = evaluate_sudoku(sm, test, decoders=decoders, noise_scale=args.noise_scale,
                                 temperature=args.temperature, noise_mode=args.noise_mode,
                                 cells_per_step=args.cells_per_step, seed=args.seed,
                                 batch_size=args.batch_size, bp_limit=args.bp_limit,
                                 jobs=args.jobs, progress=not args.quiet)
    cfg = {k: getattr(args, k) for k in ("checkpoint", "test", "n_test", "difficulty",
                                         "test_seed", "noise_scale", "noise_mode",
                                         "temperature",
                                         "cells_per_step", "bp_limit", "seed", "batch_size",
                                         "device", "jobs")}
    cfg["decoders"] = list(decoders)
    out = {**provenance(cfg, args.seed), "model": sm.summary(), "test_data": data,
           "test_summary": test.summary(), "results": results}
    if args.out:
        atomic_write_json(args.out, out)
    if args.json:
        print(json.dumps(to_jsonable(out)))
    else:
        print(f"{sm.name} ({sm.step} steps, seed {sm.config.seed}) on {len(test)} "
              f"{args.difficulty if args.test is None else ''} puzzles ({data}):")
        for name, r in results.items():
            lo, hi = r["ci95"]
            rho = r.get("order_spearman_mean", float("nan"))
            print(f"  {name:17s} {100 * r['accuracy']:6.2f}% ({r['solved']}/{r['num']}, 95% "
                  f"CI {100 * lo:.1f}-{100 * hi:.1f}), order vs solver rho = {rho:.3f}")
    return 0
