"""json2sig: Essentia JSON/YAML files or records -> Gaia `.sig` files (+ filelist)."""

import os

from ..cli import Tool
from ..errors import MirkitError
from ..records import record_id
from ..sigfiles import safe_stem, sig_path_for, strip_for_gaia, write_sig
from ..streams import load_single_record


class Json2Sig(Tool):
    name = "json2sig"
    description = (
        "Convert Essentia descriptor files (JSON, YAML) or mirkit records to Gaia .sig YAML.\n\n"
        "filelist mode:  json2sig --filelist filelist.yaml -o result_filelist.yaml\n"
        "  converts each listed file to a .sig next to it (as Gaia's json_to_sig.py) and\n"
        "  writes the new filelist (id -> .sig path).\n"
        "stream mode:    extract *.flac | json2sig -d sigs/ > filelist.yaml\n"
        "  writes one .sig per record into DIR, named after the record id, and prints the\n"
        "  filelist YAML.")
    writes_records = False
    inputs_help = "stream mode: record streams or Essentia JSON/YAML files; none or '-' reads stdin"

    def add_arguments(self, parser):
        parser.add_argument("--filelist", metavar="FILE",
                            help="filelist mode: YAML map id -> descriptor file; relative paths "
                                 "are resolved against the filelist's directory")
        parser.add_argument("-d", "--directory", metavar="DIR",
                            help="stream mode: directory for the .sig files (created with the "
                                 "first one)")
        parser.add_argument("--keep-all", action="store_true",
                            help="keep metadata.tags, metadata.audio_properties.sample_rate and "
                                 ".lossless (Gaia's json_to_sig removes them)")

    def run(self, args):
        if args.filelist:
            if args.inputs or args.directory:
                self.parser.error("--filelist takes no FILE arguments and no -d")
            return self.run_filelist(args)
        if not args.directory:
            self.parser.error("give --filelist FILE, or -d DIR for stream mode")
        return self.run_stream(args)

    def convert(self, record, path):
        if not self.args.keep_all:
            strip_for_gaia(record)
        write_sig(path, record)
        self.successes += 1

    def run_filelist(self, args):
        from ..gaia.groundtruth import load_filelist, save_filelist

        filelist = load_filelist(args.filelist)
        base = os.path.dirname(args.filelist)
        result = {}
        failed = []
        progress = self.progress("converting", len(filelist))
        for track_id, path in filelist.items():
            full = path if os.path.isabs(path) else os.path.join(base, path)
            try:
                if os.path.normpath(sig_path_for(full)) == os.path.normpath(full):
                    # the .sig would replace its own input (and lose the tags for good)
                    raise MirkitError("already a .sig file: converting it would overwrite "
                                      "the input (use -d DIR to write converted copies)", full)
                self.convert(load_single_record(full), sig_path_for(full))
                result[track_id] = sig_path_for(path)
            except MirkitError as exc:
                failed.append(track_id)
                self.fail(exc if exc.source else MirkitError(exc.reason, full))
            progress.update()
        progress.close()
        if failed:
            self.error(f"failed to convert {len(failed)} of {len(filelist)} file(s)")
        self.write_text(args, save_filelist(result))

    def run_stream(self, args):
        from ..gaia.groundtruth import save_filelist

        directory = args.directory
        if text_name(directory) != directory:
            raise MirkitError("directory name is not valid UTF-8: the filelist (UTF-8 YAML) "
                              "could not name the .sig files in it", text_name(directory))
        _check_directory(directory)
        result = {}
        used = {}
        for source, record in self.iter_records(self.input_paths(args)):
            rid = record_id(record)
            if rid is None:
                if source == "-":
                    self.fail(source, "record has no id (metadata.id, "
                                      "metadata.tags.musicbrainz_trackid or file_name)")
                    continue
                rid = text_name(os.path.splitext(os.path.basename(source))[0])
            if rid in result:
                self.fail(source, f"duplicate record id {rid!r}: kept the first one")
                continue
            stem = safe_stem(rid)
            if stem in used:  # two ids sanitised to one name: never overwrite
                stem = safe_stem(rid + "\0")
            path = os.path.join(directory, stem + ".sig")
            if not result:  # created with the first .sig, not when nothing converts
                _make_directory(directory)
            try:
                self.convert(record, path)
            except MirkitError as exc:
                self.fail(exc)
                continue
            used[stem] = rid
            result[rid] = path
        self.write_text(args, save_filelist(result))


def text_name(name):
    """A file name as valid UTF-8 text (the rule of extract's record ids): bytes that are not
    UTF-8 become \\xHH."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_directory(directory):
    """Fail early (exit 2) when -d DIR could not be created or written, without creating it:
    the nearest existing ancestor must be a writable directory."""
    existing = os.path.abspath(directory)
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise MirkitError("not a directory" if existing == os.path.abspath(directory)
                          else f"cannot create the directory: {existing} is not a directory",
                          directory)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MirkitError("directory is not writable" if existing == os.path.abspath(directory)
                          else f"cannot create the directory: {existing} is not writable",
                          directory)


def _make_directory(directory):
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise MirkitError(f"cannot create the directory: {exc.strerror or exc}",
                          directory) from None


def main(argv=None):
    Json2Sig.main(argv)
