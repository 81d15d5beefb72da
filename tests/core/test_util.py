"""lohard._util: file modes of atomic writes, JSON encoding, integer checks."""

import json
import os
import stat

import numpy as np
import pytest

from lohard._util import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    current_umask,
    integer_array,
    require_int,
    to_jsonable,
)


def _save_npy(tmp):
    with open(tmp, "wb") as fh:
        np.save(fh, np.zeros(2))


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_mode_of_an_ordinary_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        a = atomic_write_text(tmp_path / "a.txt", "x")
        b = atomic_write_json(tmp_path / "b.json", {"x": 1})
        c = atomic_write(tmp_path / "c.npy", _save_npy)
    finally:
        os.umask(old)
    assert _mode(plain) == 0o666 & ~umask
    for p in (a, b, c):
        assert _mode(p) == 0o666 & ~umask, p
    assert not list(tmp_path.glob(".*.tmp"))


def test_complex_numbers_are_encoded_as_re_im():
    out = to_jsonable({"ev": [1 + 2j, np.complex128(0.5 - 1j), complex(float("inf"), 0)],
                       "arr": np.array([1j])})
    assert out == {"ev": [{"re": 1.0, "im": 2.0}, {"re": 0.5, "im": -1.0},
                          {"re": "inf", "im": 0.0}], "arr": [{"re": 0.0, "im": 1.0}]}
    json.dumps(out)


def test_require_int_refuses_to_truncate():
    assert require_int(3, "n") == 3 and require_int(4.0, "n", minimum=1) == 4
    assert require_int(np.int32(2), "n") == 2
    for bad in (2.7, float("nan"), True, "3", None):
        with pytest.raises(ValueError, match="n must be an integer"):
            require_int(bad, "n")
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        require_int(0, "n", minimum=1)


def test_integer_array_refuses_to_truncate():
    assert integer_array([1.0, 2.0], "sigma").tolist() == [1, 2]
    assert integer_array(np.array([3], np.uint8), "sigma").dtype == np.int64
    with pytest.raises(ValueError, match="sigma must hold integers, got 0.7"):
        integer_array([0.7, 1.0], "sigma")
    with pytest.raises(ValueError, match="sigma must hold integers"):
        integer_array([np.nan], "sigma")
    with pytest.raises(ValueError, match="sigma must hold integers"):
        integer_array([True, False], "sigma")


def test_package_version_from_a_source_tree(monkeypatch):
    """Run from a checkout with PYTHONPATH=. (as on the GPU machines), the version comes
    from pyproject.toml, marked +src, not 0+unknown."""
    import importlib.metadata as md
    import re

    from lohard._util import package_version

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "version", missing)
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    want = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(),
                     re.MULTILINE).group(1)
    assert package_version() == f"{want}+src"


def test_heartbeat_prints_while_a_block_runs(capsys):
    import time

    from lohard._util import heartbeat

    with heartbeat("lohard test", every=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) >= 2 and all(x.startswith("lohard test: still running (") for x in lines)
    with heartbeat("lohard test", every=0.05, enabled=False):
        time.sleep(0.15)
    assert capsys.readouterr().err == ""
