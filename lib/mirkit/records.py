"""Records: one track's descriptor pool as a nested map in Essentia's layout.

Descriptor names are dotted paths (``lowlevel.mfcc.mean``). Leaves are numbers, strings,
lists (vectors) or lists of lists (matrices); maps are never leaves.
"""

from .errors import MirkitError

NAMESPACES = ("metadata", "lowlevel", "rhythm", "tonal", "highlevel", "embeddings")


def flatten(record, prefix=""):
    """Return ``{dotted.name: leaf}`` for every leaf of a nested record, in traversal order."""
    out = {}
    stack = [(prefix, record)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            # reversed so that the output keeps the map's own order
            for key in reversed(list(node)):
                key_s = str(key)
                stack.append((f"{path}.{key_s}" if path else key_s, node[key]))
        else:
            out[path] = node
    return out


def unflatten(flat):
    """Inverse of :func:`flatten`: build a nested record from ``{dotted.name: leaf}``.

    Raises MirkitError when one name is a prefix of another (``a.b`` and ``a.b.c``).
    """
    record = {}
    for name, value in flat.items():
        set_path(record, name, value)
    return record


def get_path(record, name, default=KeyError):
    """Value at dotted ``name``; ``default`` if absent (KeyError raised when not given)."""
    node = record
    for key in name.split("."):
        if not isinstance(node, dict) or key not in node:
            if default is KeyError:
                raise KeyError(name)
            return default
        node = node[key]
    return node


def set_path(record, name, value):
    """Set dotted ``name`` to ``value``, creating intermediate maps."""
    keys = name.split(".")
    node = record
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            raise MirkitError(f"descriptor name clash: {'.'.join(keys[:i + 1])} is a leaf and a namespace")
        node = child
    if isinstance(node.get(keys[-1]), dict) and not isinstance(value, dict):
        raise MirkitError(f"descriptor name clash: {name} is a namespace and a leaf")
    node[keys[-1]] = value


def delete_path(record, name):
    """Remove dotted ``name`` if present; prune maps it leaves empty. Returns True if removed."""
    keys = name.split(".")
    trail = [record]
    node = record
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False
        trail.append(node)
    if keys[-1] not in node:
        return False
    del node[keys[-1]]
    for depth in range(len(keys) - 1, 0, -1):
        if trail[depth]:
            break
        del trail[depth - 1][keys[depth - 1]]
    return True


def _first(value):
    if isinstance(value, list):
        return value[0] if value else None
    return value


def record_id(record):
    """The record id (design.md §3): ``metadata.id``, else ``metadata.tags.musicbrainz_trackid[0]``,
    else ``metadata.tags.file_name``; None when the record has none of them."""
    meta = record.get("metadata") if isinstance(record, dict) else None
    if not isinstance(meta, dict):
        return None
    rid = _first(meta.get("id"))
    if rid not in (None, ""):
        return str(rid)
    tags = meta.get("tags")
    if isinstance(tags, dict):
        for key in ("musicbrainz_trackid", "file_name"):
            rid = _first(tags.get(key))
            if rid not in (None, ""):
                return str(rid)
    return None


def check_record(obj, source=None):
    """Raise MirkitError unless ``obj`` looks like a record (a map of maps / leaves with str keys)."""
    if not isinstance(obj, dict):
        raise MirkitError(f"not a record (a JSON/msgpack map), got {type(obj).__name__}", source)
    for key in obj:
        if not isinstance(key, str):
            raise MirkitError(f"not a record: key {key!r} is not a string", source)
    return obj
