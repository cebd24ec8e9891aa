"""Ordered parallel map over processes, with bounded memory.

Results come back in input order whatever the number of jobs (design.md §4). Workers run
with OMP_NUM_THREADS=1: libsvm-official's wheel uses OpenMP, and oversubscribed threads on
busy cores were measured 10x slower than one thread per process.

Beyond one machine (design.md §6) the same work items go to a Dask distributed cluster
(``scheduler="tcp://host:8786"``, the tools' ``--scheduler``) with the same guarantees:
results in input order, a bounded number of items in flight, exceptions at the item's
position, OpenMP single-threaded inside the task. Dask is imported only then (it is the
optional ``mirkit[dask]`` extra); workers need mirkit installed and the input files readable
at the same paths.
"""

import collections
import concurrent.futures
import multiprocessing
import os


def _die_with_parent():
    """Linux: ask the kernel to SIGTERM this worker when its parent dies, so that a killed
    run (timeout, SIGKILL) leaves no orphan workers behind."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _init_worker(initializer, initargs):
    os.environ["OMP_NUM_THREADS"] = "1"
    _die_with_parent()
    if initializer is not None:
        initializer(*initargs)


def available_memory():
    """Bytes of memory available now (Linux MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_jobs():
    """All cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def ordered_map(func, items, jobs=1, initializer=None, initargs=(), window=None,
                scheduler=None, shared=(), lost=None):
    """Yield ``func(item)`` for each item, in order. ``jobs<=1`` runs in-process (no pickling).

    At most ``window`` (default 4*jobs) items are in flight, so a long input stream is
    consumed lazily. Exceptions raised by ``func`` propagate at the item's position;
    wrap ``func`` to return errors as values if the batch must go on.

    ``scheduler``: address of a Dask distributed scheduler (``tcp://host:8786``, or a
    scheduler JSON file); the items then run on its workers (:func:`_dask_map`: ``jobs > 0``
    caps the tasks in flight, ``shared`` and ``lost`` apply there only).
    """
    if scheduler:
        yield from _dask_map(func, items, scheduler, jobs, initializer, initargs, window,
                             shared, lost)
        return
    if jobs is None or jobs <= 0:
        jobs = default_jobs()
    if jobs == 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield func(item)
        return
    window = window or 4 * jobs
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_init_worker,
            initargs=(initializer, initargs)) as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------------------------------
# Dask distributed (design.md §6): imported only when a scheduler is given
# ---------------------------------------------------------------------------------------

_clients = {}


def _import_distributed():
    try:
        import distributed
    except ImportError:
        from .errors import MirkitError
        raise MirkitError("--scheduler needs Dask distributed, which is not installed: "
                          "install the mirkit[dask] extra (pip install 'dask[distributed]' "
                          "in mirkit's environment)") from None
    return distributed


def dask_client(address):
    """A ``distributed.Client`` connected to ``address`` (``tcp://host:8786``, ``host:8786``
    or a scheduler JSON file written by ``dask scheduler --scheduler-file``), made once per
    process and closed at exit. Unreachable scheduler or workers without mirkit: MirkitError."""
    client = _clients.get(address)
    if client is not None:
        return client
    distributed = _import_distributed()
    from .errors import MirkitError
    kwargs = {"scheduler_file": address} if os.path.isfile(address) else {"address": address}
    if "address" in kwargs and not address.startswith("inproc://"):
        # a malformed address makes Client() fail in a way that hangs 20 s at exit
        from distributed.comm import get_address_host_port
        from distributed.comm.addressing import normalize_address
        try:
            get_address_host_port(normalize_address(address))
        except ValueError as exc:
            raise MirkitError(f"not a Dask scheduler address (tcp://host:8786) nor a "
                              f"scheduler file: {exc}", address) from None
    try:
        client = distributed.Client(timeout="10s", set_as_default=False, **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise MirkitError(f"cannot connect to the Dask scheduler: {exc}", address) from None
    _clients[address] = client
    if len(_clients) == 1:
        import atexit
        atexit.register(close_clients)
    _check_workers(client, address)
    return client


def close_clients():
    """Close the connections made by :func:`dask_client`."""
    while _clients:
        _, client = _clients.popitem()
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection at exit
            pass


def _worker_version():
    from . import __version__
    return __version__


def _check_workers(client, address):
    """The scheduler and every connected worker must import this version of mirkit (tasks
    refer to mirkit's functions by name): one clear error instead of a traceback per task."""
    from . import __version__
    from .errors import MirkitError
    try:
        # the scheduler unpickles the tasks too (recent Dask): it needs mirkit as well
        version = client.run_on_scheduler(_worker_version)
    except Exception as exc:  # noqa: BLE001 - whatever the scheduler's import raised
        raise MirkitError(f"the Dask scheduler cannot run mirkit ({exc}): install mirkit "
                          "where the scheduler runs too", address) from None
    if version != __version__:
        raise MirkitError(f"the Dask scheduler runs mirkit {version}, this is mirkit "
                          f"{__version__}: install the same version everywhere", address)
    try:
        versions = client.run(_worker_version, on_error="return")
    except Exception as exc:  # noqa: BLE001 - the scheduler went away
        raise MirkitError(f"cannot query the Dask workers: {exc}", address) from None
    for worker, version in sorted(versions.items()):
        if isinstance(version, BaseException):
            raise MirkitError(f"Dask worker {worker} cannot run mirkit ({version}): install "
                              "mirkit on every worker", address)
        if version != __version__:
            raise MirkitError(f"Dask worker {worker} runs mirkit {version}, this is "
                              f"mirkit {__version__}: install the same version everywhere",
                              address)


def cluster_threads(client):
    """Worker threads of the cluster right now (at least 1)."""
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001 - best effort; the map still works
        return 1


def worker_count(jobs, scheduler=None):
    """How many items run at once: ``jobs`` when > 0, else the cluster's worker threads
    (with a scheduler) or this machine's cores."""
    if jobs and jobs > 0:
        return jobs
    if scheduler:
        return cluster_threads(dask_client(scheduler))
    return default_jobs()


_omp = []  # [libgomp handle or None] once looked up in this process


def _single_threaded_openmp():
    """OMP_NUM_THREADS=1 for what loads OpenMP from now on, and for this thread of an
    OpenMP runtime already loaded (a Dask worker may have imported libsvm before)."""
    if not _omp:
        os.environ["OMP_NUM_THREADS"] = "1"
        handle = None
        try:
            import ctypes
            handle = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        except (OSError, AttributeError):
            pass
        _omp.append(handle)
    if _omp[0] is not None:
        _omp[0].omp_set_num_threads(1)  # per-thread setting in libgomp: cheap, every task


_initialized = set()


class _DaskTask:
    """What runs on a Dask worker: OpenMP single-threaded, the initializer once per worker
    process, then ``func(item)``. Pickled by reference to mirkit: workers need mirkit."""

    def __init__(self, func, initializer=None, initargs=()):
        self.func = func
        self.initializer = initializer
        self.initargs = tuple(initargs)

    def __call__(self, item):
        _single_threaded_openmp()
        if self.initializer is not None:
            key = (getattr(self.initializer, "__module__", None),
                   getattr(self.initializer, "__qualname__", repr(self.initializer)),
                   repr(self.initargs))
            if key not in _initialized:
                self.initializer(*self.initargs)
                _initialized.add(key)
        return self.func(item)


def _dask_map(func, items, address, jobs=0, initializer=None, initargs=(), window=None,
              shared=(), lost=None):
    """:func:`ordered_map` on a Dask cluster.

    In flight: ``jobs`` tasks when ``jobs > 0`` (share a cluster politely), else ``window``
    when given, else 4 times the cluster's worker threads (as 4*jobs locally: a worker never
    waits for its next task). ``shared``: keys of dict items whose values are the same object across many items
    (e.g. the feature matrix of a grid's fold tasks): each distinct object is sent to the
    cluster once (``scatter``) and the tasks refer to it. ``lost(item, reason)``: the value
    to yield for an item whose task killed its workers (Dask's ``KilledWorker``: a crash,
    out of memory) instead of failing the whole map."""
    distributed = _import_distributed()
    from .errors import MirkitError
    client = dask_client(address)
    limit = jobs if jobs and jobs > 0 else (window or 4 * cluster_threads(client))
    if window:
        limit = min(limit, window)
    task = _DaskTask(func, initializer, initargs)
    scattered = {}  # id(object) -> (object, future): the object is kept alive, ids stay unique
    pending = collections.deque()

    def submit(item):
        if shared and isinstance(item, dict):
            item = dict(item)
            for key in shared:
                if key in item:
                    obj = item[key]
                    if id(obj) not in scattered:
                        scattered[id(obj)] = (obj, client.scatter([obj], hash=False)[0])
                    item[key] = scattered[id(obj)][1]
        return item, client.submit(task, item, pure=False)

    def result(entry):
        item, future = entry
        try:
            return future.result()
        except distributed.KilledWorker as exc:
            if lost is not None:
                return lost(item, f"the Dask worker running it died ({exc})")
            raise MirkitError(f"a task killed its Dask workers: {exc}", address) from None
        except distributed.client.FutureCancelledError as exc:
            raise MirkitError(f"task cancelled (lost the Dask scheduler?): {exc}",
                              address) from None
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "mirkit":
                raise MirkitError("a Dask worker cannot import mirkit: install mirkit on "
                                  "every worker", address) from None
            raise

    try:
        for item in items:
            pending.append(submit(item))
            if len(pending) >= limit:
                yield result(pending.popleft())
        while pending:
            yield result(pending.popleft())
    finally:
        if pending:  # stopped early (error, interrupt, consumer gone): free the cluster
            try:
                client.cancel([future for _, future in pending])
            except Exception:  # noqa: BLE001
                pass
        scattered.clear()  # the cluster forgets the shared objects with their last future
