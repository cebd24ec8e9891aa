"""Running Gaia ``.history`` models (Essentia's pre-trained SVM models) without Gaia.

``load_model(path)`` parses the file (:mod:`mirkit.gaia.history_format`), checks that every
transformation record is consistent with the one before it, and compiles the chain into a few
vectorised numpy operations:

1. *input*: take every descriptor of the input layout from the record (as Essentia's
   ``GaiaTransform`` does: a scalar -> ``[v]``, a vector, a matrix -> ``[rows, cols, values...]``;
   a string or list of strings; ``metadata.version*`` strings are not needed). Every missing
   descriptor is reported at once (:class:`~mirkit.errors.MissingDescriptorsError`).
2. the name-level steps before ``fixlength`` (``removedesc``, ``selectdesc``, ``addfield``,
   ``enumerate``) only decide which descriptors survive;
3. ``fixlength``: the surviving Real values become one float32 row (Gaia's fixed Real region);
   sizes are fixed by the first record the model instance sees, as in Gaia;
4. the value steps (``dotproduct``: ``float32(float32(x*a)+b)``; ``distribute``: erfinv of the
   rank among the stored training values) are applied to a matrix of records at once;
5. ``svmpredict``: dense float64 features in the stored order (enum codes from the stored maps;
   an unseen string gets the next free code, remembered by the instance), decision values from
   libsvm-official, probabilities computed with LIBSVM 2.89's method
   (:mod:`mirkit.gaia.history_svm`).

A model object is one ``GaiaTransform`` instance: fixlength sizes and unseen enum codes persist
across records (history-format.md §10); :meth:`HistoryModel.reset` forgets them.
"""

import functools
import math
import os
from itertools import chain
from operator import itemgetter

import numpy as np

from ..errors import MirkitError, MissingDescriptorsError
from ..records import record_id
from .history_format import (ENUM, REAL, STRING, TYPE_NAMES, Desc, HistoryFormatError, Layout,
                             check_regions, read_history)
from .history_svm import LibsvmModel, probabilities_289, probabilities_289_batch, vote

NAME_STEPS = ("removedesc", "selectdesc", "addfieldapplier", "enumerateapplier")
SUPPORTED = NAME_STEPS + ("fixlengthapplier", "dotproduct", "distribute", "matmult",
                          "svmpredict")
_MISSING = object()
MAX_DIMS = 1_000_000


# ------------------------------------------------------------------------------------------
# erfinv in double precision (no scipy in lib/): initial guess + Newton steps on math.erf
# ------------------------------------------------------------------------------------------
def erfinv(y):
    """Inverse error function of a double in (-1, 1), to double precision."""
    if not -1.0 < y < 1.0:
        if y == 1.0:
            return math.inf
        if y == -1.0:
            return -math.inf
        return math.nan
    if y == 0.0:
        return 0.0
    # Giles (2010) single-precision approximation as the starting point
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 5.0:
        w -= 2.5
        p = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                  -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
            p = c + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                  -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
            p = c + p * w
    x = p * y
    k = 2.0 / math.sqrt(math.pi)
    for _ in range(4):   # Newton-Halley steps
        err = math.erf(x) - y
        deriv = k * math.exp(-x * x)
        if deriv == 0.0:
            break
        step = err / deriv
        x -= step / (1.0 + x * step)
        if abs(step) <= 1e-17 * abs(x):
            break
    return x


@functools.lru_cache(maxsize=32)
def gaussianize_table(n):
    """float32 output of ``distribute`` for every rank 0..n of a table of n training values."""
    p = np.arange(n + 1, dtype=np.float32) / np.float32(n)     # float32 division
    out = np.array([erfinv(2.0 * v - 1.0) for v in p.astype(np.float64).tolist()],
                   dtype=np.float64).astype(np.float32)
    out.flags.writeable = False
    return out


# ------------------------------------------------------------------------------------------
# symbolic layouts
# ------------------------------------------------------------------------------------------
def _make_layout(spec, enum2str=None, str2enum=None):
    """Layout from {name: (type, fixed, size)}: slots assigned per region in name order."""
    next_slot = {}
    descs = {}
    for name in sorted(spec):
        dtype, fixed, size = spec[name]
        key = (dtype, fixed)
        begin = next_slot.get(key, 0)
        end = begin + (size if fixed else 1)
        next_slot[key] = end
        descs[name] = Desc(name, dtype, fixed, begin, end)
    return Layout(descs, enum2str or {}, str2enum or {})


def _spec(layout):
    return {d.name: (d.type, d.fixed, d.size) for d in layout.descs.values()}


def _full(name):
    return name if name.startswith(".") else "." + name


def _names_param(params, key, source, what):
    value = params.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HistoryFormatError(f"corrupt history: {what} parameter {key} is not a list of "
                                 "names", source)
    return [_full(v) for v in value]


def _layout_diff(expected, got):
    exp = {d.name: d for d in expected.descs.values()}
    have = {d.name: d for d in got.descs.values()}
    names = sorted(set(exp) ^ set(have))
    for name in sorted(set(exp) & set(have)):
        a, b = exp[name], have[name]
        if (a.type, a.fixed, a.begin, a.end) != (b.type, b.fixed, b.begin, b.end):
            names.append(name)
    return names


