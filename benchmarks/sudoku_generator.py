"""Sudoku generator speed: rated 9x9 puzzles per second, easy and hard, 1 thread and all.

Each rated puzzle costs: a random full grid (randomised DFS), clue removal with a
uniqueness check per removal (exact count stopping at two), the human-strategy rating,
and redraws until the difficulty matches. The reference measured in the same run is the
plain-Python uniqueness solver (``lohard.sudoku._reference.count_solutions_py``, set-based
DFS with the same MRV rule) against the Numba kernel on the same minimal puzzles, and
plain-Python clue removal with it on a few of the same full grids (no rating).

    python benchmarks/sudoku_generator.py [--easy 2000] [--hard 1000] [--bp 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numba
import numpy as np

import lohard.sudoku as S
from lohard import __version__
from lohard.sudoku._reference import count_solutions_py


def rate_of(fn, count: int) -> float:
    t = time.perf_counter()
    fn()
    return count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--easy", type=int, default=2000, help="easy puzzles per measurement")
    ap.add_argument("--hard", type=int, default=1000, help="hard puzzles per measurement")
    ap.add_argument("--ref", type=int, default=20, help="puzzles for the Python reference")
    ap.add_argument("--ref-dig", type=int, default=3,
                    help="full grids dug by the Python reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bp", type=int, default=0,
                    help="also decode this many easy and hard puzzles with pure BP (margin and "
                         "max oracles) and report how many it solves")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = numba.config.NUMBA_NUM_THREADS

    # warm-up: compile serial and parallel kernels
    for jobs in (1, threads):
        S.generate_puzzles(4, difficulty="hard", rng=0, jobs=jobs)
        S.rate_puzzles(S.generate_puzzles(4, rng=0, jobs=1).puzzles, jobs=jobs)

    out: dict = {"lohard_version": __version__, "numba": numba.__version__,
                 "threads_available": threads, "rated_per_s": {}}
    sets = {}
    for diff, num in (("easy", args.easy), ("hard", args.hard)):
        for jobs in sorted({1, threads}):
            box = {}

            def run(diff=diff, num=num, jobs=jobs, box=box):
                box["set"] = S.generate_puzzles(num, difficulty=diff, rng=args.seed, jobs=jobs)

            r = rate_of(run, num)
            out["rated_per_s"][f"{diff}_{jobs}_threads"] = r
            sets[diff] = box["set"]
        out[f"{diff}_summary"] = sets[diff].summary()

    # rating alone (no generation), one thread
    for diff in ("easy", "hard"):
        p = sets[diff].puzzles
        out["rated_per_s"][f"rate_only_{diff}_1_thread"] = rate_of(
            lambda p=p: S.rate_puzzles(p, jobs=1), p.shape[0])

    # reference: uniqueness checks, Python vs Numba, on the same minimal puzzles
    ref = sets["easy"].puzzles[: args.ref].astype(np.int64)
    t = time.perf_counter()
    py = [count_solutions_py(p) for p in ref]
    t_py = (time.perf_counter() - t) / len(ref)
    assert py == [1] * len(ref)
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        nb = S.count_solutions(ref, jobs=1)
    t_nb = (time.perf_counter() - t) / (reps * len(ref))
    assert (nb == 1).all()
    out["uniqueness_check_s"] = {"python": t_py, "numba": t_nb, "speedup": t_py / t_nb}
    # Plain-Python clue removal (the dominant cost) on a few of the same full grids, the
    # same way the kernel does it: random order, keep a removal if still unique.
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    for sol in sets["easy"].solutions[: args.ref_dig].astype(np.int64):
        puz = sol.copy()
        for c in rng.permutation(81):
            v, puz[c] = puz[c], 0
            if count_solutions_py(puz) != 1:
                puz[c] = v
    out["python_dig_per_s"] = args.ref_dig / (time.perf_counter() - t)
    one = out["rated_per_s"]["easy_1_threads"]
    out["ratio_easy_1_thread_vs_python_dig"] = one / out["python_dig_per_s"]
    out["extrapolated_16_cores_per_s"] = {
        d: 16 * out["rated_per_s"][f"{d}_1_threads"] for d in ("easy", "hard")}

    if args.bp:
        out["bp_decoding"] = {}
        for diff in ("easy", "hard"):
            st = sets[diff][: args.bp]
            for score in ("margin", "max"):
                t = time.perf_counter()
                r = S.bp_solve_rate(st.puzzles, st.solutions, score=score)
                out["bp_decoding"][f"{diff}_{score}"] = {
                    "num": r["num"], "solved_fraction": r["solved_fraction"],
                    "mean_first_error_step": float(r["first_error"][r["first_error"] >= 0].mean())
                    if (r["first_error"] >= 0).any() else None,
                    "steps_not_converged_fraction": float(
                        r["nonconverged_steps"].sum() / (st.puzzles == 0).sum()),
                    "seconds_per_puzzle": (time.perf_counter() - t) / r["num"]}
                if diff == "easy":
                    h = st.hardest
                    out["bp_decoding"][f"{diff}_{score}"]["solved_by_hardest_strategy"] = {
                        S.STRATEGIES[k]: [float(r["solved"][h == k].mean()), int((h == k).sum())]
                        for k in np.unique(h)}

    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"numba {numba.__version__}, {threads} threads available")
    for key, val in out["rated_per_s"].items():
        print(f"{key:28s} {val:10.1f} puzzles/s")
    u = out["uniqueness_check_s"]
    print(f"uniqueness check on a minimal puzzle: Python {1e3 * u['python']:.2f} ms, Numba "
          f"{1e6 * u['numba']:.1f} us ({u['speedup']:.0f}x)")
    print(f"Python clue removal alone (no rating): {out['python_dig_per_s']:.3f} puzzles/s; "
          f"Numba rated easy puzzles on 1 thread: {out['ratio_easy_1_thread_vs_python_dig']:.0f}x")
    e = out["extrapolated_16_cores_per_s"]
    print(f"16 cores x the 1-thread rate: easy {e['easy']:.0f}/s, hard {e['hard']:.0f}/s")
    for key, val in out.get("bp_decoding", {}).items():
        print(f"BP decoding {key:12s}: solved {val['solved_fraction']:.3f} of {val['num']} "
              f"({val['seconds_per_puzzle']:.2f} s/puzzle, "
              f"{100 * val['steps_not_converged_fraction']:.1f}% of BP runs unconverged)")
        for name, (frac, cnt) in val.get("solved_by_hardest_strategy", {}).items():
            print(f"    hardest = {name:17s}: solved {frac:.3f} of {cnt}")
    for d in ("easy", "hard"):
        s = out[f"{d}_summary"]
        print(f"{d}: clues {s['clues_mean']:.1f}, guesses {s['guesses_mean']:.2f}, "
              f"grids drawn per kept puzzle {s['attempts_mean']:.2f}")


if __name__ == "__main__":
    main()
