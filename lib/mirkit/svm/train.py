"""Training the final model on all data, with probabilities (gaia.md §5.1 trainSVM, §6.4).

The preprocessed dataset (all points, in sorted-id order) goes through the classifier's
descriptor selection, cleaner and per-dimension min-max fitted on all of it; libsvm is
trained on dense vectors with ``-b 1``; the result is the plain-data content of a mirkit
model file (see :mod:`mirkit.svm.modelfile`).
"""

import numpy as np

from .. import __version__
from ..errors import MirkitError
from ..gaia.preprocess import decode_state, encode_array, encode_state
from ..parallel import available_memory
from . import libsvm_io
from .features import FeatureBlock, fit_scaling


def prune_chain(chain_data, required):
    """Drop, from a fitted chain's state, everything about descriptors the model never uses
    (keeps the model file small; the applied result on the used descriptors is unchanged)."""
    req = set(required)
    out = []
    for step in chain_data:
        step = dict(step)
        state = decode_state(step.get("state")) or {}
        new = {}
        for key, value in state.items():
            if key == "names" and isinstance(value, list):
                new[key] = [n for n in value if n in req]
            elif key in ("maps", "coeffs", "distributions") and isinstance(value, dict):
                new[key] = {n: v for n, v in value.items() if n in req}
            else:
                new[key] = value
        step["state"] = encode_state(new)
        out.append(step)
    return out


KERNEL_NAMES = {0: "linear", 1: "polynomial", 2: "rbf", 3: "sigmoid"}


def _libc():
    import ctypes
    return ctypes.CDLL(None)


def train_probability_model(X, y, kcode, C, gamma, degree=3, weights=None):
    """Train C-SVC with probabilities (``-b 1``) on the dense float64 features ``X``.

    Linear and polynomial kernels: the kernel matrix is computed once with numpy exactly as
    libsvm computes it (see :mod:`mirkit.svm.engine`) and libsvm trains on it as a
    precomputed kernel (its internal 5-fold probability fit reuses it: several times faster
    than dense training); the saved model is then rewritten into the ordinary dense form --
    the kernel header and, for every support vector, its feature vector written as libsvm
    writes it (``index:%.8g``) -- giving the very text dense training gives. RBF and sigmoid
    are trained dense: libsvm evaluates them with different formulas in training and in
    prediction (and numpy's exp/tanh differ from libm's in the last bit), so no single
    precomputed matrix reproduces them bit for bit; every kernel is trained dense when the
    kernel matrix would not fit in the memory available. Returns (text, model)."""
    from .engine import gram, kernel_from_gram
    # libsvm's probability fit shuffles its internal folds with the C library's rand():
    # seed it as a fresh process has it (glibc: rand() unseeded == srand(1)), so the model
    # does not depend on what ran before in this process (retrain and gridsearch, the
    # Python API, the tests all give the very model a new Gaia process gives)
    _libc().srand(1)
    free = available_memory()
    # the precomputed path holds the kernel matrix twice (numpy, then libsvm's 16-byte nodes)
    too_big = free is not None and 32 * len(X) ** 2 > 0.8 * free
    if kcode not in (0, 1) or too_big:
        param = libsvm_io.make_parameter(kcode, C, gamma, degree, weights=weights,
                                         probability=True, cache_size=libsvm_io.cache_mb(len(X)))
        model = libsvm_io.train(libsvm_io.dense_problem(X, y.astype(np.float64)), param)
        return libsvm_io.model_to_text(model), model
    G = gram(X)
    sq = np.diag(G).copy()
    K = kernel_from_gram({0: "linear", 1: "poly", 2: "rbf", 3: "sigmoid"}[kcode], gamma, G, sq,
                         sq, degree)
    param = libsvm_io.make_parameter(4, C, gamma, degree, weights=weights, probability=True,
                                     cache_size=libsvm_io.cache_mb(len(X)))
    model = libsvm_io.train(libsvm_io.kernel_problem(K, y.astype(np.float64)), param)
    pre = libsvm_io.model_to_text(model)
    head, body = pre.split("\nSV\n", 1)
    lines = head.split("\n")
    out = []
    for line in lines:
        if line.startswith("kernel_type"):
            out.append(f"kernel_type {KERNEL_NAMES[kcode]}")
            if kcode == 1:
                out.append(f"degree {int(degree)}")
            if kcode in (1, 2, 3):
                out.append(f"gamma {format(float(gamma), '.17g')}")
            if kcode in (1, 3):
                out.append(f"coef0 {format(0.0, '.17g')}")
        else:
            out.append(line)
    sv_lines = []
    d = X.shape[1]
    idx = [f"{i}:" for i in range(1, d + 1)]
    for line in body.splitlines():
        if not line.strip():
            continue
        coefs, serial = line.rsplit(" 0:", 1)
        row = X[int(serial) - 1]
        sv_lines.append(coefs + " " + "".join(f"{i}{format(v, '.8g')} " for i, v in zip(idx, row)))
    text = "\n".join(out) + "\nSV\n" + "\n".join(sv_lines) + "\n"
    return text, libsvm_io.model_from_text(text)


