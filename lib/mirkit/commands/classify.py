"""classify: apply classifier models to descriptor records."""

import json

from ..cli import Tool
from ..errors import MirkitError
from ..records import record_id

BATCH = 64


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

    def run(self, args):
        from ..modelio import load_model

        if args.describe:
            model = load_model(args.describe)
            self.write_text(args, json.dumps(model.describe(), indent=2, ensure_ascii=False,
                                             default=str) + "\n")
            return 0
        if not args.model:
            self.parser.error("give at least one -m MODEL (or --describe MODEL)")
        if len(args.name) > len(args.model):
            self.parser.error("more --name than -m options")
        names = args.name + [None] * (len(args.model) - len(args.name))
        models = [load_model(spec, name=name) for spec, name in zip(args.model, names)]
        seen = {}
        for m in models:
            if m.name in seen:
                raise MirkitError(f"two models write highlevel.{m.name}; give one of them "
                                  f"--name")
            seen[m.name] = True

        progress = self.progress("classify")
        with self.record_writer(args) as writer:
            batch = []
            for item in self._numbered(self.iter_records(self.input_paths(args))):
                batch.append(item)
                if len(batch) >= BATCH:
                    self._flush(batch, models, writer, args, progress)
                    batch = []
            if batch:
                self._flush(batch, models, writer, args, progress)
        progress.close()
        return None

    @staticmethod
    def _numbered(items):
        counts = {}
        for source, record in items:
            counts[source] = counts.get(source, 0) + 1
            yield source, counts[source], record

    def _flush(self, batch, models, writer, args, progress):
        records = [record for _, _, record in batch]
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
        for (source, number, record), error, out in zip(batch, errors, outputs):
            rid = record_id(record)
            # name the record: its id, and where it came from
            label = f"{source}: {rid}" if rid else f"{source}: record {number}"
            if error is not None:
                self.fail(label, error.reason)
                progress.update()
                continue
            if args.only_highlevel:
                record = {k: record[k] for k in ("metadata", "highlevel") if k in record}
            high = record.get("highlevel")
            if not isinstance(high, dict):
                high = record["highlevel"] = {}
            high.update(out)
            writer.write(record)
            progress.update()


def main(argv=None):
    ClassifyTool.main(argv)
