"""Thin, fast bridge between numpy and libsvm-official.

* problems are built straight from numpy into one contiguous ``svm_node`` array (no Python
  loop over elements): dense rows (indices 1..d, zeros kept, as Gaia feeds libsvm) or
  precomputed-kernel rows (``-t 4``: index 0 holds the 1-based sample number);
* :func:`predict_votes` reproduces libsvm's one-vs-one voting with numpy from a trained
  model's support-vector indices, coefficients and rho (used with precomputed kernels,
  where the test kernel rows are already at hand);
* model text round trip (``svm_save_model``/``svm_load_model`` go through a file);
* models made by libsvm are owned here (:func:`_own`): freed by a ``weakref.finalize``
  that holds the raw pointer and libsvm's free function (run when the model is collected,
  or at interpreter exit while modules are still alive -- libsvm-official's own
  ``svm_model.__del__`` looks its globals up during shutdown and prints "Exception ignored
  ... 'NoneType' object has no attribute 'svm_free_and_destroy_model'"), or at once with
  :func:`free_model`.

libsvm-official's wheel is built with OpenMP: the thread count is set to 1 (unless the
caller set it) before the library is loaded; parallelism comes from processes.
"""

import ctypes
import os
import tempfile
import weakref

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ..errors import MirkitError  # noqa: E402

_svm = None


def lib():
    """The libsvm.svm module (imported on first use)."""
    global _svm
    if _svm is None:
        from libsvm import svm as module
        _svm = module
    return _svm


def node_dtype():
    return np.dtype(lib().svm_node)


KERNELS = {"linear": 0, "poly": 1, "polynomial": 1, "rbf": 2, "radial": 2, "sigmoid": 3}
SVM_TYPES = {"c-svc": 0, "nu-svc": 1, "one-class": 2, "epsilon-svr": 3, "nu-svr": 4}


def kernel_code(kernel):
    code = KERNELS.get(str(kernel).lower())
    if code is None:
        raise MirkitError(f"unknown kernel {kernel!r} (linear, poly, RBF, sigmoid)")
    return code


def svm_type_code(svm_type):
    code = SVM_TYPES.get(str(svm_type).lower())
    if code is None:
        raise MirkitError(f"unknown SVM type {svm_type!r}")
    if code != 0:
        raise MirkitError(f"SVM type {svm_type!r} is not supported (only C-SVC)")
    return code


def class_weights(y, n_classes):
    """Gaia's balanceClasses weights ``W_k = n / (K * n_k)`` for the labels present."""
    counts = np.bincount(y.astype(np.intp), minlength=n_classes)
    n = len(y)
    present = np.nonzero(counts)[0]
    k = len(present)
    return {int(c): n / (k * counts[c]) for c in present}


def cache_mb(n):
    """libsvm kernel-cache size (MB) holding the whole ``n x n`` matrix (float32 columns),
    at least Gaia's 100 and at most 1024. The cache only decides what is recomputed: the
    values, hence the results, are the same for any size."""
    need = n * (n + 4) * 4 / float(1 << 20) + 1.0
    return float(min(1024.0, max(100.0, np.ceil(need))))


def make_parameter(kernel_type, C, gamma=0.0, degree=3, coef0=0.0, weights=None,
                   probability=False, cache_size=100.0):
    """An svm_parameter: ``-s 0 -t T -d 3 -r 0 -g gamma -c C -m 100 -e 0.001 -h 1`` (+ -w, -b;
    ``-m`` = ``cache_size``, see :func:`cache_mb`)."""
    svm = lib()
    param = svm.svm_parameter("-q")  # defaults; -q: no progress output
    param.svm_type = 0
    param.kernel_type = int(kernel_type)
    param.degree = int(degree)
    param.gamma = float(gamma)
    param.coef0 = float(coef0)
    param.C = float(C)
    param.cache_size = float(cache_size)
    param.eps = 0.001
    param.shrinking = 1
    param.probability = 1 if probability else 0
    if weights:
        labels = sorted(weights)
        wl = (ctypes.c_int * len(labels))(*labels)
        wv = (ctypes.c_double * len(labels))(*[float(weights[k]) for k in labels])
        param.nr_weight = len(labels)
        param.weight_label = wl
        param.weight = wv
        param._keep = (wl, wv)
    else:
        param.nr_weight = 0
    return param


