"""Size guards: inputs that would hang or exhaust memory are refused in one line, early.

Every refused case here used to run for minutes or end in a MemoryError (cases of the
issue on the CLI under bad input); each test runs in about a second because the guard
fires before the allocation or the computation.
"""

import itertools
import json

import numpy as np
import pytest

import lohard._limits as limits
from lohard.cli import main
from lohard.lo import load_samples, noisy_parity
from lohard.predicates import Predicate


def _refused(capsys, argv: list[str], *words: str) -> str:
    """Run the CLI, check a one-line refusal naming ``words``, the limit and the way out."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "out of memory" not in err
    assert err.count("\n") == 1, err
    for word in (*words, "above the limit of", "--allow-large"):
        assert word in err, (word, err)
    return err


def test_thresholds_colouring_with_many_colours_is_refused(capsys):
    # m = 100: the (m-1)^2 = 9801-dimensional eigenproblem ran for minutes.
    err = _refused(capsys, ["thresholds", "--predicate", "not-equal", "--m", "100"],
                   "m = 100", "(m-1)^6", "9.41e+11 operations", "1e+09")
    assert err.startswith("lohard thresholds: error: the Kesten-Stigum rate")


def test_kesten_stigum_of_1000_colours_is_refused_before_allocating():
    # m = 1000 asked for a 7.3 TiB (m^2, m^2) matrix; the guard comes first.
    pred = Predicate.not_equal(1000)
    with pytest.raises(ValueError, match=r"\(m-1\)\^2 = 998001\).*9\.94e\+17 operations"):
        pred.d_ks


@pytest.mark.parametrize("verb", [
    ["thresholds"],
    ["sample", "sparse-predicate", "-n", "20", "--n-obs", "5", "--num", "1"],
    ["window", "-n", "100", "--quiet"],
])
def test_nae_table_of_6_to_the_12_is_refused(verb, capsys, tmp_path):
    argv = [*verb, "--predicate", "nae", "--k", "12", "--m", "6"]
    if verb[0] == "sample":
        argv += ["--out", str(tmp_path / "s.npz")]
    _refused(capsys, argv, "m^k = 6^12 = 2.18e+09 entries", "16.2 GiB", "2 GiB")
    assert not (tmp_path / "s.npz").exists()


def test_sample_default_p_at_large_n_is_refused(capsys, tmp_path):
    # N = 2000, k = 3: the default P = N!/(N-k)! ~ 8e9 ordered triples.
    _refused(capsys, ["sample", "sparse-predicate", "-n", "2000", "--num", "2", "--out",
                      str(tmp_path / "s.npz")],
             "P = N!/(N-k)! = 7.99e+09", "N = 2000", "--n-obs", "179 GiB")


def test_sample_num_of_a_billion_is_refused(capsys, tmp_path):
    _refused(capsys, ["sample", "nae-sat", "-n", "20", "--n-obs", "280", "--num", "1000000000",
                      "--out", str(tmp_path / "s.npz")],
             "n = 1e+09 sequences (--num)", "L = 300", "2.18 TiB")


@pytest.mark.parametrize("family", ["noisy-parity", "slab", "nae-sat"])
def test_sample_structure_of_p_times_n_is_refused(family, capsys, tmp_path):
    _refused(capsys, ["sample", family, "-n", "100000", "--n-obs", "100000", "--num", "1",
                      "--out", str(tmp_path / "s.npz")],
             "P = 100000", "N = 100000", "--n-obs")


def test_allow_large_lifts_the_operation_limit(capsys, monkeypatch):
    # A lowered limit makes 5-colouring (about 4^6 + 2 * 5^2 = 4146 operations) over it.
    monkeypatch.setattr(limits, "MAX_OPS", 1000)
    argv = ["thresholds", "--predicate", "not-equal", "--m", "5", "--json"]
    _refused(capsys, argv, "= 4146 operations", "limit of 1000")
    assert main([*argv, "--allow-large"]) == 0
    assert json.loads(capsys.readouterr().out)["d_ks"] == pytest.approx(16.0)


def test_allow_large_lifts_the_array_limit(capsys, monkeypatch, tmp_path):
    # 100 sequences of length 16 are 12800 bytes, over a lowered 10000-byte limit.
    monkeypatch.setattr(limits, "MAX_BYTES", 10_000)
    out = tmp_path / "s.npz"
    argv = ["sample", "nae-sat", "-n", "6", "--n-obs", "10", "--num", "100", "--out", str(out)]
    _refused(capsys, argv, "n = 100 sequences (--num)", "12.5 KiB", "9.77 KiB")
    assert not out.exists()
    assert main([*argv, "--allow-large"]) == 0
    _, tokens, _ = load_samples(out)
    assert tokens.shape == (100, 16)


def test_check_bytes_respects_its_limit_argument():
    limits.check_bytes("an array", 100, advice="ask for less", limit=100)
    with pytest.raises(ValueError, match=r"an array \(101 B\), above the limit of 100 B for one "
                                         r"array; ask for less, or pass allow_large=True"):
        limits.check_bytes("an array", 101, advice="ask for less", limit=100)
    limits.check_bytes("an array", 10**20, advice="ask for less", allow_large=True)
    with pytest.raises(ValueError, match="1.5 GiB"):
        limits.check_bytes("an array", 3 * 2**29, advice="ask for less", limit=2**30)


def test_slot_symmetry_from_adjacent_transpositions():
    # 12! = 4.8e8 permutations took hours; k - 1 transpositions decide it.
    assert Predicate.nae(12, 2).slot_symmetric
    # Symmetric under swapping slots 0 and 1, not under slots 1 and 2.
    t = np.zeros((2, 2, 2), dtype=np.uint8)
    t[0, 0, 1] = t[1, 1, 0] = 1
    assert not Predicate(t).slot_symmetric
    brute = all(np.array_equal(t, np.transpose(t, p)) for p in itertools.permutations(range(3)))
    assert brute is False


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_parity_tables_match_the_index_definition(k):
    parity = np.indices((2,) * k).sum(axis=0) % 2
    for par in (0, 1):
        assert np.array_equal(Predicate.xor(k, par).table, (parity == par).astype(np.uint8))
    tables = noisy_parity(k, 3, k, 0.1, rng=0).tables[0]
    assert np.array_equal(tables[:, 1] == 0.9, parity.reshape(-1) == 1)
