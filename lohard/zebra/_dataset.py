"""Zebra puzzle sets: parallel, reproducible generation and a line-per-puzzle text file.

File format (UTF-8 text, one JSON object a line):

* line 1: ``# lohard.zebra.puzzles`` then the metadata object (format version, size,
  ``max_clues``, generator config, seed, lohard version);
* then one line per puzzle: ``{"solution": [[...] * n], "clues": [[type, [args]], ...],
  "order": [cells a*m+h], "strategies": [names]}``.

Every line is checked when read; a damaged one raises :class:`lohard.DataError` naming
the file and the line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lohard._util import DataError, atomic_write_text, provenance, require_int, to_jsonable
from lohard.zebra._generator import default_max_clues, generate
from lohard.zebra._puzzle import (
    CLUE_TYPES,
    MAX_ARGS,
    Clue,
    Puzzle,
    check,
    check_size,
    grid_errors,
)
from lohard.zebra._solver import STRATEGIES, solve

PUZZLES_FORMAT = "lohard.zebra.puzzles"
FORMAT_VERSION = 1


@dataclass
class ZebraGenConfig:
    """What :func:`generate_dataset` draws; saved in the file it writes."""

    num: int = 1000  # number of puzzles
    m: int = 5  # entities (houses)
    n: int = 5  # attributes
    max_clues: int = 0  # clue slots (0: default_max_clues(m, n)); more clues: redrawn
    seed: int = 0  # root seed; puzzle i depends only on (seed, i, m, n, max_clues)

    def __post_init__(self) -> None:
        self.num = require_int(self.num, "num", minimum=0)
        self.m, self.n = check_size(self.m, self.n)
        self.max_clues = require_int(self.max_clues, "max_clues", minimum=0)
        if self.max_clues == 0:
            self.max_clues = default_max_clues(self.m, self.n)
        self.seed = require_int(self.seed, "seed", minimum=0)


@dataclass
class ZebraSet:
    """Puzzles with their solutions and the solver's order.

    Attributes
    ----------
    solutions : int8 array, shape (M, n, m)
    clues : int8 array, shape (M, max_clues, 1 + MAX_ARGS)
        :meth:`Clue.to_row` rows, -1 padded.
    n_clues : int16 array, shape (M,)
    orders : int16 array, shape (M, n m)
        Cells ``a m + h`` in the order the strategy solver fixed them.
    strategies : int8 array, shape (M, n m)
        Strategy code (:data:`lohard.zebra.STRATEGIES`) per step of ``orders``.
    m, n, max_clues : int
    meta : dict
    """

    solutions: np.ndarray
    clues: np.ndarray
    n_clues: np.ndarray
    orders: np.ndarray
    strategies: np.ndarray
    m: int
    n: int
    max_clues: int
    meta: dict = field(default_factory=dict)

    _ARRAYS = ("solutions", "clues", "n_clues", "orders", "strategies")

    def __len__(self) -> int:
        return int(self.solutions.shape[0])

    def __getitem__(self, idx) -> ZebraSet:
        if isinstance(idx, int | np.integer):
            idx = slice(int(idx), int(idx) + 1 if idx != -1 else None)
        return ZebraSet(*(getattr(self, a)[idx] for a in self._ARRAYS), m=self.m, n=self.n,
                        max_clues=self.max_clues, meta=dict(self.meta))

    def puzzle(self, i: int) -> Puzzle:
        rows = self.clues[i, :int(self.n_clues[i])]
        return Puzzle(self.m, self.n, tuple(Clue.from_row(r) for r in rows),
                      self.solutions[i].astype(np.int64))

    @property
    def layout(self):
        from lohard.zebra._encoding import ZebraLayout

        return ZebraLayout(self.m, self.n, self.max_clues)

    def solver_steps(self) -> np.ndarray:
        """int64 (M, N): the step at which the solver fixed each cell."""
        M, N = self.orders.shape
        steps = np.empty((M, N), np.int64)
        np.put_along_axis(steps, self.orders.astype(np.int64), np.arange(N)[None], axis=1)
        return steps

    def digest(self) -> str:
        """SHA-256 of the size and arrays (resume checks)."""
        h = hashlib.sha256(f"m={self.m},n={self.n},c={self.max_clues}".encode())
        for a in self._ARRAYS:
            h.update(np.ascontiguousarray(getattr(self, a).astype(np.int64)).tobytes())
        return h.hexdigest()

    def summary(self) -> dict:
        codes = np.bincount(self.strategies.astype(np.int64).ravel(),
                            minlength=len(STRATEGIES))
        return {"num": len(self), "m": self.m, "n": self.n, "max_clues": self.max_clues,
                "clues_mean": float(self.n_clues.mean()) if len(self) else None,
                "clues_max": int(self.n_clues.max()) if len(self) else None,
                "strategies": {s: int(codes[i]) for i, s in enumerate(STRATEGIES)
                               if codes[i]}}

    # -- text file ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the text format (atomically)."""
        meta = dict(self.meta)
        meta.update({"format": PUZZLES_FORMAT, "format_version": FORMAT_VERSION,
                     "m": self.m, "n": self.n, "max_clues": self.max_clues})
        lines = [f"# {PUZZLES_FORMAT} " + json.dumps(to_jsonable(meta), sort_keys=True)]
        for i in range(len(self)):
            p = self.puzzle(i)
            lines.append(json.dumps({
                "solution": p.solution.tolist(),
                "clues": [[c.kind, list(c.args)] for c in p.clues],
                "order": self.orders[i].astype(int).tolist(),
                "strategies": [STRATEGIES[int(k)] for k in self.strategies[i]]},
                separators=(",", ":")))
        return atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def from_puzzles(cls, puzzles: list[Puzzle], *, max_clues: int | None = None,
                     meta: dict | None = None) -> ZebraSet:
        """Solve each puzzle (strategies only) and pack the set."""
        if not puzzles:
            raise ValueError("no puzzles")
        m, n = puzzles[0].m, puzzles[0].n
        cap = default_max_clues(m, n) if max_clues is None else int(max_clues)
        rows = [_pack(p, cap) for p in puzzles]
        return cls(*(np.stack([r[k] for r in rows]) for k in range(5)), m=m, n=n,
                   max_clues=cap, meta=dict(meta or {}))

    @classmethod
    def concatenate(cls, parts: list[ZebraSet], meta: dict | None = None) -> ZebraSet:
        if not parts:
            raise ValueError("nothing to concatenate")
        p0 = parts[0]
        if any((p.m, p.n, p.max_clues) != (p0.m, p0.n, p0.max_clues) for p in parts):
            raise ValueError("puzzle sets of different sizes cannot be concatenated")
        return cls(*(np.concatenate([getattr(p, a) for p in parts]) for a in cls._ARRAYS),
                   m=p0.m, n=p0.n, max_clues=p0.max_clues,
                   meta=dict(p0.meta if meta is None else meta))


