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
    param_obj = libsvm_io.make_parameter(kcode, C, gamma, degree, weights=weights, probability=True)
    problem = libsvm_io.dense_problem(X, y.astype(np.float64))
    model = libsvm_io.train(problem, param_obj)
    text = libsvm_io.model_to_text(model)
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