def _problem(y, nodes, row_len):
    svm = lib()
    n = nodes.shape[0]
    prob = svm.svm_problem.__new__(svm.svm_problem)
    ctypes.Structure.__init__(prob)
    yv = np.ascontiguousarray(y, dtype=np.float64)
    prob.l = n
    prob.y = yv.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    xp = (ctypes.POINTER(svm.svm_node) * n)()
    addr = np.ctypeslib.as_array(ctypes.cast(xp, ctypes.POINTER(ctypes.c_uint64)), (n,))
    addr[:] = nodes.ctypes.data + np.arange(n, dtype=np.uint64) * np.uint64(row_len * nodes.itemsize)
    prob.x = xp
    prob._keep = (nodes, yv, xp)
    return prob


def dense_nodes(X):
    """svm_node rows for a float64 matrix: indices 1..d then the -1 terminator."""
    n, d = X.shape
    nodes = np.empty((n, d + 1), dtype=node_dtype())
    nodes["index"][:, :d] = np.arange(1, d + 1, dtype=np.int32)
    nodes["value"][:, :d] = X
    nodes["index"][:, d] = -1
    nodes["value"][:, d] = 0.0
    return nodes


def dense_problem(X, y):
    nodes = dense_nodes(np.asarray(X, dtype=np.float64))
    return _problem(y, nodes, nodes.shape[1])


def kernel_problem(K, y):
    """Precomputed-kernel problem for a square training kernel matrix (rows = samples)."""
    n = K.shape[0]
    nodes = np.empty((n, n + 2), dtype=node_dtype())
    nodes["index"][:, 0] = 0
    nodes["value"][:, 0] = np.arange(1, n + 1, dtype=np.float64)
    nodes["index"][:, 1:n + 1] = np.arange(1, n + 1, dtype=np.int32)
    nodes["value"][:, 1:n + 1] = K
    nodes["index"][:, n + 1] = -1
    nodes["value"][:, n + 1] = 0.0
    return _problem(y, nodes, n + 2)


def _free_pointer(ptr, free):
    free(ctypes.byref(ptr))


def _own(ptr):
    """The svm_model of a libsvm-allocated pointer, freed by our finalizer. The structure is
    not flagged ``__createfrom__ = 'C'`` (what ``toPyModel`` does), so libsvm-official's
    ``__del__`` never runs for it."""
    if not ptr:
        raise MirkitError("libsvm returned no model")
    model = ptr.contents
    model._finalizer = weakref.finalize(model, _free_pointer, ptr,
                                        lib().libsvm.svm_free_and_destroy_model)
    return model


def free_model(model):
    """Free a model made here now (idempotent); the object must not be used afterwards."""
    fin = getattr(model, "_finalizer", None)
    if fin is not None:
        fin()


_output = []
_capture = None


def _capture_output(text):
    _output.append(text)


def train(problem, param, output=None):
    """svm_train with a parameter check; MirkitError with libsvm's message on a bad one.
    ``output``: a list that receives libsvm's progress text (``optimization finished,
    #iter = ...``), otherwise discarded."""
    global _capture
    svm = lib()
    err = svm.libsvm.svm_check_parameter(problem, param)
    if err:
        raise MirkitError("libsvm: " + err.decode("utf-8", "replace"))
    if output is None:
        model = _own(svm.libsvm.svm_train(problem, param))
    else:
        if _capture is None:
            _capture = svm.PRINT_STRING_FUN(_capture_output)
        del _output[:]
        svm.libsvm.svm_set_print_string_function(_capture)
        try:
            model = _own(svm.libsvm.svm_train(problem, param))
        finally:
            svm.libsvm.svm_set_print_string_function(svm.ctypes_print_null)
        output.extend(t.decode("ascii", "replace") for t in _output)
    model._problem = problem  # the model's SV pointers point into the problem's nodes
    return model


