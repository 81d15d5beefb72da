"""Belief propagation (Def. B.10): the public driver around the Numba kernels."""

from __future__ import annotations

import time
import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np

from lohard._util import RNGLike, as_generator, integer_array, require_int
from lohard.bp import _kernels as K
from lohard.bp import _layout as lay
from lohard.bp._order import sweep_order
from lohard.bp._threads import ThreadPolicy, check_threads
from lohard.csp._kernels import csr_by_variable
from lohard.predicates import KERNEL_GENERIC, KERNEL_XOR, Predicate

BP_SCHEDULES = ("parallel", "random-sequential")
BP_INITS = ("uniform", "random", "planted")

# The layout of each instance run_bp has seen, so that repeated runs on one instance
# (two starts, a scan of damping) build it once: O(E) work, one to two flooding
# iterations' worth on planted instances.
_INSTANCE_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class BPConvergenceWarning(RuntimeWarning):
    """BP stopped at max_iter without its messages converging to tol."""


@dataclass(frozen=True, eq=False)
class FactorGraph:
    """A factor graph with k-ary factors on m-state variables, ready for BP.

    Parameters
    ----------
    n, m : int
        Number of variables and of states per variable.
    clauses : int64 array, shape (P, k)
        Variables of each factor, in slot order (distinct within a factor).
    tables : float64 array, shape (T, m^k)
        Nonnegative factor weights, flat in slot order (slot 0 most significant).
        A 0/1 table is a hard constraint; other values are soft factors.
    clause_table : int64 array, shape (P,)
        Which table each factor uses.
    field : float64 array, shape (n, m)
        Nonnegative unary weights (priors, evidence); rows need not be normalised.
        A one-hot row clamps a variable.
    kernel : int
        Clause-update fast path (``lohard.predicates.KERNEL_*``). Only valid
        when every factor uses the single 0/1 table of that predicate.
    parity : int
        Parity for the XOR fast path.

    Notes
    -----
    BP runs on an internal copy renumbered for memory locality (breadth-first
    order of the variables, clauses sorted by their first-visited variable, see
    :mod:`lohard.bp._layout`), built on first use, O(E), and kept with the
    graph (``from_instance`` keeps it with the instance too, while that lives).
    Graphs with fewer than ``RENUMBER_MIN_EDGES`` edges keep their numbering.
    Inputs and results of :func:`run_bp` are always in the numbering given here.
    """

    n: int
    m: int
    clauses: np.ndarray
    tables: np.ndarray
    clause_table: np.ndarray
    field: np.ndarray
    kernel: int = KERNEL_GENERIC
    parity: int = 0

    def __post_init__(self) -> None:
        clauses = np.ascontiguousarray(integer_array(self.clauses, "clauses"))
        if clauses.ndim != 2 or clauses.shape[1] < 1:
            raise ValueError(f"clauses must have shape (P, k), got {clauses.shape}")
        k = clauses.shape[1]
        n, m = int(self.n), int(self.m)
        if m < 2:
            raise ValueError(f"variables need m >= 2 states, got m = {m}")
        problem = lay.clause_problem(clauses, n)
        if problem == 1:
            raise ValueError(f"factor variables must be indices in [0, {n})")
        if problem == 2:
            raise ValueError("the variables of a factor must be distinct")
        tables = np.ascontiguousarray(np.asarray(self.tables, dtype=np.float64))
        if tables.ndim == 1:
            tables = tables[None, :]
        if tables.ndim != 2 or tables.shape[1] != m**k:
            raise ValueError(f"tables must have shape (T, m^k = {m**k}), got {tables.shape}")
        if not np.all(np.isfinite(tables)) or np.any(tables < 0):
            raise ValueError("factor weights must be finite and >= 0")
        if np.any(tables.sum(axis=1) == 0):
            raise ValueError("a factor table is identically zero (unsatisfiable factor)")
        ct = np.ascontiguousarray(integer_array(self.clause_table, "clause_table"))
        if ct.shape != (clauses.shape[0],):
            raise ValueError(f"clause_table must have shape (P,) = ({clauses.shape[0]},)")
        if ct.size and (ct.min() < 0 or ct.max() >= tables.shape[0]):
            raise ValueError(f"clause_table entries must index tables in [0, {tables.shape[0]})")
        fld = np.ascontiguousarray(np.asarray(self.field, dtype=np.float64))
        if fld.shape != (n, m):
            raise ValueError(f"field must have shape (n, m) = ({n}, {m}), got {fld.shape}")
        problem = lay.field_problem(fld)
        if problem == 1:
            raise ValueError("field weights must be finite and >= 0")
        if problem == 2:
            raise ValueError("a variable's field is identically zero: no state is allowed")
        if self.kernel != KERNEL_GENERIC:
            ok = tables.shape[0] == 1 and np.isin(tables, (0.0, 1.0)).all()
            if not ok:
                raise ValueError("a fast-path kernel needs a single 0/1 predicate table")
        for name, arr in (("clauses", clauses), ("tables", tables), ("clause_table", ct),
                          ("field", fld)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "m", m)

    @property
    def k(self) -> int:
        return int(self.clauses.shape[1])

    @property
    def num_edges(self) -> int:
        return int(self.clauses.size)

    @classmethod
    def from_instance(cls, instance, field: np.ndarray | None = None,
                      fast_path: bool = True) -> FactorGraph:
        """The factor graph of a CSP instance; ``fast_path=False`` forces the generic kernel."""
        pred: Predicate = instance.predicate
        n, m = instance.n, pred.m
        fld = np.ones((n, m)) if field is None else field
        kernel = pred.kernel if fast_path else KERNEL_GENERIC
        parity = pred.parity if pred.kernel == KERNEL_XOR else 0
        graph = cls(n, m, instance.clauses, pred.table.reshape(1, -1).astype(np.float64),
                    np.zeros(instance.num_clauses, dtype=np.int64), fld, kernel, parity)
        if graph.num_edges >= lay.RENUMBER_MIN_EDGES:
            # one layout per instance (its clauses are read-only), kept while it lives
            layout = _INSTANCE_LAYOUTS.get(instance)
            if layout is None:
                layout = lay.locality_layout(graph.clauses, graph.clause_table, n, 1,
                                                 instance.__dict__.get("_csr"))
                _INSTANCE_LAYOUTS[instance] = layout
            graph.__dict__["_layout"] = layout  # what the cached property would hold
        return graph

    @cached_property
    def _csr(self):
        offsets = np.empty(self.n + 1, dtype=np.int64)
        edges = np.empty(self.num_edges, dtype=np.int64)
        csr_by_variable(self.clauses.reshape(-1), self.n, offsets, edges)
        return offsets, edges

    @cached_property
    def _pos(self):
        """int64 array, shape (E,): storage row of edge e in variable-major order."""
        _, edges = self._csr
        pos = np.empty(self.num_edges, dtype=np.int64)
        pos[edges] = np.arange(self.num_edges, dtype=np.int64)
        return pos

    @cached_property
    def _layout(self) -> lay.Layout:
        """The internal numbering BP runs in (see :mod:`lohard.bp._layout`)."""
        if self.num_edges >= lay.RENUMBER_MIN_EDGES:
            return lay.locality_layout(self.clauses, self.clause_table, self.n,
                                           self.tables.shape[0], self.__dict__.get("_csr"))
        offsets, edges = self._csr
        return lay.identity_layout(self.clauses, self.clause_table, offsets, edges)

    @cached_property
    def _sat(self):
        idx, off = [], [0]
        for t in self.tables:
            nz = np.flatnonzero(t)
            idx.append(nz)
            off.append(off[-1] + nz.size)
        return np.concatenate(idx).astype(np.int64), np.asarray(off, dtype=np.int64)


