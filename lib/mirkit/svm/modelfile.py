"""The mirkit SVM model file (``.model``): versioned, self-describing, safe to load.

A model file is one UTF-8 JSON document (no pickle, nothing executed on load)::

    {"format": "mirkit-model", "version": 1, "kind": "svm",
     "className": "genre", "classes": ["blu", "cla", ...],      # sorted (Gaia's classMapping)
     "inputs": [{"name": "lowlevel.mfcc.mean", "type": "real", "size": 13}, ...],
     "merge": {...},                                            # merge-time info (excluded, removed)
     "preprocessing": {"name": "basic", "steps": [             # fitted transforms, in order
         {"transfo": "enumerate", "params": {...}, "state": {"maps": {...}}}, ...]},
     "classifier": {"descriptors": [...], "featureNames": [...],  # SVM input order
                    "cleaned": [...], "a": ARRAY, "b": ARRAY,       # per-feature min-max
                    "svm": {"kernel": "RBF", "C": 3, "gamma": -5, ...},
                    "labelOrder": [...], "libsvm": "svm_type c_svc\\n..."},
     "training": {...}}

``ARRAY`` = ``{"ndarray": "<f4", "shape": [...], "data": base64}``. ``inputs`` are the
descriptors a record must hold (names as in records, raw types and sizes); other
descriptors are ignored. Loading a file whose ``format``/``version`` is unknown fails.
"""

import json
import math
import os

import numpy as np

from ..atomic import write_text
from ..errors import MirkitError, MissingDescriptorsError
from ..gaia.dataset import ENUM, REAL, STRING, Dataset, type_leaf
from ..gaia.preprocess import Chain, decode_array
from ..records import get_path, record_id
from . import libsvm_io

FORMAT = "mirkit-model"
VERSIONS = (1,)


