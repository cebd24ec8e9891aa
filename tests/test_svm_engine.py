"""The fast grid engine against independent per-configuration training (libsvm on dense
vectors, as Gaia trains each configuration) and against scikit-learn's SVC."""

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.dataset import ENUM, REAL, Dataset
from mirkit.gaia.folds import gaia_folds
from mirkit.svm import libsvm_io
from mirkit.svm.engine import evaluate_config_direct, evaluate_fold
from mirkit.svm.features import FeatureBlock, fit_scaling

CONFIGS = [dict(kernel=k, C=c, gamma=g, balanceClasses=b, type="C-SVC")
           for k in ("poly", "RBF") for c in (-3, 1, 5) for g in (5, -1, -5) for b in (False, True)]
# gamma 2**5 on these 12 dims makes the RBF kernel numerically the identity: decision values
# are at the 1e-40 level, where only bit-exact kernels give the same predictions


def dataset(n=90, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([i % n_classes for i in range(n)])
    y[:7] = 0  # unbalanced classes
    centers = rng.normal(0, 1, (n_classes, 12))
    x = centers[y] + rng.normal(0, 1.2, (n, 12))
    key = rng.integers(0, 4, (n, 1)).astype(np.int32)
    ids = [f"id{i:03d}" for i in range(n)]
    ds = Dataset(ids, {"lowlevel.a": REAL, "lowlevel.b": REAL, "tonal.key": ENUM},
                 {"lowlevel.a": x[:, :5].astype(np.float32), "lowlevel.b": x[:, 5:].astype(np.float32),
                  "tonal.key": key})
    labels = {pid: f"c{c}" for pid, c in zip(ids, y)}
    return ds, labels, y


def fold_rows(labels, ids, nfold=5, f=0):
    _, fold_of = gaia_folds(labels, nfold, 1)
    fold = np.array([fold_of[p] for p in ids])
    return np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]


def test_features_order_scaling_and_enums():
    ds, labels, y = dataset()
    block = FeatureBlock.from_dataset(ds)
    assert block.names == ["lowlevel.a", "lowlevel.b", "tonal.key"]
    assert block.feature_names()[:2] == ["lowlevel.a[0]", "lowlevel.a[1]"]
    sc = fit_scaling(block, np.arange(60))
    X = sc.apply(block.matrix[:60])
    assert np.allclose(X[:, :-1].min(axis=0), 0) and np.allclose(X[:, :-1].max(axis=0), 1)
    assert np.array_equal(X[:, -1], block.matrix[:60, -1])  # enum codes stay raw


def test_constant_dimension_in_a_fold_fails_like_gaia():
    ds, labels, y = dataset()
    ds.data["lowlevel.a"][:, 2] = 1.0
    ds.data["lowlevel.a"][5, 2] = 2.0  # only row 5 differs
    block = FeatureBlock.from_dataset(ds)
    rows = np.array([i for i in range(len(y)) if i != 5])
    with pytest.raises(MirkitError, match="Division by zero in .lowlevel.a"):
        fit_scaling(block, rows)
    fit_scaling(block, np.arange(len(y)))  # fine with row 5 in


@pytest.mark.parametrize("fold,n_classes", [(0, 3), (3, 3), (0, 2), (2, 4)])
def test_engine_equals_per_configuration_training(fold, n_classes):
    """Two classes too: then the only pair's rows are all the training rows, in pair order
    (class a first), not in training order."""
    ds, labels, y = dataset(n_classes=n_classes)
    block = FeatureBlock.from_dataset(ds)
    train, test = fold_rows(labels, ds.ids, f=fold)
    res = evaluate_fold({"block": block, "y": y, "n_classes": n_classes, "train": train,
                         "test": test, "fold": fold, "configs": CONFIGS})
    for i, cfg in enumerate(CONFIGS):
        direct = evaluate_config_direct(block, y, n_classes, train, test, cfg)
        assert np.array_equal(res[i], direct), cfg


