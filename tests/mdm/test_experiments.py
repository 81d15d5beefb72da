"""The MDM experiments: Table 1, Figure 2 (right), the throughput benchmark, the GPU script."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.lo import exact_posterior, nae_sat, protocol_mask  # noqa: E402
from lohard.mdm import ExactOracle, build_model, model_config, observation_accuracy  # noqa: E402

ROOT = Path(__file__).parents[2]


def _load(rel: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def table1():
    from lohard.experiments import table1

    return table1


@pytest.fixture(scope="module")
def fig2():
    from lohard.experiments import fig2

    return fig2


@pytest.fixture(scope="module")
def bench():
    return _load("benchmarks/mdm_throughput.py", "lohard_test_mdm_throughput")


@pytest.fixture(scope="module")
def small_dist():
    # N = 6 latents: the exact oracle enumerates 2^6 configurations.
    return nae_sat(6, 20, trailing_token=True, rng=3)


def random_model(dist, seed=0):
    torch.manual_seed(seed)
    return build_model(model_config("tiny", max_seq_len=dist.length), dist).eval()


# -- Table 1 -------------------------------------------------------------------------------
#: A tiny run that learns (5, 10) in about 20 s: margin must beat vanilla clearly (seeds 0
#: and 1 measured: margin 79.3 / 76.8%, vanilla 68.5 / 70.0%, 200 sequences each).
TINY = ["--presets", "5-10", "--fig2-preset", "5-10", "--model", "tiny", "--learned-pos",
        "--steps", "1000", "--batch-size", "64", "--lr", "3e-3", "--min-lr", "3e-4",
        "--warmup-steps", "20", "--num-samples", "200", "--sample-steps", "10",
        "--oracle-samples", "10", "--device", "cpu"]


@pytest.mark.slow
def test_table1_and_fig2_verbs_end_to_end(tmp_path, capsys):
    # Both CLI verbs on a tiny run: Table 1 trains, evaluates and writes every output;
    # margin decoding beats vanilla at a significant level (disjoint 95% intervals); the
    # exact oracle scores
    # 100%; a second call reuses the run and its evaluation; Figure 2 measures the
    # half-way model against the exact posterior, BP and the final model.
    from lohard.cli import main

    work, out = tmp_path / "runs", tmp_path / "out"
    args = ["table1", *TINY, "--work-dir", str(work), "--out-dir", str(out)]
    torch.manual_seed(0)
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["presets"]
    for suffix in ("md", "csv", "json", "png"):
        assert (out / f"table1_cpu.{suffix}").stat().st_size > 0
    doc = json.loads((out / "table1_cpu.json").read_text())
    assert doc["presets"] == rows and "lohard_version" in doc and doc["config"]["seed"] == 0
    row = rows[0]
    assert (row["N"], row["P"], row["L"], row["steps"]) == (5, 10, 16, 1000)
    assert row["entropy_floor_nats_per_token"] == pytest.approx(5 * np.log(2) / 16)
    assert row["heldout_loss_nats_per_token"] > row["entropy_floor_nats_per_token"]
    s = row["samplers"]
    assert set(s) == {"vanilla", "top-prob", "margin", "top-prob+gumbel", "margin+gumbel",
                      "exact-oracle"}
    for v in s.values():
        assert set(v) >= {"accuracy", "ci95", "n_sequences"}
    assert s["margin"]["n_sequences"] == 200
    assert s["margin"]["ci95"][0] > s["vanilla"]["ci95"][1], (s["margin"], s["vanilla"])
    assert s["exact-oracle"]["accuracy"] == 100.0
    assert set(s["exact-oracle"]["orders"]) == {"random", "margin"}
    md = (out / "table1_cpu.md").read_text()
    assert "Hardware:" in md and "entropy floor" in md and "93.76" in md
    csv_lines = (out / "table1_cpu.csv").read_text().splitlines()
    assert csv_lines[0].startswith("# lohard table1; lohard ")
    assert len(csv_lines) == 2 + 6
    # Resume: nothing is retrained or resampled, the outputs are the same.
    assert main([*args, "--quiet"]) == 0
    again = json.loads((out / "table1_cpu.json").read_text())["presets"][0]
    assert again["samplers"] == s and again["steps"] == 1000
    # Figure 2 on the half-way snapshot, with the final model as the paper's proxy.
    run = work / "nae-sat-5-10-t"
    assert main(["fig2", "--checkpoint", str(run / "checkpoint_step500.pt"),
                 "--proxy-checkpoint", str(run), "--ells", "1,3,4", "--masks-per-l", "20",
                 "--workers", "1", "--device", "cpu", "--out-dir", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["checkpoint_step"], summary["proxy_step"]) == (500, 1000)
    fig = json.loads((out / "fig2_per_mask_error.json").read_text())
    assert fig["references"] == {"exact": True, "bp": True, "proxy": True}
    assert [e["l"] for e in fig["per_l"]] == [1, 3, 4]
    ps = fig["proxy_summary"]
    assert ps["proxy_vs_exact"]["latent"] > 0 and ps["model_vs_exact"]["latent"] > 0
    assert (out / "fig2_per_mask_error.png").stat().st_size > 0
    assert (out / "fig2_per_mask_error.csv").read_text().startswith("# lohard fig2; lohard ")


def test_table1_bad_input_is_a_clear_error(tmp_path, capsys):
    from lohard.cli import main

    def err(*args):
        assert main(["table1", *args, "--work-dir", str(tmp_path / "w"), "--out-dir",
                     str(tmp_path / "o")]) == 2
        return capsys.readouterr().err

    assert main(["table1", "--scale", "tpu"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert "N-P" in err("--presets", "10x90")
    assert "C(N, k)" in err("--presets", "5-50")  # more observations than distinct triples
    assert "max_seq_len = 128" in err("--presets", "60-100")  # L = 161 does not fit cpu-1m
    assert "--model" in err("--presets", "60-100")
    assert "unknown sampler variant" in err("--variants", "vanilla,best")
    # A work folder holding a run with other settings is refused, naming the fields.
    small = ["--presets", "6-20", "--model", "tiny", "--steps", "2", "--batch-size", "4",
             "--num-samples", "2", "--sample-steps", "2", "--variants", "vanilla",
             "--device", "cpu", "--quiet"]
    assert main(["table1", *small, "--work-dir", str(tmp_path / "w"), "--out-dir",
                 str(tmp_path / "o")]) == 0
    msg = err(*[x if x != "4" else "8" for x in small])
    assert "other settings" in msg and "batch_size" in msg
    # A truncated checkpoint is named.
    ckpt = tmp_path / "w" / "nae-sat-6-20-t" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    msg = err(*small)
    assert "checkpoint.pt" in msg


def test_exact_oracle_row_scores_every_order_exactly(table1, small_dist):
    # One token per step with p_data's own conditionals samples p_data exactly whatever
    # the order: every observation is consistent. An untrained model is not.
    cfg = table1.table1_config("cpu", oracle_samples=12, oracle_orders=("random", "margin",
                                                                        "top-prob"))
    rec = table1.evaluate_oracle(cfg, small_dist, 6, 20, lambda m: 0)
    assert rec["accuracy"] == 100.0 and rec["n_sequences"] == 36
    assert all(r["all_correct_fraction"] == 1.0 for r in rec["orders"].values())
    # Too large a component for the oracle: the row says why instead of failing.
    cfg = table1.table1_config("cpu", oracle_samples=4, oracle_max_states=4)
    rec = table1.evaluate_oracle(cfg, small_dist, 6, 20, lambda m: 0)
    assert rec["accuracy"] is None and "not run" in rec["note"]
    cfg = table1.table1_config("cpu", num_samples=12, sample_steps=small_dist.length,
                               sample_batch=12, device="cpu")
    res = table1.evaluate_model(cfg, random_model(small_dist), small_dist, 6, 20,
                                lambda m: 0)
    assert res["vanilla"]["accuracy"] < 95
    # The reported number is lohard.mdm.observation_accuracy of the generated tokens.
    from lohard.mdm import sample

    r = res["margin"]
    tok = sample(random_model(small_dist), 12, sampler="margin", steps=small_dist.length,
                 length=small_dist.length, batch_size=12, generator=r["seed"])
    assert 100 * observation_accuracy(small_dist, tok) == pytest.approx(r["accuracy"],
                                                                        abs=1e-9)


def test_table1_scales_and_presets(table1):
    cpu, gpu = table1.table1_config("cpu"), table1.table1_config("gpu")
    assert cpu.presets == tuple(table1.CPU_PRESETS) and cpu.out_name == "table1_cpu"
    assert set(gpu.presets) == set(table1.PAPER_TABLE1) | {(20, 280)}
    assert gpu.model == "mdm-19m" and gpu.out_name == "table1"
    # Every CPU preset keeps its paper preset's clause density d = 6P/N within 2.
    for (n, p), (pn, pp) in table1.CPU_PRESETS.items():
        assert abs(6 * p / n - 6 * pp / pn) < 2.0
        assert n + p + 1 <= 128
    assert table1.PAPER_TABLE1[(100, 200)] == {"vanilla": 62.84, "adaptive": 88.91}
    with pytest.raises(ValueError, match="unknown scale"):
        table1.table1_config("tpu")
    with pytest.raises(ValueError, match="N >= 3"):
        table1.table1_config("cpu", presets=((2, 10),))
    assert table1.train_seconds([{"step": 1, "seconds": 2.0}, {"step": 2, "seconds": 5.0},
                                 {"step": 3, "eval_loss": 1.0}, {"step": 3, "seconds": 1.0},
                                 {"step": 4, "seconds": 4.0}]) == pytest.approx(9.0)


def test_sample_defaults_to_the_training_length(small_dist):
    # A model built for a distribution generates sequences of its L, not max_seq_len.
    from lohard.mdm import sample

    model = random_model(small_dist)
    model.max_seq_len = 64
    assert sample(model, 3, steps=2, generator=0).shape == (3, small_dist.length)


# -- Figure 2 ------------------------------------------------------------------------------
def test_position_errors_by_hand(fig2):
    ref = np.array([[[0.5, 0.5, 0.0]]])
    logp = np.array([[[np.log(0.25), np.log(0.75), -np.inf]]])
    err = fig2.position_errors(logp, ref, np.array([[0]]))
    assert err["sq"][0, 0] == pytest.approx(np.log(0.5 / 0.25) ** 2)
    assert err["kl"][0, 0] == pytest.approx(0.5 * np.log(2.0) + 0.5 * np.log(0.5 / 0.75))
    # A model giving zero probability to a value the reference allows: infinite KL,
    # counted as non-finite by the summary and left out of the mean, never NaN.
    bad = np.array([[[0.0, -np.inf, -np.inf]], [[np.log(0.5), np.log(0.5), -np.inf]]])
    err = fig2.position_errors(bad, np.concatenate([ref, ref]), np.array([[0], [1]]))
    assert err["kl"][0, 0] == np.inf and err["kl"][1, 0] == pytest.approx(0.0)
    s = fig2.summarize(err["kl"], np.ones((2, 1), dtype=bool))
    assert s["n_nonfinite"] == 1 and s["n_positions"] == 1 and s["mean"] == pytest.approx(0)


def test_fig2_exact_oracle_has_no_error_random_model_does(fig2, small_dist):
    kw = dict(ells=[1, 3, 5], masks_per_l=6, seed=1, workers=1, hist_ell=3, say=lambda m: 0)
    oracle = fig2.measure(ExactOracle(small_dist), small_dist, **kw)
    rand = fig2.measure(random_model(small_dist), small_dist, proxy=ExactOracle(small_dist),
                        **kw)
    for eo, er in zip(oracle["per_l"], rand["per_l"], strict=True):
        for kind in fig2.KINDS:
            e = eo["errors"]["model_vs_exact"][kind]
            assert e["n_positions"] > 0 and e["n_nonfinite"] == 0
            # float32 logits of float64 probabilities: errors of order (1e-7)^2.
            assert e["mean"] < 1e-9
            assert eo["kl"]["model_vs_exact"][kind]["mean"] < 1e-6
            r = er["errors"]["model_vs_exact"][kind]
            assert r["mean"] > 1e-3 and r["stderr"] > 0
            # With an exact proxy, the proxy's own error vanishes and the model's error
            # against it equals its error against the exact posterior.
            assert er["errors"]["proxy_vs_exact"][kind]["mean"] < 1e-9
            assert er["errors"]["model_vs_proxy"][kind]["mean"] == pytest.approx(
                r["mean"], rel=1e-4)
            tv = eo["tv"]["bp_vs_exact"][kind]["mean"]
            assert 0.0 <= tv <= 1.0
        assert eo["bp_converged"] == 1.0
    assert oracle["hist"]["l"] == 3
    n_lat = sum(len(v) for v in [oracle["hist"]["model_vs_exact"]["latent"]])
    assert n_lat == 6 * 3  # 6 masks with l = 3 masked latents each


def test_fig2_reference_matches_library_posterior(fig2, small_dist):
    # The masks and data of one l are a function of (seed, l), and the reference is
    # lohard.lo.exact_posterior on them: recompute one entry by hand.
    tok, mask = fig2._ell_data(small_dist, 2, 5, seed=4)
    tok2, mask2 = fig2._ell_data(small_dist, 2, 5, seed=4)
    assert np.array_equal(tok, tok2) and np.array_equal(mask, mask2)
    lat = small_dist.latent_positions
    assert np.all(mask[:, lat].sum(axis=1) == 2)
    assert np.array_equal(mask.sum(axis=1), protocol_mask(small_dist, 5, 2, rng=0).sum(axis=1))
    model = random_model(small_dist, seed=2)
    res = fig2.measure(model, small_dist, ells=[2], masks_per_l=5, seed=4, bp=False,
                       workers=1, say=lambda m: 0)
    post = exact_posterior(small_dist, tok, mask)
    logp = fig2.model_log_probs(model, tok, mask)
    sq = (np.take_along_axis(logp, tok[..., None], -1)[..., 0] - post.log_prob(tok)) ** 2
    sel = np.zeros_like(mask)
    sel[:, lat] = mask[:, lat]
    assert res["per_l"][0]["errors"]["model_vs_exact"]["latent"]["mean"] == pytest.approx(
        sq[sel].mean(), rel=1e-10)


# -- throughput benchmark ------------------------------------------------------------------
def test_throughput_quick_reports_ratio(bench, tmp_path, monkeypatch):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    res = data["results"]
    assert set(res) == {"eager", "lohard"}  # the CUDA-only variants are left out on CPU
    for r in res.values():
        assert r["tokens_per_second"] > 0 and r["mfu"] is None
    assert data["ratios_vs_eager"]["eager"] == 1.0
    assert data["ratios_vs_eager"]["lohard"] == pytest.approx(
        res["lohard"]["tokens_per_second"] / res["eager"]["tokens_per_second"])
    fpt = data["flops_per_token"]
    cfg = model_config("tiny")
    # a failed reference variant leaves lohard's result in place
    def broken(*args, **kwargs):
        raise RuntimeError("eager loop failed")
    monkeypatch.setattr(bench, "plain_loop", broken)
    assert bench.main(["--quick", "--out", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    assert "error" in res["eager"] and res["lohard"]["tokens_per_second"] > 0
    assert fpt["attention"] == 12 * cfg.n_layers * cfg.d_model * data["L"]
    assert fpt["total"] == 6 * fpt["n_params_nonembedding"] + fpt["attention"]


def test_throughput_peak_table(bench):
    assert bench.peak_flops("NVIDIA H100 80GB HBM3", None)[0] == 989e12
    assert bench.peak_flops("NVIDIA H100 PCIe", None)[0] == 756e12
    assert bench.peak_flops("NVIDIA H200", None)[0] == 989e12
    assert bench.peak_flops("Tesla T4", None)[0] is None
    assert bench.peak_flops("Tesla T4", 65.0)[0] == 65e12


# -- GPU script ----------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_script_bash_syntax():
    script = ROOT / "simulations" / "gpu_mdm_table1_fig2.sh"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = script.read_text()
    assert "--smoke" in text and "timeout" in text
