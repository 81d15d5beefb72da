"""MDM training throughput: tokens/s and MFU of lohard's training loop against a plain eager loop.

Model ``mdm-19m`` (18.9M parameters) on L&O-NAE-SAT (20, 280) without the trailing
token (L = 300), batch 256, fresh samples every step, the continuous-time ELBO loss.
Measured in the same process, on the same model shape and data stream:

* ``eager`` (the reference): a plain PyTorch loop, ``loss = mdm_loss(model, batch)``,
  backward, ``torch.optim.AdamW`` (PyTorch's default implementation), bf16 autocast on
  CUDA (float32 on CPU), no compilation;
* ``eager-fp32`` (CUDA only): the same loop in float32;
* ``lohard``: :func:`lohard.mdm.train` itself (bf16 autocast on CUDA, gradient
  clipping, AdamW + cosine schedule, ``torch.compile`` on CUDA unless ``--no-compile``),
  timed from its own log entries (each one a host sync), the first window (compilation
  and warm-up) left out;
* ``compiled-fused`` (CUDA only): the plain loop with ``torch.compile``, bf16 autocast
  and ``AdamW(fused=True)`` (the optimiser lohard uses on CUDA), without lohard's
  gradient clipping, schedule and loss bookkeeping: what those cost per step.

FLOPs convention (stated in the output): per token ``6 * N + 12 * n_layers * d_model * L``,
with N the non-embedding parameters (all but the token embedding table; the output
head counts) and the second term the attention score and value matmuls (forward
2 * 2 * L * d per layer, backward twice that; bidirectional attention, nothing
halved). MFU = achieved FLOP/s over the device's dense bf16 peak: H100 / H200 SXM
989 TFLOP/s (NVIDIA datasheet, no sparsity), H100 PCIe 756, A100 312; other devices
need ``--peak-tflops`` (else MFU is null). Issue target: >= 2.6M tokens/s on an H100
(a comparable plain model did 1.0M eager and 2.2M with torch.compile).

Writes a JSON (``--out``) with every variant, the ratio of each to ``eager``, the
device, torch version and the FLOPs convention; the JSON is rewritten after every
variant, so a run stopped by a timeout keeps the finished ones.

``--ddp N`` (CPU) measures data-parallel training instead: ``lohard-ddp`` is
:func:`lohard.mdm.train` on N gloo ranks started by torchrun on this machine, one torch
thread each, with the same global batch, against ``lohard`` in one process on 2 threads
(``--threads`` to change), interleaved over the rounds. On one machine's cores this is
the overhead of the gradient all-reduce and of every rank drawing the whole batch, not a
speed-up: the ranks share the cores the single process uses.

Usage::

    python benchmarks/mdm_throughput.py --quick                  # CPU, seconds
    python benchmarks/mdm_throughput.py --out runs/mdm_throughput.json   # GPU
    python benchmarks/mdm_throughput.py --device cpu --ddp 2     # 2 gloo ranks vs 1 process
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

#: Dense bf16 tensor-core peaks in FLOP/s (vendor datasheets, without sparsity); the
#: first key contained in the device name wins, so the PCIe entry precedes plain H100.
PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
)
VARIANTS = ("eager", "eager-fp32", "lohard", "compiled-fused", "lohard-compile",
            "lohard-1thread", "lohard-ddp")
#: CPU-only variants: lohard.mdm.train with torch.compile, and on one torch thread.
CPU_VARIANTS = ("lohard-compile", "lohard-1thread")


@dataclasses.dataclass
class BenchConfig:
    model: str = "mdm-19m"
    dist: str = "nae-sat-20-280"  # L = 300
    batch_size: int = 256
    warmup_steps: int = 10  # untimed steps (compilation, allocator, cuDNN/cuBLAS choices)
    measure_steps: int = 40  # timed steps, a multiple of warmup_steps for the lohard log
    variants: tuple = VARIANTS
    compile: bool | None = None  # lohard variant: None -> on CUDA only
    device: str = "auto"
    seed: int = 0
    peak_tflops: float | None = None
    threads: int = 0
    rounds: int = 1  # every variant runs once per round, interleaved; medians are reported
    ddp: int = 0  # > 0: lohard on this many gloo ranks (1 thread each) against lohard alone
    out: str | None = None


QUICK = dict(model="tiny", dist="nae-sat-8-40", batch_size=8, warmup_steps=2, measure_steps=4,
             device="cpu", threads=1, variants=("eager", "lohard"))
#: ``--device cpu``: the CPU-scale Table 1 model and preset (lohard table1 --scale cpu),
#: three interleaved rounds.
CPU = dict(model="cpu-1m", dist="nae-sat-10-90-t", batch_size=64, warmup_steps=5,
           measure_steps=20, rounds=3, variants=("eager", "lohard", *CPU_VARIANTS))


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CPU, tiny model: a few seconds")
    ap.add_argument("--config", dest="model")
    ap.add_argument("--dist")
    for name, typ in (("batch-size", int), ("warmup-steps", int), ("measure-steps", int),
                      ("seed", int), ("peak-tflops", float), ("threads", int),
                      ("rounds", int)):
        ap.add_argument(f"--{name}", type=typ)
    ap.add_argument("--variants", help=f"comma-separated from {', '.join(VARIANTS)}")
    ap.add_argument("--no-compile", action="store_true", help="lohard variant without compile")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--ddp", type=int, metavar="N",
                    help="CPU: lohard on N gloo ranks (torchrun, 1 thread each) against "
                         "lohard in one process on 2 threads (--threads)")
    ap.add_argument("--out", help="JSON results file")
    args = vars(ap.parse_args(argv))
    cpu = args["device"] == "cpu" or bool(args["ddp"])
    fields = dict(QUICK) if args.pop("quick") else dict(CPU) if cpu else {}
    if args.pop("no_compile"):
        fields["compile"] = False
    v = args.pop("variants")
    if v is not None:
        names = tuple(x.strip() for x in v.split(",") if x.strip())
        bad = [x for x in names if x not in VARIANTS]
        if bad:
            raise SystemExit(f"unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}")
        fields["variants"] = names
    for k, val in args.items():
        if val is not None:
            fields[k] = val
    if fields.get("ddp"):
        fields["variants"] = ("lohard", "lohard-ddp")
        fields["threads"] = fields.get("threads") or 2
    cfg = BenchConfig(**fields)
    if cfg.ddp and (cfg.ddp < 2 or cfg.device != "cpu"):
        raise SystemExit(f"--ddp needs N >= 2 ranks and --device cpu, got {cfg.ddp}, "
                         f"{cfg.device}")
    if cfg.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {cfg.rounds}")
    if cfg.warmup_steps < 1 or cfg.measure_steps < 1 or cfg.measure_steps % cfg.warmup_steps:
        raise SystemExit("need warmup_steps >= 1 and measure_steps a positive multiple of it "
                         f"(lohard is timed from log entries every warmup_steps steps), got "
                         f"{cfg.warmup_steps}, {cfg.measure_steps}")
    return cfg


def peak_flops(device_name: str, override_tflops: float | None) -> tuple[float | None, str]:
    """Dense bf16 peak FLOP/s for the device and where the number comes from."""
    if override_tflops is not None:
        return override_tflops * 1e12, "--peak-tflops"
    for key, peak in PEAK_BF16:
        if key.lower() in device_name.lower():
            return peak, f"datasheet dense bf16 peak for {key}"
    return None, "unknown device: pass --peak-tflops for an MFU"


def flops_per_token(model, length: int) -> dict:
    """The FLOPs convention: 6 N + 12 n_layers d_model L per token (N non-embedding)."""
    n_nonemb = model.n_params - model.embed.weight.numel()
    if getattr(model, "pos", None) is not None:
        n_nonemb -= model.pos.weight.numel()
    cfg = model.config
    attn = 12 * cfg.n_layers * cfg.d_model * length
    return {"n_params": model.n_params, "n_params_nonembedding": int(n_nonemb),
            "dense": 6 * int(n_nonemb), "attention": attn, "total": 6 * int(n_nonemb) + attn,
            "convention": "6 * n_params_nonembedding + 12 * n_layers * d_model * L per token "
                          "(training: forward + backward; attention score and value matmuls, "
                          "bidirectional)"}


def _batch(dist, n: int, seed: int, step: int, device):
    import torch

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, step]))
    return torch.from_numpy(dist.sample(n, rng=rng)).to(device, non_blocking=True)


def plain_loop(cfg: BenchConfig, dist, device, *, amp: bool, compile_: bool = False,
               fused: bool = False) -> dict:
    """A plain training loop on the lohard model and loss; seconds of the timed steps."""
    import torch

    from lohard.mdm import build_model, mdm_loss, model_config

    torch.manual_seed(cfg.seed)
    mcfg = model_config(cfg.model, **({} if model_config(cfg.model).max_seq_len >= dist.length
                                      else {"max_seq_len": dist.length}))
    model = build_model(mcfg, dist).to(device)
    step_model = torch.compile(model) if compile_ else model
    kw = {"fused": True} if fused else {}
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            **kw)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    model.train()
    total = cfg.warmup_steps + cfg.measure_steps
    t_first = time.perf_counter()
    t0 = None
    losses = []
    for step in range(total):
        if step == cfg.warmup_steps:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        tokens = _batch(dist, cfg.batch_size, cfg.seed, step, device)
        ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda"
               else torch.autocast("cpu", enabled=False))
        with ctx:
            loss = mdm_loss(step_model, tokens, generator=gen, check=False)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    final = float(torch.stack(losses[-cfg.warmup_steps:]).mean())
    if not math.isfinite(final):
        raise FloatingPointError(f"training loss is {final}")
    return {"seconds": t1 - t0, "warmup_seconds": t0 - t_first, "steps": cfg.measure_steps,
            "final_loss": final, "model": model}


def lohard_loop(cfg: BenchConfig, dist_spec: str, device, compile_: bool) -> dict:
    """lohard.mdm.train, timed from its log entries (first window left out)."""
    from lohard.mdm import TrainConfig, model_config, resolve_distribution, train

    total = cfg.warmup_steps + cfg.measure_steps
    length = resolve_distribution(dist_spec, seed=cfg.seed).length
    over = {} if model_config(cfg.model).max_seq_len >= length else {"max_seq_len": length}
    tcfg = TrainConfig(dist=dist_spec, dist_seed=cfg.seed, model=cfg.model,
                       model_overrides=over, steps=total, batch_size=cfg.batch_size,
                       seed=cfg.seed, device=device.type, amp=True, compile=compile_,
                       eval_every=0, eval_size=0, log_every=cfg.warmup_steps, ckpt_every=0,
                       warmup_steps=min(100, total - 1))
    entries = []
    t_first = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(tcfg, tmp, progress=False, log=entries.append)
    pts = [(e["step"], e["seconds"]) for e in entries if "seconds" in e]
    if not pts:  # a data-parallel rank other than 0: it logs nothing
        return {}
    (s0, t0), (s1, t1) = pts[0], pts[-1]
    return {"seconds": t1 - t0, "warmup_seconds": t0, "steps": s1 - s0,
            "final_loss": entries[-1]["train_loss"], "compile": compile_,
            "amp": device.type == "cuda", "optimizer": "torch.optim.AdamW, fused=True on "
            "CUDA (lohard.mdm.train's choice), the default implementation on CPU",
            "total_call_seconds": time.perf_counter() - t_first}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_loop(cfg: BenchConfig) -> dict:
    """``lohard_loop`` on ``cfg.ddp`` gloo ranks started by torchrun (one thread each);
    rank 0's result, timed from its log entries as for one process."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "config.json")
        with open(spec, "w", encoding="utf-8") as fh:
            json.dump(dataclasses.asdict(cfg), fh)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
               str(cfg.ddp), "--master_addr", "127.0.0.1", "--master_port",
               str(_free_port()), os.path.abspath(__file__), "--ddp-worker", spec]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"torchrun exited with {proc.returncode}: {tail}")
        with open(spec + ".result.json", encoding="utf-8") as fh:
            res = json.load(fh)
    return {**res, "ranks": cfg.ddp, "threads_per_rank": 1, "backend": "gloo",
            "total_launch_seconds": time.perf_counter() - t0}