# ------------------------------------------------------------------------------------------
# compiled value steps (operate on a float32 matrix: one row per record)
# ------------------------------------------------------------------------------------------
class _Gather:
    def __init__(self, cols, strings):
        self.cols = cols
        self.strings = strings

    def __call__(self, real, strs):
        if self.cols is not None:
            real = real[:, self.cols]
        return real, {k: strs[k] for k in self.strings}


class _DotProduct:
    def __init__(self, cols, a, b, clip):
        self.cols, self.a, self.b, self.clip = cols, a, b, clip

    def __call__(self, real, strs):
        y = real[:, self.cols] * self.a
        y += self.b
        if self.clip:
            y = np.maximum(np.minimum(y, np.float32(1)), np.float32(0))
        real[:, self.cols] = y
        return real, strs


class _Distribute:
    def __init__(self, groups):
        # groups: list of (cols, tables (m x n float32, rows sorted), n, lookup of n+1 float32)
        self.groups = []
        for cols, tables, n, lut in groups:
            base = (np.arange(tables.shape[0], dtype=np.intp) * n)[None, :]
            top = 1 << (n.bit_length() - 1)
            self.groups.append((cols, tables, tables.ravel(), base, n, top, lut))

    def __call__(self, real, strs):
        for cols, tables, flat, base, n, top, lut in self.groups:
            x = real[:, cols]
            # rank = number of table values <= x (searchsorted right), by a vectorised
            # binary search over all dimensions at once (tables are sorted)
            rank = np.zeros(x.shape, dtype=np.intp)
            k = top
            while k:
                cand = rank + k
                ok = cand <= n
                idx = base + np.minimum(cand, n) - 1
                ok &= flat[idx] <= x
                rank = np.where(ok, cand, rank)
                k >>= 1
            np.minimum(rank, n - 1, out=rank)
            rank[x < tables[:, 0]] = 0
            rank[x > tables[:, -1]] = n
            rank[np.isnan(x)] = n - 1
            outliers = int(0.00001 * n)
            np.clip(rank, outliers, n - outliers, out=rank)
            rank[rank == 0] = 1
            rank[rank == n] = n - 1
            real[:, cols] = lut[rank]
        return real, strs


class _MatMult:
    """y = M x in float32, each row summed in column order (sequential float32 sum).

    GaiaTransform's results differ from this in the last few float32 bits (its summation
    order was not reproduced); only chains with ``pca`` are affected, and no shipped model
    applies one (only the format-100 ``gaia_2_0_pca.hist`` has it)."""

    def __init__(self, cols, matrix):
        self.cols, self.matrix = cols, matrix

    def __call__(self, real, strs):
        x = real[:, self.cols]
        out = np.empty((x.shape[0], self.matrix.shape[0]), dtype=np.float32)
        for s in range(0, x.shape[0], 256):
            prod = x[s:s + 256, None, :] * self.matrix[None, :, :]
            out[s:s + 256] = np.cumsum(prod, axis=2, dtype=np.float32)[:, :, -1]
        return out, {}


class _Svm:
    def __init__(self, t, layout, source):
        p = t.params
        self.class_name = p.get("className")
        self.classes = p.get("classMapping")
        names = p.get("descriptorNames")
        model_data = p.get("modelData")
        if not isinstance(self.class_name, str) or not isinstance(self.classes, list) \
                or not all(isinstance(c, str) for c in self.classes) \
                or not isinstance(names, list) or not all(isinstance(n, str) for n in names) \
                or not isinstance(model_data, bytes):
            raise HistoryFormatError("corrupt history: svmpredict parameters are incomplete",
                                     source)
        self.probability = bool(p.get("probability", False))
        self.names = [_full(n) for n in names]
        self.libsvm = LibsvmModel(model_data, source)
        labels = self.libsvm.labels
        if sorted(labels) != list(range(len(self.classes))):
            raise HistoryFormatError("corrupt history: the libsvm labels do not match the "
                                     f"{len(self.classes)} classes of classMapping", source)
        if self.probability and self.libsvm.prob_a is None:
            raise HistoryFormatError("corrupt history: probability model without probA/probB",
                                     source)
        self.label_pos = [labels.index(i) for i in range(len(self.classes))]
        real_cols, real_pos, enums = [], [], []
        pos = 0
        for name in self.names:
            d = layout.descs.get(name)
            if d is None:
                raise HistoryFormatError(f"corrupt history: SVM descriptor {name} is not in the "
                                         "layout", source)
            if not d.fixed or d.type == STRING:
                raise HistoryFormatError(f"unsupported history: SVM descriptor {name} is "
                                         f"{'a string' if d.type == STRING else 'variable-length'}",
                                         source)
            if d.type == REAL:
                real_cols.extend(range(d.begin, d.end))
                real_pos.extend(range(pos, pos + d.size))
            else:
                enums.append((name, pos, d.size, dict(layout.str2enum.get(name, {}))))
            pos += d.size
        self.dims = pos
        self.real_cols = np.asarray(real_cols, dtype=np.intp)
        self.real_pos = np.asarray(real_pos, dtype=np.intp)
        self.enums = enums
        self.unseen = {}
        self.fresh = False

    def reset(self):
        self.unseen = {}

    def code(self, name, training, s):
        if s in training:
            return training[s]
        seen = self.unseen.setdefault(name, {})
        if s not in seen:
            seen[s] = len(training) + len(seen)
        return seen[s]

    def predict_rows(self, real, strs):
        n = real.shape[0]
        x = np.zeros((n, self.dims), dtype=np.float64)
        x[:, self.real_pos] = real[:, self.real_cols]
        k = self.libsvm.nr_class
        decs = []
        for i in range(n):
            if self.fresh:
                self.unseen = {}
            for name, pos, size, training in self.enums:
                values = strs[name][i]
                for j in range(size):
                    x[i, pos + j] = self.code(name, training, values[j])
            decs.append(list(self.libsvm.decision_values(x[i])))
        out = []
        if not self.probability:
            labels, classes = self.libsvm.labels, self.classes
            winners = [vote(decs[0], k)] if n == 1 else _votes(decs, k)
            for w in winners:
                out.append({"value": classes[labels[w]], "probability": None, "all": {}})
            return out
        a, b = self.libsvm.prob_a, self.libsvm.prob_b
        if n == 1:
            ests = [probabilities_289(decs[0], a, b, k)]
        else:
            ests = probabilities_289_batch(decs, a, b, k).tolist()
        for est in ests:
            best = 0
            for j in range(1, k):
                if est[j] > est[best]:
                    best = j
            label = self.libsvm.labels[best]
            probs = [float(np.float32(est[p])) for p in self.label_pos]
            out.append({"value": self.classes[label], "probability": probs[label],
                        "all": dict(zip(self.classes, probs))})
        return out