def model_arrays(model):
    """(labels, nSV, sv_indices 0-based, sv_coef (K-1, l), rho) of a trained C-SVC model."""
    k = model.nr_class
    l = model.l
    labels = np.ctypeslib.as_array(model.label, (k,)).copy()
    nsv = np.ctypeslib.as_array(model.nSV, (k,)).copy()
    sv_idx = np.ctypeslib.as_array(model.sv_indices, (l,)).astype(np.intp) - 1
    coef = np.empty((k - 1, l), dtype=np.float64)
    for j in range(k - 1):
        coef[j] = np.ctypeslib.as_array(model.sv_coef[j], (l,))
    rho = np.ctypeslib.as_array(model.rho, (k * (k - 1) // 2,)).copy()
    return labels, nsv, sv_idx, coef, rho


def predict_votes(model, K_test):
    """libsvm's one-vs-one voting prediction for test rows given their kernel values against
    the training samples (``K_test``: tests x training samples). Returns the predicted labels."""
    labels, nsv, sv_idx, coef, rho = model_arrays(model)
    k = len(labels)
    kv = K_test[:, sv_idx]
    start = np.concatenate([[0], np.cumsum(nsv)])
    pairs = k * (k - 1) // 2
    cm = np.zeros((len(sv_idx), pairs), dtype=np.float64)
    p = 0
    pair_i, pair_j = [], []
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = start[i], start[j]
            cm[si:si + nsv[i], p] = coef[j - 1, si:si + nsv[i]]
            cm[sj:sj + nsv[j], p] = coef[i, sj:sj + nsv[j]]
            pair_i.append(i)
            pair_j.append(j)
            p += 1
    dec = kv @ cm - rho
    votes = np.zeros((K_test.shape[0], k), dtype=np.int64)
    pos = dec > 0
    for p in range(pairs):
        votes[:, pair_i[p]] += pos[:, p]
        votes[:, pair_j[p]] += ~pos[:, p]
    return labels[np.argmax(votes, axis=1)]


def predict_nodes(model, nodes, probability=False):
    """Predict every row of a node array with libsvm itself. Returns (labels, probabilities
    in the model's label order or None)."""
    svm = lib()
    n = nodes.shape[0]
    row = nodes.shape[1]
    out = np.empty(n, dtype=np.float64)
    probs = None
    k = model.nr_class
    if probability:
        probs = np.empty((n, k), dtype=np.float64)
        buf = (ctypes.c_double * k)()
    base = nodes.ctypes.data
    ptr_t = ctypes.POINTER(svm.svm_node)
    for i in range(n):
        ptr = ctypes.cast(base + i * row * nodes.itemsize, ptr_t)
        if probability:
            out[i] = svm.libsvm.svm_predict_probability(model, ptr, buf)
            probs[i] = buf[:k]
        else:
            out[i] = svm.libsvm.svm_predict(model, ptr)
    return out, probs


def model_to_text(model):
    svm = lib()
    fd, path = tempfile.mkstemp(suffix=".libsvm")
    os.close(fd)
    try:
        if svm.libsvm.svm_save_model(path.encode(), model) != 0:
            raise MirkitError("libsvm could not save the model")
        with open(path, encoding="ascii") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def model_from_text(text, source=None):
    svm = lib()
    fd, path = tempfile.mkstemp(suffix=".libsvm")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
        ptr = svm.libsvm.svm_load_model(path.encode())
    finally:
        os.unlink(path)
    if not ptr:
        raise MirkitError("invalid libsvm model text", source)
    return _own(ptr)
