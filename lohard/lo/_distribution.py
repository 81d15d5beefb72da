"""Latent-and-observed distributions (Def. 3.1), the four families, presets and file I/O."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lohard._limits import check_bytes, sci
from lohard._util import RNGLike, as_generator, atomic_write, provenance, read_npz
from lohard.predicates import Predicate

#: Observation rules whose law depends on k latents through a table P(o = v | x_S).
KIND_TABLE = "table"
#: Random slab (Ex. B.4): every observation depends on all N latents through <z, 2x - 1>.
KIND_SLAB = "slab"
KINDS = (KIND_TABLE, KIND_SLAB)

#: File format of a saved distribution; bump the version on any incompatible change.
DIST_FORMAT = "lohard.lo.distribution"
#: File format of a saved sample set (distribution + tokens).
SAMPLES_FORMAT = "lohard.lo.samples"
FORMAT_VERSION = 1

#: (N, P) of the L&O-NAE-SAT experiments: App. C.2.1 (20, 280) and Table 1 (the rest).
NAE_SAT_PRESETS: tuple[tuple[int, int], ...] = (
    (20, 280), (25, 275), (30, 270), (40, 260), (50, 250), (100, 200),
)

# Below this many candidate k-subsets we enumerate them all and draw without
# replacement exactly; above it we use rejection sampling with de-duplication.
_ENUMERATE_LIMIT = 2_000_000
# Rows per chunk when sampling, to bound the (n, P, V) temporaries.
_SAMPLE_CHUNK = 4096


@dataclass(frozen=True, eq=False)
class LODistribution:
    r"""A latent-and-observed (L&O) distribution (Def. 3.1) with a fixed structure.

    A sample is drawn as: latents :math:`x_1..x_N` i.i.d. from ``prior`` on
    {0..m-1}; observation :math:`o_j \sim \mathcal{O}_j(x)` independently for
    j = 1..P; then canonical token ``j`` (latents first, then observations) is
    written at position ``perm[j]``; then the constant ``trailing`` tokens.

    Parameters
    ----------
    n_latent : int
        Number of latents N.
    m : int
        Latent alphabet size (values 0..m-1; the paper's 1..m minus one).
    prior : float64 array, shape (m,)
        Latent prior, positive, summing to one.
    kind : {"table", "slab"}
        Observation model. ``"table"``: :math:`P(o_j = v \mid x) =
        \mathrm{tables}[t_j, \mathrm{code}(x_{S_j}), v]` with ``S_j = scopes[j]``
        and code the base-m number of the scope values, slot 0 most significant.
        ``"slab"``: :math:`o_j = 1[|\langle z_j, 2x - 1\rangle| \le \beta\sqrt N]` (m = 2).
    n_obs_values : int
        Observation alphabet size V (values 0..V-1).
    scopes : int64 array, shape (P, k)
        Latents of each observation (table kind; distinct within a row).
    obs_table : int64 array, shape (P,)
        Table index t_j of each observation (table kind).
    tables : float64 array, shape (T, m^k, V)
        Conditional laws of the observations; rows sum to one (table kind).
    z : float64 array, shape (P, N)
        Slab directions (slab kind).
    beta : float
        Slab width (slab kind).
    perm : int64 array, shape (N + P,)
        ``perm[j]`` is the sequence position of canonical token j (the paper's pi).
    trailing : int64 array, shape (C,)
        Constant tokens appended after the N + P permuted ones (App. C.2.1).
    family, params : str, dict
        Name and constructor parameters, recorded in saved files.

    Notes
    -----
    Token ids: data values are 0..vocab_size-1 with ``vocab_size = max(m, V, trailing+1)``;
    the mask token is ``mask_id = vocab_size``. The paper writes values 1..m
    and mask 0; lohard keeps 0-based values, like :class:`lohard.predicates.Predicate`.

    References
    ----------
    Kim et al. (ICML 2025), Def. 3.1, Ex. 3.2, Ex. B.1, Ex. B.4, Sec. 3.3, App. C.2.
    """

    n_latent: int
    m: int
    prior: np.ndarray
    kind: str
    n_obs_values: int
    perm: np.ndarray
    scopes: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.int64))
    obs_table: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tables: np.ndarray = field(default_factory=lambda: np.ones((1, 2, 1)))
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    beta: float = 0.0
    trailing: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    family: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = int(self.n_latent), int(self.m)
        if m < 2:
            raise ValueError(f"the latent alphabet needs m >= 2 values, got m = {m}")
        if n < 1:
            raise ValueError(f"need N >= 1 latents, got N = {n}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown observation kind {self.kind!r}; choose one of {KINDS}")
        prior = np.array(self.prior, dtype=np.float64)
        if prior.shape != (m,):
            raise ValueError(f"prior must have shape (m,) = ({m},), got {prior.shape}")
        if not np.all(np.isfinite(prior)) or np.any(prior <= 0) or abs(prior.sum() - 1) > 1e-9:
            raise ValueError(f"prior must be positive and sum to 1, got {prior}")
        v = int(self.n_obs_values)
        if v < 1:
            raise ValueError(f"observations need V >= 1 values, got V = {v}")
        if self.kind == KIND_TABLE:
            scopes = np.array(self.scopes, dtype=np.int64, ndmin=2)
            p, k = scopes.shape
            if k < 1 or k > n:
                raise ValueError(f"observation arity k must lie in [1, N = {n}], got k = {k}")
            if p and (scopes.min() < 0 or scopes.max() >= n):
                raise ValueError(f"scopes must hold latent indices in [0, {n})")
            if p and k > 1 and np.any(np.diff(np.sort(scopes, axis=1), axis=1) == 0):
                raise ValueError("the latents in an observation's scope must be distinct")
            tables = np.array(self.tables, dtype=np.float64)
            if tables.ndim != 3 or tables.shape[1:] != (m**k, v):
                raise ValueError(
                    f"tables must have shape (T, m^k = {m**k}, V = {v}), got {tables.shape}"
                )
            if not np.all(np.isfinite(tables)) or np.any(tables < 0):
                raise ValueError("observation probabilities must be finite and >= 0")
            if np.any(np.abs(tables.sum(axis=2) - 1.0) > 1e-9):
                raise ValueError("each row tables[t, code, :] must sum to 1 (a law on 0..V-1)")
            ot = np.array(self.obs_table, dtype=np.int64).reshape(-1)
            if ot.shape != (p,):
                raise ValueError(f"obs_table must have shape (P,) = ({p},), got {ot.shape}")
            if p and (ot.min() < 0 or ot.max() >= tables.shape[0]):
                raise ValueError(f"obs_table entries must index tables in [0, {tables.shape[0]})")
            z = np.zeros((0, n))
            beta = 0.0
        else:
            if m != 2:
                raise ValueError(f"slab observations need binary latents (m = 2), got m = {m}")
            z = np.array(self.z, dtype=np.float64)
            if z.ndim != 2 or z.shape[1] != n:
                raise ValueError(f"z must have shape (P, N = {n}), got {z.shape}")
            if not np.all(np.isfinite(z)):
                raise ValueError("slab directions z must be finite")
            beta = float(self.beta)
            if not beta > 0:
                raise ValueError(f"slab width beta must be > 0, got {self.beta}")
            if v != 2:
                raise ValueError(f"slab observations are bits (V = 2), got V = {v}")
            p = z.shape[0]
            scopes = np.zeros((p, 0), dtype=np.int64)
            ot = np.zeros(p, dtype=np.int64)
            tables = np.zeros((0, 1, v))
        perm = np.array(self.perm, dtype=np.int64).reshape(-1)
        if perm.shape != (n + p,) or not np.array_equal(np.sort(perm), np.arange(n + p)):
            raise ValueError(f"perm must be a permutation of 0..N+P-1 = 0..{n + p - 1}")
        trailing = np.array(self.trailing, dtype=np.int64).reshape(-1)
        if trailing.size and trailing.min() < 0:
            raise ValueError("trailing tokens must be >= 0")
        for name, arr in (("prior", prior), ("scopes", scopes), ("obs_table", ot),
                          ("tables", tables), ("z", z), ("perm", perm), ("trailing", trailing)):
            arr = np.ascontiguousarray(arr)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "n_latent", n)
        object.__setattr__(self, "m", m)
        object.__setattr__(self, "n_obs_values", v)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "params", dict(self.params))

    # -- shape and vocabulary -----------------------------------------------------
    @property
    def n_obs(self) -> int:
        """Number of observations P."""
        return int(self.perm.shape[0] - self.n_latent)

    @property
    def k(self) -> int:
        """Observation arity (table kind); N for the slab kind."""
        return int(self.scopes.shape[1]) if self.kind == KIND_TABLE else self.n_latent

    @property
    def length(self) -> int:
        """Sequence length L = N + P + number of trailing tokens."""
        return int(self.perm.shape[0] + self.trailing.shape[0])

    @property
    def vocab_size(self) -> int:
        """Number of data token values; ids 0..vocab_size-1 (the mask id is extra)."""
        top = max(self.m, self.n_obs_values)
        if self.trailing.size:
            top = max(top, int(self.trailing.max()) + 1)
        return int(top)

    @property
    def mask_id(self) -> int:
        """The mask token id, ``vocab_size``."""
        return self.vocab_size

    @property
    def latent_positions(self) -> np.ndarray:
        """int64 array, shape (N,): sequence positions of latents 0..N-1."""
        return self.perm[: self.n_latent]

    @property
    def observed_positions(self) -> np.ndarray:
        """int64 array, shape (P,): sequence positions of observations 0..P-1."""
        return self.perm[self.n_latent:]

    @property
    def trailing_positions(self) -> np.ndarray:
        """int64 array, shape (C,): positions of the constant trailing tokens."""
        start = self.perm.shape[0]
        return np.arange(start, start + self.trailing.shape[0], dtype=np.int64)

    def latents(self, tokens: np.ndarray) -> np.ndarray:
        """The latent values of token sequences: int64 array, shape (..., N)."""
        return np.asarray(tokens)[..., self.latent_positions]

    def observations(self, tokens: np.ndarray) -> np.ndarray:
        """The observation values of token sequences: int64 array, shape (..., P)."""
        return np.asarray(tokens)[..., self.observed_positions]

    # -- sampling -----------------------------------------------------------------
    def observation_probs(self, latents: np.ndarray) -> np.ndarray:
        """Observation laws given latents.

        Parameters
        ----------
        latents : int array, shape (n, N)

        Returns
        -------
        float64 array, shape (n, P, V): ``P(o_j = v | x)``.
        """
        x = self._check_latents(latents)
        if self.kind == KIND_TABLE:
            codes = self._codes(x)
            return self.tables[self.obs_table[None, :], codes]
        inside = self._slab_inside(x)
        return np.stack([1.0 - inside, inside], axis=-1).astype(np.float64)

    def sample(self, n: int, *, rng: RNGLike = None, allow_large: bool = False) -> np.ndarray:
        """Draw ``n`` token sequences.

        Parameters
        ----------
        n : int
            Number of sequences.
        rng : Generator, int or None
            The seed fully determines the output.
        allow_large : bool
            Allocate the output even above ``lohard._limits.MAX_BYTES`` (else ValueError).

        Returns
        -------
        int64 array, shape (n, L)
        """
        if int(n) != n or n < 0:
            raise ValueError(f"number of samples must be an integer >= 0, got {n}")
        n = int(n)
        L = self.length
        check_bytes(f"n = {sci(n)} sequences (--num) of length L = {sci(L)} make an n x L "
                    f"int64 array of {sci(n * L)} entries", 8 * n * L,
                    advice="draw fewer sequences, or draw them in batches", action="draw them",
                    allow_large=allow_large)
        gen = as_generator(rng)
        N, P = self.n_latent, self.n_obs
        out = np.empty((n, self.length), dtype=np.int64)
        cdf_prior = np.cumsum(self.prior)[:-1]
        for lo in range(0, n, _SAMPLE_CHUNK):
            b = min(_SAMPLE_CHUNK, n - lo)
            # Inverse-CDF draws keep the stream layout fixed: N uniforms then P uniforms per row.
            x = np.searchsorted(cdf_prior, gen.random((b, N)), side="right").astype(np.int64)
            u = gen.random((b, P))
            if self.kind == KIND_TABLE:
                cdf = np.cumsum(self.tables, axis=2)[self.obs_table[None, :], self._codes(x)]
                obs = (u[..., None] >= cdf[..., :-1]).sum(axis=-1)
            else:
                obs = self._slab_inside(x).astype(np.int64)
            out[lo:lo + b, self.perm[:N]] = x
            out[lo:lo + b, self.perm[N:]] = obs
        out[:, self.perm.shape[0]:] = self.trailing[None, :]
        return out

    def log_prob(self, tokens: np.ndarray) -> np.ndarray:
        """Exact log-probability of complete token sequences.

        Parameters
        ----------
        tokens : int array, shape (n, L)

        Returns
        -------
        float64 array, shape (n,); ``-inf`` for sequences outside the support.
        """
        t = self.check_tokens(tokens)
        x, o = self.latents(t), self.observations(t)
        # Token values valid somewhere in the vocabulary can still lie outside a
        # latent's alphabet (0..m-1) or an observation's (0..V-1): probability 0.
        outside = np.any(x >= self.m, axis=1) | np.any(o >= self.n_obs_values, axis=1)
        x = np.where(x >= self.m, 0, x)
        o = np.where(o >= self.n_obs_values, 0, o)
        with np.errstate(divide="ignore"):
            lp = np.log(self.prior)[x].sum(axis=1)
            probs = self.observation_probs(x)
            po = np.take_along_axis(probs, o[..., None], axis=2)[..., 0]
            lp = lp + np.log(po).sum(axis=1)
        lp[outside] = -np.inf
        const = self.trailing_positions
        if const.size:
            bad = np.any(t[:, const] != self.trailing[None, :], axis=1)
            lp[bad] = -np.inf
        return lp

    # -- validation helpers -------------------------------------------------------
    def check_tokens(self, tokens: np.ndarray, *, allow_mask: bool = False) -> np.ndarray:
        """Validate token sequences: int64 array, shape (n, L), values in range."""
        t = np.asarray(tokens)
        if t.ndim != 2 or t.shape[1] != self.length:
            raise ValueError(f"tokens must have shape (n, L = {self.length}), got {t.shape}")
        if t.size and not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got dtype {t.dtype}")
        t = t.astype(np.int64, copy=False)
        top = self.mask_id if allow_mask else self.vocab_size - 1
        if t.size and (t.min() < 0 or t.max() > top):
            raise ValueError(f"token values must lie in [0, {top}], got [{t.min()}, {t.max()}]")
        return t

    def _check_latents(self, latents: np.ndarray) -> np.ndarray:
        x = np.asarray(latents)
        if x.ndim != 2 or x.shape[1] != self.n_latent:
            raise ValueError(f"latents must have shape (n, N = {self.n_latent}), got {x.shape}")
        x = x.astype(np.int64, copy=False)
        if x.size and (x.min() < 0 or x.max() >= self.m):
            raise ValueError(f"latent values must lie in [0, {self.m})")
        return x

    def _codes(self, x: np.ndarray) -> np.ndarray:
        k = self.scopes.shape[1]
        powers = self.m ** np.arange(k - 1, -1, -1, dtype=np.int64)
        return (x[:, self.scopes] * powers).sum(axis=2)

    def _slab_inside(self, x: np.ndarray) -> np.ndarray:
        s = (2.0 * x - 1.0) @ self.z.T
        return np.abs(s) <= self.beta * math.sqrt(self.n_latent)

    # -- persistence --------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The structure as named arrays (what :meth:`save` writes)."""
        return {"prior": self.prior, "perm": self.perm, "scopes": self.scopes,
                "obs_table": self.obs_table, "tables": self.tables, "z": self.z,
                "trailing": self.trailing}

    def header(self) -> dict[str, Any]:
        """JSON-ready scalars describing the distribution."""
        return {"n_latent": self.n_latent, "m": self.m, "kind": self.kind,
                "n_obs_values": self.n_obs_values, "beta": self.beta,
                "family": self.family, "params": self.params,
                "n_obs": self.n_obs, "length": self.length}

    def save(self, path: str | Path, *, seed: Any = None) -> Path:
        """Save the structure to an ``.npz`` file with format version and provenance."""
        meta = {"format": DIST_FORMAT, "format_version": FORMAT_VERSION,
                "distribution": self.header(), **provenance(self.header(), seed)}
        return _write_npz(path, meta, {f"dist_{k}": v for k, v in self.to_arrays().items()})

    def __repr__(self) -> str:
        return (f"LODistribution({self.family}, N={self.n_latent}, P={self.n_obs}, m={self.m}, "
                f"k={self.k}, L={self.length})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LODistribution) or self.header() != other.header():
            return False
        a, b = self.to_arrays(), other.to_arrays()
        return all(a[key].shape == b[key].shape and np.array_equal(a[key], b[key]) for key in a)

    __hash__ = None  # type: ignore[assignment]


# -- file helpers -----------------------------------------------------------------------
def _write_npz(path: str | Path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    payload = dict(arrays)
    payload["meta_json"] = np.array(json.dumps(meta))

    def writer(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **payload)

    return atomic_write(path, writer)


def _read_npz(path: str | Path, expected_format: str) -> tuple[dict, dict[str, np.ndarray]]:
    meta, arrays = read_npz(path, "L&O")
    fmt, ver = meta.get("format"), meta.get("format_version")
    if fmt != expected_format:
        raise ValueError(f"{path} holds format {fmt!r}, expected {expected_format!r}")
    if ver != FORMAT_VERSION:
        raise ValueError(
            f"{path} has {fmt} format version {ver}, but this lohard "
            f"reads version {FORMAT_VERSION}; regenerate the file with this version"
        )
    return meta, arrays


def _dist_from(meta: dict, arrays: dict[str, np.ndarray]) -> LODistribution:
    h = meta["distribution"]
    a = {key[len("dist_"):]: v for key, v in arrays.items() if key.startswith("dist_")}
    return LODistribution(
        n_latent=h["n_latent"], m=h["m"], prior=a["prior"], kind=h["kind"],
        n_obs_values=h["n_obs_values"], perm=a["perm"], scopes=a["scopes"],
        obs_table=a["obs_table"], tables=a["tables"], z=a["z"], beta=h["beta"],
        trailing=a["trailing"], family=h["family"], params=h["params"],
    )


def load_distribution(path: str | Path) -> LODistribution:
    """Load a distribution written by :meth:`LODistribution.save` (or a samples file)."""
    try:
        meta, arrays = _read_npz(path, DIST_FORMAT)
    except ValueError as err:
        if "expected" not in str(err):
            raise
        meta, arrays = _read_npz(path, SAMPLES_FORMAT)
    return _dist_from(meta, arrays)


def save_samples(path: str | Path, dist: LODistribution, tokens: np.ndarray, *,
                 seed: Any = None, config: dict | None = None) -> Path:
    """Save tokens (n, L) with their distribution, seed, config and format version."""
    t = dist.check_tokens(tokens)
    cfg = {"distribution": dist.header(), **(config or {})}
    meta = {"format": SAMPLES_FORMAT, "format_version": FORMAT_VERSION,
            "distribution": dist.header(), **provenance(cfg, seed)}
    arrays = {f"dist_{k}": v for k, v in dist.to_arrays().items()}
    arrays["tokens"] = t
    return _write_npz(path, meta, arrays)


def load_samples(path: str | Path) -> tuple[LODistribution, np.ndarray, dict]:
    """Load ``(distribution, tokens int64 (n, L), metadata)`` written by :func:`save_samples`."""
    meta, arrays = _read_npz(path, SAMPLES_FORMAT)
    return _dist_from(meta, arrays), arrays["tokens"].astype(np.int64), meta


# -- structure draws ----------------------------------------------------------------------
def _resolve_perm(permutation, size: int, gen: np.random.Generator) -> np.ndarray:
    if permutation is None or (isinstance(permutation, str) and permutation == "identity"):
        return np.arange(size, dtype=np.int64)
    if isinstance(permutation, str):
        if permutation != "random":
            raise ValueError(f"permutation must be 'identity', 'random' or an array, "
                             f"got {permutation!r}")
        return gen.permutation(size).astype(np.int64)
    return np.asarray(permutation, dtype=np.int64)


def _check_prior(prior, m: int) -> np.ndarray:
    if prior is None:
        return np.full(m, 1.0 / m)
    return np.asarray(prior, dtype=np.float64)


def _check_nk(n_latent: int, k: int) -> None:
    if int(n_latent) != n_latent or n_latent < 1:
        raise ValueError(f"N must be an integer >= 1, got N = {n_latent}")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got k = {k}")
    if k > n_latent:
        raise ValueError(f"k-subsets need k <= N, got k = {k} > N = {n_latent}")


def _check_count(n_obs, name: str = "P") -> int:
    if int(n_obs) != n_obs or n_obs < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {name} = {n_obs}")
    return int(n_obs)


def distinct_subsets(n_latent: int, k: int, n_obs: int, *, ordered: bool,
                     rng: RNGLike = None, allow_large: bool = False) -> np.ndarray:
    """Draw ``n_obs`` distinct k-subsets of {0..N-1} uniformly without replacement.

    Parameters
    ----------
    n_latent, k, n_obs : int
    ordered : bool
        Ordered k-tuples of distinct latents (N!/(N-k)! of them), or unordered
        k-subsets (C(N, k), each returned sorted).
    rng : Generator, int or None
    allow_large : bool
        Allocate the random keys of the rejection sampler (2 P x N float64) even
        above ``lohard._limits.MAX_BYTES`` (else ValueError).

    Returns
    -------
    int64 array, shape (n_obs, k)
    """
    _check_nk(n_latent, k)
    n_obs = _check_count(n_obs)
    gen = as_generator(rng)
    total = math.perm(n_latent, k) if ordered else math.comb(n_latent, k)
    kind = "ordered k-subsets N!/(N-k)!" if ordered else "k-subsets C(N, k)"
    if n_obs > total:
        raise ValueError(f"P = {n_obs} exceeds the number of distinct {kind} = {total} "
                         f"(N = {n_latent}, k = {k}); sampling is without replacement")
    if total <= _ENUMERATE_LIMIT:
        gen_fn = itertools.permutations if ordered else itertools.combinations
        allsub = np.array(list(gen_fn(range(n_latent), k)), dtype=np.int64).reshape(total, k)
        return allsub[np.sort(gen.choice(total, size=n_obs, replace=False))]
    check_bytes(f"drawing P = {sci(n_obs)} distinct k-subsets of N = {sci(n_latent)} latents "
                "by rejection needs a 2P x N float64 array of random keys",
                16 * n_obs * n_latent, advice="lower P (--n-obs) or N (--n)",
                action="draw them", allow_large=allow_large)
    seen: set[tuple[int, ...]] = set()
    rows: list[tuple[int, ...]] = []
    while len(rows) < n_obs:
        need = n_obs - len(rows)
        cand = np.argsort(gen.random((2 * need, n_latent)), axis=1)[:, :k]
        for row in map(tuple, cand if ordered else np.sort(cand, axis=1)):
            if row not in seen:
                seen.add(row)
                rows.append(row)
                if len(rows) == n_obs:
                    break
    return np.array(rows, dtype=np.int64).reshape(n_obs, k)


# -- families -------------------------------------------------------------------------------
def sparse_predicate(n_latent: int, predicate: Predicate, n_obs: int | None = None, *,
                     prior=None, permutation=None, rng: RNGLike = None,
                     allow_large: bool = False) -> LODistribution:
    """Sparse predicate observations (Ex. 3.2): o_S = g(x_S) for ordered k-subsets S.

    Parameters
    ----------
    n_latent : int
        N latents with values 0..m-1, m = ``predicate.m``.
    predicate : Predicate
        g: {0..m-1}^k -> {0, 1}.
    n_obs : int, optional
        None: one observation per ordered k-subset, all N!/(N-k)! of them in
        lexicographic order. An int P: a fixed uniform random set of P distinct
        ordered k-subsets, drawn from ``rng`` (sorted lexicographically).
    prior : float array, shape (m,), optional
        Latent prior (uniform by default).
    permutation : None, "identity", "random" or int array, shape (N + P,)
        Positions of the tokens (pi); identity puts the latents first.
    rng : Generator, int or None
        Randomness of the structure (subsets, permutation).
    allow_large : bool
        Build the (P, k) scopes even above ``lohard._limits.MAX_BYTES`` (else
        ValueError).

    Returns
    -------
    LODistribution
    """
    k, m = predicate.k, predicate.m
    _check_nk(n_latent, k)
    check_bytes(f"the observation table has m^k = {m}^{k} = {sci(m**k)} rows of 2 float64 "
                "probabilities", 16 * m**k, advice="lower k or m", action="build it",
                allow_large=allow_large)
    gen = as_generator(rng)
    if n_obs is None:
        p = math.perm(n_latent, k)
        check_bytes(f"the default P = N!/(N-k)! = {sci(p)} observations (every ordered k-subset "
                    f"of N = {sci(n_latent)} latents, k = {k}) make a P x k int64 scope array",
                    8 * k * p, advice="give a smaller P with --n-obs (n_obs)",
                    action="build it", allow_large=allow_large)
        # fromiter, not a list of tuples: the list took ten times the array's memory.
        flat = itertools.chain.from_iterable(itertools.permutations(range(n_latent), k))
        scopes = np.fromiter(flat, dtype=np.int64, count=p * k).reshape(p, k)
    else:
        scopes = distinct_subsets(n_latent, k, n_obs, ordered=True, rng=gen,
                                  allow_large=allow_large)
    g = predicate.table.reshape(-1).astype(np.float64)
    tables = np.stack([1.0 - g, g], axis=1)[None]
    p = scopes.shape[0]
    return LODistribution(
        n_latent=n_latent, m=m, prior=_check_prior(prior, m), kind=KIND_TABLE, n_obs_values=2,
        perm=_resolve_perm(permutation, n_latent + p, gen), scopes=scopes,
        obs_table=np.zeros(p, dtype=np.int64), tables=tables, family="sparse-predicate",
        params={"predicate": predicate.to_dict(), "n_obs": n_obs},
    )


def noisy_parity(n_latent: int, n_obs: int, k: int, eta: float, *, permutation=None,
                 rng: RNGLike = None, allow_large: bool = False) -> LODistribution:
    """Noisy sparse parity observations (Ex. B.1).

    Each z^(j) is a uniform random k-sparse vector in {0,1}^N (drawn independently
    for each j), and o_j = <z^(j), x> mod 2, flipped with probability eta.

    Parameters
    ----------
    n_latent, n_obs, k : int
        N binary latents, P observations, sparsity k <= N.
    eta : float in [0, 1/2)
        Flip probability.
    permutation, rng, allow_large
        As in :func:`sparse_predicate` (here the P x N random keys are checked).

    Returns
    -------
    LODistribution
        ``scopes[j]`` is the support of z^(j), sorted.
    """
    _check_nk(n_latent, k)
    n_obs = _check_count(n_obs)
    eta = float(eta)
    if not 0.0 <= eta < 0.5:
        raise ValueError(f"eta must lie in [0, 1/2), got {eta}")
    check_bytes(f"drawing the supports of P = {sci(n_obs)} parities on N = {sci(n_latent)} "
                "latents needs a P x N float64 array of random keys",
                8 * n_obs * n_latent, advice="lower P (--n-obs) or N (--n)", action="draw them",
                allow_large=allow_large)
    check_bytes(f"the noisy-parity table has 2^k = {sci(2**k)} rows (k = {k}) of 2 float64 "
                "probabilities", 16 * 2**k, advice="lower k", action="build it",
                allow_large=allow_large)
    gen = as_generator(rng)
    scopes = np.sort(np.argsort(gen.random((n_obs, n_latent)), axis=1)[:, :k], axis=1)
    # The parity of every code's bits, doubled slot by slot (np.indices takes k 2^k int64).
    parity = np.zeros(1, dtype=np.int64)
    for _ in range(k):
        parity = np.concatenate([parity, 1 - parity])
    tables = np.where(parity[:, None] == np.arange(2)[None, :], 1.0 - eta, eta)[None]
    return LODistribution(
        n_latent=n_latent, m=2, prior=np.full(2, 0.5), kind=KIND_TABLE, n_obs_values=2,
        perm=_resolve_perm(permutation, n_latent + n_obs, gen), scopes=scopes.astype(np.int64),
        obs_table=np.zeros(n_obs, dtype=np.int64), tables=tables, family="noisy-parity",
        params={"k": int(k), "eta": eta},
    )


def random_slab(n_latent: int, n_obs: int, beta: float, *, permutation=None,
                rng: RNGLike = None, allow_large: bool = False) -> LODistribution:
    r"""Random slab observations (Ex. B.4): :math:`o_j = 1[|\langle z_j, 2x-1\rangle| \le
    \beta\sqrt N]` with z_j i.i.d. standard Gaussian in R^N and uniform binary latents.

    Parameters
    ----------
    n_latent, n_obs : int
    beta : float > 0
        Slab width. Each observation is 1 with probability 2 Phi(beta) - 1 + O(1/N).
    permutation, rng, allow_large
        As in :func:`sparse_predicate` (here the P x N directions are checked).
    """
    _check_nk(n_latent, 1)
    n_obs = _check_count(n_obs)
    if not float(beta) > 0:
        raise ValueError(f"slab width beta must be > 0, got {beta}")
    check_bytes(f"the slab directions z of P = {sci(n_obs)} observations on N = "
                f"{sci(n_latent)} latents make a P x N float64 array", 8 * n_obs * n_latent,
                advice="lower P (--n-obs) or N (--n)", action="draw them",
                allow_large=allow_large)
    gen = as_generator(rng)
    z = gen.standard_normal((n_obs, n_latent))
    return LODistribution(
        n_latent=n_latent, m=2, prior=np.full(2, 0.5), kind=KIND_SLAB, n_obs_values=2,
        perm=_resolve_perm(permutation, n_latent + n_obs, gen), z=z, beta=float(beta),
        family="random-slab", params={"beta": float(beta)},
    )


def nae_sat(n_latent: int, n_obs: int, *, trailing_token: bool = False, permutation=None,
            rng: RNGLike = None, allow_large: bool = False) -> LODistribution:
    """L&O-NAE-SAT (Sec. 3.3, App. C.2): o_j = NAE(x_a, x_b, x_c) for P fixed random triples.

    Parameters
    ----------
    n_latent, n_obs : int
        N uniform binary latents and P observations. The P triples are distinct
        3-subsets of the latents, drawn uniformly without replacement and fixed
        for the distribution (NAE is symmetric, so their order does not matter).
    trailing_token : bool
        Append the constant token of App. C.2.1 (value 2, one past the bits).
    permutation, rng, allow_large
        As in :func:`sparse_predicate`.

    Notes
    -----
    A uniform triple is not-all-equal with probability 3/4, so guessing
    o_j = 1 is right 75% of the time.
    """
    _check_nk(n_latent, 3)
    gen = as_generator(rng)
    scopes = distinct_subsets(n_latent, 3, n_obs, ordered=False, rng=gen,
                              allow_large=allow_large)
    g = Predicate.nae(3, 2).table.reshape(-1).astype(np.float64)
    p = scopes.shape[0]
    return LODistribution(
        n_latent=n_latent, m=2, prior=np.full(2, 0.5), kind=KIND_TABLE, n_obs_values=2,
        perm=_resolve_perm(permutation, n_latent + p, gen), scopes=scopes,
        obs_table=np.zeros(p, dtype=np.int64), tables=np.stack([1.0 - g, g], axis=1)[None],
        trailing=np.array([2] if trailing_token else [], dtype=np.int64), family="nae-sat",
        params={"trailing_token": bool(trailing_token)},
    )


def nae_sat_preset(n_latent: int = 20, n_obs: int | None = None, *, trailing_token: bool = False,
                   rng: RNGLike = None) -> LODistribution:
    """An L&O-NAE-SAT distribution at one of the paper's sizes (``NAE_SAT_PRESETS``).

    ``n_obs`` defaults to the preset's P for ``n_latent`` (N + P = 300 throughout).
    """
    sizes = dict(NAE_SAT_PRESETS)
    if n_latent not in sizes:
        raise ValueError(f"no L&O-NAE-SAT preset with N = {n_latent}; presets (N, P) are "
                         f"{list(NAE_SAT_PRESETS)}")
    p = sizes[n_latent] if n_obs is None else n_obs
    if p != sizes[n_latent]:
        raise ValueError(f"the preset with N = {n_latent} has P = {sizes[n_latent]}, got {p}")
    return nae_sat(n_latent, p, trailing_token=trailing_token, rng=rng)
