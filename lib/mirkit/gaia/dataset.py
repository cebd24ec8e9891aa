"""Gaia-style datasets: descriptor files -> typed, fixed-length, column-stored points.

Behaviour of Gaia's merge step (gaia.md §1.3, §3), implemented from the spec:

* every leaf of a record becomes one descriptor named by its dotted path (stored here
  without Gaia's leading dot); the top-level ``segments`` and ``configuration`` are dropped;
  the ``excludedDescriptors`` patterns are removed at load time;
* typing (§1.3): a number is Real (float32, length 1); a list of numbers is a Real vector; a
  list of lists is a Real ``[rows, cols, row-major...]``; a string is a String; a list of
  strings a String vector; an empty list a Real of length 0. (Booleans, which Essentia JSON
  may hold, are read as Real 0/1: a deliberate choice, Gaia never sees them.)
* points are kept in sorted id order; a point whose descriptor names or types differ from
  the first point's is dropped with a warning naming the difference ("incompatible layout");
* ``removevl`` drops descriptors whose length varies between points or is 0 in the first
  point; ``fixlength`` fixes the rest; ``cleaner`` drops Real descriptors holding a NaN/Inf
  anywhere or whose every dimension is constant (``max - min < 1e-7`` in float32).

A :class:`Dataset` stores one 2-D array per descriptor (points x dims): float32 for Real,
int32 codes for Enum, object (str) for String.
"""

import io
import itertools
import json
import operator
import os
import time

import numpy as np

from ..errors import MirkitError
from ..streams import load_single_record
from .patterns import select_names

REAL, STRING, ENUM = "real", "string", "enum"
DROPPED_TOP_LEVEL = ("segments", "configuration")
MIN_RANGE = np.float32(1e-7)
DATASET_FORMAT = "mirkit-dataset"
DATASET_VERSION = 1


# ---------------------------------------------------------------------------------------
# typing of one record
# ---------------------------------------------------------------------------------------

_NUM = (int, float)


def type_leaf(name, value, source=None):
    """(kind, value) of one leaf by Gaia's rules: kind REAL -> tuple of Python numbers (made
    float32 when points are merged), kind STRING -> tuple of str. MirkitError for shapes
    Gaia refuses."""
    if isinstance(value, str):
        return STRING, (value,)
    if isinstance(value, bool):
        return REAL, (1.0 if value else 0.0,)
    if isinstance(value, _NUM):
        return REAL, (value,)
    if value is None:
        return STRING, ("",)
    if isinstance(value, (list, tuple)):
        if not value:
            return REAL, ()
        first = value[0]
        if isinstance(first, (list, tuple)):
            rows = len(value)
            cols = len(first)
            flat = [rows, cols]
            for row in value:
                if not isinstance(row, (list, tuple)) or len(row) != cols:
                    raise MirkitError(f"descriptor {name}: rows of a matrix differ in length",
                                      source)
                if not all(isinstance(v, _NUM) for v in row):
                    if any(isinstance(v, (list, tuple, dict)) for v in row):
                        raise MirkitError(f"descriptor {name}: parsing of arrays of dimension "
                                          f"> 2 is not allowed", source)
                    raise MirkitError(f"descriptor {name}: matrix holds non-numeric values",
                                      source)
                flat.extend(row)
            return REAL, tuple(flat)
        if isinstance(first, str):
            if not all(isinstance(v, str) for v in value):
                raise MirkitError(f"descriptor {name}: list mixes strings and other values", source)
            return STRING, tuple(value)
        if not all(isinstance(v, _NUM) for v in value):
            if any(isinstance(v, dict) for v in value):
                raise MirkitError(f"descriptor {name}: a map inside a list is not allowed", source)
            raise MirkitError(f"descriptor {name}: list mixes numbers and other values", source)
        return REAL, tuple(value)
    if isinstance(value, dict):  # an empty map is not a leaf: nothing to record
        return None, None
    raise MirkitError(f"descriptor {name}: unsupported value of type {type(value).__name__}", source)


