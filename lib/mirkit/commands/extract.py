"""extract: audio files in, Essentia "music 2.0" descriptor records out (see extract(1))."""

import os
import sys

from ..cli import Tool, add_jobs_argument, connect_scheduler
from ..errors import MirkitError
from ..extractor import profile as profile_mod
from .tfoptions import add_graph_arguments, graph_options

NAMESPACE_CHOICES = ("lowlevel", "rhythm", "tonal")


def _parse_descriptors(text):
    text = (text or "all").strip()
    if text == "all":
        return NAMESPACE_CHOICES
    if text == "none":
        return ()
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [n for n in names if n not in NAMESPACE_CHOICES]
    if bad:
        raise MirkitError(f"--descriptors: unknown namespace(s) {', '.join(bad)} "
                          f"(use all, none or a list of {', '.join(NAMESPACE_CHOICES)})")
    return names


def _work(item):
    """Run in a worker: (path, options[, name shown]) -> (kind, payload). Never raises for
    bad input. With --scheduler the path is absolute and the name shown the one given."""
    path, options = item[:2]
    from ..extractor.pipeline import extract_file
    from ..extractor.audio import display_name
    shown = display_name(item[2] if len(item) > 2 else path)
    try:
        result = extract_file(path, options, source=shown)
    except MirkitError as exc:
        if exc.source is None or exc.source == display_name(path):
            exc.source = shown  # the name given, not the absolute path sent to Dask
        return ("error", str(exc))
    except MemoryError:
        return ("error", f"{shown}: out of memory")
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        return ("error", f"{shown}: internal error: {type(exc).__name__}: {exc}")
    return ("ok", result)


class ExtractTool(Tool):
    name = "extract"
    description = ("Describe audio files with Essentia's music extractor descriptors "
                   "(\"music 2.0\" layout): one record per file on stdout.")
    inputs_help = "audio files; none or '-' reads paths from stdin, one per line"
    epilog = ("examples:\n"
              "  extract song.flac -f json\n"
              "  find music -name '*.ogg' | extract -j 4 > descriptors.msgpack\n"
              "  extract --profile profile.yaml --start 30 --end 60 song.wav")

    def add_arguments(self, parser):
        parser.add_argument("--profile", metavar="YAML",
                            help="Essentia extractor profile (startTime, endTime, lowlevel.*, "
                                 "rhythm.*, tonal.*, *stats lists, mergeValues)")
        parser.add_argument("--start", type=float, metavar="SECONDS",
                            help="analyse from this time (profile key startTime)")
        parser.add_argument("--end", type=float, metavar="SECONDS",
                            help="analyse up to this time (profile key endTime)")
        parser.add_argument("--frames", action="store_true",
                            help="after each statistics record, also emit the frame-wise "
                                 "record (Essentia's outputFrames; metadata.frames = 1)")
        parser.add_argument("--frames-only", action="store_true",
                            help="emit only the frame-wise records")
        parser.add_argument("--descriptors", default="all", metavar="LIST",
                            help="namespaces to compute: all (default), none (metadata and "
                                 "models only) or a comma list of lowlevel,rhythm,tonal")
        parser.add_argument("--model", action="append", default=[], metavar="NAME|PATH",
                            help="run a TensorFlow audio model (repeatable); predictions go "
                                 "to highlevel.<name>")
        parser.add_argument("--embeddings", action="store_true",
                            help="with --model, also store embeddings.<name>")
        parser.add_argument("--allow-any-op", action="store_true",
                            help="UNSAFE: run TensorFlow graphs with ops outside the allow-list "
                                 "(file, network, py_func...); only for models you trust")
        add_graph_arguments(parser, audio=True)
        add_jobs_argument(parser)

    def input_paths(self, args):
        paths = [p for p in args.inputs if p != "-"]
        if not args.inputs or "-" in args.inputs:
            data = sys.stdin.buffer.read()
            from ..streams import audio_kind
            if audio_kind(data[:16]) or b"\0" in data:
                # `extract < song.wav`: a thousand "no such file" lines for binary garbage
                kind = audio_kind(data[:16])
                raise MirkitError("standard input holds "
                                  + (f"{kind} audio" if kind else "binary data")
                                  + ", not file names (one per line): give the audio files "
                                    "as arguments", "-")
            for line in data.split(b"\n"):
                line = line.rstrip(b"\r")
                if line.strip():
                    paths.append(os.fsdecode(line))
        return paths

    def run(self, args):
        options = profile_mod.make_options(args.profile, startTime=args.start, endTime=args.end)
        options["descriptors"] = _parse_descriptors(args.descriptors)
        # the profile's outputFrames: true works like --frames
        options["outputFrames"] = bool(args.frames or args.frames_only or options.get("outputFrames"))
        if args.model:
            options["models"] = list(args.model)
            options["embeddings"] = bool(args.embeddings)
            options["allow_any_op"] = bool(args.allow_any_op)
            options["model_options"] = graph_options(args)
            _check_models(args.model, options["model_options"])
        elif args.embeddings:
            raise MirkitError("--embeddings needs at least one --model")
        scheduler = connect_scheduler(args)
        paths = self.input_paths(args)
        if not paths:
            raise MirkitError("no audio files given (as arguments or on stdin)")
        from ..parallel import ordered_map
        jobs = args.jobs if args.jobs or scheduler else min(len(paths), _default_jobs())
        # on Dask workers, relative paths would resolve against the worker's directory
        items = (((os.path.abspath(p), options, p) if scheduler else (p, options)) for p in paths)
        progress = self.progress("extracting", len(paths))
        with self.record_writer(args) as writer:
            for kind, payload in ordered_map(_work, items, jobs, scheduler=scheduler,
                                             lost=_lost):
                progress.update()
                if kind == "error":
                    self.fail(payload)
                    continue
                if options["outputFrames"]:
                    record, frames = payload
                    frames["metadata"]["frames"] = 1.0
                    if not args.frames_only:
                        writer.write(record)
                    writer.write(frames)
                else:
                    writer.write(payload)
        progress.close()
        return None  # 0, 1 (some files failed), 2 (every file failed: Tool.nothing_done)


def _check_models(models, model_options=None):
    """Fail early (exit 2) when the TF backend is missing or a model cannot be found."""
    try:
        import importlib
        tf_extract = importlib.import_module("mirkit.tf.extract")
        run_models = getattr(tf_extract, "run_models")
    except (ModuleNotFoundError, AttributeError):
        raise MirkitError("--model: TensorFlow models are not available in this installation "
                          "(mirkit.tf.extract.run_models is missing)") from None
    resolve = getattr(tf_extract, "resolve", None)
    if resolve is not None and run_models is not None:
        for spec in models:
            path = resolve(spec)
            # refuse what is not an audio model once, here, rather than once per file
            if os.path.isfile(path) and not path.endswith(".pb"):
                raise MirkitError("not a TensorFlow model (a .pb file or a SavedModel "
                                  "directory); apply .model and .history models with "
                                  f"classify -m {path}", path)
            try:
                from ..tf.models import ModelInfo
            except ImportError:
                continue
            if ModelInfo(path, **(model_options or {})).front_end == "head":
                raise MirkitError("this is a classification head, not an audio model; apply "
                                  f"it with classify -m {path}", path)


def _lost(item, reason):
    """--scheduler: the file whose task killed its Dask workers (a crash, out of memory)."""
    from ..extractor.audio import display_name
    return ("error", f"{display_name(item[-1])}: {reason}")


def _default_jobs():
    from ..parallel import default_jobs
    return default_jobs()


def main(argv=None):
    ExtractTool.main(argv)
