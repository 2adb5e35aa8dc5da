"""MPI at the edges: the only module that imports mpi4py.

Everything else receives a `Comm` and works the same with one rank (SerialComm) or many
(MPIComm). Work is split into units partitioned by cost, deterministically, and results are
returned at rank 0 in unit order, so the outcome never depends on the number of ranks.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from binance_cluster.errors import BinanceClusterError, UnitError

log = logging.getLogger(__name__)

ARRIVED_TAG = 72
GO_TAG = 73
BCAST_TAG = 74
# map_units messages: one tag per call (every rank makes the same calls in the same order), so a
# rank that has already started the next call never feeds its results into the previous one
PROGRESS_TAG_BASE = 1000
PROGRESS_TAGS = 4096
ABORT_GRACE_SECONDS = 0.3  # see MPIComm.abort


class Comm(Protocol):
    """The collective operations the project uses."""

    rank: int
    size: int

    def bcast(self, obj: Any, root: int = 0) -> Any: ...
    def gather(self, obj: Any, root: int = 0) -> list | None: ...
    def allgather(self, obj: Any) -> list: ...
    def barrier(self) -> None: ...
    def send(self, obj: Any, dest: int, tag: int) -> None: ...
    def recv(self, tag: int) -> Any: ...
    def poll(self, tag: int) -> bool: ...
    def abort(self, code: int) -> None: ...


class SerialComm:
    """A one-rank communicator: the stand-in used without mpirun or with `-n 1`."""

    rank = 0
    size = 1

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def gather(self, obj: Any, root: int = 0) -> list:
        return [obj]

    def allgather(self, obj: Any) -> list:
        return [obj]

    def barrier(self) -> None:
        pass

    def send(self, obj: Any, dest: int, tag: int) -> None:
        raise RuntimeError("SerialComm has no other rank to send to")

    def recv(self, tag: int) -> Any:
        raise RuntimeError("SerialComm has no other rank to receive from")

    def poll(self, tag: int) -> bool:
        return False

    def abort(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class MPIComm:
    """A thin wrapper over an mpi4py communicator (pickle-based lower-case API)."""

    def __init__(self, comm):
        self._comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._comm.bcast(obj, root=root)

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return self._comm.gather(obj, root=root)

    def allgather(self, obj: Any) -> list:
        return self._comm.allgather(obj)

    def barrier(self) -> None:
        self._comm.Barrier()

    def send(self, obj: Any, dest: int, tag: int) -> None:
        self._comm.send(obj, dest=dest, tag=tag)

    def recv(self, tag: int) -> Any:
        from mpi4py import MPI

        return self._comm.recv(source=MPI.ANY_SOURCE, tag=tag)

    def poll(self, tag: int) -> bool:
        from mpi4py import MPI

        return bool(self._comm.iprobe(source=MPI.ANY_SOURCE, tag=tag))

    def abort(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # The launcher forwards a rank's output through a pipe it stops reading once Abort
        # reaches it; a moment's pause lets the last error line through first.
        time.sleep(ABORT_GRACE_SECONDS)
        self._comm.Abort(code)


def launched_size() -> int:
    """Number of ranks the launcher started, read from its environment (1 when not launched)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


_COMM: Comm | None = None


def get_comm() -> Comm:
    """The world communicator: MPIComm under mpirun with several ranks, else SerialComm.

    mpi4py is imported only when several ranks were launched (or BINANCE_CLUSTER_MPI=1).
    """
    global _COMM
    if _COMM is None:
        forced = os.environ.get("BINANCE_CLUSTER_MPI")
        if forced == "0" or (forced != "1" and launched_size() <= 1):
            _COMM = SerialComm()
        else:
            from mpi4py import MPI

            world = MPI.COMM_WORLD
            _COMM = MPIComm(world) if world.Get_size() > 1 else SerialComm()
    return _COMM


