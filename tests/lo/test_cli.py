"""The `sample` and `posterior` subcommands, run through an argparse parser."""

import argparse
import json

import numpy as np

from lohard.lo import load_samples
from lohard.lo.cli import register


def _run(argv):
    parser = argparse.ArgumentParser(prog="lohard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
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
    assert "eta must lie in [0, 1/2), got 0.7" in capsys.readouterr().err
    assert _run(["posterior", str(tmp_path / "missing.npz")]) == 2
