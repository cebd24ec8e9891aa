"""Spectral peaks (Essentia's SpectralPeaks / PeakDetection, extractor.md §7.2), the one
implementation used by every part of the extractor (lowlevel: spectral_complexity,
dissonance; tonal: HPCP and tuning frequency).

:func:`spectral_peaks` returns the peaks of all the rows of a block of magnitude spectra as
flat arrays (frame, frequency, magnitude); :func:`padded_peaks` gives the same peaks as
``(n, P)`` arrays padded with ``inf`` / 0 plus the count per row.
"""

import numpy as np


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
    or by frequency; at most ``max_peaks`` per frame (None: all).

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
    # the first list (strict maxima, from np.nonzero) is already in (frame, position) order;
    # only the other candidates (boundary bins, plateaus) need a merge
    extra = sum(len(f) for f in frames_list[1:])
    if not len(frames_list[0]) and not extra:
        return empty
    fr = np.concatenate(frames_list)
    pos = np.concatenate(pos_list)
    mag = np.concatenate(val_list)
    if extra:
        order = np.argsort(fr * float(m + 2) + pos, kind="stable")
        fr, pos, mag = fr[order], pos[order], mag[order]
    freq = (pos + i0) * scale
    keep = freq <= max_frequency
    if not keep.all():
        fr, freq, mag = fr[keep], freq[keep], mag[keep]
    if order_by == "magnitude" and len(fr):
        # by frame, then magnitude (desc.), ties in frequency order: the stable rank of -mag
        # makes one integer key (faster than lexsort)
        rank = np.empty(len(mag), np.int64)
        rank[np.argsort(-mag, kind="stable")] = np.arange(len(mag))
        order = np.argsort(fr.astype(np.int64) * len(mag) + rank)
        fr, freq, mag = fr[order], freq[order], mag[order]
    if len(fr) and max_peaks is not None:
        first = np.searchsorted(fr, fr, side="left")
        rank = np.arange(len(fr)) - first
        keep = rank < max_peaks
        if not keep.all():
            fr, freq, mag = fr[keep], freq[keep], mag[keep]
    return fr.astype(np.int64), freq, mag


def padded_peaks(n, frame, freq, mag):
    """``(F, A, counts)``: the flat peaks of :func:`spectral_peaks` of ``n`` rows as ``(n, P)``
    frequency / magnitude arrays (in their order, padded with ``inf`` / 0) and the number of
    peaks per row."""
    counts = np.bincount(frame, minlength=n)[:n] if len(frame) else np.zeros(n, np.int64)
    P = int(counts.max()) if n else 0
    F = np.full((n, P), np.inf)
    A = np.zeros((n, P))
    if len(frame):
        rank = np.arange(len(frame)) - np.searchsorted(frame, frame, side="left")
        F[frame, rank] = freq
        A[frame, rank] = mag
    return F, A, counts