def save_model(path, data):
    """Write model data atomically (compact JSON)."""
    write_text(path, json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n")


def read_model_data(path):
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise MirkitError(exc.strerror or str(exc), path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MirkitError(f"not a mirkit model file (invalid JSON: {exc})", path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MirkitError("not a mirkit model file (format is not 'mirkit-model')", path)
    if data.get("version") not in VERSIONS:
        raise MirkitError(f"unsupported mirkit model format version {data.get('version')!r} "
                          f"(this mirkit reads version {', '.join(map(str, VERSIONS))})", path)
    if data.get("kind") != "svm":
        raise MirkitError(f"unsupported model kind {data.get('kind')!r}", path)
    return data


class SvmModel:
    """A loaded mirkit SVM model (see :mod:`mirkit.modelio` for the interface)."""

    def __init__(self, data, path=None, name=None):
        self.data = data
        self.path = path
        try:
            self.class_name = data["className"]
            self.classes = list(data["classes"])
            self.inputs = [(d["name"], d["type"], int(d["size"])) for d in data["inputs"]]
            self.chain = Chain.from_data(data["preprocessing"]["steps"])
            clf = data["classifier"]
            self.descriptors = [(d["name"], d["type"], int(d["size"])) for d in clf["descriptors"]]
            self.a = decode_array(clf["a"]).astype(np.float32)
            self.b = decode_array(clf["b"]).astype(np.float32)
            self.is_enum = np.concatenate(
                [np.full(size, kind == ENUM) for _, kind, size in self.descriptors])
            self.svm = libsvm_io.model_from_text(clf["libsvm"], path)
        except (KeyError, TypeError, ValueError) as exc:
            raise MirkitError(f"corrupt mirkit model file: {type(exc).__name__}: {exc}", path) from None
        self.label_order = [int(v) for v in np.ctypeslib.as_array(self.svm.label,
                                                                    (self.svm.nr_class,))]
        if len(self.a) != len(self.is_enum):
            raise MirkitError("corrupt mirkit model file: feature count mismatch", path)
        self.name = name or (os.path.splitext(os.path.basename(path))[0] if path else self.class_name)

    # ---- input checking -------------------------------------------------------------------
    def _typed_inputs(self, record, source):
        missing, problems, typed = [], [], {}
        for name, kind, size in self.inputs:
            value = get_path(record, name, None)
            if value is None or isinstance(value, dict):
                missing.append(name)
                continue
            try:
                vkind, tvalue = type_leaf(name, value, source)
            except MirkitError as exc:
                problems.append(exc.reason)
                continue
            if vkind != kind:
                problems.append(f"descriptor {name} is {vkind}, the model expects {kind}")
            elif len(tvalue) != size:
                problems.append(f"descriptor {name} has {len(tvalue)} value(s), the model "
                                f"expects {size}")
            elif kind == REAL and not all(math.isfinite(v) for v in tvalue):
                problems.append(f"descriptor {name} holds NaN or Inf")
            else:
                typed[name] = tvalue
        if missing:
            raise MissingDescriptorsError(missing, source, self.name)
        if problems:
            raise MirkitError(f"model {self.name}: " + "; ".join(problems), source)
        return typed

    def _features(self, typed_points):
        ids = [str(i) for i in range(len(typed_points))]
        kinds = {name: kind for name, kind, _ in self.inputs}
        data = {}
        for name, kind, size in self.inputs:
            if kind == REAL:
                arr = np.empty((len(typed_points), size), dtype=np.float32)
            else:
                arr = np.empty((len(typed_points), size), dtype=object)
            for i, point in enumerate(typed_points):
                arr[i, :] = point[name]
            data[name] = arr
        ds = self.chain.apply(Dataset(ids, kinds, data))
        cols = []
        for name, kind, size in self.descriptors:
            if name not in ds.data or ds.kinds[name] == STRING:
                raise MirkitError(f"model {self.name}: preprocessing did not produce {name}")
            cols.append(ds.data[name].astype(np.float32))
        x = np.concatenate(cols, axis=1)
        y = np.where(self.is_enum, x, (x * self.a + self.b).astype(np.float32))
        return y.astype(np.float64)

    def _result(self, label, probs):
        # probs are in libsvm label order; reorder to class order
        by_class = [0.0] * len(self.classes)
        for pos, lab in enumerate(self.label_order):
            by_class[lab] = float(probs[pos])
        value = self.classes[int(label)]
        return {"value": value, "probability": by_class[int(label)],
                "all": {c: p for c, p in zip(self.classes, by_class)}}

    # ---- the model interface --------------------------------------------------------------
    def predict(self, record):
        source = record_id(record) if isinstance(record, dict) else None
        typed = self._typed_inputs(record, source or "record")
        X = self._features([typed])
        labels, probs = libsvm_io.predict_nodes(self.svm, libsvm_io.dense_nodes(X), probability=True)
        return self._result(labels[0], probs[0])

    def predict_many(self, records):
        out = [None] * len(records)
        good, typed = [], []
        for i, record in enumerate(records):
            source = (record_id(record) if isinstance(record, dict) else None) or f"record {i + 1}"
            try:
                typed.append(self._typed_inputs(record, source))
                good.append(i)
            except MirkitError as exc:
                out[i] = exc
        if good:
            X = self._features(typed)
            labels, probs = libsvm_io.predict_nodes(self.svm, libsvm_io.dense_nodes(X),
                                                    probability=True)
            for j, i in enumerate(good):
                out[i] = self._result(labels[j], probs[j])
        return out

    def describe(self):
        """A JSON-able summary (the full file minus bulky arrays and the SV text)."""
        d = self.data
        clf = d["classifier"]
        header = clf["libsvm"].split("\nSV\n")[0]
        steps = []
        for step in d["preprocessing"]["steps"]:
            state = step.get("state") or {}
            summary = {}
            for key, value in state.items():
                if isinstance(value, dict):
                    summary[key] = sorted(value)
                elif isinstance(value, list):
                    summary[key] = value
                else:
                    summary[key] = value
            steps.append({"transfo": step["transfo"], "params": step.get("params", {}),
                          "fitted": summary})
        return {
            "name": self.name, "path": self.path, "type": "mirkit svm model",
            "format": d["format"], "version": d["version"], "createdBy": d.get("createdBy"),
            "className": d["className"], "classes": d["classes"],
            "output": f"highlevel.{self.name}",
            "inputs": d["inputs"],
            "preprocessing": {"name": d["preprocessing"].get("name"), "steps": steps},
            "classifier": {"svm": clf["svm"], "cleaned": clf.get("cleaned", []),
                           "features": len(clf["featureNames"]),
                           "featureNames": clf["featureNames"],
                           "libsvmHeader": header.splitlines()},
            "training": d.get("training", {}),
            "merge": d.get("merge", {}),
        }


def load_model(path, **options):
    """Load a ``.model`` file (modelio's loader for the suffix)."""
    return SvmModel(read_model_data(path), path, options.get("name"))
