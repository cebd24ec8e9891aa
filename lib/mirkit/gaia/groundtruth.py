"""Gaia groundtruth and filelist YAML files (gaia.md §1.1, §1.2).

A groundtruth is ``{className, groundTruth: {id: label}, type, version}``, plus in mirkit an
optional ``groups: {id: group}`` map (artist, album...) used by ``gridsearch --group-by
groups`` to keep every item of a group in one fold. A filelist is a flat map ``{id: path}``.

Ids and labels are always strings: keys are read with :mod:`mirkit.yamlio`, which keeps
``00`` as the string ``"00"`` (plain YAML 1.1 would read the integer 0), and scalar labels
written unquoted (``1``, ``true``) are turned back into their text.

Validation follows Gaia: ``className`` and ``groundTruth`` are required; ``version`` and
``type`` must be present, and the file is refused only when **both** ``version != 1.0`` and
``type != 'singleClass'`` (Gaia's check uses ``and``; AcousticBrainz writes
``type: unknown``).
"""

import os
from dataclasses import dataclass, field

from .. import yamlio
from ..atomic import write_text
from ..errors import MirkitError


@dataclass
class GroundTruth:
    """A labelled set of track ids. ``labels`` keeps the file's (YAML document) order,
    which Gaia's fold assignment depends on (gaia.md §6.1)."""

    class_name: str
    labels: dict = field(default_factory=dict)
    groups: dict = None
    version: float = 1.0
    type: str = "singleClass"

    @property
    def classes(self):
        """The sorted class list (Gaia's classMapping order)."""
        return sorted(set(self.labels.values()))

    def class_counts(self):
        counts = {}
        for label in self.labels.values():
            counts[label] = counts.get(label, 0) + 1
        return counts

    def restricted(self, ids):
        """A copy keeping only ``ids`` (in this groundtruth's order)."""
        keep = set(ids)
        labels = {k: v for k, v in self.labels.items() if k in keep}
        groups = None
        if self.groups is not None:
            groups = {k: v for k, v in self.groups.items() if k in keep}
        return GroundTruth(self.class_name, labels, groups, self.version, self.type)


def _scalar_text(value, what, source):
    """A YAML scalar as the text a user wrote (labels, groups, paths)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if value is None:
        raise MirkitError(f"{what} is empty", source)
    raise MirkitError(f"{what} must be a string, got a {type(value).__name__}", source)


def _as_map(obj, what, source):
    if not isinstance(obj, dict):
        kind = "nothing" if obj is None else f"a {type(obj).__name__}"
        raise MirkitError(f"{what} must be a map, got {kind}", source)
    return obj


def groundtruth_from_data(data, source=None):
    """Validate a loaded groundtruth document and build a :class:`GroundTruth`."""
    data = _as_map(data, "groundtruth file", source)
    missing = [k for k in ("className", "groundTruth") if k not in data]
    if missing:
        raise MirkitError("groundtruth file has incorrect format: missing "
                          + " and ".join(repr(k) for k in missing), source)
    if "version" not in data or "type" not in data:
        raise MirkitError("groundtruth file should contain at least the 'version' and the "
                          "'type' fields", source)
    version, gttype = data["version"], data["type"]
    try:
        version_ok = float(version) == 1.0
    except (TypeError, ValueError):
        version_ok = False
    if not version_ok and gttype != "singleClass":
        raise MirkitError(f"unsupported groundtruth version {version!r} and type {gttype!r} "
                          f"(expected version 1.0 or type singleClass)", source)
    class_name = data["className"]
    if not isinstance(class_name, str) or not class_name:
        raise MirkitError("groundtruth className must be a non-empty string", source)
    gt_map = _as_map(data["groundTruth"], "groundTruth", source)
    labels = {}
    for key, value in gt_map.items():
        labels[str(key)] = _scalar_text(value, f"label of {key!r}", source)
    if not labels:
        raise MirkitError("groundTruth is empty", source)
    groups = None
    if data.get("groups") is not None:
        gmap = _as_map(data["groups"], "groups", source)
        groups = {str(k): _scalar_text(v, f"group of {k!r}", source) for k, v in gmap.items()}
        unknown = [k for k in groups if k not in labels]
        if unknown:
            raise MirkitError(f"groups names {len(unknown)} id(s) not in groundTruth, e.g. "
                              f"{unknown[0]!r}", source)
    return GroundTruth(class_name, labels, groups,
                       float(version) if version_ok else version, gttype)


def load_groundtruth(path):
    """Read and validate a groundtruth YAML file; MirkitError naming the file on failure."""
    return groundtruth_from_data(yamlio.load(path, gaia=False), str(path))


def groundtruth_to_data(gt):
    data = {
        "version": 1.0,
        "type": "singleClass",
        "className": gt.class_name,
        "groundTruth": dict(gt.labels),
    }
    if gt.groups:
        data["groups"] = dict(gt.groups)
    return data


def save_groundtruth(path, gt):
    """Serialise ``gt`` as Gaia writes it (``{version: 1.0, type: singleClass, className,
    groundTruth}``, plus ``groups`` when present). Ids keep the groundtruth's order. Writes
    ``path`` atomically when given (not None); returns the text either way."""
    data = groundtruth_to_data(gt)
    text = yamlio.dump(data, sort_keys=True)
    if path is not None:
        write_text(path, text)
    return text


def load_filelist(path):
    """Read a filelist YAML ``{id: path}``; the paths are returned as written (relative paths
    are resolved by the caller, see :func:`resolve_filelist`)."""
    data = yamlio.load(path, gaia=False)
    if data is None:
        raise MirkitError("filelist is empty", str(path))
    data = _as_map(data, "filelist", str(path))
    out = {}
    for key, value in data.items():
        out[str(key)] = _scalar_text(value, f"path of {key!r}", str(path))
    return out


def save_filelist(mapping):
    """Filelist YAML text for ``{id: path}`` (ids sorted, as Gaia's scripts write it)."""
    return yamlio.dump({str(k): str(v) for k, v in mapping.items()}, sort_keys=True)


def resolve_filelist(mapping, base_dir):
    """Resolve relative paths against ``base_dir`` (Gaia resolves them against the project
    file's directory, gaia.md §1.2)."""
    out = {}
    for key, value in mapping.items():
        out[key] = value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))
    return out


def check_consistent(gt, filelist, gt_source="groundtruth", fl_source="filelist"):
    """Gaia's exit-4 check: the groundtruth ids must equal the filelist ids."""
    gt_ids, fl_ids = set(gt.labels), set(filelist)
    if gt_ids != fl_ids:
        only_gt = sorted(gt_ids - fl_ids)
        only_fl = sorted(fl_ids - gt_ids)
        parts = []
        if only_gt:
            parts.append(f"{len(only_gt)} id(s) missing from the filelist (e.g. {only_gt[0]!r})")
        if only_fl:
            parts.append(f"{len(only_fl)} id(s) not in the groundtruth (e.g. {only_fl[0]!r})")
        raise MirkitError(f"track ids found in {gt_source} are inconsistent with {fl_source}: "
                          + "; ".join(parts), gt_source)
