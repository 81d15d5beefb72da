"""CLI hooks: ``lohard train-mdm ...`` and ``lohard eval-mdm CHECKPOINT ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lohard._util import atomic_write_json, provenance, to_jsonable
from lohard.mdm._config import MODEL_CONFIGS, TrainConfig
from lohard.mdm._metrics import observation_correct
from lohard.mdm._sampling import K_MODES, PAPER_SAMPLERS, SAMPLERS, sample
from lohard.mdm._train import load_checkpoint, train


def register(subparsers) -> None:
    """Add the ``train-mdm`` and ``eval-mdm`` subcommands to an argparse subparsers object."""
    d = TrainConfig()
    tp = subparsers.add_parser(
        "train-mdm", help="train a masked diffusion model on an L&O distribution",
        description="Train an MDM on fresh samples of an L&O distribution each step; writes "
                    "checkpoint.pt (atomic, resumable), config.json and log.jsonl to --out.")
    tp.add_argument("--dist", default=d.dist,
                    help="nae-sat-N-P (append -t for the App. C.2.1 trailing token) or a saved "
                         f"distribution .npz (default {d.dist})")
    tp.add_argument("--dist-seed", type=int, default=d.dist_seed,
                    help="structure seed of nae-sat-N-P (default 0)")
    tp.add_argument("--config", default=d.model, choices=tuple(MODEL_CONFIGS),
                    help=f"model shape (default {d.model})")
    tp.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps ({d.steps})")
    tp.add_argument("--batch-size", type=int, default=d.batch_size)
    tp.add_argument("--loss", choices=("elbo", "eq1"), default=d.loss)
    tp.add_argument("--schedule", choices=("linear", "cosine"), default=d.schedule)
    tp.add_argument("--lr", type=float, default=d.lr)
    tp.add_argument("--min-lr", type=float, default=d.min_lr)
    tp.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    tp.add_argument("--weight-decay", type=float, default=d.weight_decay)
    tp.add_argument("--grad-clip", type=float, default=d.grad_clip)
    tp.add_argument("--max-seq-len", type=int, default=None,
                    help="override the model's max_seq_len")
    tp.add_argument("--seed", type=int, default=d.seed, help="root seed (default 0)")
    tp.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device)
    tp.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    tp.add_argument("--compile", action="store_true", help="torch.compile the model")
    tp.add_argument("--eval-every", type=int, default=d.eval_every)
    tp.add_argument("--eval-size", type=int, default=d.eval_size)
    tp.add_argument("--log-every", type=int, default=d.log_every)
    tp.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    tp.add_argument("--out", required=True, help="run folder")
    tp.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    tp.add_argument("--quiet", action="store_true", help="no progress bar")
    tp.add_argument("--json", action="store_true", help="print a JSON summary")
    tp.set_defaults(func=_cmd_train)

    ep = subparsers.add_parser(
        "eval-mdm", help="sample from a trained MDM and report observation accuracy",
        description="Load a checkpoint, generate sequences with each sampler and report the "
                    "fraction of generated observations consistent with the generated latents "
                    "(Table 1's metric; a naive guess scores 75% on L&O-NAE-SAT).")
    ep.add_argument("checkpoint", help="checkpoint.pt or its run folder")
    ep.add_argument("--samplers", default=",".join(PAPER_SAMPLERS),
                    help=f"comma-separated, from {', '.join(SAMPLERS)} (default: "
                         f"{','.join(PAPER_SAMPLERS)}, the paper's)")
    ep.add_argument("--num", type=int, default=1000, help="sequences per sampler")
    ep.add_argument("--steps", type=int, default=50, help="reverse steps (default 50)")
    ep.add_argument("--schedule", choices=("linear", "cosine"), default="linear")
    ep.add_argument("--k-mode", choices=K_MODES, default="deterministic")
    ep.add_argument("--noise", choices=("none", "gumbel", "gaussian"), default="none")
    ep.add_argument("--noise-scale", type=float, default=0.5)
    ep.add_argument("--batch-size", type=int, default=1024)
    ep.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ep.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ep.add_argument("--out", default=None, help="write the results JSON here")
    ep.add_argument("--save-samples", default=None,
                    help="folder for the generated tokens (one .npz per sampler)")
    ep.add_argument("--json", action="store_true", help="print JSON")
    ep.set_defaults(func=_cmd_eval)


def _cmd_train(args) -> int:
    overrides = {} if args.max_seq_len is None else {"max_seq_len": args.max_seq_len}
    try:
        cfg = TrainConfig(
            dist=args.dist, dist_seed=args.dist_seed, model=args.config,
            model_overrides=overrides, steps=args.steps, batch_size=args.batch_size,
            loss=args.loss, schedule=args.schedule, lr=args.lr, min_lr=args.min_lr,
            warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
            grad_clip=args.grad_clip, seed=args.seed, device=args.device, amp=not args.no_amp,
            compile=args.compile, eval_every=args.eval_every, eval_size=args.eval_size,
            log_every=args.log_every, ckpt_every=args.ckpt_every)
        result = train(cfg, args.out, resume=args.resume, progress=not args.quiet)
    except ValueError as err:
        print(f"lohard train-mdm: error: {err}", file=sys.stderr)
        return 2
    evals = [h["eval_loss"] for h in result.history if "eval_loss" in h]
    trains = [h["train_loss"] for h in result.history if "train_loss" in h]
    summary = {"out": args.out, "checkpoint": str(result.checkpoint), "step": result.step,
               "n_params": result.model.n_params, "final_train_loss": trains[-1] if trains
               else None, "final_eval_loss": evals[-1] if evals else None, "seed": args.seed}
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        print(f"trained {summary['n_params']:,}-parameter MDM for {result.step} steps; final "
              f"train loss {summary['final_train_loss']}, eval loss "
              f"{summary['final_eval_loss']} (nats/token); checkpoint {result.checkpoint}")
    return 0


def evaluate_samplers(ckpt, samplers, *, num: int, steps: int = 50, schedule: str = "linear",
                      k_mode: str = "deterministic", noise: str | None = None,
                      noise_scale: float = 0.5, batch_size: int = 1024, seed: int = 0,
                      save_dir: str | None = None) -> dict:
    """Observation accuracy of each sampler on a loaded checkpoint (library side of eval-mdm).

    Parameters
    ----------
    ckpt : Checkpoint
    samplers : list of str
    num, steps, schedule, k_mode, noise, noise_scale, batch_size, seed
        As in :func:`lohard.mdm.sample`; each sampler uses a generator seeded ``seed``.
    save_dir : str, optional
        Save each sampler's tokens to ``save_dir/samples_<sampler>.npz``.

    Returns
    -------
    dict: per sampler ``accuracy``, its standard error over sequences, ``seconds``.
    """
    from lohard.lo import save_samples

    if int(num) != num or num < 1:
        raise ValueError(f"num (sequences per sampler) must be an integer >= 1, got {num}")
    dist = ckpt.dist
    results = {}
    for name in samplers:
        start = time.perf_counter()
        tokens = sample(ckpt.model, num, sampler=name, steps=steps, length=dist.length,
                        schedule=schedule, k_mode=k_mode, noise=noise, noise_scale=noise_scale,
                        batch_size=batch_size, generator=seed).cpu().numpy()
        elapsed = time.perf_counter() - start
        per_seq = observation_correct(dist, tokens).mean(axis=1)
        se = float(per_seq.std(ddof=1) / np.sqrt(per_seq.size)) if per_seq.size > 1 else None
        results[name] = {"accuracy": float(per_seq.mean()), "stderr": se, "num": int(num),
                         "seconds": elapsed}
        if save_dir:
            save_samples(Path(save_dir) / f"samples_{name}.npz", dist, tokens, seed=seed,
                         config={"sampler": name, "steps": steps, "schedule": schedule,
                                 "k_mode": k_mode, "noise": noise, "noise_scale": noise_scale,
                                 "batch_size": batch_size, "checkpoint": str(ckpt.path),
                                 "checkpoint_step": ckpt.step,
                                 "distribution_hash": ckpt.dist_hash})
    return results


def _cmd_eval(args) -> int:
    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    noise = None if args.noise == "none" else args.noise
    try:
        bad = [s for s in names if s not in SAMPLERS]
        if bad:
            raise ValueError(f"unknown sampler {bad[0]!r}; valid samplers are "
                             f"{', '.join(SAMPLERS)}")
        ckpt = load_checkpoint(args.checkpoint, device=args.device)
        results = evaluate_samplers(ckpt, names, num=args.num, steps=args.steps,
                                    schedule=args.schedule, k_mode=args.k_mode, noise=noise,
                                    noise_scale=args.noise_scale, batch_size=args.batch_size,
                                    seed=args.seed, save_dir=args.save_samples)
    except ValueError as err:
        print(f"lohard eval-mdm: error: {err}", file=sys.stderr)
        return 2
    config = {k: v for k, v in vars(args).items() if k != "func"}
    report = {"checkpoint": args.checkpoint, "step": ckpt.step, "distribution": ckpt.dist.header(),
              "distribution_hash": ckpt.dist_hash, "naive_guess": 0.75 if
              ckpt.dist.family == "nae-sat" else None, "results": results,
              **provenance(config, args.seed)}
    if args.out:
        atomic_write_json(args.out, report)
    if args.json:
        print(json.dumps(to_jsonable(report)))
    else:
        print(f"checkpoint {args.checkpoint} (step {ckpt.step}), {ckpt.dist!r}")
        for name, r in results.items():
            se = "" if r["stderr"] is None else f" +- {r['stderr']:.4f}"
            print(f"{name:>9}: observation accuracy {r['accuracy']:.4f}{se} "
                  f"({r['num']} sequences, {r['seconds']:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m lohard.mdm.cli``) for the two subcommands."""
    parser = argparse.ArgumentParser(prog="lohard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
