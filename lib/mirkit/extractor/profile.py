"""Extractor options and ``--profile`` YAML files (Essentia's profile keys, extractor.md §2).

Options are a flat dict keyed by Essentia's dotted profile names, e.g.::

    {"startTime": 0.0, "endTime": 1e6, "analysisSampleRate": 44100.0,
     "lowlevel.frameSize": 2048, "lowlevel.stats": ["mean", ...], "tonal.hopSize": 2048, ...}

A profile is the nested YAML form (``lowlevel: {frameSize: 2048, stats: [mean, var]}``);
its values replace the defaults. Unlike Essentia (MTG/essentia#871), the stats lists
(``lowlevel.stats``, ``lowlevel.mfccStats``, ``lowlevel.gfccStats``, ``rhythm.stats``,
``tonal.stats``) work. ``mergeValues: {path: string}`` copies strings into the record.
"""

from .. import yamlio
from ..errors import MirkitError
from .stats import COV_STATS, DEFAULT_STATS, check_stats

DEFAULTS = {
    "startTime": 0.0,
    "endTime": 1.0e6,
    "analysisSampleRate": 44100.0,
    "requireMbid": False,
    "lowlevel.frameSize": 2048,
    "lowlevel.hopSize": 1024,
    "lowlevel.zeroPadding": 0,
    "lowlevel.windowType": "blackmanharris62",
    "lowlevel.silentFrames": "noise",
    "lowlevel.stats": list(DEFAULT_STATS),
    "lowlevel.mfccStats": list(COV_STATS),
    "lowlevel.gfccStats": list(COV_STATS),
    "average_loudness.frameSize": 88200,
    "average_loudness.hopSize": 44100,
    "rhythm.method": "degara",
    "rhythm.minTempo": 40,
    "rhythm.maxTempo": 208,
    "rhythm.stats": list(DEFAULT_STATS),
    "tonal.frameSize": 4096,
    "tonal.hopSize": 2048,
    "tonal.zeroPadding": 0,
    "tonal.windowType": "blackmanharris62",
    "tonal.silentFrames": "noise",
    "tonal.stats": list(DEFAULT_STATS),
    "highlevel.compute": False,
    "highlevel.svm_models": [],
    "chromaprint.compute": False,
    "chromaprint.duration": 0.0,
    "outputFrames": False,
    "outputFormat": "json",
    "indent": 4,
    "downmix": "mix",
}

_INT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
_FLOAT_KEYS = {"startTime", "endTime", "analysisSampleRate", "chromaprint.duration"}
_STATS_KEYS = {"lowlevel.stats", "lowlevel.mfccStats", "lowlevel.gfccStats", "rhythm.stats",
               "tonal.stats"}
_CHOICES = {"lowlevel.silentFrames": ("noise", "keep", "drop"),
            "tonal.silentFrames": ("noise", "keep", "drop"),
            "rhythm.method": ("degara", "multifeature"),
            "downmix": ("mix", "left", "right")}


def default_options():
    """A fresh copy of the defaults."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULTS.items()}


def _flatten(node, prefix, out):
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "mergeValues":
            _flatten(value, name + ".", out)
        else:
            out[name] = value


def normalise(options, source="options"):
    """Check types and values; returns a new dict. Raises MirkitError naming the key."""
    out = {}
    for key, value in options.items():
        if key == "mergeValues":
            if not isinstance(value, dict):
                raise MirkitError("mergeValues must be a map of descriptor name -> string", source)
            out[key] = {str(k): str(v) for k, v in value.items()}
            continue
        try:
            if key in _STATS_KEYS:
                if isinstance(value, str):
                    value = [s.strip() for s in value.split(",") if s.strip()]
                if not isinstance(value, (list, tuple)):
                    raise ValueError("expected a list of statistics")
                try:
                    value = check_stats([str(s) for s in value], key)
                except MirkitError as exc:  # name the profile file, as the other key errors do
                    raise MirkitError(f"profile key {exc.reason}", source) from None
            elif key in _INT_KEYS:
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError("expected an integer")
                value = int(float(value))
            elif key in _FLOAT_KEYS:
                value = float(value)
            elif key in ("requireMbid", "highlevel.compute", "chromaprint.compute", "outputFrames"):
                value = bool(value)
        except (TypeError, ValueError) as exc:
            raise MirkitError(f"profile key {key}: {exc} (got {value!r})", source) from None
        if key in _CHOICES and value not in _CHOICES[key]:
            raise MirkitError(f"profile key {key}: must be one of {', '.join(_CHOICES[key])} "
                              f"(got {value!r})", source)
        out[key] = value
    for key in ("lowlevel.frameSize", "lowlevel.hopSize", "tonal.frameSize", "tonal.hopSize",
                "average_loudness.frameSize", "average_loudness.hopSize"):
        if key in out and out[key] <= 0:
            raise MirkitError(f"profile key {key}: must be positive (got {out[key]})", source)
    if out.get("lowlevel.frameSize", 2048) < 2048 and key_present(options, "lowlevel.frameSize"):
        raise MirkitError("profile key lowlevel.frameSize: at least 2048 is needed by the "
                          "128-band mel filterbank (as in Essentia)", source)
    if "analysisSampleRate" in out and out["analysisSampleRate"] != 44100.0:
        raise MirkitError("profile key analysisSampleRate: only 44100 is supported "
                          "(the only rate at which Essentia's extractor is consistent)", source)
    if out.get("startTime", 0.0) < 0 or out.get("endTime", 1.0) < 0:
        raise MirkitError("startTime/endTime must not be negative", source)
    return out


def key_present(options, key):
    return key in options


def load_profile(path):
    """Read a profile YAML file into a flat, checked options dict (only the keys it sets)."""
    data = yamlio.load(path, gaia=False)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MirkitError("a profile must be a YAML map", path)
    flat = {}
    _flatten(data, "", flat)
    unknown = [k for k in flat if k not in DEFAULTS and k != "mergeValues"
               and not k.startswith("highlevel.") and not k.startswith("chromaprint.")]
    if unknown:
        raise MirkitError(f"unknown profile key(s): {', '.join(sorted(unknown))}", path)
    return normalise(flat, path)


def make_options(profile=None, **overrides):
    """Defaults, then the profile file's values, then explicit overrides (None ignored)."""
    opts = default_options()
    if profile:
        opts.update(load_profile(profile))
    extra = {k: v for k, v in overrides.items() if v is not None}
    opts.update(normalise(extra, "options"))
    for key in ("chromaprint.compute", "highlevel.compute"):
        if opts.get(key):
            raise MirkitError(f"profile key {key}: not supported by mirkit (use classify for "
                              "high-level models)" if key.startswith("highlevel") else
                              f"profile key {key}: chromaprint is not supported by mirkit")
    if opts["endTime"] <= opts["startTime"]:
        raise MirkitError(f"end time {opts['endTime']} s is not after start time {opts['startTime']} s")
    return opts