# ------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------
class HistoryModel:
    """A Gaia history run like one Essentia ``GaiaTransform`` instance."""

    kind = "gaia-history"

    def __init__(self, history, name, path=None, fresh=False, lenient=False):
        self.history = history
        self.name = name
        self.path = path
        self.fresh = bool(fresh)     # True: every record as with a new GaiaTransform
        self.lenient = bool(lenient)  # True: descriptors the SVM never sees may be absent
        self._matmult_inputs = set()
        self.source = history.source
        self.unusable = None
        self.svm = None
        self._fix_sizes = None
        try:
            self._compile()
        except _Unusable as exc:
            self.unusable = str(exc)

    # -- compilation ----------------------------------------------------------------------
    def _compile(self):
        h, src = self.history, self.source
        ts = h.transformations
        if h.version < 102:
            if ts:
                raise _Unusable(f"Gaia history format {h.version} with a non-empty chain: "
                                "Gaia >= 2.3 (and Essentia) refuse to apply it")
            raise _Unusable("empty chain")
        if not ts:
            raise _Unusable("empty chain: nothing to apply")
        self.input_layout = ts[0].layout
        layout = ts[0].layout
        stage = "names"          # names -> values -> done
        self._added = {}         # name -> default value, for fields added before fixlength
        self._ops = []
        fix_step = None
        for i, t in enumerate(ts):
            if i and _layout_diff(t.layout, layout):
                diff = _layout_diff(t.layout, layout)
                raise HistoryFormatError(
                    f"corrupt history: the layout stored in transformation {i} ({t.analyzer}) "
                    f"does not follow from the previous one ({', '.join(diff[:5])}"
                    f"{', ...' if len(diff) > 5 else ''})", src)
            layout = t.layout   # carries the training enum maps
            nxt = ts[i + 1].layout if i + 1 < len(ts) else None
            applier = t.applier.lower()
            if applier not in SUPPORTED:
                raise _Unusable(f"transformation {i} uses applier {t.applier!r}, which mirkit "
                                "does not implement")
            if stage == "names" and applier not in NAME_STEPS + ("fixlengthapplier",):
                raise _Unusable(f"transformation {i} ({t.applier}) comes before fixlength; "
                                "mirkit does not support that")
            out, op = self._compile_step(i, t, applier, layout, nxt, stage)
            if stage == "names" and applier == "fixlengthapplier":
                stage = "values"
                fix_step = (layout, out, t)
            elif stage == "values" and op is not None:
                self._ops.append(op)
            if applier == "svmpredict":
                if stage != "values":
                    raise _Unusable("the SVM step comes before fixlength")
                if self.svm is not None:
                    raise _Unusable("more than one SVM step")
                self.svm = op
                self._ops.pop()
                stage = "done"
            layout = out
        if fix_step is None:
            raise _Unusable("the chain has no fixlength step")
        self._compile_input(fix_step)
        if self.svm is None:
            raise _Unusable("the chain has no SVM (svmtrain) step, so it is not a classifier")
        self.svm.fresh = self.fresh

    def _compile_step(self, i, t, applier, layout, nxt, stage):
        src = self.source
        spec = _spec(layout)
        p = t.params
        what = f"transformation {i} ({t.analyzer})"
        op = None
        if applier in ("removedesc", "selectdesc"):
            names = _names_param(p, "descriptorNames", src, what)
            missing = [n for n in names if n not in spec]
            if missing:
                raise HistoryFormatError(f"corrupt history: {what} names descriptor(s) not in "
                                         f"its layout: {', '.join(missing[:5])}", src)
            if applier == "removedesc":
                drop = set(names)
                new = {k: v for k, v in spec.items() if k not in drop}
            else:
                keep = set(names)
                new = {k: v for k, v in spec.items() if k in keep}
            out = _make_layout(new, layout.enum2str, layout.str2enum)
            if stage == "values":
                cols = [c for d in out.descs.values() if d.type == REAL and d.fixed
                        for c in range(layout.descs[d.name].begin, layout.descs[d.name].end)]
                ncols = sum(d.size for d in layout.descs.values() if d.type == REAL and d.fixed)
                cols = None if cols == list(range(ncols)) else np.asarray(cols, dtype=np.intp)
                strings = [d.name for d in out.descs.values() if d.type != REAL and d.fixed]
                op = _Gather(cols, strings)
        elif applier == "enumerateapplier":
            names = _names_param(p, "descriptorNames", src, what)
            new = dict(spec)
            for n in names:
                if n not in spec or spec[n][0] not in (STRING, ENUM):
                    raise HistoryFormatError(f"corrupt history: {what} enumerates {n}, which is "
                                             "not a string descriptor of its layout", src)
                new[n] = (ENUM,) + spec[n][1:]
            enum2str = (nxt.enum2str if nxt is not None else layout.enum2str)
            str2enum = (nxt.str2enum if nxt is not None else layout.str2enum)
            out = _make_layout(new, enum2str, str2enum)
        elif applier == "addfieldapplier":
            extra = set(p) - {"string", "real"}
            if any(p[k] for k in extra):
                raise _Unusable(f"{what}: addfield parameters {sorted(extra)} are not supported")
            new = dict(spec)
            for key, dtype, default in (("string", STRING, ("",)), ("real", REAL, [0.0])):
                for n in _names_param(p, key, src, what):
                    if n in new:
                        raise HistoryFormatError(f"corrupt history: {what} adds {n}, which "
                                                 "already exists", src)
                    new[n] = (dtype, False, None)
                    if stage == "names":
                        self._added[n] = default
            out = _make_layout(new, layout.enum2str, layout.str2enum)
        elif applier == "fixlengthapplier":
            names = _names_param(p, "descriptorNames", src, what)
            new = dict(spec)
            for n in names:
                if n not in spec:
                    raise HistoryFormatError(f"corrupt history: {what} names {n}, which is not "
                                             "in its layout", src)
                size = None
                if nxt is not None and n in nxt.descs and nxt.descs[n].fixed:
                    size = nxt.descs[n].size
                if size is None:
                    raise _Unusable(f"{what}: the size of {n} is not recorded in the file")
                new[n] = (spec[n][0], True, size)
            if stage != "names" and any(not spec[n][1] for n in names):
                raise _Unusable(f"{what}: a second fixlength step is not supported")
            out = _make_layout(new, layout.enum2str, layout.str2enum)
            check_regions(out.descs, src, "derived layout")
        elif applier == "dotproduct":
            coeffs = p.get("coeffs")
            if not isinstance(coeffs, dict):
                raise HistoryFormatError(f"corrupt history: {what} has no coefficient map", src)
            cols, a_all, b_all = [], [], []
            for n in sorted(coeffs):
                d = layout.descs.get(n)
                c = coeffs[n]
                if d is None or d.type != REAL or not d.fixed:
                    if stage == "values":
                        raise HistoryFormatError(f"corrupt history: {what} has coefficients for "
                                                 f"{n}, not a fixed-length real descriptor", src)
                    continue
                if not isinstance(c, dict) or not _is_numbers(c.get("a")) \
                        or not _is_numbers(c.get("b")) \
                        or not len(c["a"]) == len(c["b"]) == d.size:
                    raise HistoryFormatError(f"corrupt history: {what} coefficients of {n} do "
                                             "not match its size", src)
                cols.extend(range(d.begin, d.end))
                a_all.extend(c["a"])
                b_all.extend(c["b"])
            out = layout
            with np.errstate(over="ignore", invalid="ignore"):
                op = _DotProduct(np.asarray(cols, dtype=np.intp),
                                 np.asarray(a_all, dtype=np.float64).astype(np.float32),
                                 np.asarray(b_all, dtype=np.float64).astype(np.float32),
                                 bool(p.get("applyClipping", False)))
        elif applier == "distribute":
            dist = p.get("distribution")
            if not isinstance(dist, dict):
                raise HistoryFormatError(f"corrupt history: {what} has no distribution map", src)
            by_n = {}
            for key, raw in dist.items():
                name, sep, rest = key.rpartition("[")
                d = layout.descs.get(name)
                if not sep or not rest.endswith("]") or not rest[:-1].isdigit() or d is None \
                        or d.type != REAL or not d.fixed or int(rest[:-1]) >= d.size:
                    raise HistoryFormatError(f"corrupt history: {what} has a distribution for "
                                             f"{key[:80]!r}, not a dimension of its layout", src)
                if not isinstance(raw, bytes) or not raw or len(raw) % 4:
                    raise HistoryFormatError(f"corrupt history: {what} distribution of {key} is "
                                             "not an array of float32 values", src)
                table = np.frombuffer(raw, dtype="<f4").astype(np.float32)
                by_n.setdefault(table.size, []).append((d.begin + int(rest[:-1]), table))
            groups = []
            for n, items in sorted(by_n.items()):
                items.sort(key=lambda it: it[0])
                cols = np.asarray([c for c, _ in items], dtype=np.intp)
                if len(set(cols.tolist())) != len(cols):
                    raise HistoryFormatError(f"corrupt history: {what} has two distributions "
                                             "for one dimension", src)
                groups.append((cols, np.stack([t for _, t in items]), n, gaussianize_table(n)))
            out = layout
            op = _Distribute(groups)
        elif applier == "matmult":
            names = _names_param(p, "descriptorNames", src, what)
            matrix = p.get("matrix")
            if not isinstance(matrix, list) or len(matrix) < 2 \
                    or not all(isinstance(v, int) and not isinstance(v, bool)
                               for v in matrix[:2]) \
                    or not 0 < matrix[0] <= MAX_DIMS or not 0 < matrix[1] <= MAX_DIMS \
                    or len(matrix) != 2 + matrix[0] * matrix[1] or not _is_numbers(matrix[2:]):
                raise HistoryFormatError(f"corrupt history: {what} matrix is not "
                                         "[rows, cols, values...]", src)
            rows, ncols = matrix[0], matrix[1]
            descs = []
            for n in names:
                d = layout.descs.get(n)
                if d is None or d.type != REAL:
                    raise HistoryFormatError(f"corrupt history: {what} projects {n}, not a real "
                                             "descriptor of its layout", src)
                if not d.fixed:
                    raise _Unusable(f"{what}: projecting variable-length {n} is not supported")
                descs.append(d)
            # columns in the order of descriptorNames (checked with GaiaTransform)
            cols = [c for d in descs for c in range(d.begin, d.end)]
            if len(cols) != ncols:
                raise HistoryFormatError(f"corrupt history: {what} matrix has {ncols} columns "
                                         f"for {len(cols)} dimensions", src)
            result = p.get("resultName")
            if isinstance(result, str) and result:
                result = _full(result)
            elif nxt is not None and len(nxt.descs) == 1:
                result = next(iter(nxt.descs))
            else:
                result = "." + f"{t.analyzer} {rows} ({', '.join(names)})".replace(".", "_")
            out = _make_layout({result: (REAL, True, rows)})
            with np.errstate(over="ignore", invalid="ignore"):
                m = np.asarray(matrix[2:], dtype=np.float64).astype(np.float32)
            op = _MatMult(np.asarray(cols, dtype=np.intp), m.reshape(rows, ncols))
            self._matmult_inputs.update(names)
        elif applier == "svmpredict":
            op = _Svm(t, layout, src)
            new = dict(spec)
            new.setdefault(_full(op.class_name), (STRING, False, None))
            if op.probability:
                new[_full(op.class_name) + "Probability"] = (REAL, False, None)
            out = _make_layout(new, layout.enum2str, layout.str2enum)
        else:  # pragma: no cover - guarded by SUPPORTED
            raise _Unusable(f"applier {applier}")
        return out, op

    def _compile_input(self, fix_step):
        src = self.source
        before, after, _ = fix_step
        alive = before.descs
        # every input descriptor the record must hold: (key, parent path, leaf, type)
        self._required = []
        parents = {}
        for d in self.input_layout.descs.values():
            if d.type != REAL and d.name.startswith(".metadata.version"):
                continue
            key = d.name[1:]
            parts = key.split(".")
            for i in range(1, len(parts)):
                parents.setdefault(".".join(parts[:i]), (".".join(parts[:i - 1]), parts[i - 1]))
            self._required.append((key, ".".join(parts[:-1]), parts[-1], d.type))
        # parent maps in an order where each one's own parent comes first
        self._parents = sorted(((p, gp, k) for p, (gp, k) in parents.items()),
                               key=lambda item: item[0].count("."))
        index = {key: i for i, (key, _, _, _) in enumerate(self._required)}
        # the fixed regions after fixlength, in slot order
        self._real_names = [d.name for d in after.descs.values() if d.type == REAL and d.fixed]
        self._real_sizes = [after.descs[n].size for n in self._real_names]
        self._str_names = [d.name for d in after.descs.values() if d.type != REAL and d.fixed]
        self._str_sizes = [after.descs[n].size for n in self._str_names]
        for n in self._real_names + self._str_names:
            if n not in alive:
                raise HistoryFormatError(f"corrupt history: {n} appears after fixlength", src)
        self._real_total = sum(self._real_sizes)
        self._expected_sizes = self._real_sizes + self._str_sizes
        self._fix_all = self._real_names + self._str_names
        # where each fixed value comes from: an index into _required, or an addfield default
        self._real_plan = [(n[1:], index.get(n[1:]), self._added.get(n, [0.0]))
                           for n in self._real_names]
        self._str_plan = [(n, index.get(n[1:]), tuple(self._added.get(n, ("",))))
                          for n in self._str_names]
        # descriptors whose values can reach the SVM; with ``lenient`` the others may be
        # absent from a record and get a neutral value of the expected size instead
        svm_names = set(self.svm.names) if self.svm is not None else set()
        used = {n[1:] for n in svm_names | self._matmult_inputs}
        self._used = used
        sizes = {n[1:]: size for n, size in zip(self._fix_all, self._expected_sizes)}
        self._placeholders = []
        for key, _, _, dtype in self._required:
            size = sizes.get(key, 1)
            if dtype == REAL:
                self._placeholders.append(0.0 if size == 1 else [0.0] * size)
            else:
                self._placeholders.append("" if size == 1 else [""] * size)

    # -- state ----------------------------------------------------------------------------
    def reset(self):
        """Forget the per-instance state (fixlength sizes, unseen enum codes)."""
        self._fix_sizes = None
        if self.svm is not None:
            self.svm.reset()

    # -- running --------------------------------------------------------------------------
    # A record is checked completely (presence, types, sizes) by _extract_checked. Records of
    # a stream nearly always share one layout: the top-level types of the input descriptors
    # (the record's "signature") decide how each value is flattened, so once a record of a
    # signature has passed the full check, later records of that signature take a fast path
    # (one itemgetter per parent map, flattening by kind, one numpy conversion) that only
    # checks what can still differ: lengths, matrix shapes, string contents. Anything
    # unexpected falls back to the full check, which reports it. Rows are identical.
    MAX_PLANS = 256

    def _extract(self, record):
        """Record -> (float32 row of the fixed Real region, {string name: tuple}); checks
        presence and types of every input descriptor, and the fixlength sizes."""
        plans = getattr(self, "_plans", None)
        if plans is None:
            plans = self._fast_setup()
        ok_sizes = self._fix_sizes is None or self._fix_sizes == self._expected_sizes
        vals = sig = None
        if ok_sizes and type(record) is dict:
            try:
                nodes = {"": record}
                for path, parent, key in self._parents:
                    nodes[path] = nodes[parent][key]
                vals = []
                for parent, getter in self._fast_groups:
                    vals.extend(getter(nodes[parent]))
                sig = tuple(map(type, vals))
                plan = plans.get(sig)
                if plan is not None:
                    res = self._extract_fast(vals, plan)
                    if self._fix_sizes is None:
                        self._fix_sizes = list(self._expected_sizes)
                    return res
            except Exception:       # noqa: BLE001 - the full check names the problem
                pass
        res = self._extract_checked(record)
        if sig is not None and len(plans) < self.MAX_PLANS \
                and self._fix_sizes == self._expected_sizes:
            plan = self._make_plan(vals)
            if plan is not None:
                plans[sig] = plan
        return res

    def _fast_setup(self):
        groups = {}
        for i, (key, parent, leaf, dtype) in enumerate(self._required):
            groups.setdefault(parent, []).append((leaf, i))
        self._fast_groups = []
        pos = {}
        for parent, items in groups.items():
            self._fast_groups.append((parent, _getter([leaf for leaf, _ in items])))
            for leaf, i in items:
                pos[i] = len(pos)
        self._fast_pos = pos
        self._plans = {}
        return self._plans

    def _make_plan(self, vals):
        """Flattening plan from the values of a record that passed the full check."""
        pos = self._fast_pos
        template = np.zeros(self._real_total, dtype=np.float32)
        kinds = {"s": ([], []), "v": ([], []), "m": ([], [])}
        lens, msizes = [], []
        start = 0
        for (key, idx, default), size in zip(self._real_plan, self._real_sizes):
            cols = list(range(start, start + size))
            start += size
            if idx is None:
                template[cols] = np.asarray(default, dtype=np.float64).astype(np.float32)
                continue
            v = vals[pos[idx]]
            tv = type(v)
            if tv is float or tv is int:
                kind = "s"
            elif tv is list and v and type(v[0]) is list:
                kind = "m"
                msizes.append(size)
            elif tv is list:
                kind = "v"
                lens.append(size)
            else:
                return None
            kinds[kind][0].append(pos[idx])
            kinds[kind][1].extend(cols)
        strings = [(name, None if idx is None else pos[idx], default, size)
                   for (name, idx, default), size in zip(self._str_plan, self._str_sizes)]
        rowpos = np.asarray(kinds["s"][1] + kinds["v"][1] + kinds["m"][1], dtype=np.intp)
        return (_getter(kinds["s"][0]), _getter(kinds["v"][0]), lens,
                _getter(kinds["m"][0]), msizes, rowpos, template, strings)

    def _extract_fast(self, vals, plan):
        sget, vget, lens, mget, msizes, rowpos, template, strings = plan
        vecs = vget(vals)
        if list(map(len, vecs)) != lens:
            raise ValueError("lengths")
        flat = list(sget(vals))
        flat.extend(chain.from_iterable(vecs))
        for v, size in zip(mget(vals), msizes):
            rows, cols = len(v), len(v[0])
            if 2 + rows * cols != size or set(map(len, v)) != {cols}:
                raise ValueError("matrix shape")
            flat.append(rows)
            flat.append(cols)
            flat.extend(chain.from_iterable(v))
        arr = np.array(flat, dtype=np.float32)
        if arr.shape != rowpos.shape:
            raise ValueError("values")
        row = template.copy()
        row[rowpos] = arr
        strs = {}
        for name, p, default, size in strings:
            if p is None:
                t = default
            else:
                v = vals[p]
                if type(v) is str:
                    t = (v,)
                else:
                    t = tuple(v)
                    if not all(type(x) is str for x in t):
                        raise ValueError("strings")
            if len(t) != size:
                raise ValueError("string length")
            strs[name] = t
        return row, strs

    def _extract_checked(self, record):
        """The complete check of :meth:`_extract` (every path leads here on any doubt)."""
        if type(record) is not dict:
            raise MirkitError("not a record (a map of descriptors)",
                              record_id(record) if isinstance(record, dict) else None)
        src = record_id(record)
        nodes = {"": record}
        for path, parent, key in self._parents:
            node = nodes[parent]
            nodes[path] = node.get(key) if type(node) is dict else None
        values = []
        missing, wrong = [], []
        append = values.append
        lenient = self.lenient
        for i, (key, parent, leaf, dtype) in enumerate(self._required):
            node = nodes[parent]
            v = node.get(leaf, _MISSING) if type(node) is dict else _MISSING
            if v is _MISSING:
                v = record.get(key, _MISSING)      # a flat record with dotted keys
                if v is _MISSING:
                    if lenient and key not in self._used:
                        append(self._placeholders[i])
                        continue
                    missing.append(key)
                    append(None)
                    continue
            tv = type(v)
            if dtype == REAL:
                if tv is str or tv is dict or tv is bool or v is None:
                    wrong.append(f"{key} (expected numbers)")
            elif not (tv is str or (tv is list and all(type(x) is str for x in v))):
                wrong.append(f"{key} (expected strings)")
            append(v)
        if missing:
            raise MissingDescriptorsError(missing, src, self.name)
        if wrong:
            raise MirkitError(f"descriptor(s) of the wrong type for model {self.name}: "
                              f"{', '.join(wrong)}", src)
        flat = []
        sizes = []
        extend = flat.extend
        for key, idx, default in self._real_plan:
            v = values[idx] if idx is not None else default
            tv = type(v)
            if tv is float or tv is int:
                flat.append(v)
                sizes.append(1)
            elif tv is list:
                if v and type(v[0]) is list:
                    cols = len(v[0])
                    if any(type(row) is not list or len(row) != cols for row in v):
                        raise MirkitError(f"descriptor {key} is a ragged matrix (model "
                                          f"{self.name})", src)
                    flat.append(len(v))
                    flat.append(cols)
                    for row in v:
                        extend(row)
                    sizes.append(2 + len(v) * cols)
                else:
                    extend(v)
                    sizes.append(len(v))
            else:
                try:
                    arr = np.asarray(v, dtype=np.float64).ravel()
                except (TypeError, ValueError):
                    raise MirkitError(f"descriptor {key} is not numeric (model {self.name})",
                                      src) from None
                extend(arr.tolist())
                sizes.append(arr.size)
        strs = {}
        for name, idx, default in self._str_plan:
            if idx is not None:
                v = values[idx]
                v = (v,) if type(v) is str else tuple(v)
            else:
                v = default
            strs[name] = v
            sizes.append(len(v))
        self._check_sizes(sizes, src)
        try:
            row = np.array(flat, dtype=np.float32)
            if row.ndim != 1:
                raise ValueError("nested")
        except (TypeError, ValueError, OverflowError):
            bad = []
            for key, idx, default in self._real_plan:
                v = values[idx] if idx is not None else default
                try:
                    if np.array(v, dtype=np.float32).ndim > 2:
                        bad.append(key)
                except (TypeError, ValueError, OverflowError):
                    bad.append(key)
            raise MirkitError(f"descriptor(s) with non-numeric values for model {self.name}: "
                              f"{', '.join(bad) or '(nested lists)'}", src) from None
        return row, strs

    def _check_sizes(self, sizes, src):
        first = self._fix_sizes is None
        if first:
            self._fix_sizes = sizes
        if sizes != self._fix_sizes:
            for name, got, fixed in zip(self._fix_all, sizes, self._fix_sizes):
                if got != fixed:
                    raise MirkitError(
                        f"descriptor {name[1:]} has {got} values, but model {self.name} fixed "
                        f"its size to {fixed} on the first record it classified (as Gaia does)",
                        src)
        if self._fix_sizes != self._expected_sizes:
            bad = [f"{n[1:]} ({got} values, expected {exp})" for n, got, exp in
                   zip(self._fix_all, self._fix_sizes, self._expected_sizes) if got != exp]
            raise MirkitError(f"record layout differs from the one model {self.name} was trained "
                              f"on: {', '.join(bad)}"
                              + ("" if first else
                                 " (sizes are fixed by the first record a model instance sees)"),
                              src)

    def _transform(self, records):
        """Run the chain up to the SVM: (float32 matrix, {string name: list}, indices of the
        records in it, list of results/errors with the errors filled in)."""
        out = [None] * len(records)
        rows, strs, where = [], [], []
        for i, record in enumerate(records):
            if self.fresh:
                self._fix_sizes = None
            try:
                row, s = self._extract(record)
            except MirkitError as exc:
                out[i] = exc
                continue
            rows.append(row)
            strs.append(s)
            where.append(i)
        real = np.stack(rows) if rows else np.zeros((0, self._real_total), dtype=np.float32)
        smap = {n: [s[n] for s in strs] for n in self._str_names}
        with np.errstate(all="ignore"):
            for op in self._ops:
                real, smap = op(real, smap)
        return real, smap, where, out

    def predict_many(self, records):
        """Results ({value, probability, all}) or MirkitError instances, in input order."""
        if self.unusable:
            err = MirkitError(f"model cannot be applied: {self.unusable}", self.source)
            return [err for _ in records]
        real, smap, where, out = self._transform(records)
        if where:
            with np.errstate(all="ignore"):
                results = self.svm.predict_rows(real, smap)
            for i, res in zip(where, results):
                out[i] = res
        return out

    def predict(self, record):
        """``{"value", "probability", "all"}`` for one record, as GaiaTransform gives it."""
        res = self.predict_many([record])[0]
        if isinstance(res, MirkitError):
            raise res
        return res

    # -- description ----------------------------------------------------------------------
    def describe(self):
        h = self.history
        inp = h.input_layout()
        desc = {
            "type": self.kind,
            "name": self.name,
            "path": self.path,
            "format_version": h.version,
            "applicable": self.unusable is None,
        }
        if self.unusable:
            desc["reason"] = self.unusable
        if inp is not None:
            by_type = {}
            for d in inp.descs.values():
                by_type.setdefault(TYPE_NAMES.get(d.type, str(d.type)), []).append(d.name[1:])
            desc["input"] = {"count": len(inp.descs), "descriptors": by_type}
            if self.unusable is None:
                # lengths the records must have (fixlength); the others are scalars/strings
                desc["input"]["sizes"] = {n[1:]: size for n, size in
                                          zip(self._fix_all, self._expected_sizes) if size != 1}
                desc["input"]["optional"] = sorted(
                    d.name[1:] for d in inp.descs.values()
                    if d.type != REAL and d.name.startswith(".metadata.version"))
        desc["chain"] = [_describe_step(t) for t in h.transformations]
        if self.svm is not None:
            s = self.svm
            hd = s.libsvm.header
            desc["class_name"] = s.class_name
            desc["classes"] = list(s.classes)
            desc["probability"] = s.probability
            desc["features"] = {"descriptors": [n[1:] for n in s.names], "dimensions": s.dims,
                                "enums": {n[1:]: training for n, _, _, training in s.enums}}
            desc["svm"] = {k: hd[k] for k in ("svm_type", "kernel_type", "degree", "gamma",
                                              "coef0", "nr_class", "total_sv", "nr_sv")
                           if k in hd}
            desc["svm"]["labels"] = [s.classes[i] for i in hd["label"]]
            desc["svm"]["probability_method"] = "libsvm 2.89 pairwise coupling" \
                if s.probability else "one-vs-one voting"
            desc["output"] = {"key": f"highlevel.{self.name}",
                              "shape": "{value, probability, all}"}
        return desc


