"""classify: apply classifier models to descriptor records."""

import gc
import json
import os
import sys

import msgpack

from ..cli import Tool
from ..errors import MirkitError, StreamError
from ..records import check_record, record_id
from ..streams import read_file, read_records
from .tfoptions import add_graph_arguments, graph_options

BATCH = 256        # records per predict_many call
GC_EVERY = 64      # batches between full garbage collections while streaming
_READ = 1 << 20
_MAX_RECORD_BYTES = 1 << 28     # as mirkit.streams: bounds what a length field can allocate
_MAP_HEADER = {0xDE: 3, 0xDF: 5}
_MSGPACK_MAP_FIRST = set(range(0x80, 0x90)) | set(_MAP_HEADER)


def _map_header(raw):
    """(entries, header length) of a msgpack map's bytes."""
    first = raw[0]
    if first < 0x90:
        return first & 0x0F, 1
    size = _MAP_HEADER[first]
    return int.from_bytes(raw[1:size], "big"), size


def _plain(obj):
    """msgpack ``default``: numpy values (e.g. from TensorFlow heads) as plain data."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def read_msgpack_raw(fh, source):
    """Yield ``(record, bytes)`` for each item of a msgpack stream (a MirkitError in place of
    a non-record item), keeping each record's own bytes so that it can be written back
    without packing it again. Faults are reported as :func:`mirkit.streams.read_records`
    reports them (StreamError with the byte offset, after every good record)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                max_buffer_size=_MAX_RECORD_BYTES)
    read = getattr(fh, "read1", fh.read)
    buf = bytearray()
    base = start = index = 0
    while True:
        chunk = read(_READ)
        if not chunk:
            break
        try:
            unpacker.feed(chunk)
        except msgpack.BufferFull:
            raise StreamError(f"corrupt msgpack stream at byte offset {start} (after {index} "
                              f"record(s)): an item larger than {_MAX_RECORD_BYTES} bytes",
                              source, start) from None
        buf += chunk
        while True:
            try:
                obj = unpacker.unpack()
            except msgpack.OutOfData:
                break
            except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError,
                    UnicodeDecodeError, TypeError) as exc:
                raise StreamError(f"corrupt msgpack stream at byte offset {start} (after "
                                  f"{index} record(s)): {exc or type(exc).__name__}",
                                  source, start) from None
            end = unpacker.tell()
            index += 1
            raw = bytes(buf[start - base:end - base])
            start = end
            try:
                yield check_record(obj), raw
            except MirkitError as exc:
                yield MirkitError(f"item {index} (byte offset {end}): {exc.reason}",
                                  source), None
        del buf[:start - base]
        base = start
    if buf:
        raise StreamError(f"truncated msgpack stream at byte offset {start} (after {index} "
                          f"record(s)): {len(buf)} trailing byte(s) do not form a record",
                          source, start)


