"""The command-line base shared by the six tools (csvkit's utility idea).

A tool subclasses :class:`Tool`, declares its options in ``add_arguments`` and does its work
in ``run``. The base gives every tool the same behaviour: ``--help``/``--version``, input
files or stdin (``-``), ``-o FILE`` written atomically, ``-f msgpack|json``, ``-q``/``-v``,
a progress bar on stderr only when stderr is a terminal, messages ``progname: input:
reason``, and the exit status of design.md §4:

* 0 success;
* 1 some inputs failed (each reported) but the rest were processed;
* 2 usage error, or nothing could be done (e.g. a model that does not load, or inputs
  were given and every one of them failed: nothing was produced). Then no ``-o`` file is
  created or replaced, and nothing is written on stdout.
"""

import argparse
import contextlib
import os
import signal
import sys
import time

from . import __version__
from .atomic import atomic_write
from .errors import MirkitError
from .streams import FORMATS, RecordWriter, read_file

EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 2


class _NothingToWrite(Exception):
    """Raised inside :func:`atomic_write` to abandon the temp file: nothing was produced."""


class Progress:
    """A one-line progress indicator on stderr; silent unless stderr is a terminal."""

    def __init__(self, label, total=None, enabled=True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and _isatty(self.stream)
        self.label = label
        self.total = total
        self.count = 0
        self._last = 0.0

    def update(self, n=1):
        self.count += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.count == self.total):
            self._last = now
            if self.total:
                width = 30
                done = int(width * self.count / self.total)
                bar = "#" * done + "-" * (width - done)
                self.stream.write(f"\r{self.label} [{bar}] {self.count}/{self.total}")
            else:
                self.stream.write(f"\r{self.label} {self.count}")
            self.stream.flush()

    def close(self):
        if self.enabled and self.count:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Tool:
    """Base class of every mirkit executable. Subclasses set ``name`` and ``description``."""

    name = "mirkit"
    description = ""
    epilog = None
    #: add the positional ``FILE...`` (``-`` or none = stdin)
    reads_files = True
    #: help text for the positional inputs
    inputs_help = "input files (records, Essentia JSON/YAML); none or '-' reads stdin"
    #: add ``-f/--format`` for record output
    writes_records = True
    #: add ``-o/--output``
    has_output = True

    def __init__(self):
        #: inputs (or items) reported with :meth:`fail`
        self.failures = 0
        #: outputs produced: records written (counted by :meth:`record_writer`), files
        #: written by the tool itself (the tool adds them)
        self.successes = 0
        self.verbosity = 1
        self.parser = self._build_parser()

    # ---- to override -------------------------------------------------------------------
    def add_arguments(self, parser):
        """Add the tool's own options."""

    def run(self, args):
        """Do the work; return an exit status or None (then derived from failures)."""
        raise NotImplementedError

    # ---- parser -------------------------------------------------------------------------
    def _build_parser(self):
        parser = argparse.ArgumentParser(
            prog=self.name, description=self.description, epilog=self.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(parser)
        if self.reads_files:
            parser.add_argument("inputs", nargs="*", metavar="FILE", help=self.inputs_help)
        common = parser.add_argument_group("common options")
        if self.has_output:
            common.add_argument("-o", "--output", metavar="FILE",
                                help="write to FILE (atomically) instead of stdout")
        if self.writes_records:
            common.add_argument("-f", "--format", choices=FORMATS,
                                help="record wire format (default: msgpack, or indented JSON "
                                     "when stdout is a terminal)")
        common.add_argument("-q", "--quiet", action="store_true",
                            help="print errors only (no warnings, no progress)")
        common.add_argument("-v", "--verbose", action="count", default=0,
                            help="print more detail (repeat for more)")
        common.add_argument("--version", action="version",
                            version=f"{self.name} (mirkit) {__version__}")
        return parser

    # ---- entry points -------------------------------------------------------------------
    @classmethod
    def main(cls, argv=None):
        """Entry point of the ``bin/`` script: runs the tool and exits with its status."""
        sys.exit(cls().execute(argv))

    def execute(self, argv=None):
        args = self.parser.parse_args(argv)  # exits 2 on a usage error
        self.verbosity = 0 if args.quiet else 1 + args.verbose
        self.args = args
        try:
            status = self.run(args)
        except MirkitError as exc:
            self.error(exc)
            return EXIT_FATAL
        except KeyboardInterrupt:
            self.error("interrupted")
            return 130
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): not an error of ours
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
        except UnicodeEncodeError as exc:
            # a name that is not valid UTF-8 (a non-UTF-8 file name) going into a text file
            bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else ""
            self.error(f"cannot write {bad.encode('utf-8', 'surrogateescape')!r} into a UTF-8 "
                       f"file: use file names that are valid UTF-8")
            return EXIT_FATAL
        except OSError as exc:
            # an environment failure nobody turned into a MirkitError (a directory that cannot
            # be created, a full disk...): one line naming the file, not a traceback
            where = exc.filename if exc.filename is not None else "error"
            self.error(os.fsdecode(where) if isinstance(where, bytes) else where,
                       exc.strerror or str(exc))
            return EXIT_FATAL
        if status is None:
            status = (EXIT_FATAL if self.nothing_done() else
                      EXIT_PARTIAL if self.failures else EXIT_OK)
        return status

    def nothing_done(self):
        """True when inputs failed and nothing was produced (design.md §4: exit status 2,
        no -o file created or replaced). An empty input with no failure is not this case."""
        return bool(self.failures) and not self.successes

    # ---- diagnostics ----------------------------------------------------------------------
    def _say(self, text):
        sys.stderr.write(f"{self.name}: {text}\n")
        sys.stderr.flush()

    def error(self, what, reason=None):
        """Print ``progname: input: reason`` (or a MirkitError) on stderr."""
        self._say(str(what) if reason is None else f"{what}: {reason}")

    def fail(self, what, reason=None):
        """Report one failed input; the batch goes on and the exit status becomes 1."""
        self.failures += 1
        self.error(what, reason)

    def warn(self, text):
        if self.verbosity >= 1:
            self._say(f"warning: {text}")

    def info(self, text, level=2):
        if self.verbosity >= level:
            self._say(text)

    def progress(self, label, total=None):
        enabled = self.verbosity >= 1
        args = getattr(self, "args", None)
        output = getattr(args, "output", None)
        if self.writes_records and (not output or output == "-") and _isatty(sys.stdout):
            # records are printed on the same terminal as the bar: it would garble them
            enabled = False
        return Progress(f"{self.name}: {label}", total, enabled=enabled)

    # ---- inputs ---------------------------------------------------------------------------
    def input_paths(self, args):
        return list(args.inputs) or ["-"]

    def iter_records(self, paths):
        """Yield ``(source, record)`` for every record of every input; bad inputs and bad
        items are reported with :meth:`fail` and skipped."""
        for path in paths:
            try:
                for item in read_file(path):
                    if isinstance(item, MirkitError):
                        self.fail(item)
                    else:
                        yield path, item
            except MirkitError as exc:
                self.fail(exc if exc.source else MirkitError(exc.reason, path))

    # ---- outputs --------------------------------------------------------------------------
    @contextlib.contextmanager
    def output_binary(self, args):
        """Binary output: stdout, or the -o file written atomically at the end."""
        path = getattr(args, "output", None)
        if path and path != "-":
            try:
                with atomic_write(path, "wb") as fh:
                    yield fh
                    if self.nothing_done():
                        raise _NothingToWrite
            except _NothingToWrite:
                self.warn(f"{path}: not written: no input could be processed")
        else:
            yield sys.stdout.buffer
            sys.stdout.flush()

    @contextlib.contextmanager
    def record_writer(self, args):
        """A RecordWriter on the tool's output in the chosen/default format."""
        with self.output_binary(args) as fh:
            fmt = getattr(args, "format", None)
            indent = None
            if fmt is None:
                fmt = "json" if fh is sys.stdout.buffer and _isatty(sys.stdout) else "msgpack"
                indent = 2 if fmt == "json" else None
            writer = RecordWriter(fh, fmt, indent=indent)
            yield writer
            writer.flush()
            self.successes += writer.count

    def write_text(self, args, text):
        """Write a text result to stdout or, atomically, to -o FILE; nothing at all when
        every input failed (:meth:`nothing_done`)."""
        path = getattr(args, "output", None)
        if self.nothing_done():
            if path and path != "-":
                self.warn(f"{path}: not written: no input could be processed")
            return
        if path and path != "-":
            with atomic_write(path) as fh:
                fh.write(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()


def _jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of jobs: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"number of jobs must be 0 (all cores) or more, "
                                         f"not {value}")
    return value


