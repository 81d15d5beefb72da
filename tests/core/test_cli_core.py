import json

import pytest

from lohard.cli import main


def test_thresholds_json(capsys):
    assert main(["thresholds", "--predicate", "nae", "--k", "3", "--m", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"k", "m", "gamma", "balanced", "lambda", "d_ks"} <= set(out)
    assert out["d_ks"] == pytest.approx(64.0) and out["lambda"] == pytest.approx(-0.125)
    assert main(["thresholds", "--predicate", "not-equal", "--m", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["d_ks"] == pytest.approx(16.0)
    assert main(["thresholds", "--predicate", "xor", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["d_ks"] == "inf" and "no Kesten-Stigum point" in out["d_ks_note"]


def test_fig4_other_predicate_uses_its_own_defaults(tmp_path, capsys):
    args = ["fig4", "--predicate", "not-equal", "--m", "5", "--n", "300", "--points", "2",
            "--seeds", "1", "--max-iter", "5", "--backend", "sequential", "--out",
            str(tmp_path), "--quiet", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["d_ks"] == pytest.approx(16.0)
    assert summary["predicate"]["k"] == 2
    assert (tmp_path / "fig4_overlap_not-equal_k2_m5.png").exists()


def test_unknown_predicate_is_a_clear_error(capsys):
    assert main(["thresholds", "--predicate", "majority"]) == 2
    assert "unknown predicate name" in capsys.readouterr().err


def test_fig4_tiny_run_writes_files_and_resumes(tmp_path, capsys):
    args = ["fig4", "--n", "400", "--degrees", "30,90", "--seeds", "1", "--max-iter", "60",
            "--backend", "sequential", "--out", str(tmp_path), "--quiet", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (tmp_path / "fig4_overlap.png").stat().st_size > 10_000
    meta = json.loads((tmp_path / "fig4_overlap.json").read_text())["meta"]
    assert meta["seed"] == 2025 and "lohard_version" in meta
    lo, hi = summary["points"]
    assert hi["overlap_truth_mean"] > 0.9 and hi["overlap_random_mean"] > 0.9
    assert lo["overlap_random_mean"] < 0.3
    # A second run loads every cell from the cache and reproduces the numbers.
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["points"] == summary["points"]
