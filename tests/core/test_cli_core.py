import json

import pytest

from lohard._util import to_jsonable
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


@pytest.mark.parametrize("bad, message", [
    (["--seeds", "0"], "seeds (instances per degree) must be an integer >= 1, got 0"),
    (["--points", "0"], "--points must be >= 1 degree, got 0"),
    (["--predicate", "not-equal", "--m", "5", "--points", "0"], "--points must be >= 1"),
    (["--degrees", ","], "the degree list must hold at least one degree"),
    (["--degrees", "30,nan"], "degrees d = (k-1) k P / N must be finite and >= 0, got nan"),
    (["--degrees", "30,x"], "--degrees must be comma-separated numbers"),
])
def test_fig4_rejects_empty_sweeps(tmp_path, capsys, bad, message):
    args = ["fig4", "--n", "300", "--max-iter", "5", "--backend", "sequential", "--out",
            str(tmp_path), "--quiet", "--json", *bad]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_fig4_config_validates_the_api_too(tmp_path):
    from lohard.experiments.fig4 import Fig4Config, run_fig4

    for kw in ({"seeds": 0}, {"degrees": []}, {"n": 2.5}, {"max_iter": 0},
               {"damping": 1.0}, {"degrees": [-1.0]}):
        with pytest.raises(ValueError):
            Fig4Config(**kw)
    cfg = Fig4Config(n=300, degrees=[30.0], seeds=1, max_iter=5, backend="sequential")
    cfg.degrees = []  # changed after construction: run_fig4 checks again
    with pytest.raises(ValueError, match="at least one degree"):
        run_fig4(cfg, out_dir=tmp_path, progress=False)


def test_thresholds_of_a_predicate_with_complex_eigenvalues_serialise(capsys):
    from lohard.cli import thresholds_dict
    from lohard.predicates import Predicate

    cyclic = Predicate.from_function(lambda x: (x[1] - x[0]) % 3 == 1, 2, 3)
    out = json.loads(json.dumps(to_jsonable(thresholds_dict(cyclic))))
    ev = out["transfer_eigenvalues"]
    assert all(set(z) == {"re", "im"} for z in ev)
    assert sorted(round(z["im"], 6) for z in ev) == [-0.866025, 0.0, 0.866025]


def test_long_commands_log_progress_to_stderr_only(capsys, monkeypatch):
    import logging

    import lohard.cavity

    def fake_report(pred, *, rng=0):
        logging.getLogger("lohard.cavity").info("probe step for %s", pred.name)
        return {"d_sp": 60.0, "d_cond": 62.0}

    monkeypatch.setattr(lohard.cavity, "thresholds_report", fake_report)
    assert main(["thresholds", "--cavity", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["d_cond"] == 62.0  # stdout stays clean JSON
    assert "lohard: probe step for nae" in cap.err
    assert main(["thresholds", "--cavity", "--json", "--quiet"]) == 0
    assert "probe step" not in capsys.readouterr().err
    assert main(["window", "-n", "200", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["d_cond"] == 62.0
    assert "lohard: probe step for nae" in cap.err
    assert not logging.getLogger("lohard").handlers  # removed after the command
