"""Torch adapter: determinism per seed, per-worker seeds, DataLoader with workers."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lohard.lo import LOMaskedDataset, LOMaskedIterableDataset, nae_sat  # noqa: E402


def _dist():
    return nae_sat(8, 16, rng=0)


def test_map_dataset_deterministic_and_masked():
    d = _dist()
    ds = LOMaskedDataset(d, 20, seed=3, masking="protocol")
    a, b = ds[5], LOMaskedDataset(d, 20, seed=3, masking="protocol")[5]
    assert torch.equal(a["tokens"], b["tokens"]) and torch.equal(a["mask"], b["mask"])
    assert torch.equal(a["input"] == d.mask_id, a["mask"])
    nl = int(a["mask"][torch.tensor(d.latent_positions.tolist())].sum())
    assert 1 <= nl <= 7
    assert not torch.equal(ds[0]["tokens"], ds[1]["tokens"]) or not torch.equal(
        ds[0]["mask"], ds[1]["mask"])


def test_dataloader_workers_give_the_same_items():
    d = _dist()
    ds = LOMaskedDataset(d, 12, seed=1)
    serial = torch.cat([b["tokens"] for b in torch.utils.data.DataLoader(ds, batch_size=4)])
    par = torch.cat([b["tokens"] for b in torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=2)])
    assert torch.equal(serial, par)


def test_iterable_dataset_independent_of_worker_count():
    d = _dist()
    ds = LOMaskedIterableDataset(d, 10, seed=2, chunk_size=3)
    one = torch.stack([x["tokens"] for x in ds])
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    two = torch.stack([x["tokens"] for x in loader])
    assert one.shape == two.shape == (10, d.length)
    key = lambda t: sorted(map(tuple, t.numpy().tolist()))  # noqa: E731
    assert key(one) == key(two)
    ds.set_epoch(1)
    assert not torch.equal(torch.stack([x["tokens"] for x in ds]), one)
    ts = np.array([float(x["t"]) for x in LOMaskedIterableDataset(d, 5, seed=2)])
    assert np.all((ts >= 0) & (ts < 1))


def test_seed_and_epoch_are_checked_at_construction():
    d = nae_sat(6, 10, rng=0)
    for cls in (LOMaskedDataset, LOMaskedIterableDataset):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            cls(d, 4, seed=-1)
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            cls(d, 4, seed=1.5)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        LOMaskedIterableDataset(d, 4, seed=0).set_epoch(-2)