def type_record(record, source=None):
    """``{name: (kind, value)}`` for every descriptor of a record, Gaia-typed, names sorted."""
    out = {}
    stack = [(str(k), v) for k, v in record.items() if k not in DROPPED_TOP_LEVEL]
    num = _NUM
    while stack:
        name, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{name}.{k}", v) for k, v in value.items())
            continue
        # fast paths for the common leaves (a number, a flat list of numbers)
        t = type(value)
        if t is float or t is int:
            out[name] = (REAL, (value,))
        elif t is list and value and type(value[0]) is float and \
                all(type(v) is float or (isinstance(v, num) and not isinstance(v, bool))
                    for v in value):
            out[name] = (REAL, tuple(value))
        else:
            kind, typed = type_leaf(name, value, source)
            if kind is not None:
                out[name] = (kind, typed)
    return dict(sorted(out.items()))


_EXCLUDE_CACHE = {}


class _ExcludeCache:
    """Applies exclude patterns per layout (most points share one layout; the resolved names
    are cached per process, keyed by patterns and layout)."""

    def __init__(self, patterns, fail_on_unmatched=False):
        self.patterns = list(patterns or [])
        self.fail = fail_on_unmatched
        self.cache = _EXCLUDE_CACHE.setdefault((tuple(self.patterns), bool(self.fail)), {})
        if len(self.cache) > 64:
            self.cache.clear()

    def __call__(self, typed, source=None):
        if not self.patterns:
            return typed
        key = tuple(typed)
        drop = self.cache.get(key)
        if drop is None:
            drop = self.cache[key] = frozenset(
                select_names(key, self.patterns, fail_on_unmatched=self.fail, source=source))
        if not drop:
            return typed
        return {k: v for k, v in typed.items() if k not in drop}


def load_typed_file(path, exclude=(), fail_on_unmatched=False, item_id=None):
    """Load one descriptor file (Essentia JSON/YAML, .sig, or a one-record stream) and type
    it; excluded descriptors removed. With ``item_id``, a file holding several records (a
    record stream, as ``mkgroundtruth --label -l`` lists) gives the record of that id."""
    try:
        record = load_single_record(path)
    except MirkitError as exc:
        if item_id is None or not exc.reason.startswith("expected one record"):
            raise
        record = stream_records(path, {item_id}).get(item_id)
        if record is None:
            raise MirkitError(f"no record with id {item_id!r} in this stream", path) from None
    typed = type_record(record, path)
    return _ExcludeCache(exclude, fail_on_unmatched)(typed, path)


def stream_records(path, ids):
    """``{id: record}`` for the records of a stream file whose record id is in ``ids``
    (the first of each id); unreadable items are skipped, an unreadable file raises.
    A file holding a single record (a plain descriptor file, which Gaia lets several ids
    share) gives that record for every id."""
    from ..records import record_id
    from ..streams import read_file
    found = {}
    first, count = None, 0
    for item in read_file(path):
        count += 1
        if isinstance(item, MirkitError):
            continue
        if first is None:
            first = item
        rid = record_id(item)
        if rid in ids and rid not in found:
            found[rid] = item
    if count == 1 and first is not None:
        return {pid: first for pid in ids}
    return found


# ---------------------------------------------------------------------------------------
# the dataset
# ---------------------------------------------------------------------------------------

