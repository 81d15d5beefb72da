"""How many Numba threads each flooding iteration uses (private): ``run_bp(threads=...)``.

The serial and multi-threaded flooding kernels give bitwise-identical results
(see :mod:`lohard.bp._kernels`), so the choice can change from one iteration
to the next without changing any result. ``threads="auto"`` uses that: it
starts serial and moves to several threads only while the cores are free and
the threads are measured to be faster.

Why not simply use every thread: on a busy machine two threads are slower
than one. GNU OpenMP's threads spin at the end of each parallel region, so a
thread that shares its core with another process delays its partner and burns
the time it is given: on 2 cores next to one busy process a 2-thread
iteration took 1.2-1.6x as long as a serial one, next to two busy processes
7x (N = 10^4, d = 64). With ``OMP_WAIT_POLICY=passive`` or Numba's workqueue
layer the same 2-thread iteration took 1.05x the serial time next to two busy
processes, but both are settings of the whole process (the environment before
OpenMP starts, the layer before the first parallel call; workqueue is also
unsafe to call from several threads), so lohard leaves them to the user.
"""

from __future__ import annotations

import math
import numbers
import os
import statistics
import time
from collections import deque

import numba

# Below this many edges a flooding iteration takes about a millisecond or less, and
# starting threads and waiting at the barriers costs more than a second core saves.
MIN_PARALLEL_EDGES = 100_000


