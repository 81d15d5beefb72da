"""Thresholds against the literature (planted colouring, 3-XOR), transitions, the cache."""

import dataclasses
import json
import math

import numpy as np
import pytest

from lohard.cavity import (
    DEFAULT_SETTINGS,
    classify_transition,
    default_populations,
    first_moment_degree,
    thresholds_report,
)
from lohard.cavity._report import _CACHE_SCHEMA, cache_key
from lohard.predicates import Predicate


def test_xor_thresholds_and_cache(tmp_path):
    """3-XOR: 2-core and satisfiability densities 0.8185, 0.9179 times k(k-1) = 6."""
    kw = dict(population=3000, sp_population=2000, repeats=2, grid=4, sweeps=40, measure=15,
              cache_dir=tmp_path, rng=3)
    r = thresholds_report(Predicate.xor(3), **kw)
    assert math.isinf(r["d_ks"]) and "lambda = 0" in r["d_ks_note"]
    assert r["d_sp"] == pytest.approx(6 * 0.8185, abs=0.1)
    assert r["d_cond"] == pytest.approx(6 * 0.9179, abs=0.05)
    assert r["d_cond"] <= r["d_1m"] == pytest.approx(6.0)
    assert r["transition"] == "discontinuous"
    assert not r["cached"] and r["meta"]["config"]["settings"]["population"] == 3000
    # the runs kept for resuming are removed once the report is written
    assert not list((tmp_path / "cavity").glob("cells-*"))
    again = thresholds_report(Predicate.xor(3), **kw)
    assert again["cached"] and again["d_cond"] == r["d_cond"]


