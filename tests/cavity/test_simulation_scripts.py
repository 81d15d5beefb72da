"""simulations/free_entropy_nae.py and hardness_window_nae.py on stand-in inputs (no cavity run)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lohard.sweep import run_sweep

ROOT = Path(__file__).parents[2]
FAKE_THRESHOLDS = {"d_sp": 50.15, "d_sp_err": 0.07, "d_cond": 52.52, "d_cond_err": 0.04,
                   "d_ks": 64.0, "transition": "discontinuous"}


def _load(name, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, ROOT / "simulations" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _fake_cell(cell, seed):
    # a stand-in for the BP runs: the planted run "fails" at d = 50 and d = 53
    return {"degree": cell["degree"] + 0.01 * cell["seed_index"],
            "gap": (cell["degree"] - 52.5) / 100, "converged_planted":
            cell["degree"] not in (50.0, 53.0), "converged_uniform": True}


def _fake_report(pred, *, rng=0, compute=True, **kw):
    return dict(FAKE_THRESHOLDS)


def test_free_entropy_figure_counts_non_converged_cells_from_the_cache(tmp_path, monkeypatch):
    import lohard.cavity

    mod = _load("free_entropy_nae", monkeypatch)
    monkeypatch.setattr(lohard.cavity, "thresholds_report", _fake_report)
    cells_dir, out = tmp_path / "cells", tmp_path / "fe"
    argv = ["--sizes", "50", "--seeds", "2", "--n-jobs", "1", "--backend", "sequential",
            "--cells-dir", str(cells_dir), "--out", str(out), "--cached-only"]
    with pytest.raises(SystemExit, match="28 of 28 cells are not cached"):
        mod.main(argv)
    assert not out.with_suffix(".png").exists()
    cfg = mod.Config(sizes=(50,), seeds=2)
    run_sweep(_fake_cell, mod.make_cells(cfg), root_seed=cfg.root_seed, out_dir=cells_dir,
              n_jobs=1, backend="sequential", progress=False)
    assert mod.main(argv) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["cells_total"] == 28 and res["not_converged"] == 4  # 2 degrees x 2 seeds
    assert {c["degree"] for c in res["not_converged_cells"]} == {50.0, 53.0}
    assert res["non_finite_gap"] == 0
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".fe.png.*"))  # written atomically, no temporary left


def test_hardness_window_script_needs_no_numpy_2(tmp_path, monkeypatch):
    mod = _load("hardness_window_nae", monkeypatch)
    monkeypatch.setattr(mod, "thresholds_report", _fake_report)
    monkeypatch.delattr(np, "trapezoid", raising=False)  # as on NumPy 1.x
    monkeypatch.chdir(tmp_path)
    assert mod.main(["--sizes", "100"]) == 0
    res = json.loads((tmp_path / "figures" / "hardness_window_nae.json").read_text())
    (row,) = res["rows"]
    assert row["n"] == 100 and 0 < row["probability_alpha_uniform"] < 1e-3
    assert (tmp_path / "figures" / "hardness_window_nae.png").stat().st_size > 10_000
