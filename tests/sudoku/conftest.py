import pytest

import lohard.sudoku as S


@pytest.fixture(scope="session")
def grids4():
    from lohard.sudoku._reference import all_grids_4x4

    return all_grids_4x4()


@pytest.fixture(scope="session")
def mixed9():
    """200 9x9 puzzles of any difficulty (seed 11)."""
    return S.generate_puzzles(200, difficulty="any", rng=11, jobs=1)


@pytest.fixture(scope="session")
def hard9():
    return S.generate_puzzles(20, difficulty="hard", rng=12, jobs=1)
