import json
from pathlib import Path

import pytest

from lohard._util import to_jsonable
from lohard.cli import main

ROOT = Path(__file__).resolve().parents[2]


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
    assert Path(summary["files"]["png"]).name.startswith("fig4_overlap_not-equal_k2_m5_")


def test_unknown_predicate_is_a_clear_error(capsys):
    assert main(["thresholds", "--predicate", "majority"]) == 2
    assert "unknown predicate name" in capsys.readouterr().err


def test_fig4_tiny_run_writes_files_and_resumes(tmp_path, capsys):
    args = ["fig4", "--n", "400", "--degrees", "30,90", "--seeds", "1", "--max-iter", "60",
            "--backend", "sequential", "--out", str(tmp_path), "--quiet", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    # Not the default settings: the files carry a hash of them, never the default name.
    assert not (tmp_path / "fig4_overlap.png").exists()
    png = Path(summary["files"]["png"])
    assert png.name.startswith("fig4_overlap_") and png.stat().st_size > 10_000
    meta = json.loads(Path(summary["files"]["json"]).read_text())["meta"]
    assert meta["seed"] == 2025 and "lohard_version" in meta
    lo, hi = summary["points"]
    assert hi["overlap_truth_mean"] > 0.9 and hi["overlap_random_mean"] > 0.9
    assert lo["overlap_random_mean"] < 0.3
    # A second run loads every cell from the cache and reproduces the numbers.
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["points"] == summary["points"]


@pytest.mark.parametrize("bad, message", [
    (["--seeds", "0"], "argument --seeds: must be an integer >= 1, got 0"),
    (["--points", "0"], "argument --points: must be an integer >= 1, got 0"),
    (["--predicate", "not-equal", "--m", "5", "--points", "0"], "argument --points"),
    (["--degrees", ","], "the degree list must hold at least one degree"),
    (["--degrees", ""], "the degree list must hold at least one degree"),
    (["--degrees", "1e308"], "must give at most P = 1e+08 clauses"),
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

    def fake_report(pred, *, rng=0, compute=True):
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


@pytest.mark.parametrize("spelling", [["-k", "3", "-m", "3", "-n", "500"],
                                      ["--k", "3", "--m", "3", "--n", "500"]])
def test_fig4_and_thresholds_take_both_flag_spellings(spelling):
    from lohard.cli import build_parser

    args = build_parser().parse_args(["fig4", *spelling])
    assert (args.k, args.m, args.n) == (3, 3, 500)
    args = build_parser().parse_args(["thresholds", *spelling[:4]])
    assert (args.k, args.m) == (3, 3)


def test_fig4_degrees_help_names_both_defaults(capsys):
    from lohard.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["fig4", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "on [40, 82] for nae with k = m = 3" in text
    assert "[0.6 d_KS, 1.3 d_KS] for other predicates" in text


def test_jump_bracket_is_the_grid_step_of_the_largest_rise():
    import numpy as np

    from lohard.experiments.fig4 import _jump, _jump_bracket

    d = np.array([40.0, 43.0, 46.0, 49.0, 52.0])
    assert _jump_bracket(d, np.array([0.0, 0.05, 0.1, 0.9, 0.95])) == (46.0, 49.0)
    assert _jump(d, np.array([0.0, 0.05, 0.1, 0.9, 0.95])) == 47.5
    assert _jump_bracket(d, np.array([0.0, 0.1, 0.2, 0.3, 0.4])) is None
    assert np.isnan(_jump(d[:1], np.array([0.5])))


def _summary(cavity=None, conv_random=(1.0, 0.5, 1.0)):
    pts = [{"degree": d, "n_seeds": 2, "overlap_truth_mean": t, "overlap_truth_sem": 0.01,
            "converged_truth_frac": 1.0, "overlap_random_mean": r, "overlap_random_sem": 0.01,
            "converged_random_frac": c}
           for d, t, r, c in zip((40.0, 52.0, 70.0), (0.05, 0.9, 0.99), (0.03, 0.06, 0.6),
                                 conv_random, strict=True)]
    # two instances per degree; the second random start is the one that did not converge
    cells = [{"degree": p["degree"], "rep": rep, "overlap_truth": p["overlap_truth_mean"],
              "overlap_random": p["overlap_random_mean"], "converged_truth": True,
              "converged_random": rep == 0 or p["converged_random_frac"] == 1.0}
             for p in pts for rep in (0, 1)]
    return {"points": pts, "cells": cells, "config": {"n": 1000, "seeds": 2, "max_iter": 77},
            "predicate": {"name": "nae(k=3,m=3)"}, "d_ks": 64.0, "d_jump_truth": 46.0,
            "d_jump_truth_between": [40.0, 52.0], "d_rise_random": 61.0,
            "d_rise_random_between": [52.0, 70.0],
            "cavity": cavity or {"available": False, "reason": "test"}}


def test_fig4_plot_marks_non_converged_points_and_names_the_jump_honestly():
    import matplotlib.pyplot as plt

    from lohard.experiments.fig4 import _draw_fig4

    fig = _draw_fig4(_summary())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert "truth-start curve jumps between d = 40 and 52" in labels
    assert "hollow: one instance, stopped at its sweep cap unconverged" in labels
    assert not any("spinodal" in t or "d_{sp}" in t for t in labels)
    hollow = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
    assert list(hollow["cells_not_converged_random"].get_xdata()) == [52.0]
    assert len(hollow["cells_not_converged_truth"].get_xdata()) == 0
    # all converged: no hollow markers, no legend entry for them
    fig = _draw_fig4(_summary(conv_random=(1.0, 1.0, 1.0)))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert not any(t.startswith("hollow") for t in labels)


def test_fig4_plot_draws_cached_cavity_thresholds_under_their_names():
    import matplotlib.pyplot as plt

    from lohard.experiments.fig4 import _draw_fig4

    cav = {"available": True, "transition": "discontinuous", "d_sp": 50.15, "d_sp_err": 0.07,
           "d_cond": 52.52, "d_cond_err": 0.04}
    fig = _draw_fig4(_summary(cavity=cav))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert "spinodal $d_{sp}$ = 50.15 ± 0.07 (cavity)" in labels
    assert "condensation $d_{cond}$ = 52.52 ± 0.04 (cavity)" in labels


def test_fig4_threshold_lines_come_from_the_shipped_table(tmp_path, monkeypatch):
    from lohard.experiments.fig4 import shipped_cavity_thresholds
    from lohard.predicates import Predicate

    monkeypatch.setenv("LOHARD_CACHE", str(tmp_path))  # an empty cache changes nothing
    out = shipped_cavity_thresholds(Predicate.nae(3, 3))
    assert out["available"] and out["d_sp"] == pytest.approx(50.153, abs=1e-3)
    assert out["d_cond"] == pytest.approx(52.520, abs=1e-3)
    assert "figures/thresholds.json" in out["source"]
    assert not list(tmp_path.rglob("*.json"))  # nothing computed, nothing written
    unbalanced = Predicate.from_function(lambda x: x[0] == 0 or x[1] == 0, 2, 2)
    out = shipped_cavity_thresholds(unbalanced)
    assert out["available"] is False and "lohard thresholds --cavity" in out["reason"]


def test_shipped_thresholds_match_the_committed_table():
    from lohard.cavity._shipped import SHIPPED_THRESHOLDS

    rows = json.loads((ROOT / "figures" / "thresholds.json").read_text())["rows"]
    assert set(SHIPPED_THRESHOLDS) == {r["predicate"] for r in rows}
    for r in rows:
        got = SHIPPED_THRESHOLDS[r["predicate"]]
        for key in ("k", "m", "d_sp", "d_sp_err", "d_cond", "d_cond_err", "transition"):
            assert got[key] == r[key], (r["predicate"], key)


def test_fig4_default_settings_keep_the_committed_names():
    from lohard.experiments.fig4 import Fig4Config, default_degrees, output_stem
    from lohard.predicates import Predicate

    committed = json.loads((ROOT / "figures" / "fig4_overlap.json").read_text())["config"]
    assert output_stem(Fig4Config(**committed)) == "fig4_overlap"
    other = json.loads((ROOT / "figures" / "fig4_overlap_not-equal_k2_m5.json").read_text())
    assert output_stem(Fig4Config(**other["config"])) == "fig4_overlap_not-equal_k2_m5"
    assert default_degrees(Predicate.not_equal(5)) == pytest.approx(other["config"]["degrees"])
    # n_jobs and the backend do not change the numbers, so not the name either
    assert output_stem(Fig4Config(**{**committed, "n_jobs": 1, "backend": "sequential"})) \
        == "fig4_overlap"
    variant = output_stem(Fig4Config(**{**committed, "n": 1000}))
    assert variant.startswith("fig4_overlap_") and variant != "fig4_overlap"
    assert variant != output_stem(Fig4Config(**{**committed, "seeds": 3}))


def test_fig4_text_output_names_the_jump_interval_and_non_convergence(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.setenv("LOHARD_CACHE", str(tmp_path / "cache"))
    args = ["fig4", "--n", "400", "--degrees", "30,90", "--seeds", "1", "--max-iter", "3",
            "--truth-critical-sweeps", "0", "--backend", "sequential", "--out", str(tmp_path),
            "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(* some instance not converged within its sweep cap)" in out
    assert "sweep caps: from the truth 3 (C_truth = 0)" in out
    row = next(ln for ln in out.splitlines() if ln.split()[:1] == ["30.00"])
    assert "*" in row  # 3 sweeps: the d = 30 runs cannot converge
    assert "jumps at" not in out and "spinodal" not in out
    (path,) = tmp_path.glob("fig4_overlap_*.json")
    summary = json.loads(path.read_text())
    assert summary["cavity"]["available"] is True  # lohard's shipped table
