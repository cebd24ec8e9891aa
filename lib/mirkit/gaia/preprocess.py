"""Gaia's preprocessing transforms as fit/transform objects (gaia.md §4, §5.2, §5.3).

Each transform is built from Gaia's ``{transfo, params}`` step. ``fit(dataset)`` computes
its state from a dataset -- patterns are resolved to explicit descriptor names at fit time,
so applying a fitted transform needs no pattern matching -- and ``apply(dataset)`` maps a
dataset (of any number of points with the fitted layout) to a new dataset. The fitted state
is plain data (names, lists, numpy arrays); :func:`encode_state` / :func:`decode_state` turn
it into JSON-able data (arrays as base64 little-endian bytes) for the model file.

Transforms: ``remove``, ``select``, ``enumerate``, ``normalize`` (``independent`` false:
one range per descriptor; true: per dimension; ``type: range`` or ``variance``),
``gaussianize`` and ``cleaner``. Arithmetic is float32, as in Gaia.
"""

import base64
import math

import numpy as np

from ..errors import MirkitError
from .dataset import ENUM, MIN_RANGE, REAL, STRING, Dataset
from .patterns import select_names


class Transform:
    name = None

    def __init__(self, params=None, state=None):
        self.params = dict(params or {})
        self.state = state

    def fit(self, ds):
        raise NotImplementedError

    def apply(self, ds):
        raise NotImplementedError

    def fit_apply(self, ds):
        self.fit(ds)
        return self.apply(ds)

    def _names(self, ds, kinds=None, default="*"):
        names = ds.names if kinds is None else [n for n in ds.names if ds.kinds[n] in kinds]
        patterns = self.params.get("descriptorNames", default)
        fail = bool(self.params.get("failOnUnmatched", True))
        return select_names(names, patterns, self.params.get("except", []), fail,
                            source=f"{self.name} transform")

    def to_data(self):
        return {"transfo": self.name, "params": _plain(self.params),
                "state": encode_state(self.state)}

    def required(self, names):
        """The input descriptors needed to produce ``names`` after this transform."""
        return set(names)


class Remove(Transform):
    name = "remove"

    def fit(self, ds):
        self.state = {"names": self._names(ds)}
        return self.state

    def apply(self, ds):
        drop = set(self.state["names"])
        return ds.subset_names([n for n in ds.kinds if n not in drop])


class Select(Transform):
    name = "select"

    def fit(self, ds):
        self.state = {"names": self._names(ds)}
        return self.state

    def apply(self, ds):
        return ds.subset_names(self.state["names"])


class Cleaner(Transform):
    """Drop Real descriptors with a NaN/Inf anywhere or all dims constant (< 1e-7)."""
    name = "cleaner"

    def fit(self, ds):
        self.state = {"names": cleaner_names(ds.kinds, ds.data)}
        return self.state

    def apply(self, ds):
        drop = set(self.state["names"])
        return ds.subset_names([n for n in ds.kinds if n not in drop])


def cleaner_names(kinds, data, rows=None):
    out = []
    for name in sorted(kinds):
        if kinds[name] != REAL:
            continue
        arr = data[name] if rows is None else data[name][rows]
        if arr.shape[0] == 0:
            continue
        with np.errstate(invalid="ignore"):
            if not np.isfinite(arr).all():
                out.append(name)
            elif np.all((arr.max(axis=0) - arr.min(axis=0)) < MIN_RANGE):
                out.append(name)
    return out


class Enumerate(Transform):
    """String -> Enum codes in first-seen order over points in id order (gaia.md §4.3)."""
    name = "enumerate"

    def fit(self, ds):
        maps = {}
        for name in self._names(ds, kinds=(STRING,)):
            seen = {}
            for value in ds.data[name].ravel():  # row-major: points in order, then dims
                if value not in seen:
                    seen[value] = len(seen)
            maps[name] = list(seen)
        self.state = {"maps": maps}
        return self.state

    def apply(self, ds):
        kinds, data, enum_maps = dict(ds.kinds), dict(ds.data), dict(ds.enum_maps)
        for name, strings in self.state["maps"].items():
            if name not in data:
                continue
            table = {s: i for i, s in enumerate(strings)}
            arr = data[name]
            codes = np.empty(arr.shape, dtype=np.int32)
            for r in range(arr.shape[0]):
                unseen = {}
                for c in range(arr.shape[1]):
                    value = arr[r, c]
                    code = table.get(value)
                    if code is None:  # an unseen string gets the next free code
                        code = unseen.setdefault(value, len(table) + len(unseen))
                    codes[r, c] = code
            kinds[name] = ENUM
            data[name] = codes
            enum_maps[name] = list(strings)
        return Dataset(ds.ids, kinds, data, enum_maps)


def _float32_coeffs(minv, maxv, name):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.float32(1.0) / (maxv.astype(np.float32) - minv.astype(np.float32))
        b = -minv.astype(np.float32) * a
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MirkitError(f'Normalize: Apply "cleaner" transformation before normalization. '
                          f'Division by zero in .{name}')
    return a.astype(np.float32), b.astype(np.float32)


