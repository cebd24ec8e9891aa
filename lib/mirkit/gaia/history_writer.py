"""Writing Gaia ``.history`` files (format version 102) from a plain-data chain description.

Use :func:`write_history` (or :func:`history_bytes` / :func:`build_history`). The description
is plain JSON-able data; every layout Gaia stores in the file (the input layout of each step, with
the enum maps) is derived here, so the caller only gives what was fitted::

    {
      "input": {                      # the raw input layout: every descriptor the records carry
        "real":   ["lowlevel.average_loudness", "lowlevel.mfcc.mean", ...],
        "string": ["tonal.key_key", "metadata.tags.title", ...]
      },                              # (names with or without the leading dot; all of them are
                                      #  variable-length, as in Gaia)
      "steps": [                      # in order; "type" is the Gaia analyzer name
        {"type": "remove",     "names": [...]},                # also "cleaner", "removevl"
        {"type": "fixlength",  "sizes": {"lowlevel.mfcc.mean": 13, "tonal.key_key": 1, ...}},
        {"type": "select",     "names": [...]},
        {"type": "enumerate",  "names": ["tonal.key_key", ...],
                               "maps": {"tonal.key_key": {"E": 0, "A#": 1, ...}, ...}},
        {"type": "normalize",  "coeffs": {"lowlevel.mfcc.mean": {"a": [...], "b": [...]}, ...},
                               "apply_clipping": false},
        {"type": "gaussianize","distribution": {"lowlevel.mfcc.mean": [[v0, v1, ...],  # dim 0
                                                                      [...], ...]}},   # sorted
        {"type": "pca",        "names": [...], "matrix": [[...], ...],      # rows x cols
                               "result_name": "pca"},                   # (optional)
        {"type": "addfield",   "string": ["highlevel.genre"], "real": []},
        {"type": "svmtrain",   "class_name": "highlevel.genre",
                               "classes": ["blu", "cla", ...],          # classMapping order
                               "descriptors": [...],                    # feature order
                               "model_text": "svm_type c_svc\\n...",      # libsvm text model
                               "probability": true},
        {"type": "select",     "names": ["highlevel.genre", "highlevel.genreProbability"]}
      ]
    }

Every step may also carry ``"analyzer_params"`` (stored for documentation, as Gaia does) and
``"info"``. In ``model_text`` the ``label`` line must hold indices into ``classes`` (Gaia's
convention). The sizes given to ``fixlength`` are the training sizes; a matrix descriptor is
``2 + rows*cols`` long (``[rows, cols, values...]``). The written file is parsed back and
compiled before it is stored, so an inconsistent description (or a chain mirkit could not
apply, e.g. one without ``svmtrain``) raises MirkitError and leaves no file behind.

Shortcuts: :func:`chain_from_model_data` gives the description of a mirkit ``.model``
(what ``gridsearch``/``retrain --history`` need), and :func:`chain_description` the one of an
existing ``.history`` file (its inverse: the bytes come out identical).
"""

import numpy as np

from ..atomic import write_bytes
from ..errors import MirkitError
from .history_format import (ENUM, MAGIC, REAL, STRING, FIXED, VARIABLE, History,
                             Transformation, parse_history)
from .history import HistoryModel, _make_layout, _spec
from .qdatastream import Writer

APPLIERS = {
    "remove": "removedesc", "removevl": "removedesc", "cleaner": "removedesc",
    "select": "selectdesc", "fixlength": "fixlengthapplier", "enumerate": "enumerateapplier",
    "normalize": "dotproduct", "gaussianize": "distribute", "addfield": "addfieldapplier",
    "pca": "matmult",
    "svmtrain": "svmpredict",
}
ALIASES = {"svm": "svmtrain", "svmpredict": "svmtrain"}


class StringList(list):
    """A list written as a QStringList even when empty."""


def _full(name):
    return name if name.startswith(".") else "." + name