def test_predict_votes_equals_libsvm_predict():
    ds, labels, y = dataset(n_classes=4, seed=3)
    block = FeatureBlock.from_dataset(ds)
    train, test = fold_rows(labels, ds.ids)
    sc = fit_scaling(block, train)
    Xtr, Xte = sc.apply(block.matrix[train]), sc.apply(block.matrix[test])
    K = np.exp(-0.1 * ((Xtr[:, None, :] - Xtr[None, :, :]) ** 2).sum(-1))
    Kte = np.exp(-0.1 * ((Xte[:, None, :] - Xtr[None, :, :]) ** 2).sum(-1))
    model = libsvm_io.train(libsvm_io.kernel_problem(K, y[train].astype(float)),
                            libsvm_io.make_parameter(4, 4.0))
    rows = np.concatenate([np.zeros((len(test), 1)), Kte], axis=1)
    nodes = np.empty((len(test), len(train) + 2), dtype=libsvm_io.node_dtype())
    nodes["index"][:, :len(train) + 1] = np.arange(len(train) + 1)
    nodes["value"][:, :len(train) + 1] = rows
    nodes["index"][:, -1] = -1
    want, _ = libsvm_io.predict_nodes(model, nodes)
    assert np.array_equal(libsvm_io.predict_votes(model, Kte), want.astype(int))


def test_accuracies_equal_sklearn_svc():
    """Same folds and features; rows fed sorted by class so that libsvm's label order equals
    scikit-learn's sorted labels (gaia.md §9b)."""
    svm = pytest.importorskip("sklearn.svm")
    ds, labels, y = dataset(seed=5)
    order = np.argsort(y, kind="stable")
    ds = ds.take(order)
    y = y[order]
    block = FeatureBlock.from_dataset(ds)
    for fold in range(5):
        train, test = fold_rows(labels, ds.ids, f=fold)
        res = evaluate_fold({"block": block, "y": y, "n_classes": 3, "train": train,
                             "test": test, "fold": fold, "configs": CONFIGS})
        sc = fit_scaling(block, train)
        Xtr, Xte = sc.apply(block.matrix[train]), sc.apply(block.matrix[test])
        for i, cfg in enumerate(CONFIGS):
            clf = svm.SVC(C=2.0 ** cfg["C"], kernel=cfg["kernel"].lower(), degree=3,
                          gamma=2.0 ** cfg["gamma"], coef0=0.0, tol=1e-3, cache_size=100,
                          class_weight="balanced" if cfg["balanceClasses"] else None)
            clf.fit(Xtr, y[train])
            theirs = clf.predict(Xte)
            assert (res[i] == y[test]).sum() == (theirs == y[test]).sum(), (fold, cfg)


def test_class_weights():
    w = libsvm_io.class_weights(np.array([0, 0, 0, 1, 2, 2]), 3)
    assert w == {0: 6 / 9, 1: 2.0, 2: 1.0}


@pytest.mark.parametrize("kcode,gamma", [(1, 2.0), (1, 2.0 ** -5), (0, 0.0), (2, 0.5)])
def test_final_model_text_equals_dense_training(kcode, gamma):
    """The final model (probabilities) gives the very libsvm text dense training gives; rand()
    is reset before each training (libsvm's probability fit draws its folds with it)."""
    import ctypes

    from mirkit.svm.train import train_probability_model
    libc = ctypes.CDLL(None)
    rng = np.random.default_rng(0)
    X = rng.random((60, 5)).astype(np.float32).astype(np.float64)
    y = np.arange(60) % 3
    w = {0: 1.0, 1: 1.2, 2: 0.9}
    libc.srand(1)
    text, _ = train_probability_model(X, y, kcode, 4.0, gamma, 3, w)
    libc.srand(1)
    dense = libsvm_io.train(libsvm_io.dense_problem(X, y.astype(float)),
                            libsvm_io.make_parameter(kcode, 4.0, gamma, 3, weights=w,
                                                     probability=True))
    assert text == libsvm_io.model_to_text(dense)


