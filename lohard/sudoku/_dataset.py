"""Rated puzzle sets: generation (parallel, reproducible, resumable) and .npz files."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lohard._util import (
    RNGLike,
    as_generator,
    atomic_write,
    provenance,
    read_npz,
    to_jsonable,
)
from lohard.sudoku import _kernels as K
from lohard.sudoku._grid import check_box, topology
from lohard.sudoku._solver import STRATEGIES, Ratings, numba_threads

PUZZLES_FORMAT = "lohard.sudoku.puzzles"
FORMAT_VERSION = 1
DIFFICULTIES = {"any": K.DIFF_ANY, "easy": K.DIFF_EASY, "hard": K.DIFF_HARD}


@dataclass
class GeneratorConfig:
    """What :func:`generate_dataset` draws; saved in every file it writes."""

    num: int = 1000              # number of puzzles
    difficulty: str = "easy"     # easy: the 7 strategies solve it; hard: needs guesses; any
    box: int = 3                 # box size b (grid n = b^2): 2 (4x4), 3 (9x9), 4 (16x16)
    min_clues: int = 0           # stop removing clues at this many (0: minimal puzzles)
    max_attempts: int = 10_000   # full grids drawn per puzzle before giving up
    seed: int = 0                # root seed; puzzle i depends only on (seed, i, config)

    def __post_init__(self) -> None:
        for name in ("num", "min_clues", "max_attempts", "seed"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {val!r}")
            setattr(self, name, int(val))
        if self.num < 0:
            raise ValueError(f"num must be an integer >= 0, got {self.num}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, "
                             f"got {self.difficulty!r}")
        self.box = check_box(self.box)
        if not 0 <= self.min_clues <= self.box**4:
            raise ValueError(f"min_clues must lie in [0, N = {self.box**4}], got "
                             f"{self.min_clues}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")


@dataclass
class PuzzleSet:
    """Rated puzzles with unique solutions.

    Attributes
    ----------
    puzzles, solutions : int8 array, shape (M, N)
        Clues (0 = blank) and solutions, row-major.
    orders : int16 array, shape (M, N)
        The rater's solving order (cells, then -1 padding).
    labels : int8 array, shape (M, N)
        Strategy code per cell (see :data:`lohard.sudoku.STRATEGIES` and
        :class:`lohard.sudoku.Ratings`).
    counts : int32 array, shape (M, 9)
        Strategy applications on the solving path.
    guesses : int32 array, shape (M,)
        Guesses the rater made (0 for the easy set).
    attempts : int32 array, shape (M,)
        Full grids drawn until one gave a puzzle of the wanted difficulty.
    box : int
    meta : dict
        Config, seed, versions (:func:`lohard._util.provenance`).
    """

    puzzles: np.ndarray
    solutions: np.ndarray
    orders: np.ndarray
    labels: np.ndarray
    counts: np.ndarray
    guesses: np.ndarray
    attempts: np.ndarray
    box: int = 3
    meta: dict = field(default_factory=dict)

    _ARRAYS = ("puzzles", "solutions", "orders", "labels", "counts", "guesses", "attempts")

    def __len__(self) -> int:
        return int(self.puzzles.shape[0])

    def __getitem__(self, idx) -> PuzzleSet:
        if isinstance(idx, int | np.integer):
            idx = slice(int(idx), int(idx) + 1 if idx != -1 else None)
        return PuzzleSet(*(getattr(self, a)[idx] for a in self._ARRAYS), box=self.box,
                         meta=dict(self.meta))

    @property
    def clues(self) -> np.ndarray:
        return (self.puzzles > 0).sum(axis=1)

    @property
    def hardest(self) -> np.ndarray:
        return self.labels.max(axis=1)

    def ratings(self) -> Ratings:
        M = len(self)
        return Ratings(np.zeros(M, np.int64), self.guesses.astype(np.int64),
                       self.solutions.astype(np.int64), self.orders.astype(np.int64),
                       self.labels.astype(np.int64), self.counts.astype(np.int64), self.box)

    def mdm_tokens(self) -> np.ndarray:
        """int64 (M, 2N): see :func:`lohard.sudoku.mdm_tokens`."""
        from lohard.sudoku._encoding import mdm_tokens

        return mdm_tokens(self.puzzles, self.solutions)

    def arm_tokens(self, order: str = "solver") -> tuple[np.ndarray, np.ndarray]:
        """(tokens int64 (M, 3N), prompt_length (M,)) with blanks in the solver's order
        (``order="solver"``) or row-major (``"row-major"``)."""
        from lohard.sudoku._encoding import arm_tokens

        if order not in ("solver", "row-major"):
            raise ValueError(f"order must be 'solver' or 'row-major', got {order!r}")
        return arm_tokens(self.puzzles, self.solutions,
                          self.orders if order == "solver" else None)

    def summary(self) -> dict:
        h = np.bincount(self.hardest.astype(np.int64), minlength=K.NUM_CODES)
        return {
            "num": len(self), "box": self.box,
            "clues_mean": float(self.clues.mean()) if len(self) else None,
            "clues_min": int(self.clues.min()) if len(self) else None,
            "clues_max": int(self.clues.max()) if len(self) else None,
            "hard_fraction": float((self.guesses > 0).mean()) if len(self) else None,
            "guesses_mean": float(self.guesses.mean()) if len(self) else None,
            "hardest_strategy": {STRATEGIES[k]: int(h[k]) for k in range(1, K.NUM_CODES)},
            "attempts_mean": float(self.attempts.mean()) if len(self) else None,
        }

    def save(self, path: str | Path) -> Path:
        """Write a compressed .npz (atomically) with the metadata as JSON."""
        meta = dict(self.meta)
        meta.update({"format": PUZZLES_FORMAT, "format_version": FORMAT_VERSION,
                     "box": self.box})
        payload = {a: getattr(self, a) for a in self._ARRAYS}
        payload["meta_json"] = np.array(json.dumps(to_jsonable(meta)))

        def writer(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **payload)

        return atomic_write(path, writer)

    @classmethod
    def concatenate(cls, parts: list[PuzzleSet], meta: dict | None = None) -> PuzzleSet:
        if not parts:
            raise ValueError("nothing to concatenate")
        box = parts[0].box
        if any(p.box != box for p in parts):
            raise ValueError("puzzle sets of different box sizes cannot be concatenated")
        arrays = [np.concatenate([getattr(p, a) for p in parts]) for a in cls._ARRAYS]
        return cls(*arrays, box=box, meta=dict(parts[0].meta if meta is None else meta))


def load_puzzles(path: str | Path) -> PuzzleSet:
    """Read a file written by :meth:`PuzzleSet.save` (checks format and version)."""
    meta, arrays = read_npz(path, "Sudoku")
    if meta.get("format") != PUZZLES_FORMAT:
        raise ValueError(f"{path} holds format {meta.get('format')!r}, expected "
                         f"{PUZZLES_FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {meta.get('format_version')}, but this "
                         f"lohard reads version {FORMAT_VERSION}; regenerate the file")
    missing = [a for a in PuzzleSet._ARRAYS if a not in arrays]
    if missing:
        raise ValueError(f"{path} lacks arrays {missing}")
    return PuzzleSet(*(arrays[a] for a in PuzzleSet._ARRAYS), box=int(meta["box"]), meta=meta)


def _root_key(rng: RNGLike) -> np.uint64:
    return np.uint64(as_generator(rng).integers(0, 2**64, dtype=np.uint64))


def generate_puzzles(num: int, *, difficulty: str = "easy", box: int = 3, min_clues: int = 0,
                     max_attempts: int = 10_000, start: int = 0, rng: RNGLike = None,
                     jobs: int | None = None) -> PuzzleSet:
    """Draw rated puzzles with unique solutions.

    Each puzzle: a random full grid (randomised DFS), clues removed in a random order
    while the solution stays unique (exact count stopping at two), then rated by
    :func:`lohard.sudoku.rate_puzzles`; kept if its difficulty matches, else redrawn.

    Parameters
    ----------
    num : int
        Number of puzzles.
    difficulty : {"easy", "hard", "any"}
        easy: the seven strategies solve it with no guess; hard: it needs at least one
        guess; any: keep the first puzzle drawn.
    box : int
        Box size b (2: 4x4, 3: 9x9, 4: 16x16).
    min_clues : int
        Stop removing clues at this count (0: minimal puzzles).
    max_attempts : int
        Grids drawn per puzzle before giving up with a ValueError.
    start : int
        Index of the first puzzle in the stream: puzzle ``start + i`` is the same
        whatever the chunking (this is how resumable generation works).
    rng : Generator, int or None
        Root of the stream (one 64-bit key is drawn from it).
    jobs : int, optional
        Numba threads (1: serial kernel, -1: all). The output does not depend on it.

    Returns
    -------
    PuzzleSet

    Notes
    -----
    Puzzle i uses its own splitmix64 stream seeded from (key, start + i), so the
    parallel kernel gives exactly the serial kernel's output.
    """
    # An integer rng is the seed of record; a Generator's stream is recorded by root_key.
    seed = int(rng) if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) \
        else None
    cfg = GeneratorConfig(num=num, difficulty=difficulty, box=box, min_clues=min_clues,
                          max_attempts=max_attempts, seed=0 if seed is None else seed)
    if int(start) != start or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start}")
    key = _root_key(rng)
    topo = topology(cfg.box)
    M, N = cfg.num, topo.cells
    puzzles = np.zeros((M, N), np.int64)
    solutions = np.zeros((M, N), np.int64)
    orders = np.zeros((M, N), np.int64)
    labels = np.zeros((M, N), np.int64)
    guesses = np.zeros(M, np.int64)
    attempts = np.zeros(M, np.int64)
    counts = np.zeros((M, K.NUM_CODES), np.int64)
    with numba_threads(jobs) as t:
        fn = K.generate_batch_parallel if t > 1 and M > 1 else K.generate_batch_serial
        fn(key, int(start), M, topo.n, topo.b, *topo.kernel_args(), DIFFICULTIES[difficulty],
           int(min_clues), int(max_attempts), K.UNIQUE_RECTANGLE, puzzles, solutions, orders,
           labels, guesses, attempts, counts)
    failed = np.flatnonzero(attempts < 0)
    if failed.size:
        raise ValueError(
            f"no {difficulty} puzzle found within max_attempts = {max_attempts} grids for "
            f"{failed.size} of {M} puzzles (first: index {start + failed[0]}); "
            f"{'4x4 puzzles are all solved by the strategies' if cfg.box == 2 else ''}".rstrip())
    itype = np.int8 if topo.n <= 127 else np.int16
    meta = provenance({**asdict(cfg), "seed": seed}, seed=seed)
    meta["root_key"] = int(key)
    meta["start"] = int(start)
    return PuzzleSet(puzzles.astype(itype), solutions.astype(itype), orders.astype(np.int16),
                     labels.astype(np.int8), counts.astype(np.int32), guesses.astype(np.int32),
                     attempts.astype(np.int32), cfg.box, meta)


#: Puzzles per generator call inside a chunk, per box size: the progress bar's step
#: (about a second of work on one core for 9x9; a 16x16 puzzle can take half a minute).
_PROGRESS_BATCH = {2: 5000, 3: 1000, 4: 16}


def _same_config(meta: dict, cfg: GeneratorConfig, chunk_size: int) -> bool:
    return (meta.get("config") == to_jsonable(asdict(cfg))
            and meta.get("chunk_size") == chunk_size)


def generate_dataset(path: str | Path, config: GeneratorConfig, *, chunk_size: int = 10_000,
                     jobs: int | None = None, progress: bool = True,
                     max_new_chunks: int | None = None) -> PuzzleSet | None:
    """Generate ``config.num`` puzzles into ``path`` (.npz), resumably, in chunks.

    Chunks go to ``<path>.parts/chunk_XXXXXX.npz`` (each written atomically); a rerun
    with the same config generates only the missing chunks, then merges them into
    ``path`` (atomically) and deletes the parts. The result is the same whatever the
    chunk size, interruptions or thread count, since puzzle i depends only on
    (seed, i, config).

    Parameters
    ----------
    path : str or Path
    config : GeneratorConfig
    chunk_size : int
        Puzzles per chunk file.
    jobs : int, optional
        Numba threads (-1: all).
    progress : bool
        Show a tqdm bar over puzzles.
    max_new_chunks : int, optional
        Stop after generating this many chunks (returns None if unfinished): a
        budget for time-limited jobs; rerun to continue.

    Returns
    -------
    PuzzleSet, or None if stopped by ``max_new_chunks`` before the end.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if path.exists():
        done = load_puzzles(path)
        if done.meta.get("config") == to_jsonable(asdict(config)):
            return done  # already complete (whatever chunk size made it)
        raise ValueError(f"{path} exists with a different config; remove it or choose "
                         f"another --out")
    parts = Path(str(path) + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    nchunks = -(-config.num // chunk_size)
    todo = []
    for c in range(nchunks):
        f = parts / f"chunk_{c:06d}.npz"
        if f.exists():
            meta = load_puzzles(f).meta
            if not _same_config(meta, config, chunk_size):
                raise ValueError(f"{f} was made with another config or chunk size; delete "
                                 f"{parts} to start over")
            continue
        todo.append(c)
    bar = tqdm(total=config.num, initial=config.num - sum(
        min(chunk_size, config.num - c * chunk_size) for c in todo),
        desc=f"{config.difficulty} puzzles", unit="puzzle", disable=not progress)
    made = 0
    try:
        for c in todo:
            if max_new_chunks is not None and made >= max_new_chunks:
                return None
            lo = c * chunk_size
            cnt = min(chunk_size, config.num - lo)
            # Sub-batches only move the progress bar (a 10^4 chunk of hard 9x9 puzzles is
            # a minute on two cores); puzzle i is the same whatever the split.
            pieces = []
            for sub in range(lo, lo + cnt, _PROGRESS_BATCH[config.box]):
                k = min(_PROGRESS_BATCH[config.box], lo + cnt - sub)
                pieces.append(generate_puzzles(
                    k, difficulty=config.difficulty, box=config.box,
                    min_clues=config.min_clues, max_attempts=config.max_attempts, start=sub,
                    rng=config.seed, jobs=jobs))
                bar.update(k)
            ps = PuzzleSet.concatenate(pieces)
            ps.meta.update({"config": to_jsonable(asdict(config)), "chunk_size": chunk_size,
                            "chunk": c, "seed": config.seed, "start": lo})
            ps.save(parts / f"chunk_{c:06d}.npz")
            made += 1
    finally:
        bar.close()
    chunks = [load_puzzles(parts / f"chunk_{c:06d}.npz") for c in range(nchunks)]
    meta = provenance(asdict(config), seed=config.seed)
    meta.update({"chunk_size": chunk_size, "root_key": chunks[0].meta["root_key"]
                 if chunks else None, "summary": None})
    if chunks:
        full = PuzzleSet.concatenate(chunks, meta=meta)
    else:
        topo = topology(config.box)
        z = np.zeros((0, topo.cells), np.int8)
        full = PuzzleSet(z, z.copy(), z.astype(np.int16), z.copy(),
                         np.zeros((0, K.NUM_CODES), np.int32), np.zeros(0, np.int32),
                         np.zeros(0, np.int32), config.box, meta)
    full.meta["summary"] = full.summary() if len(full) else None
    full.save(path)
    shutil.rmtree(parts)
    return full
