"""mkgroundtruth: write a Gaia groundtruth (and filelist) from class folders, a TSV/CSV
table, or records and a label key."""

import collections
import csv
import os

from ..cli import Tool
from ..errors import MirkitError
from ..records import get_path, record_id
from .json2sig import text_name

DESCRIPTOR_SUFFIXES = (".json", ".yaml", ".yml", ".sig", ".msgpack", ".mp")


def _scalar_label(value):
    """A tag value as one string: Essentia stores tags as lists of strings."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


class MkGroundtruth(Tool):
    name = "mkgroundtruth"
    description = (
        "Write a Gaia groundtruth YAML (className, groundTruth, type, version, optional groups)\n"
        "and, with -l, the filelist YAML, from one of three sources:\n"
        "  mkgroundtruth DIR            sub-folders of DIR are the classes (ids: relative paths\n"
        "                               without extension)\n"
        "  mkgroundtruth TABLE.tsv      rows 'id<TAB>label[<TAB>group]' (.csv: commas)\n"
        "  extract ... | mkgroundtruth --label metadata.tags.genre [--group metadata.tags.artist]\n"
        "Duplicate ids and empty labels are errors (the entry is skipped, exit status 1);\n"
        "a class with fewer items than --folds is a warning.")
    writes_records = False
    inputs_help = "a class directory, a TSV/CSV table, or (with --label) record files; none or '-' reads records from stdin"

    def add_arguments(self, parser):
        parser.add_argument("-c", "--class-name", metavar="NAME",
                            help="className (default: the directory or table name, or the last "
                                 "part of --label)")
        parser.add_argument("-l", "--filelist", metavar="FILE",
                            help="also write the filelist YAML (id -> file) to FILE")
        parser.add_argument("--label", metavar="KEY",
                            help="records mode: dotted descriptor name holding the class label")
        parser.add_argument("--group", metavar="KEY",
                            help="records mode: dotted name of the group (artist, album) for "
                                 "filtered folds")
        parser.add_argument("--ext", action="append", metavar="SUFFIX",
                            help="directory mode: only files with this suffix (repeatable; "
                                 "default: every regular file)")
        parser.add_argument("--folds", type=int, default=5, metavar="N",
                            help="warn about classes with fewer than N items (default 5)")

    def run(self, args):
        self.labels = {}
        self.groups = {}
        self.files = {}
        if args.label:
            class_name = self.from_records(args)
        else:
            if args.group:
                self.parser.error("--group needs --label (records mode); tables take a third column")
            if len(args.inputs) != 1:
                self.parser.error("give one class directory or one TSV/CSV table "
                                  "(or --label KEY for records)")
            source = args.inputs[0]
            if os.path.isdir(source):
                class_name = self.from_directory(source, args.ext)
            elif os.path.exists(source):
                class_name = self.from_table(source)
            else:
                raise MirkitError("no such file or directory", source)
        if not self.labels:
            raise MirkitError("no labelled items found", " ".join(args.inputs) or "-")
        self.check_class_sizes(args.folds)
        from ..gaia.groundtruth import GroundTruth, save_filelist, save_groundtruth

        gt = GroundTruth(args.class_name or class_name, dict(sorted(self.labels.items())),
                         dict(sorted(self.groups.items())) or None)
        if args.filelist:
            if len(self.files) != len(self.labels):
                raise MirkitError("no file is known for records read from stdin; give the "
                                  "record files as arguments to write a filelist", args.filelist)
            from ..atomic import write_text
            # relative paths are written relative to the filelist's own directory, the rule
            # json2sig, gridsearch and retrain resolve them by (they were relative to the
            # current directory: `-l sub/fl.yaml` then broke json2sig --filelist sub/fl.yaml)
            base = os.path.dirname(os.path.abspath(args.filelist))
            files = {pid: path if os.path.isabs(path) else
                     os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")
                     for pid, path in self.files.items()}
            write_text(args.filelist, save_filelist(dict(sorted(files.items()))))
        self.write_text(args, save_groundtruth(None, gt))

    def add(self, item_id, label, source, group=None, path=None):
        if path is not None and self.args.filelist and text_name(path) != path:
            self.fail(text_name(path), "file name is not valid UTF-8: the filelist (UTF-8 "
                                       "YAML) cannot name it")
            return
        if item_id in self.labels:
            self.fail(source, f"duplicate id {item_id!r} (kept the first, label "
                              f"{self.labels[item_id]!r})")
            return
        if not label:
            self.fail(source, f"empty label for id {item_id!r}")
            return
        self.labels[item_id] = label
        self.successes += 1
        if group:
            self.groups[item_id] = group
        if path is not None:
            self.files[item_id] = path

    def from_directory(self, top, suffixes):
        suffixes = tuple(s if s.startswith(".") else "." + s for s in suffixes or ())
        for label in sorted(os.listdir(top)):
            class_dir = os.path.join(top, label)
            if label.startswith(".") or not os.path.isdir(class_dir):
                continue
            for root, dirs, names in os.walk(class_dir):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith(".") or (suffixes and not name.endswith(suffixes)):
                        continue
                    path = os.path.normpath(os.path.join(root, name))
                    rel = os.path.relpath(path, top)
                    # valid UTF-8 as extract's ids: undecodable bytes become \xHH
                    item_id = text_name(os.path.splitext(rel)[0].replace(os.sep, "/"))
                    self.add(item_id, text_name(label), path, path=path)
        return os.path.basename(os.path.normpath(os.path.abspath(top)))

    def from_table(self, path):
        delimiter = "," if path.lower().endswith(".csv") else "\t"
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh, delimiter=delimiter))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise MirkitError(getattr(exc, "strerror", None) or str(exc), path) from None
        first = True
        for lineno, row in enumerate(rows, 1):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            # a header row (id, label[, group]) as spreadsheets write it is not an item
            header = first and [c.strip().lower() for c in row[:2]] == ["id", "label"]
            first = False
            if header:
                continue
            where = f"{path}:{lineno}"
            if len(row) < 2:
                self.fail(where, "expected 'id<sep>label[<sep>group]'")
                continue
            item_id, label = row[0].strip(), row[1].strip()
            group = row[2].strip() if len(row) > 2 else None
            self.add(item_id, label, where, group=group)
        return os.path.splitext(os.path.basename(path))[0]

    def from_records(self, args):
        for source, record in self.iter_records(self.input_paths(args)):
            rid = record_id(record)
            if rid is None:
                self.fail(source, "record has no id (metadata.id, "
                                  "metadata.tags.musicbrainz_trackid or file_name)")
                continue
            label = _scalar_label(get_path(record, args.label, None))
            if not label:
                self.fail(f"{source}: {rid}", f"no label at {args.label}")
                continue
            group = _scalar_label(get_path(record, args.group, None)) if args.group else None
            if args.group and not group:
                self.warn(f"{source}: {rid}: no group at {args.group}")
            self.add(rid, label, f"{source}: {rid}", group=group,
                     path=None if source == "-" else source)
        return args.label.rsplit(".", 1)[-1]

    def check_class_sizes(self, folds):
        counts = collections.Counter(self.labels.values())
        for label, count in sorted(counts.items()):
            if count < folds:
                self.warn(f"class {label!r} has {count} item(s), fewer than {folds} folds")


def main(argv=None):
    MkGroundtruth.main(argv)
