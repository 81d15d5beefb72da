"""Figure 4: the random-start sweep cap, per-instance convergence, the cache key, and the
finite-size figure (issue 15, parts 4 and 5)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lohard.cli import main
from lohard.experiments import fig4 as F
from lohard.sweep import cached_record, cell_key

TINY = ["--backend", "sequential", "--quiet"]


# -- the cap rule ------------------------------------------------------------------------
def cap(d, n=10_000, d_ks=64.0, floor=120, ceiling=600, c=20.0):
    return F.random_start_sweep_cap(d, d_ks, n, floor=floor, ceiling=ceiling,
                                    critical_sweeps=c)


def test_cap_is_c_over_the_log_distance_to_ks_between_floor_and_ceiling():
    # strictly between floor and ceiling it is ceil(C / |ln(d / d_KS)|) at N = 10^4
    assert cap(70.0) == math.ceil(20 / math.log(70 / 64)) == 224
    assert cap(58.0) == math.ceil(20 / math.log(64 / 58)) == 204
    assert cap(40.0) == 120 and cap(82.0) == 120  # far from d_KS: the floor
    assert cap(64.0) == 600 and cap(63.9) == 600  # at and next to d_KS: the ceiling
    # nearer d_KS, more sweeps, from either side
    below = [cap(d) for d in (52.0, 55.0, 58.0, 61.0, 63.0)]
    above = [cap(d) for d in (76.0, 73.0, 70.0, 67.0, 65.0)]
    assert below == sorted(below) and above == sorted(above)


def test_cap_grows_like_ln_n_and_degenerates_to_the_floor():
    # N = 10^6: the informative mode starts 10x smaller, ln N is 1.5x larger
    assert cap(70.0, n=10**6) == math.ceil(30 / math.log(70 / 64))
    assert cap(70.0, n=10**3) == math.ceil(15 / math.log(70 / 64)) == 168
    assert cap(76.0, n=10**3) == 120  # 15 / ln(76/64) = 88: floored
    assert cap(70.0, c=0.0) == 120  # C = 0: the old fixed cap
    assert cap(70.0, d_ks=float("inf")) == 120  # no KS point (XOR)
    assert cap(0.0) == 120
    assert cap(64.0, floor=700, ceiling=600) == 700  # the floor wins over a lower ceiling
    with pytest.raises(ValueError, match="critical_sweeps must be finite and >= 0"):
        cap(70.0, c=-1.0)
    with pytest.raises(ValueError, match="critical_sweeps"):
        F.Fig4Config(critical_sweeps=float("nan"))


def test_cells_carry_the_caps_truth_by_distance_to_d_sp_random_to_d_ks():
    cfg = F.Fig4Config(degrees=[40.0, 49.0, 64.0, 70.0], seeds=1)
    got = {c["degree"]: (c["max_iter"], c["max_iter_random"]) for c in cfg.cells()}
    d_sp = F.shipped_cavity_thresholds(F.Predicate.nae(3, 3))["d_sp"]
    assert got == {40.0: (120, 120), 49.0: (math.ceil(10 / math.log(d_sp / 49)), 120),
                   64.0: (120, 600), 70.0: (120, 224)}
    assert got[49.0][0] == 430
    # the finite-size figure keeps max_iter from the truth (its hour at N = 10^6)
    fs = F.FiniteSizeConfig(sizes=[1000, 10**6], degrees=[49.0, 51.0])
    assert {c["max_iter"] for c in fs.cells()} == {120}


def test_truth_cap_follows_the_distance_to_the_spinodal():
    def tcap(d, d_sp=50.0, c=10.0, floor=120, ceiling=600):
        return F.truth_start_sweep_cap(d, d_sp, floor=floor, ceiling=ceiling,
                                       critical_sweeps=c)

    assert tcap(49.0) == math.ceil(10 / math.log(50 / 49)) == 495
    assert tcap(52.0) == math.ceil(10 / math.log(52 / 50)) == 255
    assert tcap(50.0) == 600  # at d_sp: the ceiling
    assert tcap(40.0) == 120  # 10 / ln(1.25) = 45: floored
    assert tcap(49.5) == 600  # 995: the ceiling
    assert tcap(49.0, c=0.0) == 120
    assert tcap(49.0, d_sp=float("nan")) == 120  # no shipped spinodal
    assert tcap(0.0) == 120
    assert tcap(49.0, floor=700) == 700
    with pytest.raises(ValueError, match="truth_critical_sweeps must be finite and >= 0"):
        tcap(49.0, c=-1.0)
    with pytest.raises(ValueError, match="truth_critical_sweeps"):
        F.Fig4Config(truth_critical_sweeps=float("inf"))


# -- convergence per cell ----------------------------------------------------------------
def _run_cell(**over):
    cfg = F.Fig4Config(n=300, degrees=[90.0], seeds=1)
    cell = {**cfg.cells()[0], **over}
    return F._fig4_cell(cell, np.random.SeedSequence(7))


def test_cell_reports_convergence_sweeps_and_caps():
    out = _run_cell()  # d = 90 > d_KS at N = 300: both starts converge in tens of sweeps
    for label in F.STARTS:
        assert out[f"converged_{label}"] is True
        assert out[f"iterations_{label}"] < out[f"sweep_cap_{label}"]
        assert out[f"last_change_{label}"] < 1e-6  # the criterion: last change below tol
        assert out[f"overlap_{label}"] > 0.9
    assert (out["sweep_cap_truth"], out["sweep_cap_random"]) == (120, 120)
    # capped: 3 sweeps from the truth, 4 from a random start, too few to converge
    out = _run_cell(max_iter=3, max_iter_random=4)
    assert out["converged_truth"] is False and out["iterations_truth"] == 3
    assert out["converged_random"] is False and out["iterations_random"] == 4
    assert (out["sweep_cap_truth"], out["sweep_cap_random"]) == (3, 4)
    assert out["last_change_random"] >= 1e-6


# -- the sweep cache key -----------------------------------------------------------------
def test_changing_the_cell_computation_changes_the_cache_key(tmp_path, monkeypatch):
    cfg = F.Fig4Config(n=300, degrees=[64.0], seeds=1)
    (new,) = cfg.cells()
    # the cell as the code before CELL_VERSION 2 wrote it (fixed max_iter for both starts)
    old = {k: v for k, v in new.items() if k not in ("version", "max_iter_random")}
    assert cell_key(new, 2025, 0) != cell_key(old, 2025, 0)
    # a record cached under the old cell is not read back for the new one
    from lohard._util import atomic_write_json

    atomic_write_json(tmp_path / f"{cell_key(old, 2025, 0)}.json",
                      {"cell": old, "index": 0, "result": {}, "seconds": 0.0,
                       "meta": {"seed": {"root_seed": 2025, "spawn_key": [0]}}})
    assert cached_record(tmp_path, old, 2025, 0) is not None
    assert cached_record(tmp_path, new, 2025, 0) is None
    # another cap rule, or a new CELL_VERSION, is another key too
    other = F.Fig4Config(n=300, degrees=[64.0], seeds=1, max_iter_ceiling=500).cells()[0]
    assert cell_key(other, 2025, 0) != cell_key(new, 2025, 0)
    monkeypatch.setattr(F, "CELL_VERSION", F.CELL_VERSION + 1)
    assert cell_key(cfg.cells()[0], 2025, 0) != cell_key(new, 2025, 0)


def test_new_cap_settings_give_new_file_names():
    base = F.Fig4Config(degrees=F.default_degrees(F.Predicate.nae(3, 3)))
    assert F.output_stem(base) == "fig4_overlap"
    for over in ({"critical_sweeps": 10.0}, {"max_iter_ceiling": 400},
                 {"truth_critical_sweeps": 0.0}):
        stem = F.output_stem(F.Fig4Config(**{**base.__dict__, **over}))
        assert stem.startswith("fig4_overlap_") and stem != "fig4_overlap"


# -- the figure marks non-converged cells --------------------------------------------------
def _cells():
    rows = []
    for d, rep, t, r, ct, cr in ((40.0, 0, 0.05, 0.03, True, True),
                                 (40.0, 1, 0.04, 0.02, True, True),
                                 (64.0, 0, 0.98, 0.12, True, False),
                                 (64.0, 1, 0.97, 0.95, True, True),
                                 (70.0, 0, 0.99, 0.60, True, False),
                                 (70.0, 1, 0.99, 0.98, False, True)):
        rows.append({"n": 1000, "degree": d, "rep": rep, "overlap_truth": t,
                     "overlap_random": r, "converged_truth": ct, "converged_random": cr})
    return rows


def _summary(cells):
    pts = [{"degree": d, **F._point([c for c in cells if c["degree"] == d])}
           for d in (40.0, 64.0, 70.0)]
    cfg = F.Fig4Config(n=1000, degrees=[40.0, 64.0, 70.0], max_iter=77)
    return {"points": pts, "cells": cells, "config": {"n": 1000, "seeds": 2, "max_iter": 77},
            "predicate": {"name": "nae(k=3,m=3)"}, "d_ks": 64.0,
            "d_jump_truth_between": [40.0, 64.0], "sweep_caps": F._sweep_caps(cfg),
            "cavity": {"available": False, "reason": "test"}}


def _lines(fig):
    return {ln.get_gid(): ln for ln in fig.axes[0].get_lines() if ln.get_gid()}


def test_fig4_draws_every_instance_hollow_where_it_hit_its_cap():
    import matplotlib.pyplot as plt

    cells = _cells()
    fig = F._draw_fig4(_summary(cells))
    lines = _lines(fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    title = fig.axes[0].get_title()
    plt.close(fig)
    for label in F.STARTS:
        bad = [(c["degree"], c[f"overlap_{label}"]) for c in cells
               if not c[f"converged_{label}"]]
        good = [(c["degree"], c[f"overlap_{label}"]) for c in cells if c[f"converged_{label}"]]
        for gid, want in ((f"cells_not_converged_{label}", bad),
                          (f"cells_converged_{label}", good)):
            ln = lines[gid]
            assert list(zip(ln.get_xdata(), ln.get_ydata(), strict=True)) == want
            assert ln.get_markerfacecolor() == ("white" if "not" in gid else ln.get_color())
    hollow = [t for t in labels if t.startswith("hollow")]
    assert hollow == ["hollow: one instance, stopped at its sweep cap unconverged"]
    assert ("sweep caps: truth 77-600, $\\propto 1/|\\ln(d/d_{sp})|$; random 77-600"
            in title)
    # every instance converged: no hollow markers, no legend entry for them
    for c in cells:
        c["converged_truth"] = c["converged_random"] = True
    fig = F._draw_fig4(_summary(cells))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(_lines(fig)["cells_not_converged_random"].get_xdata()) == 0
    plt.close(fig)
    assert not any(t.startswith("hollow") for t in labels)


def test_fig4_files_carry_every_cell_with_its_convergence(tmp_path, capsys):
    args = ["fig4", "--n", "300", "--degrees", "30,64", "--seeds", "2", "--max-iter", "4",
            "--truth-critical-sweeps", "0", "--out", str(tmp_path), *TINY, "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    saved = json.loads(Path(summary["files"]["json"]).read_text())
    assert saved["sweep_caps"]["floor"] == 4 and saved["config"]["critical_sweeps"] == 20.0
    assert saved["sweep_caps"]["truth"] == 4 and saved["config"]["truth_critical_sweeps"] == 0
    rows = saved["cells"]
    assert len(rows) == 4
    for r in rows:
        assert r["sweep_cap_truth"] == 4
        assert r["converged_truth"] is False and r["iterations_truth"] == 4
        assert r["iterations_random"] <= r["sweep_cap_random"]
        assert r["converged_random"] == (r["last_change_random"] < 1e-6)  # tol
    assert {r["sweep_cap_random"] for r in rows if r["degree"] == 64.0} == {600}
    lines = Path(summary["files"]["csv"]).read_text().splitlines()
    assert lines[0].startswith("# lohard fig4;")
    header = lines[1].split(",")
    assert {"converged_truth", "converged_random", "iterations_random", "sweep_cap_random",
            "sweep_cap_truth"} <= set(header)
    assert len(lines) == 2 + 4
    csv_conv = [row.split(",")[header.index("converged_truth")] for row in lines[2:]]
    assert csv_conv == ["False"] * 4


# -- finite-size scaling -----------------------------------------------------------------
def test_default_finite_size_settings():
    assert [F.default_instances(n) for n in (300, 1000, 10**4, 10**5, 10**6)] == \
        [16, 16, 8, 2, 1]
    cfg = F.FiniteSizeConfig()
    assert F.finite_size_stem(cfg) == "fig4_finite_size"
    # the explicit default instance counts are the same figure, another count is not
    assert F.finite_size_stem(F.FiniteSizeConfig(seeds=[16, 8, 2, 1])) == "fig4_finite_size"
    assert F.finite_size_stem(F.FiniteSizeConfig(seeds=[16, 8, 2, 2])) != "fig4_finite_size"
    cells = cfg.cells()
    assert len(cells) == 7 * (16 + 8 + 2 + 1)
    # largest N first, nearest d_KS first within an N: the long cells start first
    assert [c["n"] for c in cells[:7]] == [10**6] * 7
    assert [c["degree"] for c in cells[:3]] == [64.0, 68.0, 58.0]
    with pytest.raises(ValueError, match="one instance count per N"):
        F.FiniteSizeConfig(seeds=[1, 2])
    with pytest.raises(ValueError, match="distinct"):
        F.FiniteSizeConfig(sizes=[1000, 1000])


def test_cell_cost_ranks_the_largest_n_at_d_ks_first():
    cells = F.FiniteSizeConfig().cells()
    ranked = sorted(cells, key=F.cell_cost, reverse=True)
    assert (ranked[0]["n"], ranked[0]["degree"]) == (10**6, 64.0)
    assert [c["n"] for c in ranked[:7]] == [10**6] * 7
    assert F.cell_cost(cells[-1]) < F.cell_cost(cells[0]) / 100


def test_finite_size_cli_writes_the_figure_with_its_provenance_and_resumes(tmp_path, capsys):
    args = ["fig4", "--n", "300,600", "--degrees", "45,64,80", "--seeds", "2,1", "--out",
            str(tmp_path), *TINY]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "N=300" in out and "N=600" in out
    (js,) = tmp_path.glob("fig4_finite_size_*.json")  # not the defaults: a hashed name
    stem = js.stem
    assert {p.name for p in tmp_path.glob(f"{stem}.*")} == {f"{stem}.{e}" for e in
                                                             ("json", "csv", "png")}
    saved = json.loads(js.read_text())
    meta = saved["meta"]
    assert meta["seed"] == 2025 and meta["lohard_version"]
    assert meta["config"]["sizes"] == [300, 600] and meta["config"]["seeds"] == [2, 1]
    assert saved["instances"] == {"300": 2, "600": 1}
    assert saved["d_ks"] == 64.0 and saved["cavity"]["available"] is True
    assert [(p["n"], p["degree"], p["n_seeds"]) for p in saved["points"]] == \
        [(300, 45.0, 2), (300, 64.0, 2), (300, 80.0, 2),
         (600, 45.0, 1), (600, 64.0, 1), (600, 80.0, 1)]
    assert len(saved["cells"]) == 9
    assert all(r["sweep_cap_random"] == 600 for r in saved["cells"] if r["degree"] == 64.0)
    hi = [p for p in saved["points"] if p["degree"] == 80.0]
    assert all(p["overlap_truth_mean"] > 0.9 and p["overlap_random_mean"] > 0.9 for p in hi)
    csv_lines = (tmp_path / f"{stem}.csv").read_text().splitlines()
    assert csv_lines[0].startswith("# lohard fig4 finite size; lohard ")
    assert "sizes 300 600; instances 2 1" in csv_lines[0]
    assert csv_lines[1].split(",")[:3] == ["n", "degree", "rep"] and len(csv_lines) == 2 + 9
    assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
    # a rerun reads every cell from the cache: no cell file rewritten, same numbers
    cache = {p: p.read_bytes() for p in tmp_path.glob(f".cache/{stem}/*.json")}
    assert len(cache) == 9
    assert main([*args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert {p: p.read_bytes() for p in tmp_path.glob(f".cache/{stem}/*.json")} == cache
    assert again["points"] == saved["points"]
    assert again["cells_seconds"] == pytest.approx(saved["cells_seconds"])


def test_finite_size_figure_draws_both_starts_for_every_n():
    import matplotlib.pyplot as plt

    cells = _cells() + [{**c, "n": 4000, "converged_truth": True, "converged_random": True}
                        for c in _cells()]
    pts = [{"n": n, "degree": d,
            **F._point([c for c in cells if c["n"] == n and c["degree"] == d])}
           for n in (1000, 4000) for d in (40.0, 64.0, 70.0)]
    summary = {**_summary(cells), "points": pts, "instances": {1000: 2, 4000: 2}}
    fig = F._draw_finite_size(summary)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    lines = _lines(fig)
    xlabel = ax.get_xlabel()
    plt.close(fig)
    for n in (1000, 4000):  # one mean curve per (start, N): solid from the truth, dashed random
        mine = [p for p in pts if p["n"] == n]
        for label, ls in (("truth", "-"), ("random", "--")):
            ln = lines[f"{label}_n{n}"]
            assert list(ln.get_ydata()) == [p[f"overlap_{label}_mean"] for p in mine]
            assert ln.get_linestyle() == ls
    colour = {gid: tuple(lines[gid].get_color()) for gid in lines}
    assert colour["truth_n1000"] != colour["truth_n4000"]  # one colour per N
    assert colour["truth_n1000"] == colour["random_n1000"]
    assert "N = 1,000 (2 instances per degree)" in labels
    assert "N = 4,000 (2 instances per degree)" in labels
    assert any(t.startswith("Kesten-Stigum") for t in labels)
    assert "(k-1)" in xlabel
    # hollow where some instance at that (N, d) stopped at its cap
    assert list(lines["not_converged_random_n1000"].get_xdata()) == [64.0, 70.0]
    assert list(lines["not_converged_truth_n1000"].get_xdata()) == [70.0]
    assert len(lines["not_converged_random_n4000"].get_xdata()) == 0


@pytest.mark.parametrize("bad, message", [
    (["--n", "300", "--seeds", "2,1"], "--seeds takes one count unless --n lists several"),
    (["--n", "300,600", "--seeds", "2,1,1"], "one instance count per N"),
    (["--n", "300,300"], "the sizes N must be distinct"),
    (["--n", "300,5"], "argument -n/--n: must be an integer >= 10, got 5"),
    (["--n", "300,"], "argument -n/--n: must be a number or comma-separated numbers"),
    (["--critical-sweeps", "-1"], "argument --critical-sweeps"),
])
def test_fig4_size_and_seed_lists_are_checked(tmp_path, capsys, bad, message):
    assert main(["fig4", "--degrees", "60", "--out", str(tmp_path), *TINY, *bad]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