class Dataset:
    """Points sorted by id; one array per descriptor (points x dims)."""

    def __init__(self, ids, kinds, data, enum_maps=None, meta=None):
        self.meta = dict(meta or {})      # JSON-able extra information saved with the dataset
        self.ids = list(ids)
        self.kinds = dict(kinds)          # name -> REAL | STRING | ENUM
        self.data = dict(data)            # name -> 2-D array
        self.enum_maps = dict(enum_maps or {})  # name -> [str, ...] (code = index)

    @property
    def names(self):
        return sorted(self.kinds)

    def __len__(self):
        return len(self.ids)

    def dims(self, name):
        return self.data[name].shape[1]

    def copy(self):
        return Dataset(self.ids, self.kinds, self.data, self.enum_maps)

    def subset_names(self, keep):
        keep = set(keep)
        return Dataset(self.ids, {k: v for k, v in self.kinds.items() if k in keep},
                       {k: v for k, v in self.data.items() if k in keep},
                       {k: v for k, v in self.enum_maps.items() if k in keep})

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.intp)
        return Dataset([self.ids[i] for i in rows], self.kinds,
                       {k: v[rows] for k, v in self.data.items()}, self.enum_maps)

    def layout(self):
        """``{name: [kind, dims]}``: the dataset's layout (sorted names)."""
        return {n: [self.kinds[n], int(self.data[n].shape[1])] for n in self.names}

    def layout_summary(self):
        dims = {k: 0 for k in (REAL, ENUM, STRING)}
        for name in self.kinds:
            dims[self.kinds[name]] += self.data[name].shape[1]
        return (f"{len(self.kinds)} descriptors, {sum(dims.values())} dims "
                f"({dims[REAL]} real, {dims[ENUM]} enum, {dims[STRING]} string)")

    # ---- (de)serialisation: npz of numeric arrays + a JSON header, never pickle ----------
    def save(self, path):
        from ..atomic import atomic_write
        header = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "ids": self.ids,
                  "kinds": self.kinds, "enum_maps": self.enum_maps, "strings": {},
                  "meta": self.meta}
        arrays = {}
        for i, name in enumerate(sorted(self.kinds)):
            if self.kinds[name] == STRING:
                header["strings"][name] = self.data[name].tolist()
            else:
                arrays[f"a{i}"] = self.data[name]
                header.setdefault("arrays", {})[name] = f"a{i}"
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with atomic_write(path, "wb") as fh:
            fh.write(buf.getvalue())

    @classmethod
    def load(cls, path):
        try:
            with np.load(path, allow_pickle=False) as npz:
                header = json.loads(npz["header"].tobytes().decode("utf-8"))
                if header.get("format") != DATASET_FORMAT:
                    raise MirkitError("not a mirkit dataset file", path)
                if header.get("version") != DATASET_VERSION:
                    raise MirkitError(f"unsupported dataset format version {header.get('version')}",
                                      path)
                data = {name: npz[key] for name, key in header.get("arrays", {}).items()}
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise MirkitError(f"cannot read dataset: {exc}", path) from None
        n = len(header["ids"])
        for name, rows in header["strings"].items():
            arr = np.empty((n, len(rows[0]) if rows else 0), dtype=object)
            for i, row in enumerate(rows):
                arr[i, :] = row
            data[name] = arr
        return cls(header["ids"], header["kinds"], data, header["enum_maps"], header.get("meta"))


# ---------------------------------------------------------------------------------------
# merging typed points
# ---------------------------------------------------------------------------------------

def _layout_of(typed):
    return {name: kind for name, (kind, _) in typed.items()}


def _layout_difference(ref, other):
    only_ref = sorted(set(ref) - set(other))
    only_other = sorted(set(other) - set(ref))
    retyped = sorted(n for n in set(ref) & set(other) if ref[n] != other[n])
    parts = []
    if only_other:
        parts.append("only in this point: " + ", ".join(only_other[:10])
                     + (" ..." if len(only_other) > 10 else ""))
    if only_ref:
        parts.append("missing from this point: " + ", ".join(only_ref[:10])
                     + (" ..." if len(only_ref) > 10 else ""))
    if retyped:
        parts.append("different type: " + ", ".join(retyped[:10]))
    return "; ".join(parts)