def test_polynomial_configurations_sharing_c_gamma3_equal_direct_training():
    """Polynomial configurations with equal C * gamma**3 share one solve (libsvm's SMO is
    exactly scale-equivariant for power-of-two scalings); each must still equal its own
    per-configuration training, also with unbalanced class weights and with duplicate
    points (whose second-order terms K_ii + K_jj - 2 K_ij are at rounding level)."""
    ds, labels, y = dataset(n=80, seed=9)
    cfgs = [dict(kernel="poly", C=c, gamma=g, balanceClasses=b, type="C-SVC")
            for c, g in [(3, -1), (0, 0), (-3, 1), (6, -2), (9, -3), (1, 1), (7, -1)]
            for b in (False, True)]
    for dup in (False, True):
        if dup:
            for name in ds.data:
                ds.data[name][1] = ds.data[name][0]  # rows 0 and 1 identical
            y[1] = y[0]
        block = FeatureBlock.from_dataset(ds)
        train, test = fold_rows(labels, ds.ids, f=1)
        res = evaluate_fold({"block": block, "y": y, "n_classes": 3, "train": train,
                             "test": test, "fold": 1, "configs": cfgs})
        for i, cfg in enumerate(cfgs):
            assert np.array_equal(res[i], evaluate_config_direct(block, y, 3, train, test, cfg)), \
                (dup, cfg)


@pytest.mark.parametrize("separation,weights", [(3.0, None), (3.0, {1: 0.8, -1: 1.3}),
                                                (0.7, None), (0.7, {1: 1.5, -1: 0.75})])
def test_solutions_shared_across_c_equal_separate_training(monkeypatch, separation, weights):
    """solve_for_each_c gives, for every C, the solution libsvm gives when trained at that C
    alone (bit for bit), and on separable data shares one solve across the large C."""
    from mirkit.svm import engine
    rng = np.random.default_rng(11)
    n = 60
    yy = np.where(np.arange(n) < 25, 1.0, -1.0)
    X = rng.normal(0, 1, (n, 4)) + separation * yy[:, None]
    for kernel in (np.exp(-0.5 * ((X[:, None] - X[None]) ** 2).sum(-1)), (X @ X.T) ** 3):
        problem = libsvm_io.kernel_problem(np.ascontiguousarray(kernel), yy)
        cs = [2.0 ** e for e in range(-6, 22, 2)]
        calls = []
        real = engine._solve
        monkeypatch.setattr(engine, "_solve", lambda p, c, w: calls.append(c) or real(p, c, w))
        shared = engine.solve_for_each_c(problem, cs, weights)
        monkeypatch.setattr(engine, "_solve", real)
        for c in cs:
            alone = real(problem, c, weights)
            assert alone.key[3] > 0  # libsvm's iteration count is part of the comparison
            assert shared[c].key == alone.key, (separation, c)
        if separation > 1:  # separable: the bound stops mattering well below 2**20
            # one extra solve certifies the shared one
            assert len(calls) < len(cs) - 3
            assert len({id(s) for s in shared.values()}) == len(calls) - 1


def test_folds_are_worked_pair_by_pair_and_over_budget_configuration_by_configuration():
    """A fold is worked one class pair at a time (each with the matrices of its own rows);
    when even a pair would not fit (memory_budget), one configuration at a time: the same
    predictions either way; failures keep their per-fold message."""
    from mirkit.svm import engine
    ds, labels, y = dataset()
    block = FeatureBlock.from_dataset(ds)
    train, test = fold_rows(labels, ds.ids, f=2)
    cfgs = CONFIGS + [dict(kernel="bogus", C=1, gamma=1, balanceClasses=False, type="C-SVC")]
    task = {"block": block, "y": y, "n_classes": 3, "train": train, "test": test, "fold": 2,
            "configs": cfgs}
    sizes = np.bincount(y[train])
    need = engine.fold_memory(len(train), len(test), sizes)
    largest = sorted(sizes)[-1] + sorted(sizes)[-2]
    assert 8 * largest ** 2 < need < 10 ** 8  # the estimate is of the right order
    calls = []
    real = engine.Fold.pair_votes
    engine.Fold.pair_votes = lambda self, ia, ib, idx, yy: calls.append(len(idx)) or \
        real(self, ia, ib, idx, yy)
    try:
        pairwise = evaluate_fold(dict(task, memory_budget=need + 1))
    finally:
        engine.Fold.pair_votes = real
    # three classes: three pairs, one at a time, each on its own rows
    assert len(calls) == 3 and all(r < len(train) for r in calls)
    alone = evaluate_fold(dict(task, memory_budget=need - 1))
    assert sorted(pairwise) == sorted(alone) == list(range(len(cfgs)))
    for i in range(len(CONFIGS)):
        assert np.array_equal(pairwise[i], alone[i]), cfgs[i]
    for res in (pairwise, alone):
        assert res[len(CONFIGS)].startswith("fold 2:") and "unknown kernel" in res[len(CONFIGS)]
