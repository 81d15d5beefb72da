import itertools

import numpy as np
import pytest

from lohard.predicates import Predicate, predicate_by_name


def test_nae_33_ks_is_64_and_lambda_minus_eighth():
    p = Predicate.nae(3, 3)
    assert p.balanced
    assert p.lam == pytest.approx(-1 / 8, abs=1e-12)
    assert p.d_ks == pytest.approx(64.0, rel=1e-9)
    assert p.gamma == pytest.approx(24 / 27)


@pytest.mark.parametrize("m", [3, 4, 5, 6, 7])
def test_colouring_ks_is_m_minus_1_squared(m):
    assert Predicate.not_equal(m).d_ks == pytest.approx((m - 1) ** 2, rel=1e-9)


def test_xor_has_no_ks_point():
    p = Predicate.xor(3)
    assert p.balanced and p.lam == pytest.approx(0.0, abs=1e-12)
    assert p.d_ks == float("inf")
    assert Predicate.xor(3, parity=1).parity == 1 and Predicate.xor(4).parity == 0


def test_transfer_matrix_matches_enumeration():
    rng = np.random.default_rng(0)
    table = (rng.random((3, 3, 3)) < 0.6).astype(int)
    table[0, 0, 0] = 1
    p = Predicate(table)
    for i, j in [(0, 1), (2, 0), (1, 2)]:
        t = np.zeros((3, 3))
        for x in itertools.product(range(3), repeat=3):
            t[x[i], x[j]] += table[x]
        t /= t.sum(axis=0, keepdims=True)
        np.testing.assert_allclose(p.transfer_matrix(i, j), t, atol=1e-14)


def test_ks_rate_equals_lambda_squared_for_symmetric_predicates():
    for p in (Predicate.nae(3, 3), Predicate.nae(4, 2), Predicate.not_equal(5)):
        assert p.slot_symmetric
        assert p.ks_rate() == pytest.approx(p.lam**2, rel=1e-9)


def test_unbalanced_predicate_names_assumption_b11():
    p = Predicate.from_function(lambda x: x[0] == 0 or x[1] == 0, 2, 3)
    assert not p.balanced
    with pytest.raises(ValueError, match="Assumption B.11"):
        _ = p.d_ks


@pytest.mark.parametrize(
    "table, msg",
    [
        (np.ones((3, 2)), "shape"),
        (np.zeros((2, 2)), "unsatisfiable"),
        (np.ones(3), "k >= 2"),
        (np.ones((1, 1)), "m >= 2"),
        (np.full((2, 2), 2), "0/1"),
    ],
)
def test_bad_tables(table, msg):
    with pytest.raises(ValueError, match=msg):
        Predicate(table)


def test_bad_constructor_args_and_names():
    with pytest.raises(ValueError, match="k must be"):
        Predicate.nae(1, 3)
    with pytest.raises(ValueError, match="m must be"):
        Predicate.nae(3, 1)
    with pytest.raises(ValueError, match="unknown predicate name"):
        predicate_by_name("majority")
    with pytest.raises(ValueError, match="k = 2"):
        predicate_by_name("not-equal", k=3)
    assert predicate_by_name("colouring", m=5) == Predicate.not_equal(5)
