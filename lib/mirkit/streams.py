"""Record streams: msgpack or JSON sequences of records, read one at a time, and their writers.

Readers auto-detect the wire format from the first byte (design.md §3): a msgpack map
(0x80-0x8f, 0xde, 0xdf), JSON (``{`` after optional whitespace, objects one per line or
concatenated/pretty as jq accepts), or a YAML document (Essentia's YAML output). Memory use
is bounded by the largest single record, not by the stream.

Non-finite numbers: strict JSON has none, so the JSON writer puts ``null`` in place of NaN,
Infinity and -Infinity (as JavaScript's JSON.stringify and jq do; msgpack keeps them as they
are). The JSON reader reads ``null`` as NaN (outside ``metadata``), and also accepts
Python's ``NaN``/``Infinity`` and the bare ``nan``/``inf``/``-inf`` that Essentia's
YamlOutput writes in its JSON files.

A truncated or corrupt stream raises :class:`StreamError` naming the byte offset (and line,
for JSON) of the fault, after every complete record before it has been yielded. A complete
value that is not a record (a JSON number, a msgpack list) is yielded as a
:class:`MirkitError` instance in its place, so that the caller reports it and goes on.
"""

import codecs
import io
import json
import math
import os
import re
import sys

import msgpack

from . import yamlio
from .errors import MirkitError, StreamError
from .records import check_record

FORMATS = ("msgpack", "json")
_CHUNK = 1 << 16
_MAX_RECORD_BYTES = 1 << 28  # 256 MiB: bounds what a corrupt length field can make us allocate
_MSGPACK_MAP_FIRST = set(range(0x80, 0x90)) | {0xDE, 0xDF}
_JSON_WS = b" \t\r\n"


def _is_msgpack_start(byte):
    return byte in _MSGPACK_MAP_FIRST


class _CountingReader(io.RawIOBase):
    """Wraps a binary file, counting the bytes handed out (to detect truncated msgpack)."""

    def __init__(self, head, raw):
        self._head = head
        self._raw = raw
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buf):
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            data = self._raw.read(len(buf))
            n = len(data)
            buf[:n] = data
        self.count += n
        return n


def _binary(fileobj):
    return getattr(fileobj, "buffer", fileobj)