class Normalize(Transform):
    """y = a*x + b on Real descriptors; enums untouched (gaia.md §4.4)."""
    name = "normalize"

    def fit(self, ds):
        if len(ds) < 2:
            raise MirkitError("Normalize: needs at least 2 points")
        kind = self.params.get("type", "range")
        independent = bool(self.params.get("independent", False))
        outliers = float(self.params.get("outliers", -1))
        coeffs = {}
        for name in self._names(ds, kinds=(REAL,)):
            arr = ds.data[name]
            if kind == "range":
                if outliers > 0:
                    srt = np.sort(arr, axis=0)
                    n = arr.shape[0]
                    lo = srt[int(outliers / 2 * (n - 1))]
                    hi = srt[int((1 - outliers / 2) * (n - 1))]
                else:
                    lo, hi = arr.min(axis=0), arr.max(axis=0)
                if not independent:
                    lo = np.full_like(lo, lo.min())
                    hi = np.full_like(hi, hi.max())
                a, b = _float32_coeffs(lo, hi, name)
            elif kind == "variance":
                mean = arr.mean(axis=0, dtype=np.float64).astype(np.float32)
                std = arr.std(axis=0, dtype=np.float64).astype(np.float32)
                with np.errstate(divide="ignore"):
                    a = (np.float32(1.0) / (np.float32(4.0) * std)).astype(np.float32)
                if not np.isfinite(a).all():
                    raise MirkitError(f'Normalize: Apply "cleaner" transformation before '
                                      f'normalization. Division by zero in .{name}')
                b = (-mean * a + np.float32(0.5)).astype(np.float32)
            else:
                raise MirkitError(f"Normalize: unknown type {kind!r} (range or variance)")
            coeffs[name] = {"a": a, "b": b}
        self.state = {"coeffs": coeffs, "clip": bool(self.params.get("applyClipping", False))}
        return self.state

    def apply(self, ds):
        data = dict(ds.data)
        clip = self.state.get("clip", False)
        for name, ab in self.state["coeffs"].items():
            if name in data:
                y = (data[name] * ab["a"] + ab["b"]).astype(np.float32)
                if clip:
                    y = np.clip(y, 0, 1)
                data[name] = y
        return Dataset(ds.ids, ds.kinds, data, ds.enum_maps)


# ---- gaussianize ------------------------------------------------------------------------

def erfinv(y):
    """Inverse error function of one double in (-1, 1) (Giles' approximation refined by
    Newton steps on math.erf: accurate to double precision)."""
    if y <= -1.0:
        return -math.inf
    if y >= 1.0:
        return math.inf
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 6.25:
        w -= 3.125
        p = -3.6444120640178196996e-21
        for c in (-1.685059138182016589e-19, 1.2858480715256400167e-18, 1.115787767802518096e-17,
                  -1.333171662854620906e-16, 2.0972767875968561637e-17, 6.6376381343583238325e-15,
                  -4.0545662729752068639e-14, -8.1519341976054721522e-14, 2.6335093153082322977e-12,
                  -1.2975133253453532498e-11, -5.4154120542946279317e-11, 1.051212273321532285e-09,
                  -4.1126339803469836976e-09, -2.9070369957882005086e-08, 4.2347877827932403518e-07,
                  -1.3654692000834678645e-06, -1.3882523362786468719e-05, 0.0001867342080340571352,
                  -0.00074070253416626697512, -0.0060336708714301490533, 0.24015818242558961693,
                  1.6536545626831027356):
            p = c + p * w
    elif w < 16.0:
        w = math.sqrt(w) - 3.25
        p = 2.2137376921775787049e-09
        for c in (9.0756561938885390979e-08, -2.7517406297064545428e-07, 1.8239629214389227755e-08,
                  1.5027403968909827627e-06, -4.013867526981545969e-06, 2.9234449089955446044e-06,
                  1.2475304481671778723e-05, -4.7318229009055733981e-05, 6.8284851459573175448e-05,
                  2.4031110387097893999e-05, -0.0003550375203628474796, 0.00095328937973738049703,
                  -0.0016882755560235047313, 0.0024914420961078508066, -0.0037512085075692412107,
                  0.005370914553590063617, 1.0052589676941592334, 3.0838856104922207635):
            p = c + p * w
    else:
        w = math.sqrt(w) - 5.0
        p = -2.7109920616438573243e-11
        for c in (-2.5556418169965252055e-10, 1.5076572693500548083e-09, -3.7894654401267369937e-09,
                  7.6157012080783393804e-09, -1.4960026627149240478e-08, 2.9147953450901080826e-08,
                  -6.7711997758452339498e-08, 2.2900482228026654717e-07, -9.9298272942317002539e-07,
                  4.5260625972231537039e-06, -1.9681778105531670567e-05, 7.5995277030017761139e-05,
                  -0.00021503011930044477347, -0.00013871931833623122026, 1.0103004648645343977,
                  4.8499064014085844221):
            p = c + p * w
    x = p * y
    for _ in range(2):  # Newton: erf(x) = y
        err = math.erf(x) - y
        x -= err / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def _erfinv_table(n):
    """y(rank) for rank = 0..n, as Gaia's distribute applier computes it (float32 result)."""
    out = np.empty(n + 1, dtype=np.float32)
    nf = np.float32(n)
    for rank in range(n + 1):
        norm = float(np.float32(rank) / nf)
        out[rank] = erfinv(2.0 * norm - 1.0)
    return out


