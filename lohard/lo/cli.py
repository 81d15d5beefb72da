"""CLI hooks: ``lohard sample FAMILY ...`` and ``lohard posterior FILE ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

from lohard import _argtypes as T
from lohard._util import atomic_write_json, heartbeat, provenance, to_jsonable
from lohard.bp import BPConvergenceWarning
from lohard.lo._distribution import (
    load_samples,
    nae_sat,
    noisy_parity,
    random_slab,
    save_samples,
    sparse_predicate,
)
from lohard.lo._masking import forward_mask, protocol_mask
from lohard.lo._posterior import posterior
from lohard.predicates import predicate_by_name

FAMILIES = ("nae-sat", "sparse-predicate", "noisy-parity", "slab")


def register(subparsers) -> None:
    """Add the ``sample`` and ``posterior`` subcommands to an argparse subparsers object."""
    sp = subparsers.add_parser(
        "sample", help="draw L&O samples to an .npz file",
        description="Draw token sequences from an L&O distribution and save them, with the "
                    "distribution's structure, seed and version, to an .npz file.")
    sp.add_argument("family", choices=FAMILIES,
                    help="the L&O family: sparse-predicate (Ex. 3.2: one observation g(x_S) "
                         "per ordered k-subset S), nae-sat (L&O-NAE-SAT of Table 1), "
                         "noisy-parity (Ex. B.1) or slab (Ex. B.4)")
    sp.add_argument("-n", "--n", "--n-latent", dest="n_latent", type=T.POSITIVE,
                    required=True, help="number of latents N")
    sp.add_argument("--n-obs", type=T.POSITIVE, default=None,
                    help="number of observations P (sparse-predicate: default all ordered "
                         "k-subsets)")
    sp.add_argument("--num", type=T.POSITIVE, required=True, help="number of sequences")
    sp.add_argument("--out", required=True, help="output .npz path")
    sp.add_argument("--seed", type=T.SEED, default=0,
                    help="seed of the structure and the samples (default 0)")
    sp.add_argument("--predicate", default="nae", help="sparse-predicate: nae, not-equal, xor")
    sp.add_argument("-k", "--k", type=int, default=None, help="arity (predicate, parity sparsity)")
    sp.add_argument("-m", "--m", type=int, default=None, help="sparse-predicate: latent alphabet")
    sp.add_argument("--eta", type=T.real(0, 0.5, high_open=True), default=0.1,
                    help="noisy-parity: flip probability eta in [0, 1/2) (default 0.1)")
    sp.add_argument("--beta", type=T.POSITIVE_REAL, default=1.0,
                    help="slab: width (default 1)")
    sp.add_argument("--trailing-token", action="store_true",
                    help="nae-sat: append the constant token of App. C.2.1")
    sp.add_argument("--permutation", choices=("identity", "random"), default="identity",
                    help="the permutation pi of positions (Def. 3.1): identity puts the N "
                         "latents first, random shuffles latents and observations "
                         "(default identity)")
    sp.add_argument("--allow-large", action="store_true",
                    help="build arrays above the 2 GiB size limit (predicate table, scopes, "
                         "the --num x L samples) instead of refusing")
    sp.add_argument("--json", action="store_true", help="print a JSON summary")
    sp.set_defaults(func=_cmd_sample)

    pp = subparsers.add_parser(
        "posterior", help="Bayes posteriors of masked samples from a saved file",
        description="Mask saved L&O samples and compute p_data(x_i | x[M]) at every masked "
                    "position; prints the mean log-probability of the true values and the "
                    "accuracy of the argmax, split by latent/observed positions.")
    pp.add_argument("file", help=".npz written by `lohard sample`")
    pp.add_argument("--method", choices=("auto", "exact", "bp"), default="auto",
                    help="exact: enumerate the masked latents (per connected component); "
                         "bp: belief propagation on the masked CSP; auto: exact when small "
                         "enough (default)")
    pp.add_argument("--mask", choices=("protocol", "forward"), default="protocol",
                    help="protocol: App. C.2.1 with --ell; forward: q_{t|0} at --t")
    pp.add_argument("--ell", type=T.COUNT, default=None,
                    help="masked latents (default N // 2)")
    pp.add_argument("--t", type=T.real(0, 1), default=0.5,
                    help="forward-process time t in [0, 1]: each token is masked with "
                         "probability 1 - alpha_t (default 0.5)")
    pp.add_argument("--schedule", choices=("linear", "cosine"), default="linear",
                    help="noise schedule alpha_t of --mask forward (default linear)")
    pp.add_argument("--limit", type=T.POSITIVE, default=None,
                    help="use only the first LIMIT >= 1 sequences")
    pp.add_argument("--seed", type=T.SEED, default=0, help="seed of the masks")
    pp.add_argument("--out", default=None, help="save probabilities and masks to this .npz")
    pp.add_argument("--quiet", action="store_true",
                    help="no 'still running' lines on stderr")
    pp.add_argument("--json", action="store_true",
                    help="print a JSON summary (no progress lines)")
    pp.set_defaults(func=_cmd_posterior)


def _build(args):
    rng = np.random.default_rng(np.random.SeedSequence(args.seed).spawn(2)[0])
    if args.family == "nae-sat":
        if args.n_obs is None:
            raise ValueError("nae-sat needs --n-obs")
        return nae_sat(args.n_latent, args.n_obs, trailing_token=args.trailing_token,
                       permutation=args.permutation, rng=rng, allow_large=args.allow_large)
    if args.family == "sparse-predicate":
        pred = predicate_by_name(args.predicate, k=args.k, m=args.m,
                                 allow_large=args.allow_large)
        return sparse_predicate(args.n_latent, pred, args.n_obs, permutation=args.permutation,
                                rng=rng, allow_large=args.allow_large)
    if args.n_obs is None:
        raise ValueError(f"{args.family} needs --n-obs")
    if args.family == "noisy-parity":
        return noisy_parity(args.n_latent, args.n_obs, 3 if args.k is None else args.k,
                            args.eta, permutation=args.permutation, rng=rng,
                            allow_large=args.allow_large)
    return random_slab(args.n_latent, args.n_obs, args.beta, permutation=args.permutation,
                       rng=rng, allow_large=args.allow_large)


def _cmd_sample(args) -> int:
    try:
        dist = _build(args)
        sample_rng = np.random.default_rng(np.random.SeedSequence(args.seed).spawn(2)[1])
        tokens = dist.sample(args.num, rng=sample_rng, allow_large=args.allow_large)
    except ValueError as err:
        print(f"lohard sample: error: {err}", file=sys.stderr)
        return 2
    config = {k: v for k, v in vars(args).items() if k != "func"}
    try:
        save_samples(args.out, dist, tokens, seed=args.seed, config=config)
    except OSError as err:
        print(f"lohard sample: error: cannot write {args.out}: {err}", file=sys.stderr)
        return 2
    summary = {"out": args.out, "distribution": dist.header(), "num": int(tokens.shape[0]),
               "length": dist.length, "mask_id": dist.mask_id, "seed": args.seed}
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        print(f"wrote {tokens.shape[0]} sequences of length {dist.length} from {dist!r} "
              f"to {args.out}")
    return 0


def _cmd_posterior(args) -> int:
    if args.limit is not None and args.limit < 1:
        print(f"lohard posterior: error: --limit must be >= 1 sequence, got {args.limit}",
              file=sys.stderr)
        return 2
    try:
        dist, tokens, sample_meta = load_samples(args.file)
    except (OSError, ValueError, KeyError) as err:
        print(f"lohard posterior: error: {err}", file=sys.stderr)
        return 2
    if args.limit is not None:
        tokens = tokens[: args.limit]
    n = tokens.shape[0]
    if n == 0:
        print(f"lohard posterior: error: {args.file} holds no sequences", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    try:
        if args.mask == "protocol":
            ell = dist.n_latent // 2 if args.ell is None else args.ell
            mask = protocol_mask(dist, n, ell, rng=rng)
        else:
            mask = forward_mask(n, dist.length, args.t, schedule=args.schedule, rng=rng)
        start = time.perf_counter()
        with warnings.catch_warnings():
            # non-convergence is reported below, from Posterior.converged
            warnings.simplefilter("ignore", BPConvergenceWarning)
            with heartbeat("lohard posterior", enabled=not (args.json or args.quiet)):
                post = posterior(dist, tokens, mask, method=args.method)
        elapsed = time.perf_counter() - start
    except ValueError as err:
        print(f"lohard posterior: error: {err}", file=sys.stderr)
        return 2
    lp = post.log_prob(tokens)
    hit = post.argmax() == tokens
    not_converged = int(np.count_nonzero(~post.converged))
    summary: dict = {"file": args.file, "method": post.method, "num": n,
                     "seconds": elapsed, "bp_converged": float(post.converged.mean()),
                     "bp_not_converged": not_converged}
    for name, pos in (("latent", dist.latent_positions), ("observed", dist.observed_positions)):
        mk = mask[:, pos]
        cnt = int(mk.sum())
        summary[name] = {
            "masked": cnt,
            "mean_log_prob": float(lp[:, pos][mk].mean()) if cnt else None,
            "argmax_accuracy": float(hit[:, pos][mk].mean()) if cnt else None,
        }
    bp_note = (f"BP did not converge on {not_converged} of {n} sequences"
               if not_converged else None)
    if args.out:
        from lohard.lo._distribution import _write_npz

        config = {k: v for k, v in vars(args).items() if k != "func"}
        config["samples"] = {"file": args.file, "seed": sample_meta.get("seed"),
                             "config": sample_meta.get("config"),
                             "lohard_version": sample_meta.get("lohard_version")}
        meta = {"format": "lohard.lo.posterior", "format_version": 1, "summary": summary,
                **provenance(config, {"mask_seed": args.seed,
                                      "samples_seed": sample_meta.get("seed")})}
        try:
            _write_npz(args.out, to_jsonable(meta), {"probs": post.probs, "mask": mask})
            atomic_write_json(str(args.out) + ".json", meta)
        except OSError as err:
            print(f"lohard posterior: error: cannot write {args.out}: {err}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(to_jsonable(summary)))
        if bp_note:
            print(f"lohard posterior: warning: {bp_note}", file=sys.stderr)
    else:
        for name in ("latent", "observed"):
            s = summary[name]
            if s["masked"]:
                print(f"{name:9s} masked {s['masked']:7d}  mean log p {s['mean_log_prob']:.4f}  "
                      f"argmax accuracy {s['argmax_accuracy']:.4f}")
        print(f"{post.method} posteriors of {n} sequences in {elapsed:.3f} s")
        if bp_note:
            print(f"{bp_note} (their posteriors are BP's last iterate)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m lohard.lo.cli``) for the two subcommands."""
    parser = argparse.ArgumentParser(prog="lohard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
