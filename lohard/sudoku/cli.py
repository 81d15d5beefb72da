"""CLI hooks: ``lohard sudoku generate ...`` and ``lohard sudoku rate ...``.

``register(subparsers)`` adds the ``sudoku`` command with its own subcommands. Other
subpackages add more (``train``, ``eval``) by defining ``register_sudoku(subparsers)``
in a module listed in :data:`SUDOKU_EXTENSIONS`; that hook receives the ``sudoku``
subparsers object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from lohard import _argtypes as T
from lohard._util import register_needs_torch, to_jsonable

#: Modules that may contribute ``lohard sudoku`` subcommands (skipped when absent).
SUDOKU_EXTENSIONS = ("lohard.mdm.sudoku_cli",)

# Puzzles rated per progress-bar step when rating a file.
_RATE_CHUNK = 2000


#: Subcommands of the torch extra (lohard.mdm.sudoku_cli): without torch they say so.
TORCH_SUBCOMMANDS = ("train", "eval", "tables")


def register(subparsers) -> argparse._SubParsersAction:
    """Add ``sudoku`` (with ``generate`` and ``rate``) to an argparse subparsers object.

    Returns the ``sudoku`` subparsers object, to which more subcommands can be added.
    """
    sp = subparsers.add_parser(
        "sudoku", help="Sudoku puzzles: generate rated sets, rate puzzles",
        description="Sudoku puzzles with unique solutions, rated by the human strategies of "
                    "the paper's data set (naked/hidden single, naked pair/triple, locked "
                    "candidate, XY-wing, unique rectangle) plus guessing.")
    sub = sp.add_subparsers(dest="sudoku_command", metavar="SUBCOMMAND")
    sp.set_defaults(func=lambda args: _help(sp))

    g = sub.add_parser(
        "generate", help="generate a rated puzzle set to an .npz file",
        description="Draw puzzles (random full grid, clues removed while the solution stays "
                    "unique), rate them, keep those of the requested difficulty. Resumable: "
                    "rerunning an interrupted command generates only the missing chunks.")
    g.add_argument("--n", type=int, required=True, help="number of puzzles")
    g.add_argument("--difficulty", choices=("easy", "hard", "any"), default="easy",
                   help="easy: solved by the strategies alone; hard: needs guesses")
    g.add_argument("--seed", type=T.SEED, default=0, help="root seed (default 0)")
    g.add_argument("--out", required=True, help="output .npz path")
    g.add_argument("--jobs", type=T.JOBS, default=-1, help="Numba threads (-1: all cores)")
    g.add_argument("--box", type=int, default=3, help="box size b: 2 (4x4), 3 (9x9), 4 (16x16)")
    g.add_argument("--min-clues", type=T.COUNT, default=0,
                   help="stop removing clues at this many (default 0: minimal puzzles)")
    g.add_argument("--max-attempts", type=T.POSITIVE, default=10_000,
                   help="grids drawn per puzzle before giving up")
    g.add_argument("--chunk-size", type=T.POSITIVE, default=10_000,
                   help="puzzles per chunk file")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--json", action="store_true", help="print the summary as JSON")
    g.set_defaults(func=_cmd_generate)

    r = sub.add_parser(
        "rate", help="rate a puzzle (or a file of puzzles) with the human strategies",
        description="Solve like a person: the simplest applicable strategy first, guesses "
                    "only when the strategies stall. Prints the difficulty, the hardest "
                    "strategy, the guesses and the solver's order.")
    r.add_argument("puzzle", nargs="?", default=None,
                   help="puzzle string, row-major, '.' or '0' for blanks")
    r.add_argument("--file", default=None,
                   help="text file with one puzzle per line, or an .npz from `generate`")
    r.add_argument("--no-search", action="store_true",
                   help="do not guess: report the stalled position instead")
    r.add_argument("--jobs", type=T.JOBS, default=-1, help="Numba threads for --file")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=_cmd_rate)

    for mod in SUDOKU_EXTENSIONS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as err:
            # absent extension, or its optional torch dependency missing
            if err.name == "torch":
                register_needs_torch(sub, TORCH_SUBCOMMANDS, prefix="sudoku ")
                continue
            if err.name is not None and mod.startswith(err.name):
                continue
            raise
        module.register_sudoku(sub)
    return sub


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _cmd_generate(args) -> int:
    from lohard.sudoku._dataset import GeneratorConfig, generate_dataset

    if args.n < 1:
        raise ValueError(f"--n (number of puzzles) must be >= 1, got {args.n}")
    cfg = GeneratorConfig(num=args.n, difficulty=args.difficulty, box=args.box,
                          min_clues=args.min_clues, max_attempts=args.max_attempts,
                          seed=args.seed)
    start = time.perf_counter()
    ps = generate_dataset(args.out, cfg, chunk_size=args.chunk_size, jobs=args.jobs,
                          progress=not args.quiet)
    elapsed = time.perf_counter() - start
    summary = {"out": args.out, "seconds": elapsed, **ps.summary()}
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        print(f"wrote {len(ps)} {args.difficulty} {cfg.box**2}x{cfg.box**2} puzzles to "
              f"{args.out} in {elapsed:.1f} s (clues {summary['clues_mean']:.1f} on average, "
              f"{summary['guesses_mean']:.2f} guesses on average)")
    return 0


def _read_puzzle_file(path: str) -> tuple[np.ndarray, list[str]]:
    from lohard.sudoku._dataset import load_puzzles
    from lohard.sudoku._encoding import parse_puzzle

    if path.endswith(".npz"):
        return load_puzzles(path).puzzles.astype(np.int64), []
    rows, errors = [], []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        s = s.split(",")[0].strip()  # "puzzle,solution" CSV lines
        try:
            rows.append(parse_puzzle(s))
        except ValueError as err:
            errors.append(f"line {lineno}: {err}")
    if not rows:
        raise ValueError(f"{path} holds no valid puzzle" + (f" ({errors[0]})" if errors else ""))
    sizes = {r.size for r in rows}
    if len(sizes) > 1:
        raise ValueError(f"{path} mixes grid sizes {sorted(sizes)}")
    return np.stack(rows), errors


def _cmd_rate(args) -> int:
    from tqdm.auto import tqdm

    from lohard.sudoku._encoding import format_puzzle, parse_puzzle
    from lohard.sudoku._solver import STRATEGIES, rate, rate_puzzles

    if (args.puzzle is None) == (args.file is None):
        raise ValueError("give either a PUZZLE string or --file, not both or neither")
    if args.puzzle is not None:
        grid = parse_puzzle(args.puzzle)
        rt = rate(grid, search=not args.no_search)
        out = {"puzzle": format_puzzle(grid), **rt.to_dict()}
        if args.json:
            print(json.dumps(to_jsonable(out)))
            return 0
        n = rt.box**2
        print(f"difficulty: {out['difficulty']} (hardest strategy: {out['hardest']}, "
              f"guesses: {out['guesses']})")
        used = {k: v for k, v in out["counts"].items() if v}
        print("strategy uses: " + ", ".join(f"{k} {v}" for k, v in used.items()))
        print("solution:")
        sol = out["solution"]
        for i in range(n):
            print("  " + " ".join(sol[i * n:(i + 1) * n]))
        steps = [f"r{r + 1}c{c + 1}={sol[r * n + c]} ({lab})"
                 for (r, c), lab in zip(out["order"], out["labels"], strict=True)]
        print("solver's order: " + ", ".join(steps))
        return 0
    puzzles, errors = _read_puzzle_file(args.file)
    for e in errors:
        print(f"lohard sudoku rate: skipped {e}", file=sys.stderr)
    M = puzzles.shape[0]
    parts = []
    with tqdm(total=M, disable=args.quiet, desc="rating", unit="puzzle") as bar:
        for lo in range(0, M, _RATE_CHUNK):
            parts.append(rate_puzzles(puzzles[lo:lo + _RATE_CHUNK], search=not args.no_search,
                                      jobs=args.jobs))
            bar.update(min(_RATE_CHUNK, M - lo))
    status = np.concatenate([p.status for p in parts])
    guesses = np.concatenate([p.guesses for p in parts])
    hardest = np.concatenate([p.hardest for p in parts])
    hist = np.bincount(np.maximum(hardest, 0), minlength=len(STRATEGIES))
    summary = {
        "file": args.file, "num": M, "skipped_lines": len(errors),
        "easy": int(((status == 0) & (guesses == 0)).sum()),
        "hard": int(((status == 0) & (guesses > 0)).sum()),
        "stuck": int((status == 1).sum()),
        "guesses_mean": float(guesses.mean()),
        "hardest_strategy": {STRATEGIES[k]: int(hist[k]) for k in range(1, len(STRATEGIES))},
    }
    if args.json:
        summary["per_puzzle"] = [
            {"difficulty": ("easy" if g == 0 else "hard") if s == 0 else
             ("stuck" if s == 1 else "no solution"), "guesses": int(g),
             "hardest": STRATEGIES[h] if h >= 0 else None}
            for s, g, h in zip(status, guesses, hardest, strict=True)]
        print(json.dumps(to_jsonable(summary)))
    else:
        print(f"{M} puzzles: {summary['easy']} easy, {summary['hard']} hard, "
              f"{summary['stuck']} stuck; mean guesses {summary['guesses_mean']:.2f}")
        for name, cnt in summary["hardest_strategy"].items():
            print(f"  hardest = {name:17s} {cnt}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m lohard.sudoku.cli sudoku ...``)."""
    parser = argparse.ArgumentParser(prog="lohard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"lohard sudoku: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