def train_final(pds, labels, config, chain_data, raw_layout, class_name, preprocessing_name=None,
                merge_info=None, param=None):
    """Train on every point of the preprocessed dataset ``pds``.

    ``labels``: id -> class; ``config``: the ``model`` dict of a .param (kernel, C and gamma
    exponents, balanceClasses, type, optional descriptorNames/exclude); ``chain_data``: the
    fitted preprocessing chain (``Chain.to_data()``); ``raw_layout``: ``{name: [kind, size]}``
    of the merged base dataset (kinds before enumeration). Returns the model data dict."""
    missing = [pid for pid in pds.ids if pid not in labels]
    if missing:
        raise MirkitError(f"{len(missing)} point(s) have no groundtruth label, e.g. {missing[0]!r}")
    block = FeatureBlock.from_dataset(pds, config.get("descriptorNames", "*"),
                                      config.get("exclude", []))
    classes = sorted(set(labels[pid] for pid in pds.ids))
    if len(classes) < 2:
        raise MirkitError("training needs at least two classes")
    y = np.array([classes.index(labels[pid]) for pid in pds.ids], dtype=np.int32)
    rows = np.arange(len(pds.ids))
    scaling = fit_scaling(block, rows)
    X = scaling.apply(block.matrix)
    svm_type = config.get("type", "C-SVC")
    libsvm_io.svm_type_code(svm_type)
    kcode = libsvm_io.kernel_code(config["kernel"])
    gamma = 2.0 ** float(config["gamma"])
    C = 2.0 ** float(config["C"])
    degree = int(config.get("degree", 3))
    weights = libsvm_io.class_weights(y, len(classes)) if config.get("balanceClasses") else None
    text, model = train_probability_model(X, y, kcode, C, gamma, degree, weights)
    label_order = [int(v) for v in np.ctypeslib.as_array(model.label, (model.nr_class,))]

    kept = scaling.kept_names
    kinds = {n: k for n, k in zip(block.names, block.kinds)}
    dims = {n: d for n, d in zip(block.names, block.dims)}
    inputs = []
    for name in kept:
        raw_kind, raw_size = raw_layout.get(name, [kinds[name], dims[name]])
        inputs.append({"name": name, "type": raw_kind, "size": int(raw_size)})
    return {
        "format": "mirkit-model",
        "version": 1,
        "kind": "svm",
        "className": class_name,
        "classes": classes,
        "createdBy": f"mirkit {__version__}",
        "inputs": inputs,
        "merge": merge_info or {},
        "preprocessing": {"name": preprocessing_name,
                          "steps": prune_chain(chain_data, kept)},
        "classifier": {
            "descriptorNames": config.get("descriptorNames", "*"),
            "exclude": config.get("exclude", []),
            "cleaned": scaling.cleaned,
            "descriptors": [{"name": n, "type": kinds[n], "size": int(dims[n])} for n in kept],
            "featureNames": block.feature_names(set(kept)),
            "a": encode_array(scaling.a),
            "b": encode_array(scaling.b),
            "svm": {"type": svm_type, "kernel": str(config["kernel"]), "C": config["C"],
                    "gamma": config["gamma"], "degree": degree, "coef0": 0.0,
                    "balanceClasses": bool(config.get("balanceClasses", False)),
                    "probability": True},
            "labelOrder": label_order,
            "libsvm": text,
        },
        "training": {"points": len(pds.ids),
                     "classCounts": {c: int((y == i).sum()) for i, c in enumerate(classes)},
                     "param": param or {"model": config}},
    }
