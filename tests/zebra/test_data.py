"""Generator determinism, puzzle files, token layouts."""

import numpy as np
import pytest

from lohard import DataError
from lohard.zebra import (
    VOCAB_SIZE,
    ZebraGenConfig,
    ZebraLayout,
    arm_tokens,
    clue_tokens,
    decode_arm_tokens,
    generate,
    generate_dataset,
    generate_puzzles,
    load_puzzles,
    mdm_tokens,
    parse_clue_tokens,
    solve,
)


@pytest.fixture(scope="module")
def small():
    return generate_puzzles(ZebraGenConfig(num=24, m=4, n=3, seed=7))


def test_generate_is_a_function_of_the_seed():
    a, b, c = generate(4, 4, rng=3), generate(4, 4, rng=3), generate(4, 4, rng=4)
    assert a.clues == b.clues and np.array_equal(a.solution, b.solution)
    assert a.clues != c.clues


def test_dataset_does_not_depend_on_jobs(small):
    again = generate_puzzles(ZebraGenConfig(num=24, m=4, n=3, seed=7), n_jobs=2)
    assert again.digest() == small.digest()
    # and puzzle i is the same whatever the start of the range
    tail = generate_puzzles(ZebraGenConfig(num=4, m=4, n=3, seed=7), start=20)
    assert tail.digest() == small[20:24].digest()


def test_dataset_orders_are_the_solvers(small):
    for i in range(len(small)):
        s = solve(small.puzzle(i))
        assert s.unique and s.guesses == 0
        assert np.array_equal(s.order, small.orders[i])
        assert np.array_equal(s.grid, small.solutions[i])


def test_file_round_trip_and_resume(tmp_path, small):
    path = tmp_path / "z.jsonl"
    cfg = ZebraGenConfig(num=24, m=4, n=3, seed=7)
    ps = generate_dataset(path, cfg, chunk_size=10)
    assert ps.digest() == small.digest()
    assert not (tmp_path / "z.jsonl.chunks").exists()
    back = load_puzzles(path)
    assert back.digest() == small.digest()
    assert back.meta["config"]["seed"] == 7 and "lohard_version" in back.meta
    # an existing file is loaded, another config refused
    assert generate_dataset(path, cfg).digest() == small.digest()
    with pytest.raises(ValueError, match="another config"):
        generate_dataset(path, ZebraGenConfig(num=24, m=4, n=3, seed=8))


def _corrupt(tmp_path, small, edit):
    path = tmp_path / "z.jsonl"
    small.save(path)
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit,line,why", [
    (lambda ls: ls.__setitem__(3, ls[3][:40]), 4, "JSONDecodeError"),
    (lambda ls: ls.__setitem__(2, ls[2].replace('"solution":[[', '"solution":[[9,', 1)), 3,
     "solution|permutation|shape"),
    (lambda ls: ls.__setitem__(5, ls[5].replace('"clues":[["', '"clues":[["above', 1)), 6,
     "unknown clue type"),
    (lambda ls: ls.__setitem__(2, ls[2].replace('"order":[', '"order":[0,', 1)), 3,
     "order"),
])
def test_corrupt_file_names_the_line(tmp_path, small, edit, line, why):
    path = _corrupt(tmp_path, small, edit)
    with pytest.raises(DataError, match=rf"line {line}: .*({why})"):
        load_puzzles(path)


def test_false_clue_is_caught(tmp_path, small):
    import json

    def edit(lines):
        rec = json.loads(lines[1])
        sol = rec["solution"]
        rec["clues"].append(["at", [0, sol[0][0], 1]])  # value of house 0 put in house 1
        lines[1] = json.dumps(rec)

    with pytest.raises(DataError, match="line 2: .*false on the solution"):
        load_puzzles(_corrupt(tmp_path, small, edit))


def test_foreign_and_empty_files(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_puzzles(tmp_path / "e.jsonl")
    (tmp_path / "f.jsonl").write_text("hello\n")
    with pytest.raises(DataError, match="line 1"):
        load_puzzles(tmp_path / "f.jsonl")
    with pytest.raises(DataError, match="no such file"):
        load_puzzles(tmp_path / "missing.jsonl")


def test_token_round_trip(small):
    lay = small.layout
    assert lay == ZebraLayout(4, 3, 12)
    assert lay.vocab_size == VOCAB_SIZE and lay.mask_id == VOCAB_SIZE
    t = mdm_tokens(small.clues, small.n_clues, small.solutions, lay)
    assert t.shape == (len(small), lay.mdm_length)
    assert t.max() < VOCAB_SIZE and t.min() >= 0
    clues, n = parse_clue_tokens(t, lay)
    assert np.array_equal(n, small.n_clues)
    assert np.array_equal(clues, small.clues)
    sol = t[:, lay.prompt_length:] - lay.cell_item_ids[None, :, 0]
    assert np.array_equal(sol.reshape(small.solutions.shape), small.solutions)
    # a cell holds the same token a clue uses for that value: item (a, v)
    assert (t[:, lay.prompt_length:][:, :, None] == lay.cell_item_ids[None]).sum(-1).min() == 1
    for orders in (small.orders, None):
        a = arm_tokens(small.clues, small.n_clues, small.solutions, lay, orders)
        assert a.shape == (len(small), lay.arm_length)
        assert np.array_equal(a[:, :lay.prompt_length], t[:, :lay.prompt_length])
        grids, steps, ok = decode_arm_tokens(a, lay)
        assert ok.all() and np.array_equal(grids, small.solutions)
        want = small.solver_steps() if orders is not None else np.tile(np.arange(12),
                                                                       (len(small), 1))
        assert np.array_equal(steps, want)


def test_malformed_arm_sequences_are_flagged(small):
    lay = small.layout
    a = arm_tokens(small.clues[:2], small.n_clues[:2], small.solutions[:2], lay)
    P = lay.prompt_length
    a[0, P + 3:P + 6] = a[0, P:P + 3]  # cell named twice, another never
    a[1, P + 2] = 0  # padding where a value belongs
    _, _, ok = decode_arm_tokens(a, lay)
    assert not ok.any()
    b = arm_tokens(small.clues[:1], small.n_clues[:1], small.solutions[:1], lay)
    b[0, P + 2] += 6  # an item of the next attribute in attribute 0's triple
    assert not decode_arm_tokens(b, lay)[2].any()


def test_clue_tokens_refuse_overfull_layouts(small):
    with pytest.raises(ValueError, match="layout holds"):
        clue_tokens(small.clues, small.n_clues, ZebraLayout(4, 3, 2))