def audio_kind(head):
    """The kind of audio file whose leading bytes are ``head``, or None. Audio is never a
    valid record stream (a filelist of audio files instead of descriptor files)."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[:3] == b"ID3" and head[3:4] in (b"\x02", b"\x03", b"\x04"):
        return "MP3"
    # an MPEG layer III frame sync (not the FF FE of a UTF-16 byte-order mark)
    if head[:1] == b"\xff" and head[1:2] and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02:
        return "MP3"
    return None


def read_records(fileobj, source="-"):
    """Yield the records of a binary (or text-with-.buffer) stream, auto-detecting the format.

    Each item is a dict, or a MirkitError standing for one complete non-record value.
    StreamError is raised for a corrupt or truncated stream (after all good records).
    """
    raw = _binary(fileobj)
    head = b""
    # skip leading whitespace to find the first significant byte
    while True:
        chunk = raw.read(_CHUNK)
        if not chunk:
            if head.strip(_JSON_WS):
                break
            return  # empty stream: no records
        head += chunk
        if head.lstrip(_JSON_WS):
            break
    stripped = head.lstrip(_JSON_WS)
    first = stripped[0]
    kind = audio_kind(head)
    if kind:
        raise StreamError(f"this is an audio file ({kind}), not descriptor records: "
                          "describe it with extract first", source, 0)
    if len(stripped) == len(head) and _is_msgpack_start(first):
        yield from _read_msgpack(head, raw, source)
    elif first in b"{[":
        yield from _read_json(head, raw, source)
    elif first in b"0123456789-\"tfn":
        yield from _read_json(head, raw, source)
    else:
        yield from _read_yaml(head, raw, source)


def _read_msgpack(head, raw, source):
    counter = _CountingReader(head, raw)
    unpacker = msgpack.Unpacker(
        io.BufferedReader(counter, _CHUNK), raw=False, strict_map_key=False,
        max_buffer_size=_MAX_RECORD_BYTES)
    done = 0
    index = 0
    while True:
        try:
            obj = next(unpacker)
        except StopIteration:
            break
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError,
                UnicodeDecodeError, TypeError) as exc:
            raise StreamError(f"corrupt msgpack stream at byte offset {done} (after {index} "
                              f"record(s)): {exc or type(exc).__name__}", source, done) from None
        except msgpack.OutOfData:  # pragma: no cover - file-like unpackers stop instead
            break
        done = unpacker.tell()
        index += 1
        yield _as_record(obj, source, f"item {index} (byte offset {done})")
    # a file-like Unpacker stops silently on a partial object: compare with what it read
    buffered = counter.count - done
    if buffered > 0:
        raise StreamError(f"truncated msgpack stream at byte offset {done} (after {index} "
                          f"record(s)): {buffered} trailing byte(s) do not form a record",
                          source, done)


def _as_record(obj, source, where):
    try:
        return check_record(obj)
    except MirkitError as exc:
        return MirkitError(f"{where}: {exc.reason}", source)


_WS_RE = re.compile(r"\s*")
# Essentia's JSON writes non-finite reals as bare nan, inf, -inf (not JSON): found outside
# strings and rewritten as Python's NaN/Infinity, which json accepts
_ESSENTIA_CONSTANT = re.compile(r"-?(?:nan|inf)(?![\w.])")
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|(-?)(nan|inf)(?![\w.])', re.S)


def _python_constant(match):
    if match.group(2) is None:
        return match.group(0)   # a string: unchanged
    if match.group(2) == "nan":
        return "NaN"
    return "-Infinity" if match.group(1) else "Infinity"


def _nan_for_null(obj, top=True):
    """``null`` (how mirkit writes NaN and infinities in JSON) read back as NaN, in the
    descriptors: ``metadata`` (ids, tags) is left as it is."""
    if top and isinstance(obj, dict):
        return {k: v if k == "metadata" else _nan_for_null(v, False) for k, v in obj.items()}
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: _nan_for_null(v, False) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_for_null(v, False) for v in obj]
    return obj


def _null_for_nonfinite(obj):
    """NaN, Infinity and -Infinity as None (JSON ``null``), numpy values as plain data."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _null_for_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_null_for_nonfinite(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _null_for_nonfinite(obj.tolist())
    return obj


