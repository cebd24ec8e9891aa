"""Atomic file writes: a temp file in the target's directory, fsync, then rename.

An interrupted run (even SIGKILL) leaves either the old file or the complete new one,
never a half-written model, report or .sig.
"""

import contextlib
import os
import tempfile

from .errors import MirkitError


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Context manager yielding a file object; ``path`` appears only if the block succeeds."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise MirkitError("cannot write: is a directory", path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".~" + os.path.basename(path) + ".", dir=directory)
    except OSError as exc:
        raise MirkitError(f"cannot write: {exc.strerror or exc}", path) from None
    try:
        binary = "b" in mode
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": encoding})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise MirkitError(f"cannot write: {exc.strerror or exc}", path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_write(path) as fh:
        fh.write(text)


def write_bytes(path, data):
    """Atomically replace ``path`` with ``data``."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
