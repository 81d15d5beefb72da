import numpy as np
import pytest

from lohard.bp import linearised_spectrum, numerical_ks
from lohard.csp import planted_instance
from lohard.predicates import Predicate


def test_global_mode_dominates_and_is_uninformative():
    # The trap in Def. B.12: the spectral radius is the global mode ~ d*lambda.
    pred = Predicate.nae(3, 3)
    inst = planted_instance(1500, pred, 100, rng=1)
    spec = linearised_spectrum(inst, rng=0)
    assert spec.global_mode == pytest.approx(inst.degree * pred.lam, rel=0.1)
    assert spec.sigma_r2[0] < 0.1
    assert spec.sigma_r2.max() > 0.3
    assert spec.informative == pytest.approx(inst.degree * pred.lam**2, rel=0.15)


@pytest.mark.slow
@pytest.mark.parametrize("pred, n", [(Predicate.nae(3, 3), 3000), (Predicate.not_equal(5), 6000)],
                         ids=["nae33", "col5"])
def test_numerical_ks_within_5_percent(pred, n):
    # Measured: NAE(3,3) 64.2 at n = 3000; 5-colouring 15.96 at n = 6000 (12.8 at
    # n = 3000: the finite-size bias of the informative eigenvalue shrinks with n).
    d = pred.d_ks
    res = numerical_ks(pred, n, [1.4 * d, 1.7 * d, 2.0 * d], rng=0)
    assert abs(res["d_ks_numerical"] - d) / d < 0.05
    assert np.all(np.array(res["sigma_r2"]) > 0.3)
