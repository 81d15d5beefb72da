"""The Predicate class: a k-ary constraint on m colours given by its truth table."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from lohard._limits import check_bytes, check_ops, sci

# Integer codes that select a BP clause-update kernel (Numba kernels dispatch on an
# integer instead of taking a jitted function, which would defeat caching).
KERNEL_GENERIC = 0
KERNEL_NAE = 1  # not-all-equal, any k and m; with k = 2 this is not-equal (colouring)
KERNEL_XOR = 2  # k-XOR on m = 2

# Tolerance for deciding Assumption B.11 and real eigenvalues: the tables are
# integer-valued, so genuine violations are O(1/m^k) and rounding is O(1e-15).
_EXACT_TOL = 1e-12


@dataclass(frozen=True, eq=False)
class Predicate:
    """A predicate g: {0..m-1}^k -> {0, 1} given by its full truth table.

    Parameters
    ----------
    table : array_like of bool or {0, 1}, shape (m,) * k
        ``table[x_1, ..., x_k] = g(x)``. Colours are 0-based here; the paper's
        colours {1..m} are these plus one.
    name : str
        Short human-readable name, used in figures and file metadata.
    kernel : int
        BP fast-path code (``KERNEL_*``); set by the named constructors. A table
        given by hand uses the generic truth-table kernel.
    allow_large : bool
        Compute the transfer eigenvalues and d_KS even when their cost is estimated
        above ``lohard._limits.MAX_OPS`` (the named constructors also build tables
        above ``MAX_BYTES`` with it). Not part of equality.

    Notes
    -----
    The satisfying fraction is ``gamma = |g^{-1}(1)| / m^k``. The predicate is
    *balanced* (Assumption B.11) when, for every slot ``i`` and colour ``c``,
    the number of satisfying tuples with ``x_i = c`` is the same, so that
    uniform messages are a BP fixed point.

    References
    ----------
    Kim et al. (ICML 2025), App. B.3, Def. B.9 and Assumption B.11.
    """

    table: np.ndarray
    name: str = "custom"
    kernel: int = KERNEL_GENERIC
    allow_large: bool = False
    k: int = field(init=False)
    m: int = field(init=False)

    def __post_init__(self) -> None:
        t = np.asarray(self.table)
        if t.ndim < 2:
            raise ValueError(
                f"a predicate needs arity k >= 2, got a table with {t.ndim} dimension(s)"
            )
        m = t.shape[0]
        if m < 2:
            raise ValueError(f"a predicate needs m >= 2 colours, got m = {m}")
        if any(s != m for s in t.shape):
            raise ValueError(
                f"truth table must have shape (m,)*k with one m for every slot, got {t.shape}"
            )
        if not np.isin(t, (0, 1)).all():
            raise ValueError("truth table entries must be 0/1 (or bool)")
        t = np.ascontiguousarray(t.astype(np.uint8))
        if t.sum() == 0:
            raise ValueError("predicate is unsatisfiable: g(x) = 0 for every x")
        t.setflags(write=False)
        object.__setattr__(self, "table", t)
        object.__setattr__(self, "k", int(t.ndim))
        object.__setattr__(self, "m", m)
        object.__setattr__(self, "allow_large", bool(self.allow_large))
        if self.kernel not in (KERNEL_GENERIC, KERNEL_NAE, KERNEL_XOR):
            raise ValueError(f"unknown kernel code {self.kernel}")

    # -- constructors -------------------------------------------------------------
    @classmethod
    def from_function(cls, func, k: int, m: int, name: str = "custom", *,
                      allow_large: bool = False) -> Predicate:
        """Build the table by evaluating ``func(x: tuple[int, ...]) -> bool`` on every tuple."""
        _check_km(k, m, allow_large=allow_large)
        table = np.zeros((m,) * k, dtype=np.uint8)
        for x in itertools.product(range(m), repeat=k):
            table[x] = 1 if func(x) else 0
        return cls(table, name=name, allow_large=allow_large)

    @classmethod
    def nae(cls, k: int = 3, m: int = 3, *, allow_large: bool = False) -> Predicate:
        """Not-all-equal: g(x) = 0 iff x_1 = ... = x_k."""
        _check_km(k, m, allow_large=allow_large)
        table = np.ones((m,) * k, dtype=np.uint8)
        for c in range(m):
            table[(c,) * k] = 0
        return cls(table, name=f"nae(k={k},m={m})", kernel=KERNEL_NAE, allow_large=allow_large)

    @classmethod
    def not_equal(cls, m: int = 3, *, allow_large: bool = False) -> Predicate:
        """Not-equal on pairs (k = 2): planted proper m-colouring."""
        _check_km(2, m, allow_large=allow_large)
        table = 1 - np.eye(m, dtype=np.uint8)
        return cls(table, name=f"not-equal(m={m})", kernel=KERNEL_NAE, allow_large=allow_large)

    @classmethod
    def xor(cls, k: int = 3, parity: int = 0, *, allow_large: bool = False) -> Predicate:
        """k-XOR on bits: g(x) = 1 iff x_1 + ... + x_k = parity (mod 2)."""
        _check_km(k, 2, allow_large=allow_large)
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1, got {parity}")
        # The parity of every index's bits, doubled slot by slot: 2^k bytes, not the
        # k 2^k int64 of np.indices (56 GiB at k = 28).
        bits = np.zeros(1, dtype=np.uint8)
        for _ in range(k):
            bits = np.concatenate([bits, 1 - bits])
        table = (bits == parity).astype(np.uint8).reshape((2,) * k)
        return cls(table, name=f"xor(k={k},parity={parity})", kernel=KERNEL_XOR,
                   allow_large=allow_large)

    # -- basic properties ---------------------------------------------------------
    @property
    def parity(self) -> int:
        """For k-XOR predicates, the parity of satisfying tuples."""
        if self.kernel != KERNEL_XOR:
            raise AttributeError("parity is defined only for XOR predicates")
        return 1 - int(self.table.reshape(-1)[0])  # the all-zero tuple has parity 0

    @property
    def gamma(self) -> float:
        """Satisfying fraction |g^{-1}(1)| / m^k."""
        return float(self.table.mean())

    @property
    def satisfying(self) -> np.ndarray:
        """int64 array, shape (S, k): every satisfying tuple, in lexicographic order."""
        return np.argwhere(self.table).astype(np.int64)

    def slot_marginals(self) -> np.ndarray:
        """float64 array, shape (k, m): fraction of satisfying tuples with x_i = c."""
        t = self.table.astype(np.float64)
        tot = t.sum()
        out = np.empty((self.k, self.m))
        for i in range(self.k):
            axes = tuple(a for a in range(self.k) if a != i)
            out[i] = t.sum(axis=axes) / tot
        return out

    @property
    def balanced(self) -> bool:
        """Assumption B.11: every slot's satisfying-tuple count is the same for every colour."""
        return bool(np.all(np.abs(self.slot_marginals() - 1.0 / self.m) < _EXACT_TOL))

    def require_balanced(self) -> None:
        """Raise ValueError naming Assumption B.11 if the predicate is not balanced."""
        if not self.balanced:
            marg = np.array2string(self.slot_marginals(), precision=3)
            raise ValueError(
                f"predicate {self.name} is not balanced (Assumption B.11): the number of "
                "satisfying tuples with x_i = c must not depend on c or on the slot i, so that "
                f"uniform messages are a BP fixed point; per-slot colour fractions are {marg}"
            )

    @property
    def slot_symmetric(self) -> bool:
        """True if g is invariant under every permutation of its k slots.

        The adjacent transpositions generate the symmetric group, so k - 1 checks
        suffice (not k!: 12! permutations of a 4096-entry table took hours).
        """
        t = self.table
        for i in range(self.k - 1):
            axes = list(range(self.k))
            axes[i], axes[i + 1] = i + 1, i
            if not np.array_equal(t, np.transpose(t, axes)):
                return False
        return True

    # -- transfer matrices and Kesten-Stigum --------------------------------------
    def transfer_matrix(self, i: int = 0, j: int = 1) -> np.ndarray:
        r"""One-clause transfer matrix between slots ``i`` and ``j``.

        .. math:: T[c, c'] = P(x_i = c \mid x_j = c')
                  = \frac{\sum_{x: x_i = c, x_j = c'} g(x)}{\sum_{x: x_j = c'} g(x)},

        with the other k - 2 values uniform. Columns sum to one.

        Returns
        -------
        float64 array, shape (m, m)
        """
        if not (0 <= i < self.k and 0 <= j < self.k and i != j):
            raise ValueError(f"slots must be distinct and in [0, {self.k}), got i={i}, j={j}")
        t = self.table.astype(np.float64)
        axes = tuple(a for a in range(self.k) if a not in (i, j))
        joint = t.sum(axis=axes) if axes else t  # indexed [x_min(i,j), x_max(i,j)]
        # After summing the other axes, the remaining axes are in slot order.
        joint_ij = joint.T if i > j else joint  # joint_ij[x_i, x_j]
        col = joint_ij.sum(axis=0)
        if np.any(col == 0):
            raise ValueError(
                f"slot {j} never takes some colour in a satisfying tuple; "
                "the transfer matrix is undefined"
            )
        return joint_ij / col[None, :]

    def transfer_eigenvalues(self, i: int = 0, j: int = 1) -> np.ndarray:
        """Eigenvalues of ``transfer_matrix(i, j)``, sorted by decreasing modulus.

        Returns a real array when all eigenvalues are real (up to 1e-12), else complex.
        Raises ValueError when the eigen-solve, about m^3 operations, is above
        ``lohard._limits.MAX_OPS`` and the predicate was not built with ``allow_large``.
        """
        m = self.m
        check_ops(f"the eigenvalues of the m x m transfer matrix (m = {m}) take about "
                  f"m^3", m**3, advice="lower m", allow_large=self.allow_large)
        ev = np.linalg.eigvals(self.transfer_matrix(i, j))
        ev = ev[np.argsort(-np.abs(ev), kind="stable")]
        if np.all(np.abs(ev.imag) < _EXACT_TOL):
            ev = ev.real
        return ev

    @property
    def lam(self) -> float:
        """Second-largest eigenvalue (in modulus) of the transfer matrix, signed when real.

        For a slot-symmetric predicate this is the lambda of d_KS = 1 / lambda^2;
        NAE(k=3, m=3) gives -1/8. For other predicates it is reported for slots
        (0, 1); :meth:`ks_rate` averages over slot pairs.
        """
        ev = self.transfer_eigenvalues(0, 1)
        second = ev[1]
        if np.iscomplexobj(second):
            return float(np.abs(second))
        return float(second)

    def ks_rate(self) -> float:
        r"""Growth rate of a small perturbation per unit degree: d_KS = 1 / ks_rate.

        A perturbation of a variable's message is carried to a neighbour through
        one clause by the transfer matrix :math:`T_{ts}` of the two slots. The
        mean second moment grows by ``d`` times the spectral radius of

        .. math:: \bar M = \frac{1}{k(k-1)} \sum_{s \ne t} T_{ts} \otimes T_{ts}

        restricted to perturbations orthogonal to the uniform direction in both
        factors (columns of T sum to 1, so that subspace is invariant). For a
        slot-symmetric predicate this equals lambda^2.

        Raises ValueError when the cost, about k(k-1) m^k operations for the transfer
        matrices and (m-1)^6 for the eigenproblem of size (m-1)^2, is above
        ``lohard._limits.MAX_OPS`` and the predicate was not built with ``allow_large``.
        """
        self.require_balanced()
        k, m = self.k, self.m
        check_ops(f"the Kesten-Stigum rate (k = {k}, m = {m}: k(k-1) transfer matrices from the "
                  f"m^k table, then an eigenproblem of size (m-1)^2 = {sci((m - 1) ** 2)}) takes "
                  "about k(k-1) m^k + (m-1)^6", k * (k - 1) * m**k + (m - 1) ** 6,
                  advice="lower k or m", allow_large=self.allow_large)
        acc = np.zeros((m * m, m * m))
        pairs = [(s, t) for s in range(self.k) for t in range(self.k) if s != t]
        for s, t in pairs:
            tm = self.transfer_matrix(t, s)
            acc += np.kron(tm, tm)
        acc /= len(pairs)
        # Orthonormal basis Q of 1^perp (m x (m-1)); the subspace is Q (x) Q.
        q, _ = np.linalg.qr(np.eye(m) - 1.0 / m)
        q = q[:, : m - 1]
        qq = np.kron(q, q)
        restricted = qq.T @ acc @ qq
        rate = float(np.max(np.abs(np.linalg.eigvals(restricted))))
        return 0.0 if rate < _EXACT_TOL else rate

    @property
    def d_ks(self) -> float:
        """Analytic Kesten-Stigum degree (Def. B.12), in lohard's d = (k-1) k P / N.

        ``1 / lambda^2`` for slot-symmetric predicates; infinite when lambda = 0
        (k-XOR: perturbations never propagate linearly, so there is no KS point).
        Raises ValueError naming Assumption B.11 for unbalanced predicates.
        """
        rate = self.ks_rate()
        # Rounded to 10 significant digits: the eigen-solver's last bits are noise.
        return float("inf") if rate == 0.0 else float(f"{1.0 / rate:.10g}")

    # -- misc ---------------------------------------------------------------------
    def __call__(self, x) -> int:
        return int(self.table[tuple(int(v) for v in x)])

    def __repr__(self) -> str:
        return f"Predicate({self.name}, k={self.k}, m={self.m}, gamma={self.gamma:.4g})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Predicate) and np.array_equal(self.table, other.table)

    def __hash__(self) -> int:
        return hash((self.table.shape, self.table.tobytes()))

    def to_dict(self) -> dict:
        """JSON-ready description (name, k, m, kernel and, for custom tables, the table)."""
        d = {"name": self.name, "k": self.k, "m": self.m, "kernel": self.kernel}
        if self.kernel == KERNEL_GENERIC:
            d["table"] = self.table.tolist()
        return d