def _read_json(head, raw, source):
    """JSON values one after another (lines, concatenated or pretty). ``pos`` walks through
    the decoded buffer; the buffer is compacted only when more input is needed."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    state = {"bytes": 0}  # byte offset of buf[0] in the stream

    def feed(data, final=False):
        try:
            return utf8.decode(data, final)
        except UnicodeDecodeError:
            raise StreamError(f"invalid UTF-8 in JSON stream after byte offset {state['bytes']}",
                              source, state["bytes"]) from None

    buf = feed(head)
    pos = 0
    eof = False
    line = 1
    index = 0

    def more(size):
        """Drop the consumed part of the buffer and append up to ``size`` more bytes."""
        nonlocal buf, pos, eof
        state["bytes"] += len(buf[:pos].encode("utf-8"))
        buf = buf[pos:]
        pos = 0
        data = raw.read(size)
        if not data:
            eof = True
            buf += feed(b"", True)
        else:
            buf += feed(data)

    while True:
        ws_end = _WS_RE.match(buf, pos).end()
        line += buf.count("\n", pos, ws_end)
        pos = ws_end
        if pos == len(buf):
            if eof:
                return
            more(_CHUNK)
            continue
        try:
            obj, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if _ESSENTIA_CONSTANT.match(buf, exc.pos):
                # Essentia's nan/inf: rewrite them in the rest of the buffer, decode again
                # (byte offsets in later messages count the rewritten text)
                fixed = buf[:pos] + _STRING_OR_CONSTANT.sub(_python_constant, buf[pos:])
                if fixed != buf:
                    buf = fixed
                    continue
            incomplete = exc.pos >= len(buf) - 64 or exc.msg.startswith("Unterminated string")
            offset = state["bytes"] + len(buf[:pos].encode("utf-8"))
            if not eof and incomplete:
                if len(buf) - pos > _MAX_RECORD_BYTES:
                    raise StreamError(f"JSON value at byte offset {offset} (line {line}) exceeds "
                                      f"{_MAX_RECORD_BYTES} bytes", source, offset) from None
                # read as much again as the value so far: amortised linear time
                more(max(_CHUNK, len(buf) - pos))
                continue
            at_end = exc.pos >= len(buf.rstrip()) or exc.msg.startswith("Unterminated string")
            kind = "truncated" if at_end else "corrupt"
            raise StreamError(f"{kind} JSON stream at byte offset {offset} (line {line}, after "
                              f"{index} record(s)): {exc.msg} at line "
                              f"{line + buf.count(chr(10), pos, exc.pos)}", source, offset) from None
        except RecursionError:
            offset = state["bytes"] + len(buf[:pos].encode("utf-8"))
            raise StreamError(f"JSON value at byte offset {offset} (line {line}) is nested too "
                              f"deeply", source, offset) from None
        if end == len(buf) and not eof and not isinstance(obj, (dict, list, str)):
            more(_CHUNK)  # a bare number or literal may go on in the next chunk
            continue
        offset = state["bytes"] + len(buf[:pos].encode("utf-8"))
        if end < len(buf) and not buf[end].isspace() and buf[end - 1] not in "}]\"":
            raise StreamError(f"corrupt JSON stream at byte offset {offset} (line {line}, after "
                              f"{index} record(s)): unexpected data after a value", source, offset)
        if buf.find("null", pos, end) >= 0:
            obj = _nan_for_null(obj)
        index += 1
        where = f"item {index} (byte offset {offset}, line {line})"
        line += buf.count("\n", pos, end)
        pos = end
        yield _as_record(obj, source, where)


def _read_yaml(head, raw, source):
    data = head + raw.read()
    obj = yamlio.loads(data, source=source)
    if obj is None:
        return
    yield _as_record(obj, source, "YAML document")


def _is_yaml_path(path):
    return os.path.splitext(str(path))[1].lower() in (".yaml", ".yml", ".sig")


def read_file(path):
    """Yield the records of one file: a stream (msgpack/JSON), an Essentia JSON file, or an
    Essentia YAML / Gaia .sig file. MirkitError naming the file if it cannot be opened."""
    if path == "-":
        yield from read_records(sys.stdin.buffer, "-")
        return
    if _is_yaml_path(path):
        obj = yamlio.load(path)
        if obj is not None:
            yield _as_record(obj, path, "YAML document")
        return
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise MirkitError(exc.strerror or str(exc), path) from None
    with fh:
        yield from read_records(fh, path)


def load_single_record(path):
    """Read a file that must hold exactly one record (a descriptor file); MirkitError if not."""
    items = list(read_file(path))
    if len(items) != 1:
        raise MirkitError(f"expected one record, found {len(items)}", path)
    if isinstance(items[0], MirkitError):
        raise MirkitError(items[0].reason, path)
    return items[0]


def to_plain(obj):
    """Convert numpy scalars/arrays (and tuples) inside ``obj`` to plain Python data."""
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    return obj


def _default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class RecordWriter:
    """Writes records to a binary stream as msgpack or JSON (one object per line, or
    indented when ``indent`` is set). Numpy values are converted on the way out."""

    def __init__(self, fileobj, fmt="msgpack", indent=None):
        if fmt not in FORMATS:
            raise MirkitError(f"unknown format {fmt!r} (choose msgpack or json)")
        self.fh = _binary(fileobj)
        self.fmt = fmt
        self.indent = indent
        self.count = 0
        if fmt == "msgpack":
            self._packer = msgpack.Packer(default=_default, use_bin_type=True)

    def write(self, record):
        if self.fmt == "msgpack":
            data = self._packer.pack(record)
        else:
            try:
                text = json.dumps(record, default=_default, indent=self.indent,
                                  ensure_ascii=False, allow_nan=False)
            except ValueError:  # NaN or an infinity: strict JSON has none, write null
                text = json.dumps(_null_for_nonfinite(record), default=_default,
                                  indent=self.indent, ensure_ascii=False, allow_nan=False)
            data = (text + "\n").encode("utf-8")
        self.fh.write(data)
        self.count += 1

    def flush(self):
        self.fh.flush()
