"""Parsing Gaia ``.history`` files (TransfoChain, format versions 100, 101 and 102).

Layout of the file (history-format.md §0, §3-§5)::

    u32 magic 0x6AEA723D, i32 version, u32 n, Transformation[n], [PointLayout if version < 102]

Everything goes through the bounded :class:`~mirkit.gaia.qdatastream.Reader`; every structure
is checked (types, counts, region slots) so that a corrupt file raises
:class:`HistoryFormatError` and nothing else.
"""

from dataclasses import dataclass, field

from ..errors import MirkitError
from .qdatastream import QDataStreamError, Reader

MAGIC = 0x6AEA723D
VERSIONS = (100, 101, 102)
MAX_TREE_DEPTH = 64
MAX_REGION_DIMS = 1_000_000

UNDEFINED, REAL, STRING, ENUM = 0, 1, 2, 3
TYPE_NAMES = {UNDEFINED: "undefined", REAL: "real", STRING: "string", ENUM: "enum"}
FIXED, VARIABLE = 0, 1


class HistoryFormatError(MirkitError):
    """A file that is not a valid Gaia history (corrupt, truncated, inconsistent)."""


@dataclass
class Desc:
    """One descriptor of a layout: full name (``.a.b``), type, fixed-length flag, slot range."""
    name: str
    type: int
    fixed: bool
    begin: int
    end: int

    @property
    def size(self):
        return self.end - self.begin if self.fixed else None


@dataclass
class Layout:
    """A Gaia PointLayout: descriptors by full name (sorted), and the enum maps."""
    descs: dict
    enum2str: dict = field(default_factory=dict)
    str2enum: dict = field(default_factory=dict)

    def names(self):
        return list(self.descs)

    def signature(self):
        """What Gaia compares between layouts: names, types, length types, slots."""
        return [(d.name, d.type, d.fixed, d.begin, d.end) for d in self.descs.values()]


@dataclass
class Transformation:
    name: str
    analyzer: str
    applier: str
    analyzer_params: dict
    params: dict
    info: dict
    layout: Layout = None


@dataclass
class History:
    version: int
    transformations: list
    layout: Layout = None   # the trailing layout of versions < 102
    source: str = None

    def input_layout(self):
        if self.version >= 102:
            return self.transformations[0].layout if self.transformations else None
        return self.layout


def check_regions(descs, source, what="layout"):
    """Check that every storage region holds consecutive slots in ascending name order.

    Gaia stores each point in six regions ({real, string, enum} x {fixed, variable}); within
    one region descriptors occupy consecutive slots, sorted by full name, and a variable-length
    descriptor occupies exactly one slot. Returns the total size of each region.
    """
    next_slot = {}
    for name in sorted(descs):
        d = descs[name]
        if d.type not in (REAL, STRING, ENUM):
            raise HistoryFormatError(f"corrupt {what}: descriptor {name} has type {d.type}",
                                     source)
        key = (d.type, d.fixed)
        expected = next_slot.get(key, 0)
        if d.begin != expected or d.end < d.begin or (not d.fixed and d.end != d.begin + 1):
            raise HistoryFormatError(f"corrupt {what}: descriptor {name} occupies slots "
                                     f"[{d.begin}, {d.end}), expected to start at {expected}",
                                     source)
        if d.end > MAX_REGION_DIMS:
            raise HistoryFormatError(f"corrupt {what}: more than {MAX_REGION_DIMS} dimensions",
                                     source)
        next_slot[key] = d.end
    return next_slot


def _read_tree(r, with_ltype, source):
    """DescriptorTree -> {full name: Desc} for the leaves (iterative, depth-limited)."""
    descs = {}
    seg_size = 20 if with_ltype else 16
    # stack of (prefix, children left to read)
    def segment():
        name = r.qstring("descriptor name")
        if name is None:
            name = ""
        dtype = r.i32("descriptor type")
        ltype = r.i32("descriptor length type") if with_ltype else VARIABLE
        begin = r.i32("descriptor begin")
        end = r.i32("descriptor end")
        nchildren = r.count("descriptor children", seg_size + 4)
        return name, dtype, ltype, begin, end, nchildren

    root = segment()
    stack = [("", root[5])]
    while stack:
        prefix, left = stack[-1]
        if left == 0:
            stack.pop()
            continue
        stack[-1] = (prefix, left - 1)
        name, dtype, ltype, begin, end, nchildren = segment()
        full = prefix + "." + name
        if nchildren:
            if len(stack) >= MAX_TREE_DEPTH:
                raise HistoryFormatError("corrupt layout: descriptor tree too deep", source)
            stack.append((full, nchildren))
            continue
        if ltype not in (FIXED, VARIABLE):
            raise HistoryFormatError(f"corrupt layout: descriptor {full} has length type "
                                     f"{ltype}", source)
        if full in descs:
            raise HistoryFormatError(f"corrupt layout: descriptor {full} appears twice", source)
        descs[full] = Desc(full, dtype, ltype == FIXED, begin, end)
    return {k: descs[k] for k in sorted(descs)}