def _write_layout(layout):
    w = Writer()
    # build the descriptor tree from the full names
    root = {}
    for d in layout.descs.values():
        node = root
        parts = d.name[1:].split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MirkitError(f"descriptor name clash at {d.name}")
        if parts[-1] in node:
            raise MirkitError(f"descriptor name clash at {d.name}")
        node[parts[-1]] = d

    def write_node(name, node):
        if isinstance(node, dict):
            w.qstring(name)
            w.i32(0)
            w.i32(VARIABLE)
            w.i32(0)
            w.i32(1)
            w.u32(len(node))
            for key in sorted(node):
                write_node(key, node[key])
        else:
            w.qstring(name)
            w.i32(node.type)
            w.i32(FIXED if node.fixed else VARIABLE)
            w.i32(node.begin)
            w.i32(node.end)
            w.u32(0)

    w.qstring("")
    w.i32(0)
    w.i32(VARIABLE)
    w.i32(-1)
    w.i32(-1)
    w.u32(len(root))
    for key in sorted(root):
        write_node(key, root[key])
    # enum maps, in Qt 4's descending key order
    w.u32(len(layout.enum2str))
    for name in sorted(layout.enum2str, reverse=True):
        w.qstring(name)
        inner = layout.enum2str[name]
        w.u32(len(inner))
        for code in sorted(inner, reverse=True):
            w.i32(code)
            w.qstring(inner[code])
    w.u32(len(layout.str2enum))
    for name in sorted(layout.str2enum, reverse=True):
        w.qstring(name)
        inner = layout.str2enum[name]
        w.u32(len(inner))
        for s in sorted(inner, reverse=True):
            w.qstring(s)
            w.i32(inner[s])
    return w.getvalue()


def _variant(w, value):
    if isinstance(value, StringList) or (isinstance(value, (list, tuple)) and not value):
        w.u32(11)
        w.u8(0)
        w.qstringlist(list(value))
    elif isinstance(value, dict):
        w.u32(8)
        w.u8(0)
        w.u32(len(value))
        for key in sorted(value, reverse=True):
            w.qstring(str(key))
            _variant(w, value[key])
    elif isinstance(value, (list, tuple)) and not all(isinstance(v, str) for v in value):
        w.u32(9)
        w.u8(0)
        w.u32(len(value))
        for v in value:
            _variant(w, v)
    else:
        w.qvariant(value)


def serialize_history(history):
    """Bytes of a format-102 ``.history`` file for a :class:`History` (layouts included)."""
    w = Writer()
    w.u32(MAGIC)
    w.i32(102)
    w.u32(len(history.transformations))
    for t in history.transformations:
        w.qstring(t.name or "")
        w.qstring(t.analyzer)
        w.qstring(t.applier)
        _variant(w, t.analyzer_params or {})
        _variant(w, t.params or {})
        _variant(w, t.info or {})
        _variant(w, _write_layout(t.layout))
    return w.getvalue()


def _floats(values, what):
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise MirkitError(f"{what} must be a list of numbers") from None
    return [float(v) for v in arr]


