"""Figure 2 (right, L&O part): an MDM's error per masking problem, latent vs observation positions.

For an MDM trained on L&O-NAE-SAT (default (N, P) = (20, 280), App. C.2.1) this
draws, for every l in ``--ells`` (default 1..N-1), ``--masks-per-l`` sequences
x0 ~ p_data and App. C.2.1 masks (:func:`lohard.lo.protocol_mask`: l uniform
latents and l P / N uniform observations masked), and at every masked position i
compares the model's :math:`\\log p_\\theta(x_0^i \\mid x_0[M])` with a reference
posterior:

* ``exact``: the Bayes posterior :math:`p_{data}(x_0^i \\mid x_0[M])` by enumeration
  (:func:`lohard.lo.exact_posterior`; used when N <= ``--max-exact-n``, default 24);
* ``bp``: the belief-propagation proxy (:func:`lohard.lo.bp_posterior`), always;
* ``proxy``: the paper's own proxy, a longer-trained MDM (``--proxy-checkpoint``).

Error (Sec. 3.3, the metric of Fig. 2): the squared log-likelihood gap at the true
value, :math:`(\\log p_\\theta(x_0^i \\mid x_0[M]) - \\log p_{ref}(x_0^i \\mid
x_0[M]))^2`, averaged per l over the masked latent positions and, separately, the
masked observation positions. KL(p_ref || p_theta) per position is recorded too.
Standard errors treat the sequence as the unit (positions of one sequence share
the mask). Also reported: BP's agreement with the exact posterior (mean total
variation per masked position) and, with a proxy, the proxy's own error against
the exact posterior. The paper's Fig. 2 shows l = 11 (App. C.2.1); the histogram
panel shows the per-position errors at that l.

Model: ``checkpoint``, or by default the Figure 2 preset of the Table 1 run of the same
scale (:mod:`lohard.experiments.table1`; ``cpu``: (N, P) = (10, 110), ``gpu``: (20, 280)),
trained there if it is not yet: the model measured is its checkpoint at half the steps,
and the final checkpoint (trained twice as long) is the paper's proxy. Posteriors are
computed in ``workers`` processes.

Writes ``<out_dir>/fig2_per_mask_error.png``, ``.json`` and ``.csv``.

References
----------
Kim et al. (ICML 2025), Sec. 3.3, Fig. 2 (right), App. C.2.1.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

#: Masks per l in App. C.2.1 ("repeated 1000 times").
PAPER_MASKS_PER_L = 1000
#: The l shown in the paper's Fig. 2 (App. C.2.1).
PAPER_ELL = 11
#: Position kinds, in plotting order.
KINDS = ("latent", "observation")


@dataclasses.dataclass
class Fig2Config:
    """Settings of one Figure 2 measurement (defaults: the CPU-scale Table 1 model)."""

    scale: str = "cpu"  # cpu | gpu: whose Table 1 run holds the model (without checkpoint)
    checkpoint: str | None = None  # a lohard train-mdm run instead of the Table 1 model
    proxy_checkpoint: str | None = None  # a longer-trained MDM (the paper's proxy)
    ells: tuple | None = None  # None: 1..N-1
    masks_per_l: int = PAPER_MASKS_PER_L
    max_exact_n: int = 24  # enumeration of up to 2^24 states per component
    bp: bool = True
    seed: int = 0  # data and masks: SeedSequence([seed, l])
    device: str = "auto"
    amp: bool = False  # float32 forward: the errors are small differences of logs
    batch_size: int = 256
    workers: int = 0  # posterior processes; 0: min(16, CPUs)
    hist_ell: int | None = None  # None: 11 if it is among the l's, else the middle one
    table1_overrides: dict = dataclasses.field(default_factory=dict)  # of the Table 1 run
    out_dir: str = "figures"

    def __post_init__(self) -> None:
        from lohard._util import require_int

        if self.scale not in ("cpu", "gpu"):
            raise ValueError(f"unknown scale {self.scale!r}; choose one of cpu, gpu")
        self.masks_per_l = require_int(self.masks_per_l, "masks_per_l", minimum=1)
        self.batch_size = require_int(self.batch_size, "batch_size", minimum=1)
        self.workers = require_int(self.workers, "workers", minimum=0)
        if self.ells is not None:
            self.ells = tuple(require_int(x, "l") for x in self.ells)
            if not self.ells:
                raise ValueError("ells must hold at least one l")


# -- measurement ---------------------------------------------------------------------------
def model_log_probs(model, tokens: np.ndarray, mask: np.ndarray, *, batch_size: int = 256,
                    amp: bool = False) -> np.ndarray:
    """log p_theta(x^i = v | x_0[unmasked]) at every position: float64 (n, L, V)."""
    import torch

    from lohard.lo import apply_mask

    dev = next(iter(list(model.parameters()) + list(model.buffers()))).device
    inp = torch.from_numpy(apply_mask(tokens, mask, model.mask_id))
    out = []
    was = model.training
    model.eval()
    with torch.no_grad():
        for lo in range(0, inp.shape[0], batch_size):
            x = inp[lo:lo + batch_size].to(dev)
            ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if amp and dev.type == "cuda"
                   else torch.autocast("cpu", enabled=False))
            with ctx:
                logits = model(x)
            out.append(torch.log_softmax(logits.double(), dim=-1).cpu().numpy())
    model.train(was)
    return np.concatenate(out, axis=0) if out else np.zeros((0, tokens.shape[1], 0))


def position_errors(logp: np.ndarray, ref_probs: np.ndarray, tokens: np.ndarray) -> dict:
    """Per-position errors of ``logp`` (n, L, V) against reference laws (n, L, V).

    Returns ``sq`` = (log p(x_true) - log p_ref(x_true))^2 and ``kl`` = KL(p_ref || p),
    both (n, L) float64 (inf where p gives zero probability to a value p_ref allows).
    """
    t = tokens[..., None]
    lp = np.take_along_axis(logp, t, axis=-1)[..., 0]
    # 0 * log 0 terms are dropped by the where; silence their nan/inf intermediates.
    with np.errstate(divide="ignore", invalid="ignore"):
        logref = np.log(ref_probs)
        lr = np.take_along_axis(logref, t, axis=-1)[..., 0]
        terms = np.where(ref_probs > 0, ref_probs * (logref - logp), 0.0)
    with np.errstate(invalid="ignore"):
        sq = (lp - lr) ** 2
    return {"sq": sq, "kl": terms.sum(axis=-1)}


def summarize(values: np.ndarray, sel: np.ndarray) -> dict:
    """Mean of ``values`` over the selected positions, SE with sequences as the unit.

    values, sel : (n, L) float / bool. Non-finite values are counted and left out.
    """
    finite = np.isfinite(values)
    use = sel & finite
    count = use.sum(axis=1)
    rows = count > 0
    total = float(np.where(use, values, 0.0).sum())
    n_pos = int(use.sum())
    out = {"mean": total / n_pos if n_pos else None, "n_positions": n_pos,
           "n_nonfinite": int((sel & ~finite).sum()), "stderr": None}
    if rows.sum() > 1:
        # Ratio estimator: per-sequence sums over per-sequence counts, SE by the delta method.
        s = np.where(use, values, 0.0).sum(axis=1)[rows]
        c = count[rows].astype(np.float64)
        r = s.sum() / c.sum()
        resid = s - r * c
        out["stderr"] = float(np.sqrt((resid ** 2).sum() / (rows.sum() - 1) / rows.sum())
                              / c.mean())
    return out


def _ell_data(dist, ell: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ss = np.random.SeedSequence([int(seed), int(ell)])
    data_ss, mask_ss = ss.spawn(2)
    tokens = dist.sample(n, rng=np.random.default_rng(data_ss))
    from lohard.lo import protocol_mask

    mask = protocol_mask(dist, n, ell, rng=np.random.default_rng(mask_ss))
    return tokens, mask


def _chunks(n: int, parts: int) -> list[slice]:
    size = max(1, math.ceil(n / max(1, parts)))
    return [slice(lo, min(n, lo + size)) for lo in range(0, n, size)]


class _Serial:
    """A stand-in for an executor that runs calls at once (workers = 1)."""

    def submit(self, fn, *args, **kwargs):
        result = fn(*args, **kwargs)

        class _Done:
            def result(self_inner):
                return result

        return _Done()

    def shutdown(self, wait=True):
        return None


def measure(model, dist, *, ells, masks_per_l: int, seed: int = 0, exact: bool = True,
            bp: bool = True, proxy=None, workers: int = 1, batch_size: int = 256,
            amp: bool = False, hist_ell: int | None = None, say=print) -> dict:
    """Per-l error summaries of ``model`` (and ``proxy``) against the reference posteriors.

    Parameters
    ----------
    model : MaskedDiffusionTransformer or ExactOracle
    dist : LODistribution
    ells : sequence of int
        Masked latent counts l (App. C.2.1 masks).
    masks_per_l : int
        Sequences (each with its own mask) per l.
    seed : int
        Data and masks of l come from SeedSequence([seed, l]).
    exact, bp : bool
        Which reference posteriors to compute.
    proxy : model, optional
        A longer-trained MDM: the model is also scored against it, and it against exact.
    workers : int
        Processes for the posteriors (1: in this process).
    hist_ell : int, optional
        l whose per-position errors are kept for the histogram.

    Returns
    -------
    dict with ``per_l`` (list of dicts), ``hist`` (per-position errors at ``hist_ell``).
    """
    from lohard.lo import bp_posterior, exact_posterior

    if not (exact or bp or proxy is not None):
        raise ValueError("no reference: enable exact, bp or give a proxy model")
    ells = [int(x) for x in ells]
    for ell in ells:
        if not 0 <= ell <= dist.n_latent:
            raise ValueError(f"l must lie in [0, N = {dist.n_latent}], got {ell}")
    lat, obs = dist.latent_positions, dist.observed_positions
    kind_pos = {"latent": lat, "observation": obs}
    if workers > 1:
        # Compile (and cache) the Numba kernels here first, so that the workers load
        # them from the cache instead of each compiling them at once.
        tok1, mask1 = _ell_data(dist, max(1, min(ells)), 1, seed)
        if exact:
            exact_posterior(dist, tok1, mask1)
        if bp:
            bp_posterior(dist, tok1, mask1, rng=0, warn=False)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    else:
        pool = _Serial()
    try:
        # Submit every posterior job first, so the workers run while the model scores.
        jobs = {}
        data = {}
        for ell in ells:
            tokens, mask = _ell_data(dist, ell, masks_per_l, seed)
            data[ell] = (tokens, mask)
            parts = _chunks(masks_per_l, workers * 2 if workers > 1 else 1)
            if exact:
                jobs[ell, "exact"] = [pool.submit(exact_posterior, dist, tokens[s], mask[s])
                                      for s in parts]
            if bp:
                # BP convergence is reported per l in the outputs (bp_converged).
                jobs[ell, "bp"] = [pool.submit(bp_posterior, dist, tokens[s], mask[s], rng=0,
                                               warn=False) for s in parts]
        per_l = []
        hist = None
        for ell in ells:
            t0 = time.perf_counter()
            tokens, mask = data[ell]
            logp = model_log_probs(model, tokens, mask, batch_size=batch_size, amp=amp)
            logp_proxy = (None if proxy is None else
                          model_log_probs(proxy, tokens, mask, batch_size=batch_size, amp=amp))
            refs = {}
            conv = {}
            for name in ("exact", "bp"):
                if (ell, name) in jobs:
                    posts = [f.result() for f in jobs.pop((ell, name))]
                    refs[name] = np.concatenate([p.probs for p in posts], axis=0)
                    conv[name] = float(np.concatenate([p.converged for p in posts]).mean())
            entry = {"l": ell, "n_obs_masked": int(mask[0, obs].sum()) if len(mask) else 0,
                     "sequences": int(tokens.shape[0]), "errors": {}, "kl": {}, "tv": {},
                     "bp_converged": conv.get("bp")}
            pairs = [(f"model_vs_{r}", logp, refs[r]) for r in refs]
            if logp_proxy is not None:
                pairs.append(("model_vs_proxy", logp, np.exp(logp_proxy)))
                if "exact" in refs:
                    pairs.append(("proxy_vs_exact", logp_proxy, refs["exact"]))
            keep = {}
            for name, lp, ref in pairs:
                err = position_errors(lp, ref, tokens)
                keep[name] = err["sq"]
                for kind in KINDS:
                    sel = np.zeros_like(mask)
                    sel[:, kind_pos[kind]] = mask[:, kind_pos[kind]]
                    entry["errors"].setdefault(name, {})[kind] = summarize(err["sq"], sel)
                    entry["kl"].setdefault(name, {})[kind] = summarize(err["kl"], sel)
            if "exact" in refs and "bp" in refs:
                tv = 0.5 * np.abs(refs["exact"] - refs["bp"]).sum(axis=-1)
                for kind in KINDS:
                    sel = np.zeros_like(mask)
                    sel[:, kind_pos[kind]] = mask[:, kind_pos[kind]]
                    entry["tv"].setdefault("bp_vs_exact", {})[kind] = summarize(tv, sel)
            if ell == hist_ell:
                hist = {"l": ell}
                for name, sq in keep.items():
                    hist[name] = {kind: sq[:, kind_pos[kind]][mask[:, kind_pos[kind]]].tolist()
                                  for kind in KINDS}
            entry["seconds"] = time.perf_counter() - t0
            per_l.append(entry)
            main_ref = "model_vs_exact" if "model_vs_exact" in entry["errors"] else next(
                iter(entry["errors"]))
            e = entry["errors"][main_ref]
            say(f"  l = {ell:3d}: {main_ref} latent {_fmt(e['latent']['mean'])}, observation "
                f"{_fmt(e['observation']['mean'])}"
                + (f"; BP-exact TV latent {_fmt(entry['tv']['bp_vs_exact']['latent']['mean'])}"
                   if entry["tv"] else ""))
    finally:
        pool.shutdown(wait=True)
    return {"per_l": per_l, "hist": hist}


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


# -- figure --------------------------------------------------------------------------------
LABELS = {"model_vs_exact": "MDM vs exact posterior", "model_vs_bp": "MDM vs BP proxy",
          "model_vs_proxy": "MDM vs long-trained MDM (paper's proxy)",
          "proxy_vs_exact": "long-trained MDM vs exact"}
STYLES = {"model_vs_exact": ("C0", "-"), "model_vs_bp": ("C1", "--"),
          "model_vs_proxy": ("C2", "-."), "proxy_vs_exact": ("C3", ":")}


def plot(result: dict, dist, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lohard._util import atomic_write

    per_l = result["per_l"]
    ells = [e["l"] for e in per_l]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    names = [n for n in LABELS if per_l and n in per_l[0]["errors"]]
    for ax, kind in zip(axes[0], KINDS, strict=True):
        positive = True
        for name in names:
            m = [e["errors"][name][kind]["mean"] for e in per_l]
            s = [e["errors"][name][kind]["stderr"] or 0.0 for e in per_l]
            if any(v is None for v in m):
                continue
            c, ls = STYLES[name]
            ax.errorbar(ells, m, yerr=s, color=c, ls=ls, marker="o", ms=3, capsize=2,
                        label=LABELS[name])
            positive &= min(m) > 0
        if positive and names:
            ax.set_yscale("log")
        if dist.n_latent > PAPER_ELL:
            ax.axvline(PAPER_ELL, color="grey", ls=":", lw=1, label="l = 11 (paper's Fig. 2)")
        ax.set_xlabel("l = number of masked latents (App. C.2.1 masks, l P/N observations)")
        ax.set_ylabel(r"mean $(\log p_\theta(x_0^i|x_0[M]) - \log p_{ref}(x_0^i|x_0[M]))^2$")
        ax.set_title(f"masked {kind} positions")
        ax.legend(fontsize=7)
    ax = axes[1, 0]
    if per_l and per_l[0]["tv"]:
        for kind, c in zip(KINDS, ("C4", "C5"), strict=True):
            ax.plot(ells, [e["tv"]["bp_vs_exact"][kind]["mean"] for e in per_l], color=c,
                    marker="o", ms=3, label=f"BP vs exact, {kind} positions")
        ax.set_ylabel("mean total variation per masked position")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no exact posterior (N too large):\nBP is the only reference",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("l = number of masked latents")
    ax.set_title("BP proxy against the exact posterior")
    ax = axes[1, 1]
    hist = result.get("hist")
    if hist:
        name = "model_vs_exact" if "model_vs_exact" in hist else next(
            k for k in hist if k != "l")
        vals = [np.asarray(hist[name][k], dtype=np.float64) for k in KINDS]
        vals = [v[np.isfinite(v)] for v in vals]
        top = max((v.max() for v in vals if v.size), default=1.0)
        bins = np.linspace(0.0, top if top > 0 else 1.0, 40)
        for kind, v, alpha_ in zip(KINDS, vals, (0.8, 0.5), strict=True):
            ax.hist(v, bins=bins, alpha=alpha_, density=True,
                    label=f"{kind} positions (mean {v.mean() if v.size else float('nan'):.3g})")
        ax.set_yscale("log")
        ax.set_xlabel(f"per-position squared log-prob error, {LABELS[name]}")
        ax.set_ylabel("density")
        ax.set_title(f"error distribution at l = {hist['l']}")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    plt.close(fig)


def binned_hist(hist: dict | None, bins: int = 40) -> dict | None:
    """Histogram counts (shared linear bins per comparison) of the per-position errors."""
    if not hist:
        return None
    out = {"l": hist["l"], "bins": bins}
    for name, by_kind in hist.items():
        if name == "l":
            continue
        vals = {k: np.asarray(v, dtype=np.float64) for k, v in by_kind.items()}
        finite = {k: v[np.isfinite(v)] for k, v in vals.items()}
        top = max((v.max() for v in finite.values() if v.size), default=1.0)
        edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
        out[name] = {"edges": edges.tolist()}
        for k, v in finite.items():
            out[name][k] = {"counts": np.histogram(v, bins=edges)[0].tolist(),
                            "n": int(v.size), "n_nonfinite": int(vals[k].size - v.size),
                            "quantiles_10_50_90": (np.quantile(v, [0.1, 0.5, 0.9]).tolist()
                                                   if v.size else None)}
    return out


def write_csv(result: dict, path: Path, meta: dict) -> None:
    from lohard._util import atomic_write_text, provenance_comment

    buf = io.StringIO()
    buf.write(provenance_comment("lohard fig2", meta))
    w = csv.writer(buf)
    w.writerow(["l", "comparison", "positions", "mean_sq_logprob_error", "stderr",
                "mean_kl", "n_positions", "n_nonfinite", "sequences"])
    for e in result["per_l"]:
        for name, by_kind in e["errors"].items():
            for kind in KINDS:
                s = by_kind[kind]
                w.writerow([e["l"], name, kind, s["mean"], s["stderr"],
                            e["kl"][name][kind]["mean"], s["n_positions"], s["n_nonfinite"],
                            e["sequences"]])
        for name, by_kind in e["tv"].items():
            for kind in KINDS:
                s = by_kind[kind]
                w.writerow([e["l"], f"{name}_tv", kind, s["mean"], s["stderr"], None,
                            s["n_positions"], s["n_nonfinite"], e["sequences"]])
    atomic_write_text(path, buf.getvalue())


# -- main ----------------------------------------------------------------------------------
def check_ells(ells, n_latent: int) -> None:
    """Every requested l must lie in [0, N]."""
    bad = [e for e in (ells or ()) if not 0 <= e <= n_latent]
    if bad:
        raise ValueError(f"l must lie in [0, N = {n_latent}], got {bad[0]}")


def get_models(cfg: Fig2Config, device, say):
    """(model checkpoint, proxy checkpoint or None, where they came from).

    Without ``cfg.checkpoint``: the Table 1 run of ``cfg.scale`` for its Figure 2 preset,
    trained (or resumed) first; the model is its half-way snapshot, the proxy the final
    checkpoint.
    """
    from lohard.experiments import table1
    from lohard.mdm import load_checkpoint, snapshot_path

    if cfg.checkpoint:
        ckpt = load_checkpoint(cfg.checkpoint, device=device)
        proxy = (None if not cfg.proxy_checkpoint else
                 load_checkpoint(cfg.proxy_checkpoint, device=device, dist=ckpt.dist))
        return ckpt, proxy, {"checkpoint": cfg.checkpoint,
                             "proxy_checkpoint": cfg.proxy_checkpoint}
    t1 = table1.table1_config(cfg.scale, **cfg.table1_overrides)
    if t1.fig2_preset is None:
        raise ValueError("the Table 1 configuration has no Figure 2 preset (fig2_preset)")
    n, p = t1.fig2_preset
    half = table1.snapshot_steps(t1, n, p)
    if not half:
        raise ValueError(f"the Table 1 run needs >= 2 steps for a half-way snapshot, got "
                         f"{t1.steps}")
    run = table1.run_dir(t1, n, p)
    say(f"model: the Table 1 ({cfg.scale}) preset ({n}, {p}) in {run}, at step {half[0]} "
        f"(proxy: its final step {t1.steps}); training it first if needed")
    table1.train_preset(t1, n, p, say)
    ckpt = load_checkpoint(snapshot_path(run, half[0]), device=device)
    proxy = load_checkpoint(run, device=device, dist=ckpt.dist)
    return ckpt, proxy, {"checkpoint": str(snapshot_path(run, half[0])),
                         "proxy_checkpoint": str(run / "checkpoint.pt"),
                         "table1_config": dataclasses.asdict(t1)}


def run_fig2(cfg: Fig2Config, *, progress: bool = True) -> dict:
    """Measure the per-mask errors and write ``fig2_per_mask_error.{png,csv,json}``.

    Returns
    -------
    dict
        The JSON written.
    """
    import sys

    from lohard._util import atomic_write_json, provenance
    from lohard.mdm import select_device

    t_start = time.monotonic()

    def say(msg: str) -> None:
        if progress:
            print(f"[fig2 {time.monotonic() - t_start:6.1f}s] {msg}", file=sys.stderr,
                  flush=True)

    device = select_device(cfg.device)
    ckpt, proxy, source = get_models(cfg, device, say)
    dist = ckpt.dist
    check_ells(cfg.ells, dist.n_latent)
    n = dist.n_latent
    ells = list(cfg.ells) if cfg.ells else list(range(1, n))
    exact = n <= cfg.max_exact_n
    hist_ell = cfg.hist_ell if cfg.hist_ell is not None else (
        PAPER_ELL if PAPER_ELL in ells else ells[len(ells) // 2])
    workers = cfg.workers or min(16, os.cpu_count() or 1)
    say(f"{dist!r}, checkpoint step {ckpt.step}; l in {ells[0]}..{ells[-1]}, "
        f"{cfg.masks_per_l} masks per l; references: {'exact, ' if exact else ''}"
        f"{'BP' if cfg.bp else ''}{', proxy' if proxy else ''}; {workers} workers")
    result = measure(ckpt.model, dist, ells=ells, masks_per_l=cfg.masks_per_l, seed=cfg.seed,
                     exact=exact, bp=cfg.bp, proxy=None if proxy is None else proxy.model,
                     workers=workers, batch_size=cfg.batch_size, amp=cfg.amp,
                     hist_ell=hist_ell, say=say)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / "fig2_per_mask_error"
    title = (f"Error per masking problem, L&O-NAE-SAT (N, P) = ({n}, {dist.n_obs}), "
             f"{ckpt.model_config.name} MDM at step {ckpt.step}; {cfg.masks_per_l} masks per l"
             + ("" if proxy is None else f"; proxy: the MDM at step {proxy.step}")
             + ("" if exact else " (N too large for enumeration: BP reference only)"))
    plot(result, dist, title, stem.with_suffix(".png"))
    meta = provenance(dataclasses.asdict(cfg), cfg.seed)
    write_csv(result, stem.with_suffix(".csv"), meta)
    doc = {
        **meta,
        "error_definition": "per masked position i: (log p_theta(x0_i | x0[M]) - log "
                            "p_ref(x0_i | x0[M]))^2 at the true value (Sec. 3.3, Fig. 2); "
                            "mean over masked latent / observation positions; stderr with "
                            "sequences as the unit; 'kl' is KL(p_ref || p_theta)",
        "masks": "App. C.2.1: l uniform latents and round(l P / N) uniform observations "
                 "(lohard.lo.protocol_mask)",
        **source, "checkpoint_step": ckpt.step,
        "model_config": ckpt.model_config.to_dict(),
        "train_config": ckpt.train_config.to_dict(),
        "proxy_step": None if proxy is None else proxy.step,
        "distribution": dist.header(), "distribution_hash": ckpt.dist_hash,
        "references": {"exact": exact, "bp": cfg.bp, "proxy": proxy is not None},
        "proxy_summary": proxy_summary(result),
        "device": str(device), "wall_seconds": time.monotonic() - t_start,
        "per_l": result["per_l"], "hist": binned_hist(result["hist"])}
    atomic_write_json(stem.with_suffix(".json"), doc)
    say(f"wrote {stem}.png, .json, .csv")
    return doc


def proxy_summary(result: dict) -> dict | None:
    """How far the paper's proxy is from the exact posterior, against the model's own
    error: mean squared log-prob error over all l (position-weighted), per kind."""
    per_l = result["per_l"]
    if not per_l or "proxy_vs_exact" not in per_l[0]["errors"]:
        return None
    out = {}
    for name in ("model_vs_exact", "proxy_vs_exact", "model_vs_proxy"):
        out[name] = {}
        for kind in KINDS:
            tot = cnt = 0.0
            for e in per_l:
                s = e["errors"][name][kind]
                if s["mean"] is not None:
                    tot += s["mean"] * s["n_positions"]
                    cnt += s["n_positions"]
            out[name][kind] = tot / cnt if cnt else None
    return out