class _Messages:
    """The final messages of a run in the internal layout, mapped to the user's edges on demand."""

    def __init__(self, nu, layout, field, mt):
        self._nu_internal = nu
        self._layout = layout
        self._field = field
        self._mt = mt
        self._nu = None
        self._mu = None

    def nu(self) -> np.ndarray:
        if self._nu is None:
            self._nu = self._layout.edges_out(self._nu_internal)
        return self._nu

    def mu(self) -> np.ndarray:
        if self._mu is None:
            L, nu = self._layout, self._nu_internal
            n, m = L.offsets.shape[0] - 1, len(self._mt)
            kt, _ = K.shape_tuples(L.clauses.shape[1], m)
            mu = np.empty_like(nu)  # written in the user's edge order
            K.cavities(nu, np.empty((n, m)), np.empty((n, m), dtype=np.int64),
                       np.empty((n, m)), mu, self._field, L.offsets, L.edges,
                       L.clauses.reshape(-1), L.clause_pos, kt, self._mt)
            self._mu = mu
        return self._mu


@dataclass(eq=False)
class BPResult:
    """Outcome of :func:`run_bp`.

    Attributes
    ----------
    beliefs : float64 array, shape (n, m)
        Normalised marginal estimates b_i(c) proportional to field_i(c) prod_a nu_{a->i}(c).
    nu : float64 array, shape (E, m)
        Clause-to-variable messages on edges e = a*k + s.
    mu : float64 array, shape (E, m)
        Variable-to-clause (cavity) messages of ``nu``. Computed on first access
        (about one flooding iteration's work, plus writing a fresh (E, m) array),
        from ``nu`` as run_bp returned it, straight into the user's edge order.
    history : float64 array, shape (iterations,)
        Maximum absolute change of any clause-to-variable message per iteration.
    converged : bool
        Whether the last change fell below ``tol``.
    iterations : int
        Iterations (parallel) or sweeps (random-sequential) done.
    contradictions : int
        All-zero message products met during the iterations (set to uniform); 0 on
        consistent instances.
    options : dict
        The resolved options (schedule, damping, init, noise, tol, max_iter,
        threads) and ``threads_used``: iterations run per thread count
        (``{"1": 40, "2": 160}``).
    timings : dict
        Wall seconds of the steps of the run: ``graph`` (factor graph and its
        layout), ``init`` (starting messages), ``start`` (products of the
        starting messages, flooding only), ``iterations``, ``final`` (beliefs
        back to the user's numbering, checks).
    """

    beliefs: np.ndarray
    history: np.ndarray
    converged: bool
    iterations: int
    contradictions: int
    options: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    _messages: _Messages | None = field(default=None, repr=False)

    @property
    def nu(self) -> np.ndarray:
        return self._messages.nu()

    @property
    def mu(self) -> np.ndarray:
        return self._messages.mu()

    def assignment(self) -> np.ndarray:
        """int64 array, shape (n,): argmax of the beliefs (ties to the lowest colour)."""
        return np.argmax(self.beliefs, axis=1).astype(np.int64)

    def overlap(self, sigma):
        """Overlap of the belief argmax with ``sigma`` (see :func:`lohard.bp.overlap`)."""
        from lohard.bp._overlap import overlap

        return overlap(self.beliefs, sigma, m=self.beliefs.shape[1])


