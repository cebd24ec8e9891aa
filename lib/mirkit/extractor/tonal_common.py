"""Helpers shared by rhythm.py and tonal.py: option lookup, spectral peaks, statistics.

* :func:`option` reads a profile option given as ``section.name`` (the pipeline's flat
  profile dict), Essentia's ``sectionName`` spelling (``tonalFrameSize``) or a bare ``name``.
* :func:`spectral_peaks` is Essentia's SpectralPeaks/PeakDetection (extractor.md §7.2,
  interpolated, plateaus at their middle), vectorised over all the frames of a block.
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

def _peaks_runs(sub, thr):
    """Peak candidates of the rows of ``sub`` by run-length encoding (handles plateaus).
    Returns lists of (row, column position, value) arrays."""
    n, m = sub.shape
    magnitude_threshold = thr
    flat = sub.ravel()
    col = np.arange(flat.size) % m
    newrun = np.empty(flat.size, bool)
    newrun[0] = True
    newrun[1:] = flat[1:] != flat[:-1]
    newrun |= col == 0
    starts = np.flatnonzero(newrun)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = flat.size - 1
    v = flat[starts].astype(np.float64)
    scol = col[starts]
    ecol = col[ends]
    nr = len(starts)
    has_left = scol > 0
    has_right = ecol < m - 1
    left_v = np.empty(nr)
    left_v[1:] = v[:-1]
    left_v[0] = np.inf
    right_v = np.empty(nr)
    right_v[:-1] = v[1:]
    right_v[-1] = np.inf
    above = v > magnitude_threshold
    inner = has_left & has_right & (left_v < v) & (right_v < v) & above
    boundary = (~has_left) & (ends == starts) & has_right & (right_v < v) & above
    # inner single-bin peaks: parabolic interpolation
    single = inner & (ends == starts)
    plateau = inner & (ends > starts)
    frames_list, pos_list, val_list = [], [], []
    idx = np.flatnonzero(single)
    if len(idx):
        p = starts[idx]
        l = flat[p - 1].astype(np.float64)
        c = v[idx]
        r = flat[p + 1].astype(np.float64)
        den = l - 2.0 * c + r
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(den != 0, 0.5 * (l - r) / den, 0.0)
        frames_list.append(p // m)
        pos_list.append(col[p] + d)
        val_list.append(c - 0.25 * (l - r) * d)
    idx = np.flatnonzero(plateau)
    if len(idx):
        frames_list.append(starts[idx] // m)
        pos_list.append(0.5 * (scol[idx] + ecol[idx]))
        val_list.append(v[idx])
    idx = np.flatnonzero(boundary)
    if len(idx):
        frames_list.append(starts[idx] // m)
        pos_list.append(scol[idx].astype(np.float64))
        val_list.append(v[idx])
    if not frames_list:
        return [], [], []
    return frames_list, pos_list, val_list


def _peaks_strict(sub, thr):
    """Peak candidates of rows without equal neighbours above ``thr``: strict local maxima
    (parabolic interpolation) and the boundary peak of column 0."""
    l, c, r = sub[:, :-2], sub[:, 1:-1], sub[:, 2:]
    rows, cols = np.nonzero((c > l) & (c > r) & (c > thr))
    lv = l[rows, cols].astype(np.float64)
    cv = c[rows, cols].astype(np.float64)
    rv = r[rows, cols].astype(np.float64)
    den = lv - 2.0 * cv + rv
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(den != 0, 0.5 * (lv - rv) / den, 0.0)
    brow = np.flatnonzero((sub[:, 0] > sub[:, 1]) & (sub[:, 0] > thr))
    return ([rows, brow], [cols + 1.0 + d, np.zeros(len(brow))],
            [cv - 0.25 * (lv - rv) * d, sub[brow, 0].astype(np.float64)])


def spectral_peaks(spec, sample_rate=44100.0, min_frequency=0.0, max_frequency=5000.0,
                   magnitude_threshold=0.0, max_peaks=100, order_by="magnitude"):
    """Peaks of every row of the magnitude spectra ``spec`` (n, K).

    Returns ``(frame, frequency, magnitude)`` float64/int arrays, rows grouped by frame in
    frame order and, within a frame, ordered by magnitude (descending, ties by frequency)
    or by frequency; at most ``max_peaks`` per frame.

    Rules (PeakDetection, interpolate=true): scan from bin ``ceil(min/scale)``; that first bin
    is a peak (not interpolated) if it is above the next one; any later run of equal values
    reached by a strict climb and followed by a strict descent is a peak: a single bin is
    refined by parabolic interpolation of the linear magnitudes, a plateau gives its middle.
    Peaks must exceed ``magnitude_threshold``; positions above ``max_frequency`` are dropped.
    The Nyquist-bin special case is not modelled (the extractor never reaches it).
    """
    spec = np.asarray(spec)
    n, K = spec.shape
    scale = (sample_rate / 2.0) / (K - 1)
    i0 = int(np.ceil(min_frequency / scale - 1e-9))
    i0 = min(max(i0, 0), K - 1)
    jmax = min(K - 1, int(np.floor(max_frequency / scale)) + 2)
    sub = spec[:, i0:jmax + 1]
    m = sub.shape[1]
    empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    if n == 0 or m < 2:
        return empty
    # rows where two neighbouring bins above the threshold are equal (a plateau) need the
    # run-length scan; all the others only have strict maxima
    eq = ((sub[:, 1:] == sub[:, :-1]) & (sub[:, 1:] > magnitude_threshold)).any(axis=1)
    frames_list, pos_list, val_list = _peaks_strict(sub, magnitude_threshold)
    if eq.any():
        rows = np.flatnonzero(eq)
        keep = ~eq[frames_list[0]], ~eq[frames_list[1]]
        frames_list = [frames_list[0][keep[0]], frames_list[1][keep[1]]]
        pos_list = [pos_list[0][keep[0]], pos_list[1][keep[1]]]
        val_list = [val_list[0][keep[0]], val_list[1][keep[1]]]
        fl, pl, vl = _peaks_runs(sub[rows], magnitude_threshold)
        frames_list += [rows[f] for f in fl]
        pos_list += pl
        val_list += vl
    if not sum(len(f) for f in frames_list):
        return empty
    fr = np.concatenate(frames_list)
    freq = (np.concatenate(pos_list) + i0) * scale
    mag = np.concatenate(val_list)
    keep = freq <= max_frequency
    fr, freq, mag = fr[keep], freq[keep], mag[keep]
    if order_by == "magnitude":
        order = np.lexsort((freq, -mag, fr))
    else:
        order = np.lexsort((freq, fr))
    fr, freq, mag = fr[order], freq[order], mag[order]
    if len(fr) and max_peaks is not None:
        first = np.searchsorted(fr, fr, side="left")
        rank = np.arange(len(fr)) - first
        keep = rank < max_peaks
        fr, freq, mag = fr[keep], freq[keep], mag[keep]
    return fr.astype(np.int64), freq, mag


# ---- statistics ----------------------------------------------------------------------------

def aggregate(values, stats=DEFAULT_STATS, name="descriptor"):
    """The statistics record ``{stat: value}`` of one frame-wise descriptor.

    ``values`` is a 1-D array (scalar descriptor) or 2-D (n_frames, D). ``cov``/``icov``
    only apply to vector descriptors and are skipped for scalar ones.
    """
    values = np.asarray(values)
    stats = [s for s in stats if values.ndim == 2 or s not in ("cov", "icov")]
    return _stats.aggregate(values, stats, name)

