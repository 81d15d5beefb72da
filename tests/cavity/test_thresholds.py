"""Thresholds against the literature (planted colouring, 3-XOR) and the on-disk cache."""

import math

import pytest

from lohard.cavity import thresholds_report
from lohard.predicates import Predicate


def test_xor_thresholds_and_cache(tmp_path):
    """3-XOR: 2-core and satisfiability densities 0.8185, 0.9179 times k(k-1) = 6."""
    kw = dict(population=3000, sp_population=2000, repeats=2, grid=4, sweeps=40, measure=15,
              cache_dir=tmp_path, rng=3)
    r = thresholds_report(Predicate.xor(3), **kw)
    assert math.isinf(r["d_ks"]) and "lambda = 0" in r["d_ks_note"]
    assert r["d_sp"] == pytest.approx(6 * 0.8185, abs=0.1)
    assert r["d_cond"] == pytest.approx(6 * 0.9179, abs=0.05)
    assert r["transition"] == "discontinuous"
    assert not r["cached"] and r["meta"]["config"]["population"] == 3000
    again = thresholds_report(Predicate.xor(3), **kw)
    assert again["cached"] and again["d_cond"] == r["d_cond"]


def test_unbalanced_predicate_is_rejected(tmp_path):
    import numpy as np

    p = Predicate(np.array([[0, 1], [1, 1]]), name="not-both-zero")
    with pytest.raises(ValueError, match="Assumption B.11"):
        thresholds_report(p, cache_dir=tmp_path)


@pytest.mark.slow
def test_q3_colouring_is_continuous_at_4(tmp_path):
    r = thresholds_report(Predicate.not_equal(3), population=6000, sp_population=3000,
                          repeats=2, cache_dir=tmp_path, rng=0)
    assert r["transition"] == "continuous"
    assert r["d_sp"] == pytest.approx(4.0, abs=0.1)
    assert r["d_cond"] == r["d_sp"]


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
    assert r["d_cond"] == pytest.approx(8.46, abs=0.1)
    assert r["d_sp"] == pytest.approx(8.35, abs=0.2)