def check_threads(threads, parallel) -> int | str:
    """The ``threads`` argument of run_bp, validated: "auto" or an int in [1, NUMBA_NUM_THREADS].

    ``parallel`` (the older switch) maps onto it: False is 1 thread, True every
    Numba thread of the caller (the multi-threaded kernel even for one thread).
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if parallel is not None:
        if not (isinstance(threads, str) and threads == "auto"):
            raise ValueError("pass threads or parallel, not both (parallel=False is threads=1)")
        return "parallel" if parallel else 1
    if isinstance(threads, str):
        if threads == "auto":
            return threads
    elif isinstance(threads, numbers.Real) and not isinstance(threads, bool):
        if math.isfinite(threads) and threads == int(threads) and 1 <= threads <= limit:
            return int(threads)
    raise ValueError(f"threads must be 'auto' or an integer in [1, NUMBA_NUM_THREADS = {limit}], "
                     f"got {threads!r}")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class CpuLoad:
    """Cores kept busy by other processes, from /proc/stat (Linux; elsewhere ``None``).

    Busy time of this process's cores minus this process's own CPU time, over
    the time since the previous reading. /proc/stat counts in clock ticks
    (10 ms), so a reading needs a window of about 0.1 s to be good to ~0.1 core.
    """

    def __init__(self) -> None:
        self._recent = None
        try:
            cpus = sorted(os.sched_getaffinity(0))
            self._names = {f"cpu{c}" for c in cpus}
            self._tick = 1.0 / os.sysconf("SC_CLK_TCK")
            self._last = self._read()
        except (AttributeError, OSError, ValueError):
            self._last = None

    @property
    def available(self) -> bool:
        return self._last is not None

    def _read(self) -> tuple[float, float, float]:
        busy = 0
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if not line.startswith(b"cpu"):
                    break
                f = line.split()
                if f[0].decode() in self._names:
                    # user nice system idle iowait irq softirq steal (guest is inside user)
                    busy += sum(int(x) for x in f[1:4]) + sum(int(x) for x in f[6:9])
        return busy * self._tick, time.process_time(), time.perf_counter()

    def others(self, min_window: float, max_window: float = float("inf")) -> float | None:
        """Cores used by other processes since the last reading.

        None if less than ``min_window`` seconds have passed (too coarse), or more
        than ``max_window`` (too old to tell the present; a new window starts).
        """
        if self._last is None:
            return None
        b0, own0, t0 = self._last
        age = time.perf_counter() - t0
        if age < min_window:
            return None
        if age > max_window:
            self._last = self._read()
            return None
        try:
            now = self._read()
        except OSError:
            self._last = None
            return None
        self._last = now
        b1, own1, t1 = now
        value = max(0.0, ((b1 - b0) - (own1 - own0)) / (t1 - t0))
        self._recent = (value, t1)
        return value

    def recent(self, max_age: float) -> float | None:
        """The last reading, if it was taken at most ``max_age`` seconds ago."""
        if self._recent is None or time.perf_counter() - self._recent[1] > max_age:
            return None
        return self._recent[0]


_SHARED_LOAD: CpuLoad | None = None


def shared_load() -> CpuLoad:
    """The process's CpuLoad, shared by successive runs so a new run starts with a reading.

    Its window then runs from the previous run's last reading (or from the
    first call), which is usually long enough for a first decision at once.
    """
    global _SHARED_LOAD
    if _SHARED_LOAD is None:
        _SHARED_LOAD = CpuLoad()
    return _SHARED_LOAD


class ThreadPolicy:
    """Threads for the next flooding iteration, from measured iteration times.

    Parameters
    ----------
    threads : "auto", "parallel" or int
        From :func:`check_threads`. An int is used as is; "parallel" is every
        Numba thread of the caller, always through the multi-threaded kernel.
    num_edges : int
        Edges of the graph (small graphs stay serial under "auto").
    chunks : int
        Clause chunks of the flooding pass: more threads than chunks idle.
    load : CpuLoad, optional
        Source of the other processes' load (tests pass a stand-in).

    Notes
    -----
    ``"auto"`` uses at most ``numba.get_num_threads()`` threads (so a sweep
    worker capped at one thread stays serial) and at most the usable cores. It
    starts serial. After ``SERIAL_SAMPLES`` timed serial iterations, a trial of
    the threads starts if other processes are seen to leave enough cores free
    (:class:`CpuLoad`, one reading shared by successive runs, so that a run
    usually has one from its start; where /proc/stat cannot be read, the trial
    starts anyway): one warm-up iteration, which may include compiling the
    kernel, then two timed ones. The threads stay only if their
    median time is at most ``GAIN`` times the serial median; otherwise the run
    stays serial and the next trial waits twice as many iterations as the last.
    While threaded, two iterations in a row slower than ``SLOWDOWN`` times the
    trial median, or other processes taking the cores, send it back to serial.
    """

    GAIN = 0.9  # threads must save 10 %: less is within the noise of a busy machine
    SLOWDOWN = 1.5  # a threaded iteration this much slower than in its trial: contention
    WINDOW = 0.1  # seconds of /proc/stat per load reading (tick resolution 10 ms)
    MAX_PRIOR = 10.0  # seconds: an older reading says too little about now
    SERIAL_SAMPLES = 3  # serial iterations timed before a trial
    FIRST_BACKOFF = 16  # iterations before the next trial after a failed one (then doubled)
    MAX_BACKOFF = 4096

    def __init__(self, threads, num_edges: int, chunks: int, *, load=None) -> None:
        self.used: dict[int, int] = {}
        self._it = 0
        if threads == "parallel":
            self._fixed = numba.get_num_threads()
            self.parallel_kernel = True
        elif threads != "auto":
            self._fixed = int(threads)
            self.parallel_kernel = self._fixed > 1
        else:
            self.parallel_kernel = False
            self._cores = usable_cores()
            self._cap = min(numba.get_num_threads(), self._cores, max(1, chunks))
            self._fixed = 1 if (self._cap < 2 or num_edges <= MIN_PARALLEL_EDGES) else None
        #: the most threads any iteration will use
        self.max_threads = self._fixed if self._fixed is not None else self._cap
        if self._fixed is not None:
            return
        self._load = shared_load() if load is None else load
        self._free = None if self._load.available else self._cap
        # a first reading over the time since the last one, unless that is too old or
        # too short; then the last reading (an earlier run's), unless that is too old
        others = self._load.others(self.WINDOW, self.MAX_PRIOR)
        self._update_free(self._load.recent(self.MAX_PRIOR) if others is None else others)
        self._mode = "serial"
        self._serial = deque(maxlen=5)
        self._trial: list[float] = []
        self._trial_threads = 1
        self._par_ref = 0.0
        self._strikes = 0
        self._next_trial = 0
        self._backoff = self.FIRST_BACKOFF

    def next(self) -> int:
        """Threads for the next iteration (1: the serial kernel)."""
        if self._fixed is not None:
            return self._fixed
        if self._mode == "serial":
            return 1
        return self._trial_threads

    def record(self, threads: int, seconds: float) -> None:
        """Report the wall time of the iteration just run with ``threads`` threads."""
        self.used[threads] = self.used.get(threads, 0) + 1
        self._it += 1
        if self._fixed is not None:
            return
        self._update_free(self._load.others(self.WINDOW))
        if self._mode == "serial":
            self._serial.append(seconds)
            if (len(self._serial) >= self.SERIAL_SAMPLES and self._it >= self._next_trial
                    and self._free is not None and self._free >= 2):
                self._mode = "trial"
                self._trial = []
                self._trial_threads = self._free
        elif self._mode == "trial":
            if self._free is not None and self._free < 2:
                self._back_to_serial()  # other processes took the cores meanwhile
                return
            self._trial.append(seconds)
            timed = self._trial[1:]  # the first may include compiling the kernel
            ref = statistics.median(self._serial)
            if timed and (max(timed) > self.SLOWDOWN * ref or len(timed) == 2):
                best = statistics.median(timed)
                if len(timed) == 2 and best <= self.GAIN * ref:
                    self._mode = "parallel"
                    self._par_ref = best
                    self._strikes = 0
                    self._backoff = self.FIRST_BACKOFF
                else:
                    self._back_to_serial()
        else:
            self._strikes = self._strikes + 1 if seconds > self.SLOWDOWN * self._par_ref else 0
            if self._strikes >= 2 or (self._free is not None and self._free < 2):
                self._back_to_serial()
            elif self._free is not None and self._free < self._trial_threads:
                self._trial_threads = self._free

    def _update_free(self, others: float | None) -> None:
        if others is not None:
            # cores left to this run; a core counts as free when less than half is taken
            self._free = max(1, min(self._cap, int(self._cores - others + 0.5)))

    def _back_to_serial(self) -> None:
        self._mode = "serial"
        self._serial.clear()
        self._next_trial = self._it + self._backoff
        self._backoff = min(2 * self._backoff, self.MAX_BACKOFF)