def default_bp_options() -> dict:
    """The defaults of :func:`run_bp`, which reproduce the KS transition untuned."""
    return dict(_DEFAULTS)


# Defaults: random-sequential updates, damping 0.3, started at the uniform point
# plus noise of size 0.02. Why: on NAE k=3 m=3 the global mode of linearised BP
# has eigenvalue (k-1)(clauses per variable) lambda = d lambda, large and negative
# (-8 at d = 64), so undamped or 0.5-damped flooding BP falls into a period-2
# oscillation from a near-uniform start even far above KS; damping 0.8 tames it
# but grows the informative mode by only 0.8 + 0.2 d lambda^2 per iteration.
# Sequential updates do not excite the global mode that way. Measured on
# N = 10^4: recovery from d ~ 66 on, none at d <= 62; the ground-truth start
# converges in 20-40 sweeps. See README "BP defaults".
_DEFAULTS = {
    "schedule": "random-sequential",
    "damping": 0.3,
    "init": "uniform",
    "noise": 0.02,
    "tol": 1e-6,
    "max_iter": 500,
}


# Message rows per block of random draws in _initial_messages: 3 MB of draws at m = 3,
# small enough for the cache and large enough that the Python loop costs nothing.
_DRAW_BLOCK = 1 << 17


def _initial_messages(graph: FactorGraph, init: str, noise: float, sigma, gen) -> np.ndarray:
    """Starting clause-to-variable messages, float64 (E, m), in the graph's internal layout.

    Random draws are made in the user's edge order and then moved, so a run does
    not depend on the layout.
    """
    E, m, k = graph.num_edges, graph.m, graph.k
    L = graph._layout
    nu = np.empty((E, m))
    if init == "uniform":
        # the draws of gen.uniform(-1, 1, size=(E, m)), made in blocks of clauses
        # (the stream is the same), so no (E, m) array of draws is held at once
        block = max(1, _DRAW_BLOCK // k)
        kt, mt = K.shape_tuples(k, m)
        buf = np.empty((block * k, m))
        ok = True
        for a0 in range(0, graph.clauses.shape[0], block):
            dst = L.clause_pos[a0:a0 + block]
            u = buf[:dst.shape[0] * k]
            gen.random(out=u)
            ok &= K.uniform_rows(u, noise, dst, kt, mt, nu)
        if not ok:
            raise ValueError(f"noise must be < 1/m = {1.0 / m:.4g} so messages stay positive")
    elif init == "random":
        draw = gen.dirichlet(np.ones(m), size=E)
        draw /= draw.sum(axis=1, keepdims=True)
        nu = np.ascontiguousarray(L.edges_in(draw))
    elif init == "planted":
        if sigma is None:
            raise ValueError("init='planted' needs the planted assignment sigma")
        sig = integer_array(sigma, "sigma")
        if sig.shape != (graph.n,):
            raise ValueError(f"sigma must have shape (n,) = ({graph.n},)")
        if sig.size and (sig.min() < 0 or sig.max() >= m):
            raise ValueError(f"sigma entries must be colours in [0, {m})")
        # noise here mixes in a little of the uniform message (0 = exact ground truth).
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"init='planted' mixes (1 - noise) of the ground truth with noise "
                             f"of the uniform message, so noise must lie in [0, 1], got {noise}")
        K.planted_start(np.ascontiguousarray(L.variables_in(sig)), L.clauses.reshape(-1), noise,
                        m, nu)
    else:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(BP_INITS)}")
    return nu