class _Unusable(Exception):
    pass


def _votes(decs, k):
    """:func:`~mirkit.gaia.history_svm.vote` for many rows at once: one-vs-one votes (a
    positive decision value votes for the first class of the pair), the winner being the
    lowest index among the most voted (argmax returns the first maximum)."""
    positive = np.asarray(decs, dtype=np.float64).reshape(len(decs), -1) > 0
    votes = np.zeros((len(decs), k), dtype=np.intp)
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            votes[:, i] += positive[:, p]
            votes[:, j] += ~positive[:, p]
            p += 1
    return np.argmax(votes, axis=1).tolist()


def _getter(keys):
    """A function giving the tuple of ``obj[k]`` for ``keys`` (itemgetter, always a tuple)."""
    keys = list(keys)
    if not keys:
        return lambda obj: ()
    if len(keys) == 1:
        k = keys[0]
        return lambda obj: (obj[k],)
    return itemgetter(*keys)


def _is_numbers(v):
    return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                       for x in v)


def _summary(value, depth=0):
    """Short JSON-able summary of a parameter value."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        if depth >= 1 or len(value) > 8:
            return f"<map of {len(value)} entries>"
        return {k: _summary(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 8 or depth >= 2:
            if all(isinstance(v, str) for v in value):
                return value[:4] + [f"... ({len(value)} names)"] if len(value) > 8 else value
            return f"<list of {len(value)} values>"
        return [_summary(v, depth + 1) for v in value]
    return value


def _describe_step(t):
    out = {"analyzer": t.analyzer, "applier": t.applier,
           "analyzer_params": _summary(t.analyzer_params), "params": _summary(t.params)}
    if t.layout is not None:
        out["input_descriptors"] = len(t.layout.descs)
    return out


def load_model(path, fresh=False, lenient=False, **options):
    """Load a Gaia ``.history``/``.hist`` file as a classifier model object.

    By default the object behaves like ONE ``GaiaTransform`` instance reused for every record
    (descriptor sizes fixed by the first record, unseen enum strings numbered in order of
    appearance). ``fresh=True`` makes every record behave as with a new instance, like
    Essentia's extractor run once per file: then no result depends on other records.

    ``lenient=True`` accepts records that lack descriptors the chain drops before the SVM
    (Essentia requires all of them, e.g. ``metadata.tags.*``); the results are the same as
    with any value for them. Descriptors the SVM uses are always required.
    """
    history = read_history(path)
    name = os.path.splitext(os.path.basename(str(path)))[0]
    return HistoryModel(history, name, str(path), fresh=fresh, lenient=lenient)
