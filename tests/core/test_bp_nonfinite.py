"""A non-finite message raises, on every kernel path, and names where it appeared.

The flooding kernels carry a NaN or inf message into the iteration's largest
change (``_kernels._worse``), which run_bp checks after every iteration, so it
needs no pass over the messages at the end. The sweep carries inf only (a NaN
test in its inner loop would cost 4 % of a sweep); its messages are checked once
when the run ends.
"""

import numpy as np
import pytest

from lohard.bp import _bp, run_bp
from lohard.bp import _kernels as K
from lohard.csp import planted_instance
from lohard.predicates import Predicate


def test_worse_keeps_nan_and_the_maximum():
    assert K._worse(0.1, 0.3) == 0.3
    assert K._worse(0.3, 0.1) == 0.3
    assert np.isnan(K._worse(0.1, np.nan))
    assert np.isnan(K._worse(np.nan, 0.5))  # sticky: a later finite change does not hide it
    assert K._worse(0.1, np.inf) == np.inf


@pytest.mark.parametrize("n", [300, 3000])  # the user's numbering, and the locality layout
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("schedule, threads", [("parallel", 1), ("parallel", 2),
                                               ("random-sequential", 1)])
@pytest.mark.parametrize("fast_path", [True, False])
def test_non_finite_message_raises_at_its_iteration(monkeypatch, n, bad, schedule, threads,
                                                    fast_path):
    inst = planted_instance(n, Predicate.nae(3, 3), 30.0, rng=1)
    real = _bp._initial_messages

    def poisoned(graph, init, noise, sigma, gen):
        nu = real(graph, init, noise, sigma, gen)
        nu[nu.shape[0] // 2, 1] = bad  # one entry of one message
        return nu

    monkeypatch.setattr(_bp, "_initial_messages", poisoned)
    # flooding names the iteration; the sweep finds a NaN when its run ends, an inf at once
    msg = ("at iteration 1;" if schedule == "parallel" or bad == np.inf else "in 5 sweeps;")
    with pytest.raises(FloatingPointError, match=f"non-finite messages {msg}"):
        run_bp(inst, schedule=schedule, max_iter=5, warn=False, rng=0, threads=threads,
               fast_path=fast_path)


@pytest.mark.parametrize("threads", [1, 2])
def test_finite_runs_unchanged_by_the_check(threads):
    inst = planted_instance(3000, Predicate.nae(3, 3), 70.0, rng=2)
    r = run_bp(inst, max_iter=200, rng=0, threads=threads)
    assert r.converged and np.isfinite(r.history).all()
    assert np.isfinite(r.nu).all() and np.isfinite(r.beliefs).all()