def build_history(description):
    """Plain-data chain description -> :class:`History` with every layout derived."""
    if not isinstance(description, dict) or "steps" not in description:
        raise MirkitError("chain description must be a map with 'input' and 'steps'")
    inp = description.get("input") or {}
    spec = {}
    for key, dtype in (("real", REAL), ("string", STRING)):
        for name in inp.get(key, []):
            spec[_full(name)] = (dtype, False, None)
    layout = _make_layout(spec)
    transformations = []
    for i, step in enumerate(description["steps"]):
        kind = ALIASES.get(step.get("type"), step.get("type"))
        if kind not in APPLIERS:
            raise MirkitError(f"step {i}: unknown transformation type {step.get('type')!r}")
        spec = _spec(layout)
        params, info = {}, dict(step.get("info") or {})
        aparams = dict(step.get("analyzer_params") or {})
        e2s, s2e = layout.enum2str, layout.str2enum
        if kind in ("remove", "removevl", "cleaner", "select"):
            names = [_full(n) for n in step.get("names", [])]
            params = {"descriptorNames": StringList(names)}
            if kind == "select":
                keep = set(names)
                new = {k: v for k, v in spec.items() if k in keep}
            else:
                drop = set(names)
                new = {k: v for k, v in spec.items() if k not in drop}
            if kind in ("remove", "select") and "descriptorNames" not in aparams:
                aparams["descriptorNames"] = StringList(n[1:] for n in names)
        elif kind == "fixlength":
            sizes = {_full(k): int(v) for k, v in (step.get("sizes") or {}).items()}
            params = {"descriptorNames": StringList(sorted(sizes))}
            new = dict(spec)
            for n, size in sizes.items():
                if n not in spec:
                    raise MirkitError(f"step {i} (fixlength): {n[1:]} is not in the layout")
                new[n] = (spec[n][0], True, size)
        elif kind == "enumerate":
            names = [_full(n) for n in step.get("names", [])]
            maps = {_full(k): {str(s): int(c) for s, c in v.items()}
                    for k, v in (step.get("maps") or {}).items()}
            params = {"descriptorNames": StringList(names)}
            aparams.setdefault("descriptorNames", StringList(n[1:] for n in names))
            new = dict(spec)
            for n in names:
                if n not in spec or spec[n][0] != STRING:
                    raise MirkitError(f"step {i} (enumerate): {n[1:]} is not a string descriptor")
                new[n] = (ENUM,) + spec[n][1:]
            s2e = dict(s2e)
            e2s = dict(e2s)
            for n in names:
                s2e[n] = dict(maps.get(n, {}))
                e2s[n] = {c: s for s, c in s2e[n].items()}
        elif kind == "normalize":
            coeffs = {}
            for n, c in (step.get("coeffs") or {}).items():
                coeffs[_full(n)] = {"a": _floats(c["a"], f"step {i} coefficient a of {n}"),
                                    "b": _floats(c["b"], f"step {i} coefficient b of {n}")}
            params = {"applyClipping": bool(step.get("apply_clipping", False)), "coeffs": coeffs}
            new = spec
        elif kind == "gaussianize":
            dist = {}
            for n, dims in (step.get("distribution") or {}).items():
                for d, values in enumerate(dims):
                    arr = np.sort(np.asarray(values, dtype=np.float32))
                    dist[f"{_full(n)}[{d}]"] = arr.astype("<f4").tobytes()
            params = {"distribution": dist}
            new = spec
        elif kind == "pca":
            names = [_full(n) for n in step.get("names", [])]
            m = np.asarray(step["matrix"], dtype=np.float64)
            if m.ndim != 2:
                raise MirkitError(f"step {i} (pca): matrix must be rows x cols")
            params = {"descriptorNames": StringList(names),
                      "matrix": [int(m.shape[0]), int(m.shape[1])] +
                                [float(v) for v in m.ravel()]}
            result = step.get("result_name")
            if result:
                params["resultName"] = _full(result)[1:]
            else:
                result = f"{kind} {m.shape[0]} ({', '.join(names)})".replace(".", "_")
            new = {_full(result): (REAL, True, int(m.shape[0]))}
        elif kind == "addfield":
            strings = [_full(n) for n in step.get("string", [])]
            reals = [_full(n) for n in step.get("real", [])]
            params = {}
            if strings:
                params["string"] = strings[0][1:] if len(strings) == 1 else \
                    StringList(n[1:] for n in strings)
            if reals:
                params["real"] = StringList(n[1:] for n in reals)
            aparams = aparams or dict(params)
            new = dict(spec)
            for n in strings:
                new[n] = (STRING, False, None)
            for n in reals:
                new[n] = (REAL, False, None)
        else:  # svmtrain
            cname = step["class_name"]
            text = step["model_text"]
            if isinstance(text, str):
                text = text.encode("ascii")
            prob = bool(step.get("probability", True))
            params = {"className": cname, "classMapping": StringList(step["classes"]),
                      "descriptorNames": StringList(_full(n) for n in step["descriptors"]),
                      "modelData": bytes(text), "probability": prob}
            aparams.setdefault("className", cname)
            new = dict(spec)
            new.setdefault(_full(cname), (STRING, False, None))
            if prob:
                new[_full(cname) + "Probability"] = (REAL, False, None)
        transformations.append(Transformation("", kind, APPLIERS[kind], aparams, params, info,
                                              layout))
        layout = _make_layout(new, e2s, s2e)
    return History(102, transformations, None, None)


def history_bytes(description):
    """Bytes of the ``.history`` file for a chain description (checked by parsing it back)."""
    data = serialize_history(build_history(description))
    model = HistoryModel(parse_history(data, "<written history>"), "check")
    if model.unusable:
        raise MirkitError(f"the chain cannot be applied: {model.unusable}")
    return data


def write_history(path, chain_description):
    """Write a Gaia ``.history`` file (format 102) for a fitted chain; see the module doc."""
    data = history_bytes(chain_description)
    write_bytes(path, data)
    return path


