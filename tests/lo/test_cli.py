"""The `sample` and `posterior` subcommands, run through an argparse parser."""

import argparse
import json

import numpy as np

from lohard.lo import load_samples
from lohard.lo.cli import register


def _run(argv):
    parser = argparse.ArgumentParser(prog="lohard")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a bad option: argparse's one line, status 2
        return stop.code
    return args.func(args)


def test_sample_and_posterior(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert _run(["sample", "nae-sat", "--n-latent", "10", "--n-obs", "40", "--num", "30",
                 "--out", str(out), "--seed", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num"] == 30 and summary["length"] == 50
    dist, tokens, meta = load_samples(out)
    assert tokens.shape == (30, 50) and meta["seed"] == 4 and meta["config"]["num"] == 30
    assert _run(["sample", "nae-sat", "--n-latent", "10", "--n-obs", "40", "--num", "30",
                 "--out", str(tmp_path / "e.npz"), "--seed", "4"]) == 0
    assert np.array_equal(load_samples(tmp_path / "e.npz")[1], tokens)
    capsys.readouterr()
    assert _run(["posterior", str(out), "--ell", "5", "--json",
                 "--out", str(tmp_path / "p.npz")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["latent"]["masked"] == 150 and res["observed"]["masked"] == 600
    assert res["latent"]["mean_log_prob"] <= 0
    with np.load(tmp_path / "p.npz") as f:
        assert f["probs"].shape == (30, 50, 2)


def test_other_families_and_errors(tmp_path, capsys):
    for fam, extra in (("noisy-parity", ["--n-obs", "12", "--eta", "0.1", "-k", "2"]),
                       ("slab", ["--n-obs", "8", "--beta", "0.5"]),
                       ("sparse-predicate", ["--n-obs", "20", "-m", "3"])):
        out = tmp_path / f"{fam}.npz"
        assert _run(["sample", fam, "--n-latent", "6", "--num", "5", "--out", str(out)] +
                    extra) == 0
        assert _run(["posterior", str(out), "--mask", "forward", "--t", "0.4"]) == 0
    assert _run(["sample", "noisy-parity", "--n-latent", "6", "--n-obs", "3", "--eta", "0.7",
                 "--num", "2", "--out", str(tmp_path / "x.npz")]) == 2
    assert "argument --eta: must be a finite number >= 0 and < 0.5, got 0.7" in \
        capsys.readouterr().err
    assert _run(["posterior", str(tmp_path / "missing.npz")]) == 2


def _sample(tmp_path, capsys, *extra):
    out = tmp_path / "d.npz"
    assert _run(["sample", "nae-sat", "--n-latent", "10", "--n-obs", "40", "--num", "6",
                 "--out", str(out), "--seed", "4", *extra]) == 0
    capsys.readouterr()
    return out


def test_posterior_limit_must_be_at_least_one(tmp_path, capsys):
    out = _sample(tmp_path, capsys)
    for bad in ("0", "-45"):
        assert _run(["posterior", str(out), "--limit", bad]) == 2
        assert f"argument --limit: must be an integer >= 1, got {bad}" in \
            capsys.readouterr().err
    assert _run(["posterior", str(out), "--limit", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num"] == 2


def test_posterior_reports_bp_non_convergence(tmp_path, capsys, monkeypatch):
    from lohard.lo import _posterior

    out = _sample(tmp_path, capsys)
    # One BP iteration cannot converge: the CLI must say so instead of passing silently.
    monkeypatch.setitem(_posterior.BP_DEFAULTS, "max_iter", 1)
    assert _run(["posterior", str(out), "--method", "bp", "--ell", "6"]) == 0
    text = capsys.readouterr().out
    assert "BP did not converge on 6 of 6 sequences" in text
    assert _run(["posterior", str(out), "--method", "bp", "--ell", "6", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["bp_not_converged"] == 6
    assert "BP did not converge on 6 of 6 sequences" in cap.err
    monkeypatch.undo()
    assert _run(["posterior", str(out), "--method", "bp", "--ell", "2"]) == 0
    assert "did not converge" not in capsys.readouterr().out


def test_posterior_output_carries_provenance(tmp_path, capsys):
    out = _sample(tmp_path, capsys)
    res = tmp_path / "p.npz"
    assert _run(["posterior", str(out), "--ell", "4", "--seed", "9", "--out", str(res)]) == 0
    meta = json.loads((tmp_path / "p.npz.json").read_text())
    with np.load(res) as f:
        assert json.loads(str(f["meta_json"])) == meta
    assert {"lohard_version", "created", "numpy", "config", "seed"} <= set(meta)
    assert meta["seed"] == {"mask_seed": 9, "samples_seed": 4}
    assert meta["config"]["ell"] == 4
    assert meta["config"]["samples"]["seed"] == 4
    assert meta["config"]["samples"]["config"]["num"] == 6


def test_unwritable_output_is_a_clean_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _run(["sample", "nae-sat", "--n-latent", "10", "--n-obs", "40", "--num", "2",
                 "--out", str(blocker / "z.npz")]) == 2
    assert "lohard sample: error: cannot write" in capsys.readouterr().err
    out = _sample(tmp_path, capsys)
    assert _run(["posterior", str(out), "--out", str(blocker / "p.npz")]) == 2
    assert "lohard posterior: error: cannot write" in capsys.readouterr().err


def test_sample_takes_both_flag_spellings(tmp_path, capsys):
    outs = []
    for i, spelling in enumerate((["-n", "6", "-k", "3", "-m", "3"],
                                  ["--n", "6", "--k", "3", "--m", "3"],
                                  ["--n-latent", "6", "-k", "3", "--m", "3"])):
        out = tmp_path / f"s{i}.npz"
        assert _run(["sample", "sparse-predicate", *spelling, "--n-obs", "20", "--num", "4",
                     "--out", str(out), "--seed", "1", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["distribution"]["params"]["predicate"]["name"] == "nae(k=3,m=3)"
        assert summary["distribution"]["n_latent"] == 6
        outs.append(load_samples(out)[1])
    assert all(np.array_equal(o, outs[0]) for o in outs)