def add_jobs_argument(parser, default_help="all cores"):
    """``-j/--jobs N`` (default: all cores; 0 also means all cores) and ``--scheduler
    ADDRESS`` (run the work on a Dask distributed cluster, design.md §6). ``default_help``
    says what -j defaults to in --help."""
    parser.add_argument("-j", "--jobs", type=_jobs, default=0, metavar="N",
                        help=f"worker processes (default: {default_help}); with --scheduler, "
                             "at most N tasks at a time on the cluster")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the work on the Dask distributed cluster of this scheduler "
                             "(tcp://host:8786, or a scheduler JSON file) instead of local "
                             "processes; needs the mirkit[dask] extra (pip install "
                             "'dask[distributed]' in mirkit's environment), and mirkit and the "
                             "input files on every worker at the same paths")


def connect_scheduler(args):
    """With ``--scheduler``: connect now (import Dask, reach the scheduler, check the
    workers), so that a missing package or a wrong address fails at once with exit 2."""
    address = getattr(args, "scheduler", None)
    if address:
        from .parallel import dask_client
        dask_client(address)
    return address


# Die quietly on SIGPIPE-like conditions handled above; restore default SIGINT behaviour.
# Only possible in the main thread: a Dask scheduler or worker imports this module from
# another thread when it unpickles a task of extract/gridsearch (--scheduler).
try:
    signal.signal(signal.SIGINT, signal.default_int_handler)
except ValueError:
    pass