def _pack(p: Puzzle, cap: int):
    if p.solution is None:
        raise ValueError("a puzzle set needs solutions")
    if len(p.clues) > cap:
        raise ValueError(f"a puzzle has {len(p.clues)} clues, more than max_clues = {cap}")
    sol = solve(p, guess=False)
    if not sol.solved or not np.array_equal(sol.grid, p.solution):
        raise ValueError("the strategies do not solve this puzzle without guessing")
    clues = np.full((cap, 1 + MAX_ARGS), -1, np.int8)
    for j, c in enumerate(p.clues):
        clues[j] = c.to_row()
    return (p.solution.astype(np.int8), clues, np.int16(len(p.clues)),
            sol.order.astype(np.int16), sol.strategy_codes.astype(np.int8))


def load_puzzles(path: str | Path) -> ZebraSet:
    """Read a file written by :meth:`ZebraSet.save`, checking every line.

    Raises
    ------
    DataError
        Missing or empty file, foreign header, or a line that is not a valid puzzle of
        the header's size (named by its line number): bad JSON, a solution that is not
        n permutations, an unknown or out-of-range clue, a clue false on the solution,
        or an order that is not a permutation of the cells.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{p} is not a text file, not a lohard Zebra puzzle file") from err
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{p} is empty, not a lohard Zebra puzzle file")
    head = f"# {PUZZLES_FORMAT} "
    if not lines[0].startswith(head):
        raise DataError(f"{p}, line 1: not a lohard Zebra puzzle file (expected a header "
                        f"starting {head.strip()!r})")
    try:
        meta = json.loads(lines[0][len(head):])
        m, n, cap = check_size(meta["m"], meta["n"]) + (int(meta["max_clues"]),)
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{p}, line 1: unreadable header ({err})") from err
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{p}, line 1: format version {meta.get('format_version')}, this "
                        f"lohard reads version {FORMAT_VERSION}; regenerate the file")
    N = m * n
    sols, clues, ncl, orders, strats = [], [], [], [], []
    for k, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            grid = np.asarray(rec["solution"], np.int64)
            errs = grid_errors(grid, m, n)
            if errs:
                raise ValueError(errs[0])
            cs = [Clue(str(kind), tuple(args)) for kind, args in rec["clues"]]
            if len(cs) > cap:
                raise ValueError(f"{len(cs)} clues, more than max_clues = {cap}")
            rows = np.full((cap, 1 + MAX_ARGS), -1, np.int8)
            for j, c in enumerate(cs):
                c.validate(m, n)
                if not check(c, grid):
                    raise ValueError(f"clue {c} is false on the solution")
                rows[j] = c.to_row()
            order = np.asarray(rec["order"], np.int64)
            if order.shape != (N,) or not np.array_equal(np.sort(order), np.arange(N)):
                raise ValueError(f"order is not a permutation of the {N} cells")
            st = [STRATEGIES.index(s) for s in rec["strategies"]]
            if len(st) != N:
                raise ValueError(f"{len(st)} strategies for {N} cells")
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise DataError(f"{p}, line {k}: not a valid {m} x {n} Zebra puzzle "
                            f"({type(err).__name__}: {err})") from None
        sols.append(grid.astype(np.int8))
        clues.append(rows)
        ncl.append(len(cs))
        orders.append(order.astype(np.int16))
        strats.append(np.asarray(st, np.int8))
    if not sols:
        return ZebraSet(np.zeros((0, n, m), np.int8), np.zeros((0, cap, 1 + MAX_ARGS), np.int8),
                        np.zeros(0, np.int16), np.zeros((0, N), np.int16),
                        np.zeros((0, N), np.int8), m, n, cap, meta)
    return ZebraSet(np.stack(sols), np.stack(clues), np.asarray(ncl, np.int16),
                    np.stack(orders), np.stack(strats), m, n, cap, meta)


def _one(cfg: ZebraGenConfig, i: int) -> Puzzle:
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, cfg.m, cfg.n, i]))
    return generate(cfg.m, cfg.n, rng=rng, max_clues=cfg.max_clues)


def _chunk(cfg: ZebraGenConfig, lo: int, hi: int) -> ZebraSet:
    return ZebraSet.from_puzzles([_one(cfg, i) for i in range(lo, hi)],
                                 max_clues=cfg.max_clues)


def generate_puzzles(cfg: ZebraGenConfig, *, n_jobs: int = 1, start: int = 0,
                     progress: bool = False) -> ZebraSet:
    """Puzzles ``start .. start + cfg.num - 1`` of a config (joblib over chunks).

    Puzzle i is drawn from ``SeedSequence([seed, m, n, i])`` alone, so the set does not
    depend on ``n_jobs`` or on the chunking.
    """
    meta = provenance(asdict(cfg), cfg.seed)
    if cfg.num == 0:
        empty = ZebraSet.from_puzzles([_one(cfg, 0)], max_clues=cfg.max_clues)[:0]
        empty.meta = meta
        return empty
    size = max(1, min(500, -(-cfg.num // (4 * max(1, abs(n_jobs))))))
    bounds = [(lo, min(start + cfg.num, lo + size))
              for lo in range(start, start + cfg.num, size)]
    if n_jobs == 1:
        from tqdm.auto import tqdm

        parts = [_chunk(cfg, lo, hi) for lo, hi in tqdm(bounds, disable=not progress,
                                                        desc=f"zebra {cfg.m}x{cfg.n}",
                                                        unit="chunk")]
    else:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs, verbose=5 if progress else 0)(
            delayed(_chunk)(cfg, lo, hi) for lo, hi in bounds)
    return ZebraSet.concatenate(parts, meta=meta)


def generate_dataset(path: str | Path, cfg: ZebraGenConfig, *, n_jobs: int = 1,
                     chunk_size: int = 2000, progress: bool = False) -> ZebraSet:
    """Generate a set into a text file, resumably; an existing complete file is loaded.

    Chunks of ``chunk_size`` puzzles are written to ``<path>.chunks/`` as they finish, so
    an interrupted call continues where it stopped; the chunks are merged at the end.
    A file of another config is an error.
    """
    path = Path(path)
    want = to_jsonable(asdict(cfg))
    if path.exists():
        ps = load_puzzles(path)
        if ps.meta.get("config") != want:
            raise ValueError(f"{path} holds another config ({ps.meta.get('config')}); asked "
                             f"for {want}: delete it or choose another path")
        return ps
    chunk_dir = path.with_name(path.name + ".chunks")
    parts = []
    for k, lo in enumerate(range(0, cfg.num, chunk_size)):
        hi = min(cfg.num, lo + chunk_size)
        cp = chunk_dir / f"chunk{k:04d}_{lo}_{hi}.jsonl"
        sub = ZebraGenConfig(num=hi - lo, m=cfg.m, n=cfg.n, max_clues=cfg.max_clues,
                             seed=cfg.seed)
        if cp.exists():
            parts.append(load_puzzles(cp))
            continue
        part = generate_puzzles(sub, n_jobs=n_jobs, start=lo, progress=progress)
        part.save(cp)
        parts.append(part)
        if progress:
            print(f"zebra {cfg.m}x{cfg.n}: {hi}/{cfg.num} puzzles", flush=True)
    ps = ZebraSet.concatenate(parts, meta=provenance(asdict(cfg), cfg.seed))
    ps.save(path)
    if chunk_dir.exists():
        import shutil

        shutil.rmtree(chunk_dir)
    return ps


__all__ = ["CLUE_TYPES", "FORMAT_VERSION", "PUZZLES_FORMAT", "ZebraGenConfig", "ZebraSet",
           "generate_dataset", "generate_puzzles", "load_puzzles"]
