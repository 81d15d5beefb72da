"""CLI hooks: ``lohard train-mdm ...`` and ``lohard eval-mdm CHECKPOINT ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lohard import _argtypes as T
from lohard._util import atomic_write_json, provenance, to_jsonable
from lohard.mdm._config import MODEL_CONFIGS, TrainConfig
from lohard.mdm._distributed import env_world
from lohard.mdm._metrics import observation_correct
from lohard.mdm._sampling import K_MODES, PAPER_SAMPLERS, SAMPLERS, sample
from lohard.mdm._train import load_checkpoint, train


def register(subparsers) -> None:
    """Add the ``train-mdm`` and ``eval-mdm`` subcommands to an argparse subparsers object."""
    d = TrainConfig()
    tp = subparsers.add_parser(
        "train-mdm", help="train a masked diffusion model on an L&O distribution",
        description="Train an MDM on fresh samples of an L&O distribution each step; writes "
                    "checkpoint.pt (atomic, resumable), config.json and log.jsonl to --out. "
                    "Under torchrun (torchrun --nproc_per_node N -m lohard train-mdm ...) "
                    "the N ranks train one model with DistributedDataParallel, each on its "
                    "slice of the global --batch-size; rank 0 writes the files.")
    tp.add_argument("--dist", default=d.dist,
                    help="nae-sat-N-P (append -t for the App. C.2.1 trailing token) or a saved "
                         f"distribution .npz (default {d.dist})")
    tp.add_argument("--dist-seed", type=T.SEED, default=d.dist_seed,
                    help="structure seed of nae-sat-N-P (default 0)")
    tp.add_argument("--config", default=d.model, choices=tuple(MODEL_CONFIGS),
                    help=f"model shape (default {d.model})")
    tp.add_argument("--steps", type=T.POSITIVE, default=d.steps,
                    help=f"optimiser steps (default {d.steps})")
    tp.add_argument("--batch-size", type=T.POSITIVE, default=d.batch_size,
                    help=f"sequences per step, freshly sampled; under torchrun the global "
                         f"batch, split evenly over the ranks (default {d.batch_size})")
    tp.add_argument("--loss", choices=("elbo", "eq1"), default=d.loss,
                    help="elbo: the continuous-time ELBO, weight 1/t on each masked token "
                         "(Prop. 2.1); eq1: Eq. (1), weight 1/|M| over uniform mask sizes "
                         f"(default {d.loss})")
    tp.add_argument("--schedule", choices=("linear", "cosine"), default=d.schedule,
                    help="noise schedule alpha_t of the forward process: linear 1 - t or "
                         f"cosine (default {d.schedule})")
    tp.add_argument("--lr", type=T.POSITIVE_REAL, default=d.lr,
                    help=f"peak AdamW learning rate, cosine decay (default {d.lr:g})")
    tp.add_argument("--min-lr", type=T.NONNEG_REAL, default=d.min_lr,
                    help=f"final learning rate (default {d.min_lr:g})")
    tp.add_argument("--warmup-steps", type=T.COUNT, default=d.warmup_steps,
                    help=f"linear warm-up steps (default {d.warmup_steps})")
    tp.add_argument("--weight-decay", type=T.NONNEG_REAL, default=d.weight_decay,
                    help=f"AdamW weight decay on the weight matrices (default {d.weight_decay:g})")
    tp.add_argument("--grad-clip", type=T.POSITIVE_REAL, default=d.grad_clip,
                    help=f"gradient norm clipping (default {d.grad_clip:g})")
    tp.add_argument("--max-seq-len", type=T.POSITIVE, default=None,
                    help="override the model's max_seq_len (needed when the distribution's "
                         "length L exceeds the config's)")
    tp.add_argument("--seed", type=T.SEED, default=d.seed, help="root seed (default 0)")
    tp.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device,
                    help="auto: CUDA when present")
    tp.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    tp.add_argument("--compile", action="store_true", help="torch.compile the model")
    tp.add_argument("--eval-every", type=T.COUNT, default=d.eval_every,
                    help=f"steps between held-out loss evaluations, 0: none (default "
                         f"{d.eval_every})")
    tp.add_argument("--eval-size", type=T.POSITIVE, default=d.eval_size,
                    help=f"held-out sequences per evaluation (default {d.eval_size})")
    tp.add_argument("--log-every", type=T.COUNT, default=d.log_every,
                    help=f"steps between log lines, 0: none (default {d.log_every})")
    tp.add_argument("--ckpt-every", type=T.COUNT, default=d.ckpt_every,
                    help=f"steps between checkpoints, 0: only at the end (default "
                         f"{d.ckpt_every})")
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
    ep.add_argument("--num", type=T.integer(2), default=1000,
                    help="sequences per sampler (default 1000)")
    ep.add_argument("--steps", type=T.POSITIVE, default=50,
                    help="reverse steps T (default 50, App. D.2)")
    ep.add_argument("--schedule", choices=("linear", "cosine"), default="linear",
                    help="noise schedule of the reverse steps (default linear)")
    ep.add_argument("--k-mode", choices=K_MODES, default="deterministic",
                    help="adaptive samplers: K tokens per step, the vanilla expectation "
                         "(deterministic) or a binomial draw (App. D.1.2)")
    ep.add_argument("--noise", choices=("none", "gumbel", "gaussian"), default="none",
                    help="noise on the adaptive position scores (App. D.1.2, D.2)")
    ep.add_argument("--noise-scale", type=T.NONNEG_REAL, default=0.5,
                    help="coefficient of --noise (default 0.5)")
    ep.add_argument("--batch-size", type=T.POSITIVE, default=1024,
                    help="sequences per forward pass (default 1024)")
    ep.add_argument("--seed", type=T.SEED, default=0, help="sampling seed (default 0)")
    ep.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: CUDA when present")
    ep.add_argument("--out", default=None, help="write the results JSON here")
    ep.add_argument("--save-samples", default=None,
                    help="folder for the generated tokens (one .npz per sampler)")
    ep.add_argument("--json", action="store_true", help="print JSON (no progress bars)")
    ep.add_argument("--quiet", action="store_true", help="no progress bars")
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
        main_rank = env_world().is_main
    except ValueError as err:
        print(f"lohard train-mdm: error: {err}", file=sys.stderr)
        return 2
    if not main_rank:  # under torchrun: rank 0 reports for all
        return 0
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
                      save_dir: str | None = None, progress: bool = False) -> dict:
    """Observation accuracy of each sampler on a loaded checkpoint (library side of eval-mdm).

    Parameters
    ----------
    ckpt : Checkpoint
    samplers : list of str
    num, steps, schedule, k_mode, noise, noise_scale, batch_size, seed
        As in :func:`lohard.mdm.sample`; each sampler uses a generator seeded ``seed``.
    save_dir : str, optional
        Save each sampler's tokens to ``save_dir/samples_<sampler>.npz``.
    progress : bool
        A tqdm bar per sampler on stderr.

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
                        batch_size=batch_size, generator=seed,
                        progress=f"eval-mdm {name}" if progress else False).cpu().numpy()
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
        if not names:
            raise ValueError(f"--samplers names no sampler; choose from {', '.join(SAMPLERS)}")
        bad = [s for s in names if s not in SAMPLERS]
        if bad:
            raise ValueError(f"unknown sampler {bad[0]!r}; valid samplers are "
                             f"{', '.join(SAMPLERS)}")
        ckpt = load_checkpoint(args.checkpoint, device=args.device)
        results = evaluate_samplers(ckpt, names, num=args.num, steps=args.steps,
                                    schedule=args.schedule, k_mode=args.k_mode, noise=noise,
                                    noise_scale=args.noise_scale, batch_size=args.batch_size,
                                    seed=args.seed, save_dir=args.save_samples,
                                    progress=not (args.json or args.quiet))
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