def gaussianize_values(x, dist, table):
    """Map float32 values ``x`` (any shape) through the sorted reference ``dist`` (gaia.md §4.5)."""
    n = len(dist)
    rank = np.searchsorted(dist, x, side="right")
    rank = np.minimum(rank, n - 1)
    rank = np.where(x < dist[0], 0, rank)
    rank = np.where(x > dist[-1], n, rank)
    outliers = int(0.00001 * n)
    rank = np.clip(rank, outliers, n - outliers)
    rank = np.where(rank == 0, 1, rank)
    rank = np.where(rank == n, n - 1, rank)
    return table[rank]


class Gaussianize(Transform):
    name = "gaussianize"

    def fit(self, ds):
        if len(ds) < 2:
            raise MirkitError("Gaussianize: needs at least 2 points")
        size = int(self.params.get("distributionSize", 10000))
        redux = max(1, math.ceil(len(ds) / size))
        dists = {}
        for name in self._names(ds, kinds=(REAL,)):
            sample = ds.data[name][::redux]
            dists[name] = np.sort(sample, axis=0).T.copy()  # dims x n
        self.state = {"distributions": dists}
        return self.state

    def apply(self, ds):
        data = dict(ds.data)
        tables = {}
        for name, dists in self.state["distributions"].items():
            if name not in data:
                continue
            arr = data[name]
            out = np.empty(arr.shape, dtype=np.float32)
            for d in range(arr.shape[1]):
                dist = dists[d]
                n = len(dist)
                if n not in tables:
                    tables[n] = _erfinv_table(n)
                out[:, d] = gaussianize_values(arr[:, d], dist, tables[n])
            data[name] = out
        return Dataset(ds.ids, ds.kinds, data, ds.enum_maps)


TRANSFORMS = {cls.name: cls for cls in (Remove, Select, Enumerate, Normalize, Gaussianize, Cleaner)}
# Gaia's merge-time steps have no effect on an already merged dataset (see dataset.py)
NOOP = ("fixlength", "removevl", "removeVL")


def make_transform(step, source=None):
    """A transform from a project step ``{transfo: name, params: {...}}``."""
    if not isinstance(step, dict) or "transfo" not in step:
        raise MirkitError(f"a preprocessing step must be a map with 'transfo', got {step!r}", source)
    name = step["transfo"]
    cls = TRANSFORMS.get(name)
    if cls is None:
        raise MirkitError(f"unknown transformation {name!r} (known: {', '.join(TRANSFORMS)})",
                          source)
    return cls(step.get("params") or {})


def transform_from_data(data):
    cls = TRANSFORMS.get(data.get("transfo"))
    if cls is None:
        raise MirkitError(f"unknown transformation {data.get('transfo')!r}")
    return cls(data.get("params") or {}, decode_state(data.get("state")))


class Chain:
    """An ordered list of transforms, fitted on one dataset in turn."""

    def __init__(self, transforms=()):
        self.transforms = list(transforms)

    @classmethod
    def from_steps(cls, steps, source=None):
        steps = steps or []
        return cls([make_transform(s, source) for s in steps
                    if not (isinstance(s, dict) and s.get("transfo") in NOOP)])

    def fit_apply(self, ds):
        for t in self.transforms:
            ds = t.fit_apply(ds)
        return ds

    def apply(self, ds):
        for t in self.transforms:
            ds = t.apply(ds)
        return ds

    def to_data(self):
        return [t.to_data() for t in self.transforms]

    @classmethod
    def from_data(cls, data):
        return cls([transform_from_data(d) for d in data])


# ---- plain-data encoding -----------------------------------------------------------------

def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def encode_array(arr):
    arr = np.ascontiguousarray(arr)
    dtype = arr.dtype.newbyteorder("<")
    return {"ndarray": dtype.str, "shape": list(arr.shape),
            "data": base64.b64encode(arr.astype(dtype).tobytes()).decode("ascii")}


def decode_array(obj):
    dtype = np.dtype(obj["ndarray"])
    if dtype.kind not in "fiub":
        raise MirkitError(f"unsupported array type {obj['ndarray']!r} in model data")
    raw = base64.b64decode(obj["data"])
    return np.frombuffer(raw, dtype=dtype).reshape(obj["shape"]).astype(dtype.newbyteorder("="))


def encode_state(obj):
    """JSON-able form of a fitted state (numpy arrays -> base64 records)."""
    if isinstance(obj, np.ndarray):
        return encode_array(obj)
    if isinstance(obj, dict):
        return {str(k): encode_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_state(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def decode_state(obj):
    if isinstance(obj, dict):
        if "ndarray" in obj and "data" in obj and "shape" in obj:
            return decode_array(obj)
        return {k: decode_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_state(v) for v in obj]
    return obj
