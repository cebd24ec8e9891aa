"""Helpers shared by rhythm.py and tonal.py: option lookup, spectral peaks, statistics.

* :func:`option` reads a profile option given as ``section.name`` (the pipeline's flat
  profile dict), Essentia's ``sectionName`` spelling (``tonalFrameSize``) or a bare ``name``.
* :func:`spectral_peaks` is Essentia's SpectralPeaks/PeakDetection (extractor.md §7.2,
  interpolated, plateaus at their middle), vectorised over all the frames of a block
  (re-exported from :mod:`mirkit.extractor.peaks`, shared with lowlevel).
* :func:`aggregate` applies the extractor's PoolAggregator statistics (§5) to one frame-wise
  descriptor with :func:`mirkit.extractor.stats.aggregate`.
"""

import numpy as np

from ..errors import MirkitError

from . import stats as _stats

DEFAULT_STATS = _stats.DEFAULT_STATS


def option(options, section, name, default):
    """Value of option ``name`` of ``section`` ("rhythm"/"tonal") in ``options`` or ``default``."""
    if not options:
        return default
    for key in (f"{section}.{name}", section + name[:1].upper() + name[1:], name):
        if key in options and options[key] is not None:
            return options[key]
    return default


def stats_option(options, section):
    stats = option(options, section, "stats", DEFAULT_STATS)
    if isinstance(stats, str):
        stats = [s.strip() for s in stats.split(",") if s.strip()]
    stats = list(stats)
    known = _stats.KNOWN_STATS
    bad = [s for s in stats if s not in known]
    if bad:
        raise MirkitError(f"{section}.stats: unknown statistic(s) {', '.join(map(str, bad))} "
                          f"(known: {', '.join(known)})")
    return stats


# ---- spectral peaks ------------------------------------------------------------------------

from .peaks import spectral_peaks  # noqa: E402,F401  (one implementation, in peaks.py)


# ---- statistics ----------------------------------------------------------------------------

def aggregate(values, stats=DEFAULT_STATS, name="descriptor"):
    """The statistics record ``{stat: value}`` of one frame-wise descriptor.

    ``values`` is a 1-D array (scalar descriptor) or 2-D (n_frames, D). ``cov``/``icov``
    only apply to vector descriptors and are skipped for scalar ones.
    """
    values = np.asarray(values)
    stats = [s for s in stats if values.ndim == 2 or s not in ("cov", "icov")]
    return _stats.aggregate(values, stats, name)


def aggregate_pool(pool, framewise, stats, namespace, empty=None):
    """A statistics sub-record from an analysis pool: the ``framewise`` descriptors become
    ``{stat: value}`` records, arrays become plain lists, the rest is kept. ``empty(name)``
    gives the record of a frame-wise descriptor that has no frames (default: aggregate it)."""
    out = {}
    for k, v in pool.items():
        if k in framewise:
            if empty is not None and not len(v):
                out[k] = empty(k)
            else:
                out[k] = aggregate(v, stats, f"{namespace}.{k}")
        elif isinstance(v, np.ndarray):
            out[k] = v.astype(np.float64).tolist()
        else:
            out[k] = v
    return out


def frames_record(pool, skip=()):
    """A frames-pool sub-record (Essentia's ``outputFrames`` layout): raw values as plain
    lists, leaving out the names in ``skip``."""
    return {k: (v.astype(np.float64).tolist() if isinstance(v, np.ndarray) else v)
            for k, v in pool.items() if k not in skip}