def partition(costs: Sequence[float], size: int) -> list[list[int]]:
    """Assign unit indices to `size` ranks, balancing total cost (longest first, greedy).

    Deterministic: ties in cost go to the lower index, ties in load to the lower rank.
    Each rank's list is in ascending unit order.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    order = sorted(range(len(costs)), key=lambda i: (-float(costs[i]), i))
    loads = [0.0] * size
    shares: list[list[int]] = [[] for _ in range(size)]
    for i in order:
        r = min(range(size), key=lambda k: (loads[k], k))
        shares[r].append(i)
        loads[r] += max(float(costs[i]), 1e-12)
    return [sorted(s) for s in shares]


@dataclass(frozen=True, slots=True)
class UnitResult:
    """The outcome of one work unit: a value, or the error that stopped it."""

    index: int
    name: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    rank: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def _run_unit(fn: Callable[[Any], Any], index: int, unit: Any, name: str, rank: int,
              debug: bool) -> UnitResult:
    started = time.perf_counter()
    try:
        value = fn(unit)
    except Exception as exc:  # one unit's failure is reported, never fatal to the others
        text = str(exc) if isinstance(exc, BinanceClusterError) else f"{type(exc).__name__}: {exc}"
        if debug:
            text += "\n" + traceback.format_exc()
        log.warning("unit %s failed: %s", name, text.splitlines()[0] if text else "")
        return UnitResult(index, name, error=text, seconds=time.perf_counter() - started,
                          rank=rank)
    return UnitResult(index, name, value=value, seconds=time.perf_counter() - started, rank=rank)


_MAP_CALLS = 0


def map_units(comm: Comm, units: Sequence[Any], fn: Callable[[Any], Any],
              costs: Sequence[float] | None = None, names: Sequence[str] | None = None,
              progress: Callable[[UnitResult], None] | None = None,
              debug: bool = False,
              on_result: Callable[[UnitResult], None] | None = None) -> list[UnitResult] | None:
    """Run `fn(unit)` over units split by cost across ranks; results at rank 0 in unit order.

    Every rank must call this with the same units. A unit that raises becomes a UnitResult
    with `error` set, so one bad unit never leaves a collective hanging. `progress` is
    called at rank 0 once per finished unit, on any rank. Other ranks get None.

    With `on_result`, each result travels to rank 0 as soon as its unit is done and is
    handed to `on_result` there (in the order they arrive, then `progress`); the list
    returned at rank 0 then carries no values, so rank 0 never holds them all at once.
    Rank 0's `on_result` decides: the other ranks may pass None.
    """
    costs = [1.0] * len(units) if costs is None else list(costs)
    names = [str(i) for i in range(len(units))] if names is None else list(names)
    mine = partition(costs, comm.size)[comm.rank]
    global _MAP_CALLS
    tag = PROGRESS_TAG_BASE + _MAP_CALLS % PROGRESS_TAGS
    _MAP_CALLS += 1
    results = []
    remote_pending = len(units) - len(mine)
    stream = comm.bcast(on_result is not None, root=0)

    def arrived(result: UnitResult) -> None:
        if on_result is not None:
            on_result(result)
        if progress:
            progress(result)

    for i in mine:
        result = _run_unit(fn, i, units[i], names[i], comm.rank, debug)
        bare = UnitResult(result.index, result.name, None, result.error, result.seconds,
                          result.rank)
        results.append(bare if stream else result)
        if comm.rank == 0:
            arrived(result)
            while remote_pending and comm.poll(tag):
                remote_pending -= 1
                arrived(comm.recv(tag))
        else:
            comm.send(result if stream else bare, 0, tag)
        del result
    if comm.rank == 0:
        while remote_pending:
            remote_pending -= 1
            arrived(comm.recv(tag))
    gathered = comm.gather(results, root=0)
    if comm.rank != 0:
        return None
    ordered = [r for share in gathered for r in share]
    ordered.sort(key=lambda r: r.index)
    return ordered


def raise_failures(results: Sequence[UnitResult], what: str = "units") -> None:
    """Raise one UnitError naming every failed unit and the first line of its error."""
    failed = [r for r in results if not r.ok]
    if failed:
        raise UnitError(f"{len(failed)} of {len(results)} {what} failed: " + "; ".join(
            f"{r.name}: {(r.error or '').splitlines()[0] if r.error else ''}" for r in failed))


class SharedError(BinanceClusterError):
    """An error raised identically on every rank after rank 0 broadcast it."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def on_root(comm: Comm, fn: Callable[[], Any]) -> Any:
    """Run `fn` at rank 0 only and broadcast its value; if it raised, raise on every rank.

    This is how inputs are validated before any rank starts computing: every rank then
    exits together with the same exit code, and only rank 0 reports the error.
    """
    value: Any = None
    error: BaseException | None = None
    if comm.rank == 0:
        try:
            value = fn()
        except Exception as exc:
            error = exc
    if comm.size == 1:
        if error is not None:
            raise error
        return value
    if comm.rank == 0:
        code = error.exit_code if isinstance(error, BinanceClusterError) else 1
        message = None if error is None else str(error)
        comm.bcast(("error", message, code) if error is not None else ("ok", value, 0), root=0)
        if error is not None:
            error.shared = True  # every rank raises: no abort needed, rank 0 reports it
            raise error
        return value
    kind, value, code = comm.bcast(None, root=0)
    if kind == "error":
        raise SharedError(value, code)
    return value


def quiet_barrier(comm: Comm) -> None:
    """A barrier whose waiting ranks sleep instead of spinning (MPI's barrier busy-polls).

    While one rank compiles kernels for tens of seconds the others wait here; spinning they
    would take CPU from it whenever ranks share cores.
    """
    if comm.size == 1:
        return
    if comm.rank == 0:
        for _ in range(comm.size - 1):
            _sleep_until(comm, ARRIVED_TAG)
            comm.recv(ARRIVED_TAG)
        for r in range(1, comm.size):
            comm.send(None, r, GO_TAG)
    else:
        comm.send(comm.rank, 0, ARRIVED_TAG)
        _sleep_until(comm, GO_TAG)
        comm.recv(GO_TAG)


def quiet_bcast(comm: Comm, obj: Any = None) -> Any:
    """Rank 0's `obj` on every rank; the receiving ranks sleep while they wait instead of
    spinning (a live loop's workers wait a whole bar between two messages)."""
    if comm.size == 1:
        return obj
    if comm.rank == 0:
        for r in range(1, comm.size):
            comm.send(obj, r, BCAST_TAG)
        return obj
    _sleep_until(comm, BCAST_TAG)
    return comm.recv(BCAST_TAG)


def _sleep_until(comm: Comm, tag: int) -> None:
    pause = 0.0005
    while not comm.poll(tag):
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def node_leader(comm: Comm) -> bool:
    """Whether this rank is the lowest rank on its host (collective: every rank must call it)."""
    hosts = comm.allgather(socket.gethostname())
    return hosts.index(hosts[comm.rank]) == comm.rank