def chain_description(history):
    """The plain-data description of a parsed format-102 :class:`History` (inverse of
    :func:`build_history`): ``build_history(chain_description(h))`` serialises to the same
    bytes as the file ``h`` was read from."""
    if history.version < 102:
        raise MirkitError("only format-102 histories can be described as a chain")
    ts = history.transformations
    if not ts:
        return {"input": {"real": [], "string": []}, "steps": []}
    inp = ts[0].layout
    desc = {"input": {"real": [d.name[1:] for d in inp.descs.values() if d.type == REAL],
                      "string": [d.name[1:] for d in inp.descs.values() if d.type != REAL]},
            "steps": []}
    for i, t in enumerate(ts):
        p = t.params
        nxt = ts[i + 1].layout if i + 1 < len(ts) else None
        step = {"type": t.analyzer, "analyzer_params": t.analyzer_params}
        if t.info:
            step["info"] = t.info
        names = p.get("descriptorNames", [])
        names = [names] if isinstance(names, str) else list(names)
        if t.applier in ("removedesc", "selectdesc"):
            step["names"] = [n[1:] if n.startswith(".") else n for n in names]
        elif t.applier == "fixlengthapplier":
            if nxt is None:
                raise MirkitError("fixlength as the last step: its sizes are not recorded")
            step["sizes"] = {n[1:]: nxt.descs[n].size for n in names}
        elif t.applier == "enumerateapplier":
            step["names"] = [n[1:] for n in names]
            maps = nxt.str2enum if nxt is not None else {}
            step["maps"] = {n[1:]: dict(maps.get(n, {})) for n in names}
        elif t.applier == "dotproduct":
            step["coeffs"] = {n[1:]: {"a": c["a"], "b": c["b"]} for n, c in p["coeffs"].items()}
            step["apply_clipping"] = bool(p.get("applyClipping", False))
        elif t.applier == "distribute":
            dist = {}
            for key, raw in p["distribution"].items():
                name, _, dim = key.rpartition("[")
                dist.setdefault(name[1:], {})[int(dim[:-1])] = \
                    np.frombuffer(raw, dtype="<f4").tolist()
            step["distribution"] = {n: [dims[d] for d in sorted(dims)]
                                    for n, dims in dist.items()}
        elif t.applier == "matmult":
            rows, cols = p["matrix"][:2]
            step["names"] = [n[1:] if n.startswith(".") else n for n in names]
            step["matrix"] = np.asarray(p["matrix"][2:]).reshape(rows, cols).tolist()
            if p.get("resultName"):
                step["result_name"] = p["resultName"]
        elif t.applier == "addfieldapplier":
            for key in ("string", "real"):
                value = p.get(key, [])
                step[key] = [value] if isinstance(value, str) else list(value)
        elif t.applier == "svmpredict":
            step.update({"class_name": p["className"], "classes": list(p["classMapping"]),
                         "descriptors": [n[1:] for n in p["descriptorNames"]],
                         "model_text": p["modelData"].decode("ascii"),
                         "probability": bool(p.get("probability", False))})
        else:
            raise MirkitError(f"cannot describe applier {t.applier}")
        desc["steps"].append(step)
    return desc