def test_unbalanced_predicate_is_rejected(tmp_path):
    p = Predicate(np.array([[0, 1], [1, 1]]), name="not-both-zero")
    with pytest.raises(ValueError, match="Assumption B.11"):
        thresholds_report(p, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Assumption B.11"):
        classify_transition(p, population=1000)


def test_first_moment_degree():
    # q-colouring: 2 log q / -log(1 - 1/q); NAE(3,3): 6 log 3 / -log(8/9); 3-XOR: 6
    for q in (3, 5, 10):
        assert first_moment_degree(Predicate.not_equal(q)) == pytest.approx(
            2 * math.log(q) / -math.log(1 - 1 / q))
    assert first_moment_degree(Predicate.nae(3, 3)) == pytest.approx(
        6 * math.log(3) / -math.log(8 / 9))
    assert first_moment_degree(Predicate.xor(3)) == pytest.approx(6.0)
    # d_cond <= d_1m for the literature values of planted colouring
    for q, d_cond in ((5, 13.23), (7, 24.01), (10, 42.5)):
        assert d_cond < first_moment_degree(Predicate.not_equal(q))


def test_continuous_transition_of_3_colouring_is_detected():
    r = classify_transition(Predicate.not_equal(3), population=3000, rng=0)
    assert r["transition"] == "continuous"
    assert not r["below"]["survived"]
    q1, q2 = r["q_above"]
    assert 0 < q1 < q2 and r["q_ratio"] <= 0.75


def test_discontinuous_transitions_are_detected():
    # 4-colouring: d_sp ~ 8.35 < 0.95 d_KS = 8.55, so the planted population survives there
    r4 = classify_transition(Predicate.not_equal(4), population=2000, rng=0)
    assert r4["transition"] == "discontinuous"
    assert r4["below"]["survived"] and r4["survives_at"] == pytest.approx(0.95 * 9)
    # 5-colouring: d_1m = 14.43 < d_KS = 16, so d_cond < d_KS without any population
    r5 = classify_transition(Predicate.not_equal(5), population=2000, rng=0)
    assert r5["transition"] == "discontinuous" and "first moment" in r5["reason"]
    assert "below" not in r5


def test_continuous_report_gives_d_ks_exactly(tmp_path):
    r = thresholds_report(Predicate.not_equal(3), sp_population=3000, cache_dir=tmp_path)
    assert r["transition"] == "continuous"
    assert r["d_sp"] == r["d_cond"] == r["d_ks"] == pytest.approx(4.0)
    assert r["d_sp_err"] == r["d_cond_err"] == 0.0
    assert "grows from 0" in r["transition_reason"]


def test_default_populations_shrink_with_the_degree():
    assert default_populations(Predicate.not_equal(5)) == (12_000, 6_000)
    assert default_populations(Predicate.nae(3, 3)) == (12_000, 6_000)
    pop, sp = default_populations(Predicate.nae(4, 3))
    assert 3000 <= pop < 12_000 and 1500 <= sp < 6000 and pop % 3 == 0 and sp % 3 == 0
    assert default_populations(Predicate.nae(4, 4)) == (3000, 1500)


def test_cache_key_covers_what_matters():
    cfg = {"schema": _CACHE_SCHEMA, "lohard_version": "x", "seed": {"entropy": 0},
           "predicate": {"table": [[0, 1], [1, 0]], "name": "a", "kernel": 1},
           "settings": dataclasses.asdict(DEFAULT_SETTINGS.resolved(Predicate.not_equal(2)))}
    k0 = cache_key(cfg)
    changes = [
        {"predicate": {"table": [[1, 0], [0, 1]], "name": "a", "kernel": 1}},
        {"predicate": {"table": [[0, 1], [1, 0]], "name": "a", "kernel": 0}},
        {"settings": cfg["settings"] | {"population": 1000}},
        {"settings": cfg["settings"] | {"repeats": 5}},
        {"seed": {"entropy": 1}},
        {"schema": _CACHE_SCHEMA + 1},
        {"lohard_version": "y"},
    ]
    keys = {cache_key(cfg | ch) for ch in changes}
    assert k0 not in keys and len(keys) == len(changes)


def test_cli_reads_the_cache_the_table_filled(tmp_path, monkeypatch, capsys):
    """The table script and `lohard thresholds --cavity` share settings and cache entries."""
    import importlib.util
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "simulations" / "thresholds_table.py"
    spec = importlib.util.spec_from_file_location("thresholds_table", script)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    out = tmp_path / "t"
    assert mod.main(["--only", "not-equal(m=3)", "--cache-dir", str(tmp_path / "c"),
                     "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    table = json.loads(out.with_suffix(".json").read_text())
    assert [r["predicate"] for r in table["rows"]] == ["not-equal(m=3)"]
    assert "| not-equal(m=3) |" in out.with_suffix(".md").read_text()
    monkeypatch.setenv("LOHARD_CACHE", str(tmp_path / "c"))
    from lohard.cli import thresholds_dict

    rep = thresholds_dict(Predicate.not_equal(3), cavity=True, seed=0)
    assert rep["cached"] and rep["d_cond"] == table["rows"][0]["d_cond"]


@pytest.mark.slow
def test_q3_colouring_is_continuous_at_4(tmp_path):
    r = thresholds_report(Predicate.not_equal(3), cache_dir=tmp_path, rng=0)
    assert r["transition"] == "continuous"
    assert r["d_sp"] == r["d_cond"] == r["d_ks"] == pytest.approx(4.0)


@pytest.mark.slow
def test_nae_3_2_and_4_2_are_continuous():
    for p in (Predicate.nae(3, 2), Predicate.nae(4, 2)):
        assert classify_transition(p, population=4000, rng=1)["transition"] == "continuous"


@pytest.mark.slow
def test_q5_colouring_matches_literature(tmp_path):
    """Krzakala & Zdeborova (2009): d_sp ~ 12.84, d_cond ~ 13.23."""
    r = thresholds_report(Predicate.not_equal(5), population=8000, sp_population=4000,
                          repeats=2, grid=4, cache_dir=tmp_path, rng=0, n_jobs=2)
    assert r["transition"] == "discontinuous"
    assert r["d_cond"] == pytest.approx(13.23, abs=0.1)
    assert r["d_sp"] == pytest.approx(12.84, abs=0.2)
    assert r["d_sp"] < r["d_cond"] < r["d_ks"]


@pytest.mark.slow
def test_q4_colouring_matches_literature(tmp_path):
    """Zdeborova & Krzakala (2007): d_sp ~ 8.35, d_cond ~ 8.46."""
    r = thresholds_report(Predicate.not_equal(4), population=6000, sp_population=3000,
                          repeats=2, grid=4, cache_dir=tmp_path, rng=0, n_jobs=2)
    assert r["transition"] == "discontinuous"
    assert r["d_cond"] == pytest.approx(8.46, abs=0.1)
    assert r["d_sp"] == pytest.approx(8.35, abs=0.2)


def test_pooled_root_error_covers_the_truth():
    """Synthetic Delta phi = 0.015 (d - 52.5) + noise: the root's error bar has ~68% coverage."""
    from lohard.cavity._thresholds import _pooled_root

    gen = np.random.default_rng(0)
    grid = np.linspace(51.9, 52.9, 4)
    z = []
    for _ in range(400):
        runs = [{"degree": d, "delta_phi": 0.015 * (d - 52.5) + 0.0015 * gen.normal(),
                 "collapsed": False} for d in np.tile(grid, 3)]
        fit = _pooled_root(runs)
        z.append((fit["root"] - 52.5) / fit["root_err"])
    z = np.abs(np.array(z))
    # t distribution with 10 dof: P(|t| < 1) = 0.66; binomial sd over 400 draws is 0.024
    assert 0.58 < np.mean(z < 1.0) < 0.74
    # collapsed runs are left out, and a flat line has no root
    assert _pooled_root([{"degree": 1.0, "delta_phi": 0.0, "collapsed": True}] * 5) is None
    flat = [{"degree": float(d), "delta_phi": 1.0, "collapsed": False} for d in range(4)]
    assert _pooled_root(flat) is None
