"""--scheduler (design.md §6): the same work on a Dask distributed cluster.

The cluster tests start a one-worker ``distributed.LocalCluster`` in this process and skip
when Dask is not installed (it is the optional ``mirkit[dask]`` extra, not in CI); the
missing-package error and the startup check run everywhere.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import BIN, ROOT, tool_env
from mirkit import parallel
from mirkit.errors import MirkitError

AUDIO = ROOT / "examples" / "audio"
CLIPS = ["frozen-bubble-intro-excerpt.ogg", "chromium-bsu-music-game.wav"]

PROJECT = """
className: tiny
datasetsDirectory: datasets
resultsDirectory: results
seed: 1
excludedDescriptors: [ 'metadata.tags*' ]
failOnUnmatched: False
preprocessing:
    basic:
        - {transfo: remove, params: {descriptorNames: ['metadata.*', '*dmean*', '*dvar*', '*.min', '*.max', '*cov']}}
        - {transfo: enumerate, params: {descriptorNames: ['tonal.chords_key', 'tonal.chords_scale', 'tonal.key_*.key', 'tonal.key_*.scale']}}
    mfcc:
        - {transfo: remove, params: {descriptorNames: ['metadata.*', '*dmean*', '*dvar*', '*.min', '*.max', '*cov']}}
        - {transfo: select, params: {descriptorNames: 'lowlevel.mfcc*'}}
classifiers:
    svm:
        - preprocessing: [basic, mfcc]
          type: [C-SVC]
          kernel: [RBF, poly]
          C: [-1, 3]
          gamma: [-3]
          balanceClasses: [False]
evaluations:
    nfoldcrossvalidation:
        - nfold: [ 3 ]