def _check_km(k: int, m: int, *, allow_large: bool = False) -> None:
    if int(k) != k or k < 2:
        raise ValueError(f"arity k must be an integer >= 2, got k = {k}")
    if int(m) != m or m < 2:
        raise ValueError(f"number of colours m must be an integer >= 2, got m = {m}")
    # The largest array is the float64 copy of the table (slot marginals, transfer matrices).
    k, m = int(k), int(m)
    check_bytes(f"the predicate table has m^k = {m}^{k} = {sci(m**k)} entries, "
                "8 bytes each as float64", 8 * m**k, advice="lower k or m",
                action="build it", allow_large=allow_large)


PREDICATE_NAMES = ("nae", "not-equal", "colouring", "xor")


def predicate_by_name(name: str, *, k: int | None = None, m: int | None = None,
                      allow_large: bool = False) -> Predicate:
    """Build a named predicate: ``nae`` (k, m), ``not-equal``/``colouring`` (m), ``xor`` (k).

    Defaults: k = 3 and m = 3 for NAE, m = 3 for not-equal, k = 3 for XOR.
    ``allow_large`` lifts the size limits (see :class:`Predicate`).
    """
    key = name.lower().replace("_", "-")
    if key == "nae":
        return Predicate.nae(3 if k is None else k, 3 if m is None else m,
                             allow_large=allow_large)
    if key in ("not-equal", "colouring", "coloring", "ne"):
        if k not in (None, 2):
            raise ValueError(f"not-equal is a pairwise predicate (k = 2), got k = {k}")
        return Predicate.not_equal(3 if m is None else m, allow_large=allow_large)
    if key in ("xor", "k-xor"):
        if m not in (None, 2):
            raise ValueError(f"k-XOR is defined on bits (m = 2), got m = {m}")
        return Predicate.xor(3 if k is None else k, allow_large=allow_large)
    raise ValueError(f"unknown predicate name {name!r}; choose one of {', '.join(PREDICATE_NAMES)}")
