"""CLI subcommands of the cavity subpackage: ``lohard window``.

The lead's ``lohard.cli`` calls :func:`register` to add them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

from lohard import _argtypes as T
from lohard._util import to_jsonable


def register(subparsers) -> None:
    """Add the ``window`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "window",
        help="Prop. 3.3 hardness window of mask fractions for sparse-predicate L&O data",
        description="Mask fractions alpha for which the masking problem is a planted CSP with "
                    "d_cond < d < d_KS (d = (k-1) k P / N), and the probability a mask lands "
                    "there.",
    )
    p.add_argument("--predicate", default="nae", help="nae, not-equal/colouring or xor")
    p.add_argument("-k", "--k", type=int, default=None, help="arity k")
    p.add_argument("-m", "--m", type=int, default=None, help="number of colours m")
    p.add_argument("-n", "--n", "--latents", dest="latents", type=T.integer(2), required=True,
                   help="number of latents N")
    p.add_argument("--observations", type=T.POSITIVE, default=None,
                   help="number of observation tokens P (default: N (N-1)...(N-k+1))")
    p.add_argument("--d-cond", type=T.POSITIVE_REAL, default=None,
                   help="condensation degree (default: computed by thresholds_report, cached)")
    p.add_argument("--alpha", type=T.real(0, 1), nargs="*", default=[],
                   help="mask fractions at which to report the probability of the window")
    p.add_argument("--seed", type=T.SEED, default=0, help="seed of the cavity computation")
    p.add_argument("--allow-large", action="store_true",
                   help="build a predicate table above the 2 GiB size limit, and compute d_KS "
                        "above the 1e9-operation limit, instead of refusing")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", action="store_true",
                   help="no progress log lines on stderr while d_cond is computed")
    p.set_defaults(func=_window)


def _window(args: argparse.Namespace) -> int:
    try:
        return _window_checked(args)
    except ValueError as err:
        print(f"lohard window: error: {err}", file=sys.stderr)
        return 2


def _window_checked(args: argparse.Namespace) -> int:
    from lohard.cavity import hardness_window, thresholds_report, window_probability
    from lohard.cavity._window import _check_alpha, check_window_sizes
    from lohard.predicates import predicate_by_name

    pred = predicate_by_name(args.predicate, k=args.k, m=args.m, allow_large=args.allow_large)
    # Check the cheap inputs before a possibly long cavity computation.
    check_window_sizes(pred, args.latents, args.observations)
    _check_alpha(args.alpha)
    d_cond, transition = args.d_cond, None
    if d_cond is None:
        log = logging.getLogger("lohard.cavity")
        try:
            report = thresholds_report(pred, rng=args.seed, compute=False)
            log.info("d_cond of %s read from the thresholds cache", pred.name)
        except FileNotFoundError:
            log.info("computing d_cond of %s by population dynamics (cached after the first "
                     "run)", pred.name)
            report = thresholds_report(pred, rng=args.seed)
        d_cond, transition = report["d_cond"], report.get("transition")
    d_ks = pred.d_ks
    w = hardness_window(pred, args.latents, d_cond=d_cond, d_ks=d_ks,
                        n_observations=args.observations)
    n_sat = int(round(w["expected_satisfied"]))
    probs = {a: float(window_probability(a, args.latents, n_sat, pred.k, d_cond=d_cond,
                                         d_ks=d_ks)) for a in args.alpha}
    empty = not w["alpha_lo"] < w["alpha_hi"]
    if not empty:
        why = None
    elif transition == "continuous":
        why = (f"the transition of {pred.name} is continuous: d_cond = d_sp = d_KS, so no "
               "degree is both above d_cond and below d_KS")
    elif d_cond >= d_ks:
        why = f"d_cond = {d_cond:.4g} >= d_KS = {d_ks:.4g}: no degree lies between them"
    else:
        why = ("the window's mask fractions fall outside [0, 1] (too few observations P for "
               "degrees in (d_cond, d_KS))")
    out = {"predicate": pred.name, "n": args.latents, "d_cond": d_cond, "d_ks": d_ks,
           "transition": transition, **w, "empty": empty, "empty_reason": why,
           "probability": probs}
    if args.json:
        print(json.dumps(to_jsonable(out), indent=2))
    else:
        ks = "inf" if math.isinf(d_ks) else f"{d_ks:.4g}"
        print(f"{pred.name}, N = {args.latents}, P = {w['n_observations']}: d_cond = "
              f"{d_cond:.4g}, d_KS = {ks}")
        if empty:
            print(f"hard window: empty ({why})")
        else:
            # Near alpha = 1 at large N the two ends differ far below 1e-10: print the
            # unmasked shares 1 - alpha too, which keep their significant digits.
            lo, hi = w["alpha_lo"], w["alpha_hi"]
            digits = max(10, math.ceil(-math.log10(hi - lo)) + 3)
            print(f"hard window: {lo:.{digits}f} < alpha < {hi:.{digits}f} (unmasked share "
                  f"1 - alpha between {1 - hi:.4g} and {1 - lo:.4g})")
        for a, pa in probs.items():
            print(f"P(mask in window | alpha = {a}) = {pa:.4g}")
    return 0