class MergeReport:
    """What the merge step dropped and why (points and descriptors)."""

    def __init__(self):
        self.dropped_points = {}      # id -> reason
        self.variable_length = []
        self.cleaned = []             # constant / NaN / Inf
        self.excluded = []

    @property
    def removed(self):
        return sorted(set(self.variable_length) | set(self.cleaned))


def merge_points(points, warn=None, clean=True):
    """Build a Dataset from ``{id: typed}`` (typed as from :func:`type_record`), applying the
    layout check, removevl, fixlength and (unless ``clean`` is false) the cleaner. Returns
    ``(dataset, report)``."""
    warn = warn or (lambda text: None)
    report = MergeReport()
    ids = sorted(points)
    if not ids:
        raise MirkitError("no descriptor file could be loaded")
    ref = _layout_of(points[ids[0]])
    kept = []
    for pid in ids:
        layout = _layout_of(points[pid])
        if layout != ref:
            reason = "incompatible layout (" + _layout_difference(ref, layout) + ")"
            report.dropped_points[pid] = reason
            warn(f"{pid}: could not merge point because it has an {reason}")
            continue
        kept.append(pid)
    first = points[kept[0]]
    names = sorted(ref)
    # every kept point's (kind, values) pairs in ``names`` order (type_record sorts its
    # names, so this is usually the dict's own order)
    values = []
    for pid in kept:
        point = points[pid]
        vals = list(point.values())
        values.append(vals if list(point) == names else [point[n] for n in names])
    second = operator.itemgetter(1)
    # lengths of every descriptor in every point (removevl)
    lengths = np.array([list(map(len, map(second, vals))) for vals in values], dtype=np.int64)
    fixed = (lengths == lengths[0]).all(axis=0) & (lengths[0] > 0)
    report.variable_length.extend(n for n, ok in zip(names, fixed) if not ok)
    kinds, data = {}, {}
    real_cols = [j for j, (n, ok) in enumerate(zip(names, fixed)) if ok and ref[n] == REAL]
    real = [names[j] for j in real_cols]
    if real:
        sizes = [len(first[n][1]) for n in real]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        pick = operator.itemgetter(*real_cols) if len(real_cols) > 1 else \
            (lambda vals: (vals[real_cols[0]],))
        flat = itertools.chain.from_iterable(
            map(second, pick(vals)) for vals in values)
        matrix = np.fromiter(itertools.chain.from_iterable(flat), dtype=np.float32,
                             count=len(kept) * int(offsets[-1])).reshape(len(kept), -1)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(matrix).all(axis=0)
            rng = matrix.max(axis=0) - matrix.min(axis=0) if len(kept) else matrix[0]
        for j, n in enumerate(real):
            lo, hi = offsets[j], offsets[j + 1]
            if clean and (not finite[lo:hi].all() or np.all(rng[lo:hi] < MIN_RANGE)):
                report.cleaned.append(n)
                continue
            kinds[n] = REAL
            data[n] = np.ascontiguousarray(matrix[:, lo:hi])
    for n, ok in zip(names, fixed):
        if not ok or ref[n] == REAL:
            continue
        arr = np.empty((len(kept), len(first[n][1])), dtype=object)
        for i, pid in enumerate(kept):
            arr[i, :] = points[pid][n][1]
        kinds[n] = ref[n]
        data[n] = arr
    return Dataset(kept, kinds, data), report


