"""Converting records to Gaia `.sig` files (Gaia's ``json_to_sig.py``, gaia.md §1.3)."""

import hashlib
import os
import re

from . import yamlio
from .atomic import write_text
from .records import delete_path

#: removed by Gaia's json_to_sig: they "break gaia_fusion due to incompatibility of layouts"
GAIA_INCOMPATIBLE = ("metadata.tags", "metadata.audio_properties.sample_rate",
                     "metadata.audio_properties.lossless")

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_MAX_STEM = 120


def strip_for_gaia(record):
    """Remove the descriptors Gaia's json_to_sig removes (in place); returns the record."""
    for name in GAIA_INCOMPATIBLE:
        delete_path(record, name)
    return record


def write_sig(path, record):
    """Write ``record`` atomically as a `.sig` YAML file."""
    write_text(path, yamlio.dump_sig(record))


def sig_path_for(json_path):
    """Gaia's rule: the `.sig` lies next to the JSON, same stem."""
    return os.path.splitext(json_path)[0] + ".sig"


def safe_stem(record_id):
    """A file name stem derived from a record id that cannot escape its directory.

    Characters outside ``[A-Za-z0-9._+-]`` become ``_``, leading dots are dropped and long
    ids are shortened; whenever the id had to be changed, 8 hex digits of its SHA-1 are
    appended so that two ids never map to one name (``a/b`` vs ``a_b``).
    """
    stem = _UNSAFE.sub("_", record_id).lstrip(".")
    if stem != record_id or len(stem) > _MAX_STEM or not stem:
        digest = hashlib.sha1(record_id.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        stem = f"{stem[:_MAX_STEM]}-{digest}" if stem else digest
    return stem
