"""Prop. 3.3 hardness window: closed form against the paper and a Monte Carlo over masks."""

import json
import math

import numpy as np
import pytest

from lohard.cavity import hardness_window, window_monte_carlo, window_probability
from lohard.predicates import Predicate


def test_window_is_the_papers_bound_with_D_equal_d_over_k_minus_1():
    p = Predicate.nae(3, 3)
    n, d_cond, d_ks = 1000, 51.0, 64.0
    w = hardness_window(p, n, d_cond=d_cond, d_ks=d_ks)
    # paper: 1 - gamma^-1 D / (k N^(k-1)) with P = N^k; ours uses the falling factorial
    k, g = 3, p.gamma
    corr = n**k / math.perm(n, k)
    assert w["alpha_lo"] == pytest.approx(1 - d_ks / (k - 1) / (g * k * n ** (k - 1)) * corr)
    assert w["alpha_hi"] == pytest.approx(1 - d_cond / (k - 1) / (g * k * n ** (k - 1)) * corr)
    assert 0 < w["alpha_lo"] < w["alpha_hi"] < 1


def test_xor_window_has_no_lower_edge():
    w = hardness_window(Predicate.xor(3), 50, d_cond=5.5, d_ks=float("inf"))
    assert w["alpha_lo"] == 0.0 and w["alpha_hi"] > 0.0


@pytest.mark.parametrize("alpha", [0.8, 0.87, 0.93])
def test_window_probability_matches_monte_carlo(alpha):
    n, k, d_cond, d_ks = 6, 3, 2.0, 6.0
    gen = np.random.default_rng(1)
    satisfied = gen.random(40) < 0.75  # one sample's satisfied observation tokens
    exact = float(window_probability(alpha, n, int(satisfied.sum()), k, d_cond=d_cond,
                                     d_ks=d_ks))
    trials = 20_000
    mc = window_monte_carlo(alpha, n, satisfied, k, d_cond=d_cond, d_ks=d_ks, trials=trials,
                            rng=2)
    # binomial standard error; 4 sigma keeps the false-failure rate below 1e-4
    se = math.sqrt(max(exact * (1 - exact), 1e-4) / trials)
    assert exact > 0.05
    assert abs(mc - exact) < 4 * se


def test_window_probability_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        window_probability(1.5, 10, 20, 3, d_cond=1.0, d_ks=2.0)


def test_window_cli(capsys):
    import argparse

    from lohard.cavity.cli import register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    args = ap.parse_args(["window", "-n", "1000", "--d-cond", "52.43", "--alpha", "0.999989",
                          "--json"])
    assert args.func(args) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["d_ks"] == pytest.approx(64.0)
    assert out["alpha_lo"] < 0.999989 < out["alpha_hi"]
    assert out["probability"]["0.999989"] > 0.9


def test_window_inputs_are_checked():
    nae = Predicate.nae(3, 3)
    for p_obs in (0, -5):
        with pytest.raises(ValueError, match=f"P must be >= 1 observations.*got P = {p_obs}"):
            hardness_window(nae, 30, d_cond=50.0, n_observations=p_obs)
    with pytest.raises(ValueError, match="number of observations P must be an integer"):
        hardness_window(nae, 30, d_cond=50.0, n_observations=2.5)
    with pytest.raises(ValueError, match="d_cond finite"):
        hardness_window(nae, 30, d_cond=float("nan"))
    with pytest.raises(ValueError, match="need N >= k latents"):
        hardness_window(nae, 2, d_cond=50.0)
    kw = dict(d_cond=50.0, d_ks=64.0)
    for a in (float("nan"), float("inf"), -0.1):
        with pytest.raises(ValueError, match="alpha must be finite and lie in"):
            window_probability(a, 10, 100, 3, **kw)
    with pytest.raises(ValueError, match="alpha must be finite"):
        window_probability([0.5, float("nan")], 10, 100, 3, **kw)
    for s in (-1, 2.5):
        with pytest.raises(ValueError, match="satisfied observations S must be an integer >= 0"):
            window_probability(0.5, 10, s, 3, **kw)
    assert window_probability(0.5, 10, 0, 3, **kw) == 0.0
    sat = np.ones(40, dtype=bool)
    with pytest.raises(ValueError, match="trials must be an integer >= 1, got 0"):
        window_monte_carlo(0.5, 10, sat, 3, trials=0, rng=0, **kw)
    with pytest.raises(ValueError, match="alpha must be finite"):
        window_monte_carlo(float("nan"), 10, sat, 3, trials=10, rng=0, **kw)