def chain_from_model_data(data):
    """Chain description of a mirkit ``.model`` file (``format: mirkit-model``, version 1),
    for :func:`write_history`: ``write_history(path, chain_from_model_data(model_data))``.

    The chain is the one Gaia builds for a retrained model (gaia.md §5.7): ``fixlength`` of
    the model's inputs, the fitted preprocessing steps (remove/select/cleaner/enumerate/
    normalize/gaussianize), ``select *``, the classifier's ``cleaner``, the per-dimension
    ``normalize`` (the model's ``a``/``b``; enum dimensions are not scaled), ``addfield``,
    ``svmtrain`` and the final ``select``. The input layout is the model's ``inputs`` (the
    descriptors it uses), not the whole training layout, so GaiaTransform asks only for those.
    The class name gets a ``highlevel.`` prefix when it has none, as in Essentia's models.
    """
    from .preprocess import decode_array, decode_state
    if not isinstance(data, dict) or data.get("format") != "mirkit-model" \
            or data.get("version") != 1:
        raise MirkitError("not mirkit model data (format mirkit-model, version 1)")
    try:
        inputs = [(d["name"], d["type"], int(d["size"])) for d in data["inputs"]]
        clf = data["classifier"]
        descs = [(d["name"], d["type"], int(d["size"])) for d in clf["descriptors"]]
        a = np.asarray(decode_array(clf["a"]), dtype=np.float32).ravel()
        b = np.asarray(decode_array(clf["b"]), dtype=np.float32).ravel()
        classes = list(data["classes"])
        text = clf["libsvm"]
        prep = (data.get("preprocessing") or {}).get("steps") or []
    except (KeyError, TypeError, ValueError) as exc:
        raise MirkitError(f"incomplete mirkit model data ({exc})") from None
    current = {name: kind for name, kind, _ in inputs}
    steps = [{"type": "fixlength", "sizes": {name: size for name, _, size in inputs},
              "analyzer_params": {}}]
    for step in prep:
        kind = step.get("transfo")
        state = decode_state(step.get("state")) or {}
        params = step.get("params") or {}
        if kind in ("remove", "cleaner", "select"):
            names = [n for n in state.get("names", []) if n in current]
            if kind == "select":
                current = {n: current[n] for n in names}
            else:
                for n in names:
                    current.pop(n)
            steps.append({"type": kind, "names": names, "analyzer_params": params})
        elif kind == "enumerate":
            maps = {n: {s: i for i, s in enumerate(strings)}
                    for n, strings in state.get("maps", {}).items()
                    if current.get(n) == "string"}
            for n in maps:
                current[n] = "enum"
            steps.append({"type": "enumerate", "names": sorted(maps), "maps": maps,
                          "analyzer_params": params})
        elif kind == "normalize":
            coeffs = {n: {"a": np.asarray(ab["a"], np.float32).ravel().tolist(),
                          "b": np.asarray(ab["b"], np.float32).ravel().tolist()}
                      for n, ab in state.get("coeffs", {}).items() if current.get(n) == "real"}
            steps.append({"type": "normalize", "coeffs": coeffs, "analyzer_params": params,
                          "apply_clipping": bool(state.get("clip", False))})
        elif kind == "gaussianize":
            dist = {n: np.asarray(d, np.float32).tolist()
                    for n, d in state.get("distributions", {}).items()
                    if current.get(n) == "real"}
            steps.append({"type": "gaussianize", "distribution": dist, "analyzer_params": params})
        else:
            raise MirkitError(f"cannot express preprocessing step {kind!r} as a Gaia history")
    steps.append({"type": "select", "names": sorted(current),
                  "analyzer_params": {"descriptorNames": ["*"], "except": []}})
    cleaned = [n for n in clf.get("cleaned", []) if n in current]
    for n in cleaned:
        current.pop(n)
    steps.append({"type": "cleaner", "names": cleaned, "analyzer_params": {}})
    coeffs, pos = {}, 0
    for name, kind, size in descs:
        if current.get(name) == "real":
            coeffs[name] = {"a": a[pos:pos + size].tolist(), "b": b[pos:pos + size].tolist()}
        pos += size
    if pos != a.size or pos != b.size:
        raise MirkitError("mirkit model data: a/b do not match the classifier descriptors")
    steps.append({"type": "normalize", "coeffs": coeffs,
                  "analyzer_params": {"independent": 1}})
    cname = str(data["className"])
    hl = cname if cname.startswith("highlevel.") else "highlevel." + cname
    steps.append({"type": "addfield", "string": [hl], "analyzer_params": {"string": hl}})
    svm = clf.get("svm") or {}
    steps.append({"type": "svmtrain", "class_name": hl, "classes": classes,
                  "descriptors": [name for name, _, _ in descs], "model_text": text,
                  "probability": True,
                  "analyzer_params": {k: v for k, v in (
                      ("className", hl), ("type", svm.get("type")),
                      ("kernel", svm.get("kernel")), ("probability", 1),
                      ("c", 2.0 ** svm["C"] if "C" in svm else None),
                      ("gamma", 2.0 ** svm["gamma"] if "gamma" in svm else None))
                      if v is not None}})
    steps.append({"type": "select", "names": [hl, hl + "Probability"],
                  "analyzer_params": {"descriptorNames": hl[len("."):] + "*"
                                      if hl.startswith(".") else hl + "*"}})
    return {"input": {"real": [n for n, k, _ in inputs if k == "real"],
                      "string": [n for n, k, _ in inputs if k != "real"]},
            "steps": steps}
