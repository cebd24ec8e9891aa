"""A bounded, safe reader and a writer for the subset of Qt 4 ``QDataStream`` used by Gaia.

Written from the format description in ``history-format.md`` §2 (Qt 4 semantics, big-endian):
integers, doubles, ``QString`` (UTF-16BE with a u32 byte length, 0xFFFFFFFF = null),
``QByteArray``, ``QList``/``QStringList``/``QMap`` (u32 count) and ``QVariant`` (u32 type id,
u8 isNull, value).

Safety rules of the reader, whatever the bytes:

* every length or count field is checked against the bytes that remain *before* anything is
  allocated or looped over (an element needs at least one byte), so a corrupt length can never
  cause a large allocation or a long loop;
* nesting (QVariant lists/maps inside each other) is limited to :data:`MAX_DEPTH`;
* the only exception raised is :class:`QDataStreamError` (a :class:`~mirkit.errors.MirkitError`)
  with the byte offset of the fault.

QVariant values are returned as plain Python data: Map -> ``dict`` (keys sorted, whatever order
the stream used), List -> ``list``, StringList -> ``list`` of ``str``, String -> ``str`` (a null
QString -> ``None``), Int/UInt/LongLong -> ``int``, Double/Float -> ``float``, Bool -> ``bool``,
ByteArray -> ``bytes``, invalid -> ``None``.
"""

import struct

import numpy as np

from ..errors import MirkitError

MAX_DEPTH = 64

# Qt 4 QVariant::Type ids
QV_INVALID = 0
QV_BOOL = 1
QV_INT = 2
QV_UINT = 3
QV_LONGLONG = 4
QV_ULONGLONG = 5
QV_DOUBLE = 6
QV_MAP = 8
QV_LIST = 9
QV_STRING = 10
QV_STRINGLIST = 11
QV_BYTEARRAY = 12
QV_FLOAT = 135

NULL_LENGTH = 0xFFFFFFFF

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_F32 = struct.Struct(">f")
_QV_DOUBLE_ITEM = np.dtype([("type", ">u4"), ("null", "u1"), ("value", ">f8")])


class QDataStreamError(MirkitError):
    """Malformed QDataStream data; ``offset`` is the byte offset of the fault."""

    def __init__(self, reason, source=None, offset=None):
        if offset is not None:
            reason = f"{reason} (at byte {offset})"
        super().__init__(reason, source)
        self.offset = offset


class Reader:
    """Read Qt 4 QDataStream items from ``data`` (bytes), never past its end."""

    def __init__(self, data, source=None, start=0, end=None):
        self.data = memoryview(bytes(data)) if not isinstance(data, (bytes, memoryview)) \
            else memoryview(data)
        self.pos = start
        self.end = len(self.data) if end is None else end
        self.source = source

    # -- basics ---------------------------------------------------------------------------
    def error(self, reason, offset=None):
        return QDataStreamError(reason, self.source, self.pos if offset is None else offset)

    def remaining(self):
        return self.end - self.pos

    def at_end(self):
        return self.pos >= self.end

    def need(self, n, what):
        if n < 0 or n > self.end - self.pos:
            raise self.error(f"truncated or corrupt data: {what} needs {n} bytes, "
                             f"{self.end - self.pos} left")

    def raw(self, n, what="bytes"):
        self.need(n, what)
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def _unpack(self, st, what):
        self.need(st.size, what)
        value = st.unpack_from(self.data, self.pos)[0]
        self.pos += st.size
        return value

    def u8(self, what="byte"):
        self.need(1, what)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self, what="quint32"):
        return self._unpack(_U32, what)

    def i32(self, what="qint32"):
        return self._unpack(_I32, what)

    def i64(self, what="qint64"):
        return self._unpack(_I64, what)

    def u64(self, what="quint64"):
        return self._unpack(_U64, what)

    def f64(self, what="double"):
        return self._unpack(_F64, what)

    def f32(self, what="float"):
        return self._unpack(_F32, what)

    def boolean(self, what="bool"):
        value = self.u8(what)
        if value > 1:
            raise self.error(f"corrupt data: {what} is {value}, not 0 or 1", self.pos - 1)
        return bool(value)

    def count(self, what, min_item_size=1):
        """A u32 element count, checked: ``count * min_item_size`` bytes must remain."""
        start = self.pos
        n = self.u32(what + " count")
        if n * min_item_size > self.end - self.pos:
            raise self.error(f"corrupt data: {what} count {n} exceeds the remaining "
                             f"{self.end - self.pos} bytes", start)
        return n

    # -- Qt types -------------------------------------------------------------------------
    def qstring(self, what="QString"):
        start = self.pos
        n = self.u32(what + " length")
        if n == NULL_LENGTH:
            return None
        if n % 2:
            raise self.error(f"corrupt data: {what} has an odd UTF-16 byte length {n}", start)
        raw = self.raw(n, what)
        try:
            return raw.decode("utf-16-be")
        except UnicodeDecodeError:
            raise self.error(f"corrupt data: {what} is not valid UTF-16", start) from None

    def qbytearray(self, what="QByteArray"):
        n = self.u32(what + " length")
        if n == NULL_LENGTH:
            return None
        return self.raw(n, what)

    def qstringlist(self, what="QStringList"):
        n = self.count(what, 4)
        return [self.qstring(what + " item") for _ in range(n)]

    def qvariant(self, what="QVariant", depth=0):
        if depth > MAX_DEPTH:
            raise self.error(f"corrupt data: {what} nested deeper than {MAX_DEPTH} levels")
        start = self.pos
        type_id = self.u32(what + " type")
        self.u8(what + " isNull flag")
        if type_id == QV_INVALID:
            self.qstring(what + " (invalid)")
            return None
        if type_id == QV_BOOL:
            return self.boolean(what)
        if type_id == QV_INT:
            return self.i32(what)
        if type_id == QV_UINT:
            return self.u32(what)
        if type_id == QV_LONGLONG:
            return self.i64(what)
        if type_id == QV_ULONGLONG:
            return self.u64(what)
        if type_id == QV_DOUBLE:
            return self.f64(what)
        if type_id == QV_FLOAT:
            return self.f32(what)
        if type_id == QV_STRING:
            return self.qstring(what)
        if type_id == QV_STRINGLIST:
            return self.qstringlist(what)
        if type_id == QV_BYTEARRAY:
            return self.qbytearray(what)
        if type_id == QV_LIST:
            n = self.count(what + " list", 5)
            return self._variant_list(n, what, depth)
        if type_id == QV_MAP:
            n = self.count(what + " map", 9)
            out = {}
            for _ in range(n):
                key = self.qstring(what + " map key")
                if key is None:
                    key = ""
                out[key] = self.qvariant(what, depth + 1)
            return {k: out[k] for k in sorted(out)}
        raise self.error(f"corrupt or unsupported data: QVariant type {type_id}", start)

    def _variant_list(self, n, what, depth):
        # Fast path: a run of Doubles (13 bytes each) read with one numpy view.
        out = []
        while len(out) < n:
            left = n - len(out)
            avail = (self.end - self.pos) // 13
            k = min(left, avail)
            if k > 0 and _U32.unpack_from(self.data, self.pos)[0] == QV_DOUBLE:
                arr = np.frombuffer(self.data, dtype=_QV_DOUBLE_ITEM, count=k, offset=self.pos)
                bad = np.flatnonzero(arr["type"] != QV_DOUBLE)
                run = int(bad[0]) if bad.size else k
                out.extend(arr["value"][:run].tolist())
                self.pos += 13 * run
                if run:
                    continue
            out.append(self.qvariant(what, depth + 1))
        return out

    def qmap(self, key_reader, value_reader, what="QMap", min_item_size=2):
        n = self.count(what, min_item_size)
        out = {}
        for _ in range(n):
            key = key_reader()
            out[key] = value_reader()
        return {k: out[k] for k in sorted(out)}


