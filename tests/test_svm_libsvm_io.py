"""libsvm model ownership (no libsvm-official __del__ at interpreter exit) and the grid
engine's work planning (splitting a fold's configurations into tasks changes nothing)."""

import os
import subprocess
import sys

import numpy as np

from mirkit.svm import libsvm_io
from mirkit.svm.engine import evaluate_fold, makespan, plan_tasks, solve_key
from mirkit.svm.features import FeatureBlock

from test_svm_engine import dataset, fold_rows

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")


def _model():
    rng = np.random.default_rng(0)
    X = rng.random((30, 4))
    return libsvm_io.train(libsvm_io.dense_problem(X, (np.arange(30) % 3).astype(float)),
                           libsvm_io.make_parameter(2, 1.0, 0.5))


def test_models_are_freed_by_mirkit_not_by_libsvm_del():
    model = _model()
    # not flagged for libsvm-official's own __del__ (which fails during shutdown)
    assert getattr(model, "__createfrom__", None) != "C"
    loaded = libsvm_io.model_from_text(libsvm_io.model_to_text(model))
    assert getattr(loaded, "__createfrom__", None) != "C"
    for m in (model, loaded):
        assert m._finalizer.alive
        libsvm_io.free_model(m)
        assert not m._finalizer.alive
        libsvm_io.free_model(m)  # idempotent


def test_no_exception_ignored_at_interpreter_exit():
    """Models kept alive until shutdown (module globals, reference cycles, another module's
    namespace) are freed without "Exception ignored in svm_model.__del__"."""
    code = """if True:
        import json, sys
        import numpy as np
        from mirkit.svm import libsvm_io
        X = np.random.default_rng(1).random((20, 3))
        prob = libsvm_io.dense_problem(X, (np.arange(20) % 2).astype(float))
        class Holder:
            def __init__(self):
                self.m = libsvm_io.train(prob, libsvm_io.make_parameter(2, 1.0, 1.0))
                self.t = libsvm_io.model_from_text(libsvm_io.model_to_text(self.m))
                self.me = self
        KEEP = Holder()
        json.KEEP = Holder()
        sys.KEEP = Holder()
        print("ok")
    """
    env = dict(os.environ, PYTHONPATH=LIB)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert "Exception ignored" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_planned_tasks_give_the_results_of_one_task(monkeypatch):
    """A low-dimensional block is split into tasks (one per expensive polynomial solve
    group, the cheap ones packed); merged, they equal one task over all configurations."""
    ds, labels, y = dataset(n=90, seed=4)
    block = FeatureBlock.from_dataset(ds)
    train, test = fold_rows(labels, ds.ids, f=2)
    configs = [dict(kernel=k, C=c, gamma=g, balanceClasses=b, type="C-SVC")
               for k in ("poly", "RBF") for c in (-5, 1, 7, 11) for g in (3, -1, -5)
               for b in (False, True)]
    from mirkit.svm import engine
    dims = block.matrix.shape[1]
    groups = {}
    for c in configs:
        groups.setdefault(solve_key(c), []).append(c)
    assert len(groups) == 4  # poly (every gamma together) + RBF per gamma
    est = {k: engine.estimate_seconds(k, v, dims, len(train)) for k, v in groups.items()}
    rbf = max(v for k, v in est.items() if k[0] != "poly")
    assert est[("poly", 3)] > 1.5 * rbf
    # this toy fold is cheap: lower the packing threshold so that the polynomial group is
    # a task of its own and the RBF groups are packed (two together, one alone)
    monkeypatch.setattr(engine, "PACK_SECONDS", 1.5 * rbf)
    plan = plan_tasks(configs, block.matrix.shape[1], len(train))
    assert len(plan) > 2 and any(len({solve_key(configs[i]) for i in idx}) > 1
                                 for idx, _ in plan)
    assert sorted(i for idx, _ in plan for i in idx) == list(range(len(configs)))
    for idx, _ in plan:  # configurations sharing a solve stay together
        keys = {solve_key(configs[i]) for i in idx}
        others = [i for i in range(len(configs)) if i not in idx and solve_key(configs[i]) in keys]
        assert not others
    task = {"block": block, "y": y, "n_classes": 3, "train": train, "test": test, "fold": 2}
    whole = evaluate_fold(dict(task, configs=configs))
    merged = {}
    for idx, _ in plan:
        part = evaluate_fold(dict(task, configs=[configs[i] for i in idx]))
        merged.update({idx[k]: v for k, v in part.items()})
    assert sorted(merged) == sorted(whole)
    for i in whole:
        assert np.array_equal(merged[i], whole[i]), configs[i]
    # high-dimensional blocks, or split=False: one task
    assert len(plan_tasks(configs, 500, len(train))) == 1
    assert len(plan_tasks(configs, block.matrix.shape[1], len(train), split=False)) == 1


def test_makespan_of_longest_first_scheduling():
    # hand-computed: 2 workers, [5, 4, 3, 3]: 5+3 and 4+3 -> 8
    assert makespan([3, 5, 3, 4], 2) == 8
    assert makespan([10, 1, 1], 2) == 10
    assert makespan([2, 2], 1) == 4


def test_result_table_equals_confusion_matrix():
    """The grid's numpy .result writer gives ConfusionMatrix's very text and summary
    (unsorted ids, unbalanced classes, a class absent from a fold, a predicted class that
    is never true, an empty fold)."""
    from mirkit.gaia import metrics
    from mirkit.svm.gridsearch import ResultTable
    rng = np.random.default_rng(3)
    n = 57
    ids = [f"t{int(v):04d}" for v in rng.permutation(9000)[:n]]  # not in sorted order
    classes = ["a", "b c", "d", "z"]
    y = rng.choice(3, n, p=[0.6, 0.3, 0.1])  # "z" never true
    fold_arr = rng.integers(0, 4, n)  # fold 4 empty
    y[fold_arr == 2] = 0  # only class "a" in fold 2
    fold_of = {pid: int(f) for pid, f in zip(ids, fold_arr)}
    fold_results = {f: (np.nonzero(fold_arr == f)[0], None) for f in range(5)}
    table = ResultTable(fold_results, ids, y, classes, fold_of)
    for trial in range(20):
        pred_rows = np.where(rng.random(n) < 0.7, y, rng.integers(0, 4, n))
        pred = np.concatenate([pred_rows[fold_results[f][0]] for f in range(5)])
        text, summary = table.result(pred)
        expected = {ids[i]: classes[y[i]] for i in range(n)}
        predicted = {ids[i]: classes[pred_rows[i]] for i in range(n)}
        cm = metrics.ConfusionMatrix.from_predictions(expected, predicted, fold_of)
        assert text == cm.to_yaml()
        assert summary == cm.summary()  # bit for bit


def test_cache_size_does_not_change_the_model():
    """The kernel cache (-m) only decides what libsvm recomputes: a cache far too small for
    the matrix and one holding all of it give the same model text (with shrinking on)."""
    rng = np.random.default_rng(5)
    X = rng.random((160, 6))
    y = (X[:, 0] + 0.3 * rng.random(160) > 0.6).astype(float)
    texts = []
    for mb in (0.05, libsvm_io.cache_mb(160)):
        param = libsvm_io.make_parameter(2, 8.0, 2.0, cache_size=mb)
        texts.append(libsvm_io.model_to_text(libsvm_io.train(libsvm_io.dense_problem(X, y),
                                                             param)))
    assert texts[0] == texts[1]
    assert libsvm_io.cache_mb(400) == 100.0 and libsvm_io.cache_mb(8000) > 244