def load_dataset(filelist, exclude=(), fail_on_unmatched=False, jobs=1, warn=None,
                 records=None, fail=None, scheduler=None):
    """Load and merge descriptor files (``jobs`` processes, or on the Dask cluster of
    ``scheduler``: the paths must then be readable on its workers).

    ``filelist``: ``{id: path}`` (paths already resolved), or None when ``records`` gives
    ``{id: record}`` directly (a record stream). Unreadable points are dropped with a
    warning; returns ``(dataset, report)`` where ``report.dropped_points`` names them.
    """
    from ..parallel import ordered_map
    warn = warn or (lambda text: None)
    points = {}
    failed = {}
    load_cpu = 0.0
    excl = _ExcludeCache(exclude, fail_on_unmatched)
    if records is not None:
        for pid, record in records.items():
            try:
                points[pid] = excl(type_record(record, pid), pid)
            except MirkitError as exc:
                failed[pid] = exc.reason
    else:
        items = sorted(filelist.items())
        # a path listed for several ids is a record stream (mkgroundtruth --label -l): read
        # it once and pick the records by id instead of reading it once per id
        by_path = {}
        for pid, path in items:
            by_path.setdefault(path, []).append(pid)
        shared = {path: pids for path, pids in by_path.items() if len(pids) > 1}
        for path, pids in sorted(shared.items()):
            try:
                found = stream_records(path, set(pids))
            except MirkitError as exc:
                found, reason = {}, str(exc if exc.source else MirkitError(exc.reason, path))
            else:
                reason = str(MirkitError("no record with this id in the stream", path))
            for pid in pids:
                try:
                    if pid not in found:
                        raise MirkitError(reason)
                    points[pid] = excl(type_record(found[pid], path), path)
                except MirkitError as exc:
                    if "didn't match any descriptor" in exc.reason or "ambiguous" in exc.reason:
                        raise
                    failed[pid] = str(exc)
        items = [(pid, path) for pid, path in items if path not in shared]
        results = ordered_map(_load_one, [(pid, path, tuple(exclude), fail_on_unmatched)
                                          for pid, path in items], jobs=jobs,
                               scheduler=scheduler)
        load_cpu = 0.0
        for (pid, path), (res, cpu) in zip(items, results):
            load_cpu += cpu
            if isinstance(res, MirkitError):
                if "didn't match any descriptor" in res.reason or "ambiguous" in res.reason:
                    raise res
                failed[pid] = str(res)
            else:
                points[pid] = res
    for pid, reason in sorted(failed.items()):
        (fail or warn)(f"{pid}: could not read point: {reason}")
    dataset, report = merge_points(points, warn)
    report.load_cpu = load_cpu if records is None else 0.0
    for pid, reason in failed.items():
        report.dropped_points[pid] = f"could not read: {reason}"
    return dataset, report


def _load_one(args):
    """(typed point or MirkitError, CPU seconds spent) for one file."""
    pid, path, exclude, fail = args
    start = time.process_time()
    try:
        res = load_typed_file(path, exclude, fail, item_id=pid)
    except MirkitError as exc:
        res = exc if exc.source else MirkitError(exc.reason, path)
    except (OSError, RecursionError, MemoryError) as exc:  # pragma: no cover - defensive
        res = MirkitError(str(exc), path)
    return res, time.process_time() - start


def essentia_version(path_or_record):
    """``metadata.version.essentia`` of a descriptor file or record, or None.

    A record written by mirkit's ``extract`` has no ``essentia`` version but the "music 2.0"
    layout of Essentia 2.1-beta6 (``tonal.key_edma``..., no ``tonal.key_key``): it counts as
    ``2.1-beta6`` (beta5 template), so that a generated project matches its descriptors."""
    record = path_or_record
    if not isinstance(record, dict):
        try:
            record = load_single_record(path_or_record)
        except MirkitError as exc:
            if not exc.reason.startswith("expected one record"):
                raise
            # a record stream: its first record speaks for it
            from ..streams import read_file
            record = next((r for r in read_file(path_or_record) if isinstance(r, dict)), {})
    version = record.get("metadata", {}).get("version") if isinstance(
        record.get("metadata"), dict) else None
    if not isinstance(version, dict):
        return None
    if "essentia" not in version:
        return "2.1-beta6" if "mirkit" in version else None
    value = version["essentia"]
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def resolve_paths(filelist, base_dir):
    return {k: (v if os.path.isabs(v) else os.path.normpath(os.path.join(base_dir, v)))
            for k, v in filelist.items()}