def read_layout(r, source, with_ltype=True, with_enums=True):
    descs = _read_tree(r, with_ltype, source)
    enum2str, str2enum = {}, {}
    if with_enums:
        enum2str = r.qmap(lambda: r.qstring("enum descriptor") or "",
                          lambda: r.qmap(lambda: r.i32("enum code"),
                                         lambda: r.qstring("enum string") or "",
                                         "enum map", 8),
                          "enum2str map", 8)
        str2enum = r.qmap(lambda: r.qstring("enum descriptor") or "",
                          lambda: r.qmap(lambda: r.qstring("enum string") or "",
                                         lambda: r.i32("enum code"),
                                         "enum map", 8),
                          "str2enum map", 8)
    if with_ltype:
        check_regions(descs, source)
    return Layout(descs, enum2str, str2enum)


def _as_map(value, what, source):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HistoryFormatError(f"corrupt history: {what} is not a map", source)
    return value


def parse_history(data, source=None):
    """Parse the bytes of a ``.history`` file into a :class:`History`."""
    r = Reader(data, source)
    try:
        if len(data) < 12:
            raise HistoryFormatError("not a Gaia history file (too short)", source)
        magic = r.u32("magic")
        if magic != MAGIC:
            raise HistoryFormatError("not a Gaia history file (bad magic number)", source)
        version = r.i32("version")
        if version not in VERSIONS:
            raise HistoryFormatError(f"unsupported Gaia history format version {version} "
                                     f"(known: {', '.join(map(str, VERSIONS))})", source)
        n = r.count("transformation list", 12 + 10)
        transformations = []
        for i in range(n):
            what = f"transformation {i}"
            name = r.qstring(what + " name") or ""
            analyzer = r.qstring(what + " analyzer name") or ""
            applier = r.qstring(what + " applier name") or ""
            analyzer_params = _as_map(r.qvariant(what + " analyzer parameters"),
                                      what + " analyzer parameters", source)
            params = _as_map(r.qvariant(what + " parameters"), what + " parameters", source)
            info = {}
            layout = None
            if version >= 101:
                info = _as_map(r.qvariant(what + " info"), what + " info", source)
            if version >= 102:
                raw = r.qvariant(what + " layout")
                if not isinstance(raw, bytes):
                    raise HistoryFormatError(f"corrupt history: {what} layout is not a byte "
                                             "array", source)
                sub = Reader(raw, source)
                layout = read_layout(sub, source)
                if not sub.at_end():
                    raise HistoryFormatError(f"corrupt history: {sub.remaining()} stray bytes "
                                             f"after the layout of {what}", source)
            transformations.append(Transformation(name, analyzer, applier, analyzer_params,
                                                  params, info, layout))
        trailing = None
        if version < 102:
            trailing = read_layout(r, source, with_ltype=version >= 101,
                                   with_enums=version >= 101)
        if not r.at_end():
            raise HistoryFormatError(f"corrupt history: {r.remaining()} stray bytes after the "
                                     "chain", source)
    except QDataStreamError as exc:
        raise HistoryFormatError(f"corrupt or truncated Gaia history: {exc.reason}",
                                 source) from None
    history = History(version, transformations, trailing, source)
    _update_old(history)
    return history


def _update_old(history):
    """Conversions Gaia applies to records of formats 100/101 (history-format.md §3)."""
    if history.version >= 102:
        return
    for t in history.transformations:
        if history.version == 100 and t.applier == "dotproduct" and "coeffs" not in t.params:
            t.params = {"applyClipping": False, "coeffs": t.params}
        if t.applier == "svmpredict" and "class" in t.params and "className" not in t.params:
            t.params = dict(t.params)
            t.params["className"] = t.params.pop("class")


def read_history(path):
    """Read and parse a ``.history`` file; MirkitError if unreadable or invalid."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise MirkitError(f"cannot read model file: {exc.strerror or exc}", str(path)) from None
    return parse_history(data, str(path))