@contextmanager
def _numba_threads(t: int):
    """Run the block with ``t`` Numba threads (the setting is per calling thread)."""
    old = numba.get_num_threads()
    if t == old:
        yield
        return
    numba.set_num_threads(t)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def run_bp(
    problem,
    *,
    schedule: str | None = None,
    damping: float | None = None,
    init: str | None = None,
    noise: float | None = None,
    tol: float | None = None,
    max_iter: int | None = None,
    sigma: np.ndarray | None = None,
    field: np.ndarray | None = None,
    nu0: np.ndarray | None = None,
    fast_path: bool = True,
    threads: int | str = "auto",
    parallel: bool | None = None,
    warn: bool = True,
    rng: RNGLike = None,
) -> BPResult:
    r"""Run belief propagation (Def. B.10) on a CSP instance or factor graph.

    .. math::
        \mu_{i \to a}(c) &\propto f_i(c) \prod_{b \ni i, b \ne a} \nu_{b \to i}(c), \\
        \nu_{a \to i}(c) &\propto \sum_{x_{\partial a}: x_i = c} g_a(x)
                               \prod_{j \in \partial a \setminus i} \mu_{j \to a}(x_j),

    with damping :math:`\nu \leftarrow w \nu_{old} + (1 - w) \nu_{new}`.

    Parameters
    ----------
    problem : Instance or FactorGraph
        A planted/null instance (its predicate picks the fast path) or a general
        factor graph.
    schedule : {"parallel", "random-sequential"}
        Flooding updates (all variables, then all clauses), or clauses in a fresh
        random order every sweep, each reading the latest cavity messages.
    damping : float in [0, 1)
        Weight w of the old message.
    init : {"uniform", "random", "planted"}
        Starting clause-to-variable messages: 1/m plus uniform noise in
        [-noise, noise]; Dirichlet(1) random; or the ground truth
        (one-hot on sigma, mixed with ``noise`` of the uniform message).
    noise : float
        See ``init``; >= 0, and at most 1 for ``init="planted"`` (a mixing weight).
    tol : float
        Converged when the largest message change in an iteration is below tol.
    max_iter : int
        Iterations (parallel) or sweeps (random-sequential).
    sigma : int array, shape (n,), optional
        Planted assignment for ``init="planted"``; taken from the instance if omitted.
    field : float array, shape (n, m), optional
        Unary weights for an Instance (defaults to ones).
    nu0 : float array, shape (E, m), optional
        Explicit starting messages (overrides ``init``).
    fast_path : bool
        Use the NAE/XOR clause kernels when the predicate allows.
    threads : "auto" or int
        Numba threads of each flooding iteration (the random-sequential sweep is
        serial). "auto" uses several only on large graphs (E > 100,000) and only
        while they are measured to be faster than one: never more than
        ``numba.get_num_threads()`` (a sweep worker capped at one thread stays
        serial) or the usable cores, and one while other processes keep the
        cores busy (see :class:`lohard.bp._threads.ThreadPolicy`). An int in
        [1, NUMBA_NUM_THREADS] is used as is. Results do not depend on it.
    parallel : bool, optional
        Older switch, kept for compatibility: False is ``threads=1``, True the
        multi-threaded kernel with ``numba.get_num_threads()`` threads.
    warn : bool
        Emit :class:`BPConvergenceWarning` when BP does not converge.
    rng : Generator, int or None
        Randomness for the initial messages and the sequential order.

    Returns
    -------
    BPResult

    Raises
    ------
    FloatingPointError
        If a message or belief is ever not finite (a bug: the products are built
        so that this cannot happen). The flooding kernels carry a NaN or inf
        message into the iteration's largest change, so the error names the
        iteration; the random-sequential run checks its messages at the end.

    Notes
    -----
    Cost per iteration is O(E m) for the NAE/XOR kernels and O(S k^2) per clause
    for a generic table with S nonzero entries. Each variable keeps the product
    of its incoming messages, split into the product of the nonzero factors
    (rescaled near 1) and a count of exact zeros per colour; a cavity message
    removes one factor by dividing by a nonzero entry or by decrementing a
    zero count, so hard constraints never cause division by zero, underflow or
    NaN. Where that bookkeeping leaves no colour, the cavity message is
    recomputed exactly by a direct leave-one-out product (in the flooding
    schedule, after the pass, from the messages as they stand then). The
    flooding update is tested against a division-free prefix/suffix reference
    kernel. Products that vanish for every colour (contradictory evidence) are
    set to uniform and counted in ``contradictions``.

    The flooding pass splits the clauses into chunks fixed by the graph, and its
    serial and multi-threaded kernels give bitwise-identical results, so the
    result does not depend on ``threads``. BP runs in the graph's internal
    layout (see :class:`FactorGraph`); that changes only the order of
    floating-point products (differences of order 1e-16 per iteration).

    Defaults (see ``default_bp_options``) reproduce the KS transition of
    NAE(3,3) with no tuning: random-sequential, damping 0.3, uniform plus
    0.02 noise start, tol 1e-6, at most 500 sweeps.

    References
    ----------
    Kim et al. (ICML 2025), Def. B.10; App. B.4.
    """
    opts = dict(_DEFAULTS)
    for key, val in (("schedule", schedule), ("damping", damping), ("init", init),
                     ("noise", noise), ("tol", tol), ("max_iter", max_iter)):
        if val is not None:
            opts[key] = val
    if opts["schedule"] not in BP_SCHEDULES:
        raise ValueError(f"unknown schedule {opts['schedule']!r}; choose one of "
                         f"{', '.join(BP_SCHEDULES)}")
    w = float(opts["damping"])
    if not (0.0 <= w < 1.0):
        raise ValueError(f"damping must lie in [0, 1), got {w}")
    if not (opts["noise"] >= 0):
        raise ValueError(f"noise must be >= 0, got {opts['noise']}")
    opts["max_iter"] = require_int(opts["max_iter"], "max_iter", minimum=1)
    if not (opts["tol"] > 0):
        raise ValueError(f"tol must be > 0, got {opts['tol']}")

    threads = check_threads(threads, parallel)
    opts["threads"] = threads
    clock = time.perf_counter
    t0 = clock()
    if isinstance(problem, FactorGraph):
        if field is not None:
            raise ValueError("pass the field inside the FactorGraph")
        graph = problem
    else:
        graph = FactorGraph.from_instance(problem, field=field, fast_path=fast_path)
        if sigma is None:
            sigma = getattr(problem, "sigma", None)
    gen = as_generator(rng)
    L = graph._layout
    t_graph = clock()

    if nu0 is not None:
        nu = np.array(nu0, dtype=np.float64, order="C")
        if nu.shape != (graph.num_edges, graph.m):
            raise ValueError(f"nu0 must have shape (E, m) = ({graph.num_edges}, {graph.m})")
        if not np.all(np.isfinite(nu)) or np.any(nu < 0) or np.any(nu.sum(axis=1) == 0):
            raise ValueError("nu0 must be finite, >= 0, and nonzero in every row")
        nu /= nu.sum(axis=1, keepdims=True)
        nu = np.ascontiguousarray(L.edges_in(nu))
        opts["init"] = "given"
    else:
        nu = _initial_messages(graph, opts["init"], float(opts["noise"]), sigma, gen)
    t_init = clock()
    n, m, k = graph.n, graph.m, graph.k
    P = graph.clauses.shape[0]
    offsets, edges, ct = L.offsets, L.edges, L.clause_table
    flat = L.clauses.reshape(-1)
    fld = L.variables_in(graph.field)
    fld.setflags(write=False)  # as graph.field is: one compiled kernel for both layouts
    kt, mt = K.shape_tuples(k, m)
    sat_idx, sat_off = graph._sat
    kind, parity = int(graph.kernel), int(graph.parity)
    tables = graph.tables
    flooding = opts["schedule"] == "parallel"
    if flooding:
        # partial products of the fused flooding pass; their number is fixed by
        # the graph, so results do not depend on the number of threads
        nchunks = K.flood_chunks(graph.num_edges, n)
        fstate, _ = K.flood_start(nu, fld, offsets, edges, flat, P, mt, nchunks)
        policy = ThreadPolicy(threads, graph.num_edges, nchunks)
    else:
        prod = np.empty((n, m))
        zeros = np.empty((n, m), dtype=np.int64)
        beliefs = np.empty((n, m))
        order = np.empty(P, dtype=np.int64)
        policy = ThreadPolicy(1, graph.num_edges, 1)
    t_start = clock()

    history = []
    bad = 0
    converged = False
    max_it = int(opts["max_iter"])
    for _ in range(max_it):
        t_it = clock()
        if flooding:
            t = policy.next()
            if t > 1 or policy.parallel_kernel:
                with _numba_threads(t):
                    change, b = K.flood_parallel(nu, *fstate, fld, offsets, edges, flat, kt, mt,
                                                 w, kind, parity, tables, ct, sat_idx, sat_off,
                                                 8 * t)  # blocks of the combine pass
            else:
                change, b = K.flood_serial(nu, *fstate, fld, offsets, edges, flat, kt, mt, w,
                                           kind, parity, tables, ct, sat_idx, sat_off, 1)
        else:
            t = 1
            # gen.permutation(P) in the user's numbering, mapped to the internal one
            sweep_order(gen, L.clause_pos, order)
            change, b = K.sweep_sequential(nu, prod, zeros, beliefs, fld, offsets, edges, flat,
                                           order, kt, mt, w, kind, parity, tables, ct, sat_idx,
                                           sat_off)
        policy.record(t, clock() - t_it)
        bad += int(b)
        change = float(change)
        if not np.isfinite(change):
            # the flooding kernels carry a NaN or inf message into the change (K._worse);
            # the sweep an inf one
            raise FloatingPointError(f"BP produced non-finite messages at iteration "
                                     f"{len(history) + 1}; this is a bug, please report")
        history.append(change)
        if change < opts["tol"]:
            converged = True
            break
    t_iter = clock()
    # The last iteration left the beliefs of the returned nu (flooding: from the
    # products of the updated messages; sweep: from the products kept up to date).
    # Flooding rewrote every message in it with a finite change, so nu is finite; the
    # sweep's change misses NaN (a test in its inner loop would cost 4 % of a sweep),
    # so its messages are checked here, once (0.17 s at N = 10^6, under a tenth of a sweep).
    bel = fstate[3] if flooding else beliefs
    if not K.all_finite(bel):
        raise FloatingPointError("BP produced non-finite beliefs; this is a bug, please report")
    if not (flooding or K.all_finite(nu)):
        raise FloatingPointError(f"BP produced non-finite messages in {len(history)} sweeps; "
                                 f"this is a bug, please report")
    bel = L.variables_out(bel)
    opts["threads_used"] = {str(t): c for t, c in sorted(policy.used.items())}
    if not converged and warn:
        warnings.warn(
            f"BP did not converge: largest message change {history[-1]:.3g} > tol "
            f"{opts['tol']:g} after {len(history)} iterations ({opts['schedule']}, "
            f"damping {w:g})",
            BPConvergenceWarning,
            stacklevel=2,
        )
    timings = {"graph": t_graph - t0, "init": t_init - t_graph, "start": t_start - t_init,
               "iterations": t_iter - t_start, "final": clock() - t_iter}
    return BPResult(bel, np.asarray(history), converged, len(history), bad, opts, timings,
                    _Messages(nu, L, fld, mt))