"""


def single_thread_env():
    # the records depend (~1e-9) on the BLAS thread count; Dask's nanny starts its workers
    # with OMP_NUM_THREADS=1 (and mirkit sets it in the task): compare like with like
    env = tool_env()
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def tool(name, *args, cwd=None):
    return subprocess.run([sys.executable, str(BIN / name), *map(str, args)],
                          capture_output=True, cwd=cwd, env=single_thread_env(), timeout=300)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import dask
    # a task that kills its worker is given up at once (default: 3 retries)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cl = distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                      dashboard_address=":0")
    try:
        yield cl.scheduler_address
    finally:
        parallel.close_clients()  # before the scheduler goes, or the client waits for it
        cl.close()


# ---- the map itself ----------------------------------------------------------------------

def test_order_errors_and_shared_objects(cluster):
    assert list(parallel.ordered_map(str, range(30), jobs=2, scheduler=cluster)) == \
        [str(i) for i in range(30)]
    # an exception of func comes out at its item's position, as with local processes
    results = parallel.ordered_map(int, ["1", "x", "3"], scheduler=cluster)
    assert next(results) == 1
    with pytest.raises(ValueError, match="invalid literal"):
        next(results)
    # shared dict values are scattered once and resolved in the task
    big = list(range(1000))
    items = [{"data": big, "i": i} for i in range(5)]
    assert list(parallel.ordered_map(repr, items, scheduler=cluster, shared=("data",))) == \
        [repr(item) for item in items]
    # per-item errors returned as values (what extract and gridsearch do) keep their source
    from mirkit.gaia.dataset import _load_one
    [(res, _)] = parallel.ordered_map(_load_one, [("x", "/nonexistent/a.json", (), False)],
                                      scheduler=cluster)
    assert isinstance(res, MirkitError) and res.source == "/nonexistent/a.json"


def test_window_bounds_items_in_flight(cluster):
    pulled = []

    def items():
        for i in range(20):
            pulled.append(i)
            yield i

    results = parallel.ordered_map(str, items(), jobs=3, scheduler=cluster)
    assert next(results) == "0"
    assert len(pulled) == 3  # -j 3 with --scheduler: at most 3 tasks on the cluster
    assert list(results) == [str(i) for i in range(1, 20)]
    pulled.clear()
    results = parallel.ordered_map(str, items(), jobs=0, scheduler=cluster)
    assert next(results) == "0"
    assert len(pulled) == 4  # default: 4 times the cluster's worker threads (1 here)
    results.close()  # a consumer that stops early: the tasks in flight are cancelled
    assert parallel.worker_count(0, cluster) == 1  # the cluster's worker threads
    assert parallel.worker_count(5, cluster) == 5


def test_scheduler_file(cluster, tmp_path):
    # what `dask scheduler --scheduler-file FILE` writes (the client reads "address")
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({"type": "Scheduler", "address": cluster}))
    assert list(parallel.ordered_map(str, range(3), jobs=0, scheduler=str(path))) == \
        ["0", "1", "2"]


def test_bad_scheduler_address_is_one_line_exit_2(capsys):
    pytest.importorskip("distributed")
    from mirkit.commands.extract import ExtractTool
    assert ExtractTool().execute(["--scheduler", "tcp://", str(AUDIO / CLIPS[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("extract: tcp://: not a Dask scheduler address") and \
        err.count("\n") == 1


def test_task_sets_openmp_single_threaded():
    """In the task, an OpenMP runtime already loaded with more threads is set to one."""
    import ctypes
    import threading
    import libsvm.svm  # noqa: F401 - loads libgomp
    try:
        gomp = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        pytest.skip("libsvm is not linked with libgomp here")
    seen = []

    def in_thread():
        gomp.omp_set_num_threads(3)
        seen.append(gomp.omp_get_max_threads())
        parallel._omp.clear()
        seen.append(parallel._DaskTask(lambda _: gomp.omp_get_max_threads())(None))
        seen.append(os.environ["OMP_NUM_THREADS"])

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [3, 1, "1"]


# ---- the tools --------------------------------------------------------------------------

def test_extract_on_dask_equals_local(cluster, tmp_path):
    # relative paths from another directory than the worker's, and one missing file
    files = CLIPS + ["missing.wav"]
    local = tool("extract", "-j", "1", "-f", "json", *files, cwd=AUDIO)
    dask = tool("extract", "--scheduler", cluster, "-f", "json", *files, cwd=AUDIO)
    assert local.returncode == 1, local.stderr.decode()
    assert dask.returncode == 1, dask.stderr.decode()
    assert local.stdout.count(b'"id"') >= 2
    assert dask.stdout == local.stdout
    assert dask.stderr == local.stderr == b"extract: missing.wav: no such file\n"


def test_gridsearch_on_dask_equals_local(cluster, tmp_path):
    from mirkit.svm.synthetic import write_dataset
    runs = {}
    for name, opts in (("local", ["-j", "1"]), ("dask", ["--scheduler", cluster])):
        d = tmp_path / name
        d.mkdir()
        write_dataset(str(d), 24, 2, seed=3, separation=0.8)
        (d / "project.yaml").write_text(PROJECT)
        proc = tool("gridsearch", "-p", d / "project.yaml", d / "groundtruth.yaml",
                    d / "filelist.yaml", "--no-model", "-v", *opts, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        if name == "dask":  # the fold tasks ran on the cluster's single worker thread
            assert re.search(rb"grid: \d+ fold task\(s\), .* 1 worker\(s\)", proc.stderr)
        results = {p.name: p.read_bytes() for p in (d / "results").glob("*.result")}
        runs[name] = (proc.stdout.decode().replace(str(d), "DIR"), results)
    assert len(runs["local"][1]) == 8
    assert runs["dask"] == runs["local"]


def test_lost_worker_is_reported_per_item(cluster):
    """A task that kills its worker (a decoder crash, out of memory) becomes the value of
    ``lost`` at its position; the rest of the batch goes on. Last: the worker restarts."""
    out = list(parallel.ordered_map(os._exit, [3], scheduler=cluster,
                                    lost=lambda item, reason: ("lost", item, reason)))
    assert out[0][:2] == ("lost", 3) and "died" in out[0][2]
    with pytest.raises(MirkitError, match="killed its Dask workers"):
        list(parallel.ordered_map(os._exit, [4], scheduler=cluster))


def test_worker_without_mirkit_is_one_clear_error(tmp_path):
    distributed = pytest.importorskip("distributed")
    blocker = tmp_path / "no_mirkit.py"
    blocker.write_text(
        "import sys\n"
        "class NoMirkit:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mirkit':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoMirkit())\n"
        "for k in [k for k in sys.modules if k.split('.')[0] == 'mirkit']:\n"
        "    del sys.modules[k]\n")
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=":0", preload=[str(blocker)]) as cl:
        try:
            with pytest.raises(MirkitError, match="cannot run mirkit .*No module named "
                                                  "'mirkit'.*install mirkit on every worker"):
                parallel.dask_client(cl.scheduler_address)
        finally:
            parallel.close_clients()


# ---- without Dask ------------------------------------------------------------------------

@pytest.mark.parametrize("tool_name", ["extract", "gridsearch"])
def test_missing_dask_is_one_line_exit_2(tool_name, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    monkeypatch.setattr(parallel, "_clients", {})
    if tool_name == "extract":
        from mirkit.commands.extract import ExtractTool as Tool
        argv = ["--scheduler", "tcp://127.0.0.1:8786", str(AUDIO / CLIPS[0])]
    else:
        from mirkit.commands.gridsearch import GridSearchTool as Tool
        argv = ["--scheduler", "tcp://127.0.0.1:8786", "-d", str(tmp_path)]
    assert Tool().execute(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"{tool_name}: --scheduler needs Dask distributed, which is not "
                            "installed: install the mirkit[dask] extra (pip install "
                            "'dask[distributed]' in mirkit's environment)\n")


def test_tools_do_not_import_dask_without_scheduler():
    code = ("import sys\n"
            "from mirkit.commands import extract, gridsearch\n"
            "extract.ExtractTool().parser.parse_args(['-j', '2', 'x.wav'])\n"
            "gridsearch.GridSearchTool().parser.parse_args(['-d', 'x'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=tool_env(),
                          timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "[]"


def test_scheduler_option_in_help():
    for name in ("extract", "gridsearch"):
        proc = subprocess.run([sys.executable, str(BIN / name), "--help"], capture_output=True,
                              env=tool_env(), timeout=60)
        assert b"--scheduler ADDRESS" in proc.stdout
        page = (ROOT / "man" / "man1" / f"{name}.1").read_text()
        assert r"\-\-scheduler" in page and "mirkit[dask]" in page