@pytest.mark.parametrize("extra, message", [
    (["--observations", "0"], "argument --observations: must be an integer >= 1, got 0"),
    (["--observations", "-3"], "argument --observations: must be an integer >= 1, got -3"),
    (["--alpha", "nan"], "argument --alpha: must be a finite number >= 0 and <= 1, got nan"),
    (["--alpha", "1.5"], "argument --alpha: must be a finite number >= 0 and <= 1"),
])
def test_window_cli_rejects_bad_input_with_exit_2(capsys, extra, message):
    from lohard.cli import main

    # no --d-cond: the inputs must be checked before the (long) cavity computation
    assert main(["window", "-n", "30", *extra]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("lohard window: error: ") and message in err
    assert "Traceback" not in err


def _fake_thresholds_cache(monkeypatch, reports):
    """Replace thresholds_report by a cache of ``reports`` (name -> dict) that computes once."""
    import logging

    import lohard.cavity

    cache, computed = {}, []

    def fake(pred, *, rng=0, compute=True):
        if pred.name in cache:
            return cache[pred.name]
        if not compute:
            raise FileNotFoundError(f"no cached thresholds for {pred.name}")
        logging.getLogger("lohard.cavity").info("population dynamics for %s", pred.name)
        computed.append(pred.name)
        cache[pred.name] = reports[pred.name]
        return cache[pred.name]

    monkeypatch.setattr(lohard.cavity, "thresholds_report", fake)
    return computed


def test_window_cli_says_computing_only_on_a_cache_miss(monkeypatch, capsys):
    from lohard.cli import main

    computed = _fake_thresholds_cache(
        monkeypatch, {"nae(k=3,m=3)": {"d_cond": 52.5, "transition": "discontinuous"}})
    assert main(["window", "-n", "100"]) == 0
    err = capsys.readouterr().err
    assert "computing d_cond of nae(k=3,m=3)" in err and "population dynamics for" in err
    assert main(["window", "-n", "100"]) == 0
    cap = capsys.readouterr()
    assert "computing" not in cap.err and "read from the thresholds cache" in cap.err
    assert computed == ["nae(k=3,m=3)"]
    assert "< alpha <" in cap.out


def test_window_cli_explains_an_empty_window_of_a_continuous_transition(monkeypatch, capsys):
    from lohard.cli import main

    _fake_thresholds_cache(
        monkeypatch, {"not-equal(m=3)": {"d_cond": 4.0, "transition": "continuous"}})
    assert main(["window", "--predicate", "not-equal", "--m", "3", "-n", "100", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "< alpha <" not in out
    assert "hard window: empty (the transition of not-equal(m=3) is continuous" in out
    assert main(["window", "--predicate", "not-equal", "-m", "3", "--n", "100", "--quiet",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["empty"] and res["transition"] == "continuous"
    assert res["alpha_lo"] == res["alpha_hi"]
    # a given d_cond >= d_KS: empty too, with the degrees named
    assert main(["window", "--n", "100", "--d-cond", "64"]) == 0
    assert "hard window: empty (d_cond = 64 >= d_KS = 64" in capsys.readouterr().out


@pytest.mark.parametrize("spelling", [
    ["-k", "3", "-m", "3", "-n", "100"],
    ["--k", "3", "--m", "3", "-n", "100"],
    ["--k", "3", "--m", "3", "--n", "100"],
    ["-k", "3", "--latents", "100"],
])
def test_window_cli_takes_both_flag_spellings(capsys, spelling):
    from lohard.cli import main

    assert main(["window", *spelling, "--d-cond", "52.43", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 100 and out["predicate"] == "nae(k=3,m=3)"