class ClassifyTool(Tool):
    name = "classify"
    description = (
        "Apply classifier models to descriptor records and add, for each model,\n"
        "highlevel.<name> = {value, probability, all} (the shape Essentia's GaiaTransform\n"
        "writes). Models: mirkit .model files (gridsearch/retrain), Gaia .history files,\n"
        "TensorFlow classification heads (.pb or SavedModel directory); by path or by name in\n"
        "MIRKIT_MODELS, ~/.local/share/mirkit/models, models/. Records are written in input\n"
        "order. A record a model cannot use (e.g. missing descriptors) is reported with the\n"
        "record and every missing descriptor, and left out; the batch goes on (exit 1).")
    inputs_help = ("records (msgpack/JSON stream) or Essentia JSON/YAML descriptor files; "
                   "none or '-' reads stdin")

    def add_arguments(self, parser):
        parser.add_argument("-m", "--model", action="append", default=[], metavar="MODEL",
                            help="model file or name (repeatable; applied in order)")
        parser.add_argument("--name", action="append", default=[], metavar="NAME",
                            help="output name of the corresponding -m model (repeatable, in "
                                 "the order of -m; default: the model file's stem)")
        parser.add_argument("--only-highlevel", action="store_true",
                            help="write only metadata and highlevel of each record")
        parser.add_argument("--describe", metavar="MODEL",
                            help="print MODEL's description as JSON and exit")
        parser.add_argument("--history-fresh", action="store_true",
                            help="Gaia .history models: classify every record as with a new "
                                 "GaiaTransform instance (by default one instance serves the "
                                 "whole stream, as in Essentia: descriptor sizes are fixed by "
                                 "the first record and strings unseen in training are numbered "
                                 "in order of appearance)")
        parser.add_argument("--history-lenient", action="store_true",
                            help="Gaia .history models: accept records lacking descriptors the "
                                 "model drops before its SVM (Essentia requires all of its "
                                 "input descriptors); results are unchanged")
        parser.add_argument("--allow-any-op", action="store_true",
                            help="TensorFlow models (.pb, SavedModel): load graphs with ops "
                                 "outside the inference allow-list (UNSAFE: such ops can read "
                                 "or write files; use only with models you trust)")
        add_graph_arguments(parser, audio=False)

    def run(self, args):
        from ..modelio import find_model, load_model

        options = {"fresh": args.history_fresh, "lenient": args.history_lenient,
                   "allow_any_op": args.allow_any_op or None, **graph_options(args)}
        if args.describe:
            if args.inputs or args.model:
                # `classify --describe a.model b.model` described a.model only, silently
                self.parser.error("--describe takes one MODEL and no -m or FILE arguments")
            path = find_model(args.describe)
            if os.path.isdir(path) or path.lower().endswith(".pb"):
                # audio models too (they run in extract, but can be described here)
                from ..tf.models import describe_model
                description = describe_model(path, allow_any_op=bool(args.allow_any_op),
                                             **graph_options(args))
            else:
                description = load_model(path, **options).describe()
            self.write_text(args, json.dumps(description, indent=2, ensure_ascii=False,
                                             default=str) + "\n")
            return 0
        if not args.model:
            self.parser.error("give at least one -m MODEL (or --describe MODEL)")
        if len(args.name) > len(args.model):
            self.parser.error("more --name than -m options")
        names = args.name + [None] * (len(args.model) - len(args.name))
        models = [load_model(spec, name=name, **options)
                  for spec, name in zip(args.model, names)]
        seen = {}
        for m, spec in zip(models, args.model):
            if getattr(m, "unusable", None):
                # e.g. a Gaia history of format 100: it loads (for --describe) but cannot be
                # applied to any record, so nothing could be done
                raise MirkitError(f"model cannot be applied: {m.unusable}",
                                  getattr(m, "path", None) or spec)
            if m.name in seen:
                raise MirkitError(f"two models write highlevel.{m.name}; give one of them "
                                  f"--name")
            seen[m.name] = True

        self._packer = msgpack.Packer(default=_plain, use_bin_type=True)
        progress = self.progress("classify")
        # Records are trees of fresh lists and dicts: the cyclic garbage collector would scan
        # every live one many times per batch (a third of the run time), and they hold no
        # cycles (freed by reference counting). Collect once per GC_EVERY batches instead.
        gc.collect()
        gc.freeze()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self.record_writer(args) as writer:
                # msgpack in and out: a record is written back as its own bytes plus the new
                # highlevel entry, instead of being packed again (a fifth of the run time)
                raw = writer.fmt == "msgpack" and not args.only_highlevel
                reader = self._iter_raw if raw else self._iter_plain
                batch = []
                flushes = 0
                for item in self._numbered(reader(self.input_paths(args))):
                    batch.append(item)
                    if len(batch) >= BATCH:
                        self._flush(batch, models, writer, args, progress)
                        batch = []
                        flushes += 1
                        if flushes % GC_EVERY == 0:
                            gc.collect()
                if batch:
                    self._flush(batch, models, writer, args, progress)
        finally:
            if was_enabled:
                gc.enable()
            gc.unfreeze()
        progress.close()
        return None

    def _iter_plain(self, paths):
        for source, record in self.iter_records(paths):
            yield source, record, None

    def _iter_raw(self, paths):
        """As :meth:`Tool.iter_records`, with each msgpack record's bytes (else None)."""
        for path in paths:
            try:
                if path == "-":
                    fh = sys.stdin.buffer
                    peek = getattr(fh, "peek", None)
                    if peek is None or peek(1)[:1] == b"" \
                            or peek(1)[0] not in _MSGPACK_MAP_FIRST:
                        items = ((r, None) for r in read_records(fh, "-"))
                    else:
                        items = read_msgpack_raw(fh, "-")
                    yield from self._report(path, items)
                    continue
                first = b""
                try:
                    with open(path, "rb") as fh:
                        first = fh.read(1)
                except OSError:
                    pass        # read_file reports it
                if first and first[0] in _MSGPACK_MAP_FIRST:
                    with open(path, "rb") as fh:
                        yield from self._report(path, read_msgpack_raw(fh, path))
                else:
                    yield from self._report(path, ((r, None) for r in read_file(path)))
            except MirkitError as exc:
                self.fail(exc if exc.source else MirkitError(exc.reason, path))

    def _report(self, path, items):
        for item, raw in items:
            if isinstance(item, MirkitError):
                self.fail(item)
            else:
                yield path, item, raw

    @staticmethod
    def _numbered(items):
        counts = {}
        for source, record, raw in items:
            counts[source] = counts.get(source, 0) + 1
            yield source, counts[source], record, raw

    def _flush(self, batch, models, writer, args, progress):
        records = [item[2] for item in batch]
        errors = [None] * len(batch)
        outputs = [dict() for _ in batch]
        for model in models:
            if hasattr(model, "predict_many"):
                try:
                    results = model.predict_many(records)
                except MirkitError as exc:
                    results = [exc] * len(records)
            else:
                results = []
                for record in records:
                    try:
                        results.append(model.predict(record))
                    except MirkitError as exc:
                        results.append(exc)
            for i, res in enumerate(results):
                if errors[i] is not None:
                    continue
                if isinstance(res, MirkitError):
                    errors[i] = res
                else:
                    outputs[i][model.name] = res
        write = writer.write
        for (source, number, record, raw), error, out in zip(batch, errors, outputs):
            if raw is not None and "highlevel" not in record:
                if error is None:
                    entries, size = _map_header(raw)
                    packer = self._packer
                    writer.fh.write(b"".join((packer.pack_map_header(entries + 1),
                                              memoryview(raw)[size:], packer.pack("highlevel"),
                                              packer.pack(out))))
                    writer.count += 1
                    continue
            if error is not None:
                rid = record_id(record)
                # name the record: its id, and where it came from
                label = f"{source}: {rid}" if rid else f"{source}: record {number}"
                self.fail(label, error.reason)
                continue
            if args.only_highlevel:
                record = {k: record[k] for k in ("metadata", "highlevel") if k in record}
            high = record.get("highlevel")
            if type(high) is not dict:
                high = record["highlevel"] = {}
            high.update(out)
            write(record)
        progress.update(len(batch))


def main(argv=None):
    ClassifyTool.main(argv)
