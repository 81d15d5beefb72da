"""Planted population dynamics: paramagnetic limits, determinism, errors."""

import numpy as np
import pytest

from lohard.cavity import (
    locate_condensation,
    locate_spinodal,
    phi_paramagnetic,
    population_dynamics,
    survives,
)
from lohard.predicates import Predicate


def _unbalanced():
    # g(x) = 0 only at (0, 0): colour 0 has 1 satisfying partner, colour 1 has 2
    return Predicate(np.array([[0, 1], [1, 1]]), name="not-both-zero")


def test_uniform_start_below_ks_is_paramagnetic():
    p = Predicate.not_equal(5)
    r = population_dynamics(p, 10.0, population=2000, sweeps=30, measure=10, init="uniform",
                            rng=0)
    assert r.collapsed
    # the uniform point makes every free-entropy term vanish identically
    assert abs(r.delta_phi) < 1e-8
    assert abs(r.q) < 1e-6
    assert r.phi_planted == pytest.approx(phi_paramagnetic(p, 10.0), abs=1e-8)
    assert r.contradictions == 0


def test_planted_branch_above_ks_is_informative_and_positive():
    # above d_KS = 16 the planted fixed point has higher free entropy than the paramagnet
    r = population_dynamics(Predicate.not_equal(5), 18.0, population=3000, sweeps=30,
                            measure=10, rng=1)
    assert not r.collapsed
    assert r.overlap > 0.8
    assert r.delta_phi > 5 * r.delta_phi_err > 0
    assert r.trace.shape == (r.sweeps + r.measure,)
    assert np.all(np.isfinite(r.phi_trace))


def test_zero_degree_gives_uniform_messages():
    r = population_dynamics(Predicate.nae(3, 3), 0.0, population=300, sweeps=5, measure=2,
                            rng=0)
    assert r.collapsed and r.delta_phi == pytest.approx(0.0, abs=1e-12)


def test_seed_determines_result():
    p = Predicate.nae(3, 3)
    a = population_dynamics(p, 55.0, population=600, sweeps=5, measure=4, rng=7)
    b = population_dynamics(p, 55.0, population=600, sweeps=5, measure=4, rng=7)
    c = population_dynamics(p, 55.0, population=600, sweeps=5, measure=4, rng=8)
    assert a.delta_phi == b.delta_phi and np.array_equal(a.trace, b.trace)
    assert a.delta_phi != c.delta_phi


def test_xor_messages_are_frozen_or_uniform():
    """3-XOR at d = 5.5 (P/N ~ 0.917): the informative messages are one-hot or uniform."""
    r = population_dynamics(Predicate.xor(3), 5.5, population=2000, sweeps=40, measure=5,
                            rng=0)
    assert not r.collapsed
    # backbone fraction of the 2-core problem at this density is about 0.9
    assert 0.8 < r.q < 0.99


def test_errors_are_worded_in_the_math():
    with pytest.raises(ValueError, match="Assumption B.11"):
        population_dynamics(_unbalanced(), 2.0, population=1000)
    with pytest.raises(ValueError, match="too small to estimate"):
        population_dynamics(Predicate.nae(3, 3), 2.0, population=50)
    with pytest.raises(ValueError, match="degree must be"):
        population_dynamics(Predicate.nae(3, 3), -1.0)
    with pytest.raises(ValueError, match="init"):
        population_dynamics(Predicate.nae(3, 3), 1.0, init="random")


def test_bracket_errors_give_the_values_at_both_ends():
    p = Predicate.not_equal(5)
    with pytest.raises(ValueError, match=r"does not bracket the spinodal.*d = 4.*d = 6"):
        locate_spinodal(p, 4.0, 6.0, population=1000, sweeps=20, rng=0)
    with pytest.raises(ValueError, match=r"does not bracket the condensation.*d = 17.*d = 18"):
        locate_condensation(p, 17.0, 18.0, population=1000, sweeps=10, measure=4, rng=0)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="unknown backend"):
        locate_spinodal(Predicate.not_equal(5), 8.0, 17.0, population=500, sweeps=20,
                        repeats=2, rng=0, backend="carrier-pigeon")


def test_survives_brackets_the_q5_spinodal():
    p = Predicate.not_equal(5)
    assert not survives(p, 12.0, population=2000, rng=0)[0]
    assert survives(p, 14.0, population=2000, rng=0)[0]


def test_a_single_repeat_gives_no_error_bar():
    with pytest.raises(ValueError, match="repeats >= 2"):
        locate_spinodal(Predicate.not_equal(5), 8.0, 17.0, population=500, repeats=1, rng=0)


def test_counts_and_levels_are_checked_not_truncated():
    nae = Predicate.nae(3, 3)
    with pytest.raises(ValueError, match="equilibration sweeps must be an integer >= 0, got 2.5"):
        population_dynamics(nae, 10.0, population=300, sweeps=2.5, measure=2, rng=0)
    with pytest.raises(ValueError, match="measurement sweeps must be an integer >= 1, got 1.5"):
        population_dynamics(nae, 10.0, population=300, sweeps=2, measure=1.5, rng=0)
    with pytest.raises(ValueError, match="samples per measurement sweep must be an integer"):
        population_dynamics(nae, 10.0, population=300, sweeps=2, measure=2, samples=0.5)
    with pytest.raises(ValueError, match="population must be an integer"):
        population_dynamics(nae, 10.0, population=300.5, sweeps=2, measure=2, rng=0)
    for q in (float("nan"), -0.1, 1.0):
        with pytest.raises(ValueError, match=r"collapse_q of the order parameter must lie in "
                                             r"\[0, 1\)"):
            population_dynamics(nae, 10.0, population=300, sweeps=2, measure=2, collapse_q=q)
        with pytest.raises(ValueError, match="collapse_q"):
            survives(nae, 10.0, population=300, sweeps=2, collapse_q=q, rng=0)
    with pytest.raises(ValueError, match="sweeps must be an integer >= 1, got 0"):
        survives(nae, 10.0, population=300, sweeps=0, rng=0)


def test_every_bisection_step_is_logged(caplog):
    import logging

    from lohard.cavity._thresholds import _spinodal_cell, predicate_cell

    cell = {"predicate": predicate_cell(Predicate.not_equal(5)), "d_lo": 8.0, "d_hi": 17.0,
            "tol": 2.5, "population": 500, "sweeps": 20, "collapse_q": 0.02, "repeat": 1}
    with caplog.at_level(logging.INFO, logger="lohard.cavity"):
        out = _spinodal_cell(cell, np.random.SeedSequence(0))
    steps = [r.getMessage() for r in caplog.records if "d_sp bisection" in r.getMessage()]
    assert len(steps) == len(out["history"]) >= 2
    assert "repeat 1" in steps[0] and "d = 12.5" in steps[0]