def ddp_worker(spec: str) -> int:
    """One torchrun rank of :func:`ddp_loop`: rank 0 writes ``spec.result.json``."""
    import torch

    with open(spec, encoding="utf-8") as fh:
        fields = json.load(fh)
    cfg = BenchConfig(**{**fields, "variants": tuple(fields["variants"])})
    torch.set_num_threads(1)
    res = lohard_loop(cfg, cfg.dist, torch.device("cpu"), False)
    if os.environ.get("RANK", "0") == "0":
        with open(spec + ".result.json", "w", encoding="utf-8") as fh:
            json.dump(res, fh)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--ddp-worker"]:
        return ddp_worker(argv[1])
    cfg = parse(argv)
    import torch

    from lohard._util import atomic_write_json, provenance
    from lohard.mdm import resolve_distribution, select_device

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = select_device(cfg.device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak, peak_src = peak_flops(name, cfg.peak_tflops)
    if not cuda and cfg.peak_tflops is None:
        peak, peak_src = None, "CPU: no bf16 tensor-core peak; pass --peak-tflops for an MFU"
    dist = resolve_distribution(cfg.dist, seed=cfg.seed)
    length = dist.length
    tokens_per_step = cfg.batch_size * length
    compile_lohard = cuda if cfg.compile is None else cfg.compile
    gpu_only = ("eager-fp32", "compiled-fused")
    variants = [v for v in cfg.variants
                if (cuda or v not in gpu_only) and (not cuda or v not in CPU_VARIANTS)]
    # The reference first, then lohard, then the extras (a timeout keeps the main pair).
    order = [v for v in ("eager", "lohard", *gpu_only, *CPU_VARIANTS, "lohard-ddp")
             if v in variants]
    report = {**provenance(dataclasses.asdict(cfg), cfg.seed), "device": f"{device} ({name})",
              "torch": torch.__version__, "cuda": torch.version.cuda, "L": length,
              "batch_size": cfg.batch_size, "tokens_per_step": tokens_per_step,
              "peak_flops": peak, "peak_source": peak_src,
              "target": ("issue: >= 2.6e6 tokens/s on an H100 (plain model: 1.0e6 eager, "
                         "2.2e6 compiled)" if cuda else "lohard >= 1.0x the eager loop"),
              "load_average_at_start": list(os.getloadavg()), "cpu_count": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "rounds": cfg.rounds,
              "results": {}}
    fpt = None

    def record(key: str, res: dict) -> None:
        nonlocal fpt
        model = res.pop("model", None)
        if model is not None and fpt is None:
            fpt = flops_per_token(model, length)
        tps = res["steps"] * tokens_per_step / res["seconds"]
        res["tokens_per_second"] = tps
        res["steps_per_second"] = res["steps"] / res["seconds"]
        report["results"][key] = res
        if fpt is not None:
            report["flops_per_token"] = fpt
            for r in report["results"].values():
                if "error" in r:
                    continue
                r["flop_per_second"] = r["tokens_per_second"] * fpt["total"]
                r["mfu"] = None if peak is None else r["flop_per_second"] / peak
        ref = report["results"].get("eager")
        if ref is not None and "error" not in ref:
            report["ratios_vs_eager"] = {k: r["tokens_per_second"] / ref["tokens_per_second"]
                                         for k, r in report["results"].items()
                                         if "error" not in r}
        if cfg.out:
            atomic_write_json(cfg.out, report)
        mfu = report["results"][key].get("mfu")
        print(f"{key:>15}: {tps / 1e6:8.3f} M tokens/s, {res['steps_per_second']:7.2f} steps/s"
              + ("" if mfu is None else f", MFU {100 * mfu:5.1f}%")
              + f" (warm-up {res['warmup_seconds']:.1f} s, final loss {res['final_loss']:.4f})",
              flush=True)

    print(f"device {device} ({name}); {cfg.model} on {cfg.dist} (L = {length}), batch "
          f"{cfg.batch_size}; {cfg.warmup_steps} warm-up + {cfg.measure_steps} timed steps; "
          f"peak {'n/a' if peak is None else f'{peak / 1e12:.0f} TFLOP/s'} ({peak_src})",
          flush=True)
    def run_variant(key: str) -> dict:
        if key == "eager":
            return {**plain_loop(cfg, dist, device, amp=True), "amp": cuda, "compile": False,
                    "optimizer": "torch.optim.AdamW (default)"}
        if key == "eager-fp32":
            return {**plain_loop(cfg, dist, device, amp=False), "amp": False,
                    "compile": False, "optimizer": "torch.optim.AdamW (default)"}
        if key == "compiled-fused":
            return {**plain_loop(cfg, dist, device, amp=True, compile_=True, fused=True),
                    "amp": True, "compile": True, "optimizer": "torch.optim.AdamW(fused=True)"}
        if key == "lohard-compile":
            return lohard_loop(cfg, cfg.dist, device, True)
        if key == "lohard-ddp":
            return ddp_loop(cfg)
        if key == "lohard-1thread":
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return {**lohard_loop(cfg, cfg.dist, device, compile_lohard), "threads": 1}
            finally:
                torch.set_num_threads(threads)
        return lohard_loop(cfg, cfg.dist, device, compile_lohard)

    # Rounds interleave the variants, so that a change of load hits all of them alike; each
    # variant reports the median of its rounds' seconds.
    runs: dict[str, list] = {}
    for rnd in range(cfg.rounds):
        for key in order:
            if key in report["results"] and "error" in report["results"][key]:
                continue
            try:
                res = run_variant(key)
            except Exception as err:  # a failed variant (e.g. compilation) keeps the rest
                report["results"][key] = {"error": f"{type(err).__name__}: {err}"}
                print(f"{key:>15}: FAILED ({type(err).__name__}: {err})", flush=True)
                if cfg.out:
                    atomic_write_json(cfg.out, report)
                continue
            runs.setdefault(key, []).append(res)
            model = next((r["model"] for r in runs[key] if "model" in r), None)
            done = runs[key]
            secs = sorted(r["seconds"] for r in done)
            med = {**{k: v for k, v in done[-1].items() if k != "model"},
                   "seconds": float(np.median(secs)),
                   "round_tokens_per_second": [r["steps"] * tokens_per_step / r["seconds"]
                                               for r in done]}
            if model is not None:
                med["model"] = model
            if cfg.rounds > 1:
                print(f"round {rnd + 1}/{cfg.rounds}:", end=" ", flush=True)
            record(key, med)
            if cuda:
                torch.cuda.empty_cache()
    ratios = report.get("ratios_vs_eager", {})
    if "lohard" in ratios:
        print(f"lohard / eager = {ratios['lohard']:.2f}x", flush=True)
    res = report["results"]
    if cfg.ddp and all(k in res and "error" not in res[k] for k in ("lohard", "lohard-ddp")):
        ratio = res["lohard-ddp"]["tokens_per_second"] / res["lohard"]["tokens_per_second"]
        report["ratio_ddp_vs_single"] = ratio
        if cfg.out:
            atomic_write_json(cfg.out, report)
        print(f"{cfg.ddp} gloo ranks x 1 thread / 1 process x {cfg.threads} threads = "
              f"{ratio:.2f}x (medians of {cfg.rounds} rounds; load average at start "
              f"{report['load_average_at_start'][0]:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