class Writer:
    """Write Qt 4 QDataStream items (big-endian) into a growing buffer."""

    def __init__(self):
        self.parts = []

    def getvalue(self):
        return b"".join(self.parts)

    def raw(self, data):
        self.parts.append(bytes(data))

    def u8(self, v):
        self.parts.append(bytes([v & 0xFF]))

    def u32(self, v):
        self.parts.append(_U32.pack(v))

    def i32(self, v):
        self.parts.append(_I32.pack(v))

    def f64(self, v):
        self.parts.append(_F64.pack(v))

    def boolean(self, v):
        self.u8(1 if v else 0)

    def qstring(self, s):
        if s is None:
            self.u32(NULL_LENGTH)
            return
        data = s.encode("utf-16-be")
        self.u32(len(data))
        self.parts.append(data)

    def qbytearray(self, b):
        if b is None:
            self.u32(NULL_LENGTH)
            return
        self.u32(len(b))
        self.parts.append(bytes(b))

    def qstringlist(self, items):
        self.u32(len(items))
        for s in items:
            self.qstring(s)

    def qvariant(self, value):
        """Encode plain Python data as a QVariant (the inverse of Reader.qvariant).

        bool -> Bool, int -> Int (qint32), float -> Double, str -> String, bytes -> ByteArray,
        dict -> Map (written in descending key order, as Qt 4 does), list of str -> StringList,
        other list/tuple/ndarray -> List, None -> invalid.
        """
        if value is None:
            self.u32(QV_INVALID)
            self.u8(1)
            self.qstring(None)
        elif isinstance(value, (bool, np.bool_)):
            self.u32(QV_BOOL)
            self.u8(0)
            self.boolean(bool(value))
        elif isinstance(value, (int, np.integer)):
            self.u32(QV_INT)
            self.u8(0)
            self.i32(int(value))
        elif isinstance(value, (float, np.floating)):
            self.u32(QV_DOUBLE)
            self.u8(0)
            self.f64(float(value))
        elif isinstance(value, str):
            self.u32(QV_STRING)
            self.u8(0)
            self.qstring(value)
        elif isinstance(value, (bytes, bytearray)):
            self.u32(QV_BYTEARRAY)
            self.u8(0)
            self.qbytearray(value)
        elif isinstance(value, dict):
            self.u32(QV_MAP)
            self.u8(0)
            self.u32(len(value))
            for key in sorted(value, reverse=True):
                self.qstring(str(key))
                self.qvariant(value[key])
        elif isinstance(value, (list, tuple, np.ndarray)):
            items = list(value)
            if items and all(isinstance(s, str) for s in items):
                self.u32(QV_STRINGLIST)
                self.u8(0)
                self.qstringlist(items)
            else:
                self.u32(QV_LIST)
                self.u8(0)
                self.u32(len(items))
                for item in items:
                    self.qvariant(item)
        else:
            raise MirkitError(f"cannot encode a {type(value).__name__} as a QVariant")
