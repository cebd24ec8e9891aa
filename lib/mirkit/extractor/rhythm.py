"""Rhythm descriptors of the music extractor: ``rhythm.*`` of the "music 2.0" layout.

Input signal: S0, the extractor's analysis signal (mono mix, replay-gain scaled by
``10**((RG+6)/20)`` and clipped to [-1, 1], 44100 Hz), **without** the equal-loudness filter
(extractor.md §3.7). Like Essentia, the beat tracker, onset rate and danceability assume
44100 Hz (§3.8).

Descriptors (extractor.md §6.3, §7.7):

* ``beats_position``, ``bpm``, ``beats_count``: Degara et al. (2012) beat tracker
  (:mod:`mirkit.extractor.rhythm_degara`), or with ``rhythm.method: multifeature`` the
  Zapata et al. (2014) committee of :mod:`mirkit.extractor.rhythm_multifeature`; tempo
  range ``rhythm.minTempo``..``maxTempo``
  (40..208 BPM). ``bpm`` is the mean of the inter-beat tempi within 5 BPM of the most common
  one (histogram of half-tempi).
* ``bpm_histogram`` (250 bins of 1 BPM, fraction of inter-beat intervals) and its two
  highest peaks: ``..._peak_bpm``, ``..._peak_weight`` (the peak bin plus its two neighbours)
  and ``..._peak_spread`` (``1 - weight / sum of the 9 bins around the peak``). Unlike
  Essentia 2.1b6, which writes the first peak's spread under ``first_peak_weight``
  (MTG/essentia#1543), mirkit writes the true weight under ``bpm_histogram_first_peak_weight``
  and the spread under ``bpm_histogram_first_peak_spread`` (project decision 3).
* ``onset_rate``: onsets per second from the sum of the normalised HFC and complex-domain
  onset detection functions (1024-sample frames, hop 512), with a median-plus-mean
  adaptive threshold.
* ``danceability``: Streich & Herrera's detrended fluctuation analysis of the 10 ms
  standard-deviation series (time scales 310 ms .. 8.8 s); ``1 / mean DFA exponent``.
* ``beats_loudness`` / ``beats_loudness_band_ratio``: energy of 50 ms around the strongest
  sample near each beat, and its share in the bands 0-200-400-800-1600-3200-22000 Hz.

:func:`compute` returns the aggregated ``rhythm`` sub-record; :func:`analyze` the raw one
(frames output); :func:`aggregate` turns the second into the first.
"""

import numpy as np

from ..errors import MirkitError
from . import framing
from .rhythm_degara import beat_track, complex_odf_blocks
from .rhythm_multifeature import beat_track as multifeature_beat_track
from .tonal_common import aggregate_pool
from .tonal_common import frames_record, option, stats_option

SAMPLE_RATE = 44100.0
RHYTHM_DEFAULTS = {"method": "degara", "minTempo": 40, "maxTempo": 208}
BEATS_LOUDNESS_BANDS = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 22000.0)


# ---- tempo ---------------------------------------------------------------------------------

def bpm_from_ticks(ticks):
    """RhythmExtractor2013's bpm: mean tempo of the intervals near the most common one."""
    ticks = np.asarray(ticks, np.float32)
    if len(ticks) < 2:
        return 0.0
    est = np.float32(60.0) / np.diff(ticks)
    half = (np.maximum(est / np.float32(2.0), 0.0) + np.float32(0.5)).astype(np.int64)
    closest = float(np.argmax(np.bincount(half)) * 2)
    near = est[np.abs(np.float32(closest) - est) < 5.0]
    return float(np.float32(near.astype(np.float64).mean())) if len(near) else closest


def bpm_histogram_descriptors(intervals, max_bpm=250, weight_width=3, spread_width=9):
    """(histogram[250], [(bpm, weight, spread) of the first and second peak])."""
    # float32 arithmetic as Essentia (tempi of exactly x.5 BPM are common: 60/(k*res))
    iv = np.asarray(intervals, np.float32)
    iv = iv[iv >= np.float32(60.0 / max_bpm)]
    hist = np.zeros(max_bpm)
    peaks = [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]
    if len(iv) == 0:
        return hist, peaks
    bpm = np.float32(60.0) / iv
    idx = np.minimum(max_bpm - 1, np.floor(bpm + np.float32(0.5)).astype(np.int64))
    hist = np.bincount(idx, minlength=max_bpm).astype(np.float64) / len(iv)
    work = hist.copy()
    hw, hs = weight_width // 2, spread_width // 2
    for p in range(2):
        i = int(np.argmax(work))
        weight = work[max(0, i - hw):i + hw + 1].sum()
        lo, hi = max(0, i - hs), min(max_bpm, i + hs + 1)
        spread_sum = work[lo:hi].sum()
        work[lo:hi] = 0.0
        spread = 1.0 - weight / spread_sum if spread_sum > 0 else 0.0
        peaks[p] = (float(i), float(np.float32(weight)), float(np.float32(spread)))
    return hist.astype(np.float32), peaks


# ---- onset rate ----------------------------------------------------------------------------

def onset_times(x):
    """Onset times (s) of Essentia's OnsetRate: HFC + complex ODFs, adaptive threshold."""
    frame_rate = SAMPLE_RATE / 512.0
    cplx, hfc = complex_odf_blocks(x, 1024, 512, start_from_zero=False, want_hfc=True)
    n = len(cplx)
    if n == 0:
        return np.zeros(0), 0
    d = np.zeros(n)
    for f in (hfc, cplx):
        m = f.max()
        if m > 0:
            d += f / m
    # causal moving average of length 5, zero initial state
    c = np.concatenate([np.zeros(5), np.cumsum(d)])
    d = (c[5:] - c[:-5]) / 5.0
    d[d < 0.02 * 2] = 0.0
    # 5-slot circular buffer: step i (>= 1) writes d[i] at slot 0 (i = 1) or i % 5
    i = np.arange(n)
    slot = i % 5
    if n > 1:
        slot[1] = 0
    buf = np.zeros((n, 5))
    for s in range(5):
        last = np.where((slot == s) & (i >= 1), i, -1)
        last = np.maximum.accumulate(last)
        buf[:, s] = np.where(last >= 0, d[np.maximum(last, 0)], 0.0)
    thr = np.median(buf, axis=1) + 0.1 * buf.mean(axis=1)
    onset = (d > thr) & (i >= 1)
    prev = np.concatenate([[False], onset[:-1]])
    # an onset frame is kept when it starts a run of onset frames of length >= 2; at the
    # end of the stream a run of one frame is kept too (as Essentia's streaming OnsetRate)
    nxt = np.concatenate([onset[1:], [True]])
    keep = onset & ~prev & nxt
    return np.flatnonzero(keep) / frame_rate, n


def onset_rate(x):
    times, n_frames = onset_times(x)
    if n_frames == 0:
        return 0.0
    return float(np.float32(len(times) / (n_frames * 512.0 / SAMPLE_RATE)))


# ---- signal access ---------------------------------------------------------------------------

def _as_signal(signal):
    """A 1-D float32 array, or a signal store as is (an object with ``len()`` and
    ``read(a, b)``, see :mod:`mirkit.extractor.stream`: long files are read in blocks)."""
    if hasattr(signal, "read"):
        return signal
    return np.asarray(signal, np.float32).ravel()


def _read(x, a, b):
    """Samples ``[a, b)`` of an array or store (zeros outside the signal), float32."""
    if hasattr(x, "read"):
        return np.asarray(x.read(a, b), np.float32)
    if a >= 0 and b <= len(x):
        return x[a:b]
    out = np.zeros(b - a, np.float32)
    lo, hi = max(a, 0), min(b, len(x))
    if hi > lo:
        out[lo - a:hi - a] = x[lo:hi]
    return out


# ---- danceability --------------------------------------------------------------------------

def danceability(x, sample_rate=SAMPLE_RATE, min_tau=310.0, max_tau=8800.0, tau_multiplier=1.1):
    """Detrended fluctuation analysis (Streich & Herrera 2005) -> 1 / mean DFA exponent."""
    x = _as_signal(x)
    bs = int(0.01 * sample_rate)
    nb = len(x) // bs
    if nb < 2:
        return 0.0
    # standard deviation of each 10-ms block, a chunk of blocks at a time (bounded memory)
    s = np.empty(nb)
    step = 1 << 12
    for b0 in range(0, nb, step):
        b1 = min(nb, b0 + step)
        blocks = _read(x, b0 * bs, b1 * bs).reshape(b1 - b0, bs)
        mean = blocks.mean(axis=1, dtype=np.float64)
        dev = blocks - mean.astype(np.float32)[:, None]
        s[b0:b1] = np.sqrt(np.einsum("ij,ij->i", dev, dev).astype(np.float64) / (bs - 1))
    y = np.cumsum(s - s.mean())
    taus = []
    t = min_tau
    while t <= max_tau:
        taus.append(int(t / 10.0))
        t *= tau_multiplier
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    iy = np.arange(nb) * y
    c3 = np.concatenate([[0.0], np.cumsum(iy)])
    F, used = [], []
    for tau in taus:
        if tau > nb:
            break
        jump = max(tau // 50, 1)
        k = np.arange(0, nb - tau, jump)
        if len(k) == 0:
            break
        sy = c1[k + tau] - c1[k]
        syy = c2[k + tau] - c2[k]
        sxy = (c3[k + tau] - c3[k]) - k * sy          # sum of (i - k) * y_i
        sx = tau * (tau - 1) / 2.0
        sxx = (tau - 1) * tau * (2 * tau - 1) / 6.0
        ssxx = sxx - sx * sx / tau
        ssyy = syy - sy * sy / tau
        ssxy = sxy - sx * sy / tau
        resid = (ssyy - ssxy * ssxy / ssxx) / tau
        F.append(np.sqrt(resid.sum() / ((nb - tau) / jump)))
        used.append(tau)
    if len(F) < 2:
        return 0.0
    F, used = np.asarray(F), np.asarray(used, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.log10(F[1:] / F[:-1]) / np.log10((used[1:] + 3.0) / (used[:-1] + 3.0))
    m = float(np.mean(alpha))
    if not np.isfinite(m) or m <= 0:
        return 0.0
    return float(np.float32(1.0 / m))


# ---- beats loudness ------------------------------------------------------------------------

def beats_loudness(x, ticks, sample_rate=SAMPLE_RATE):
    """(loudness per beat, band ratios per beat (n, 6)); beats too close to the end give none."""
    x = _as_signal(x)
    sr = float(sample_rate)
    ticks = np.asarray(ticks, np.float64)
    win_len = int(0.1 * sr)
    D = int(0.05 * sr)
    D += D % 2
    starts = []
    for t in ticks:
        start, end = t - 0.05, t + 0.05 + 0.05 + 0.001
        if start < 0:
            end -= start
            start = 0.0
        s = int(start * sr + 0.5)
        e = s + int((end - start) * sr + 0.5)
        if e > len(x):
            continue
        starts.append(s)
    if not starts:
        return np.zeros(0, np.float32), np.zeros((0, 6), np.float32)
    starts = np.asarray(starts)
    # the samples around each beat (zeros past the end), read and analysed a group of beats
    # at a time (bounded memory)
    total = np.empty(len(starts))
    ratios = np.zeros((len(starts), len(BEATS_LOUDNESS_BANDS) - 1))
    g0 = 0
    while g0 < len(starts):
        # at most 256 beats spanning at most 2**20 samples per read
        g1 = int(np.searchsorted(starts, starts[g0] + (1 << 20), side="right"))
        g1 = min(max(g1, g0 + 1), g0 + 256)
        st = starts[g0:g1]
        a = int(st.min())
        pad = _read(x, a, int(st.max()) + win_len + D)
        seg = pad[(st - a)[:, None] + np.arange(win_len)[None, :]]
        onset = st - a + np.argmax(seg * seg, axis=1)
        frames = pad[onset[:, None] + np.arange(D)[None, :]]
        spec = framing.spectrum(frames, "blackmanharris62").astype(np.float64)
        e = spec * spec
        tot = e.sum(axis=1)
        total[g0:g1] = tot
        K = spec.shape[1]
        for b in range(len(BEATS_LOUDNESS_BANDS) - 1):
            lo = int(BEATS_LOUDNESS_BANDS[b] / (sr / 2) * (K - 1) + 0.5)
            hi = int(BEATS_LOUDNESS_BANDS[b + 1] / (sr / 2) * (K - 1) + 0.5)
            band = e[:, lo:hi + 1].sum(axis=1)
            ratios[g0:g1, b] = np.divide(band, tot, out=np.zeros_like(band), where=tot > 1e-10)
        g0 = g1
    return total.astype(np.float32), ratios.astype(np.float32)


# ---- record --------------------------------------------------------------------------------

def _rhythm_options(options):
    o = {k: option(options, "rhythm", k, v) for k, v in RHYTHM_DEFAULTS.items()}
    if o["method"] not in ("degara", "multifeature"):
        raise MirkitError(f"rhythm.method must be 'degara' or 'multifeature', not {o['method']!r}")
    try:
        o["minTempo"], o["maxTempo"] = float(o["minTempo"]), float(o["maxTempo"])
    except (TypeError, ValueError):
        raise MirkitError("rhythm.minTempo/maxTempo must be numbers") from None
    if not 0 < o["minTempo"] < o["maxTempo"]:
        raise MirkitError(f"rhythm: invalid tempo range {o['minTempo']}..{o['maxTempo']} BPM")
    return o


def analyze(signal, sample_rate=SAMPLE_RATE, options=None):
    """The raw (frame-wise) ``rhythm`` pool of signal S0 (see the module docstring)."""
    o = _rhythm_options(options)
    x = _as_signal(signal)
    if not len(x):
        ticks = np.zeros(0)
    elif o["method"] == "multifeature":
        ticks = multifeature_beat_track(x, o["minTempo"], o["maxTempo"])
    else:
        ticks = beat_track(x, o["minTempo"], o["maxTempo"])
    pool = {}
    pool["beats_position"] = ticks.astype(np.float32)
    pool["bpm"] = bpm_from_ticks(ticks)
    t32 = ticks.astype(np.float32)
    hist, peaks = bpm_histogram_descriptors(np.diff(t32) if len(t32) > 1 else [])
    pool["bpm_histogram"] = hist
    for name, (bpm, weight, spread) in zip(("first", "second"), peaks):
        pool[f"bpm_histogram_{name}_peak_bpm"] = bpm
        pool[f"bpm_histogram_{name}_peak_weight"] = weight
        pool[f"bpm_histogram_{name}_peak_spread"] = spread
    pool["onset_rate"] = onset_rate(x)
    pool["danceability"] = danceability(x, SAMPLE_RATE)
    loud, ratios = beats_loudness(x, ticks, sample_rate)
    pool["beats_loudness"] = loud
    pool["beats_loudness_band_ratio"] = ratios
    pool["beats_count"] = float(len(ticks))
    return pool


FRAMEWISE = ("beats_loudness", "beats_loudness_band_ratio")


def aggregate(pool, options=None):
    """The ``rhythm`` statistics sub-record from an :func:`analyze` pool."""
    stats = stats_option(options, "rhythm")

    def no_beats(name):  # zero-filled statistics, as the extractor does
        zero = 0.0 if name == "beats_loudness" else [0.0] * 6
        return {s: zero for s in stats if s not in ("cov", "icov")}

    return aggregate_pool(pool, FRAMEWISE, stats, "rhythm", empty=no_beats)




def compute(signal, sample_rate=SAMPLE_RATE, options=None):
    """``rhythm`` sub-record (statistics) of S0. ``options``: rhythm.method ("degara"),
    minTempo (40), maxTempo (208), stats (the 10 default statistics). With a true
    ``outputFrames`` option, returns ``(record, frames_record)``."""
    pool = analyze(signal, sample_rate, options)
    record = aggregate(pool, options)
    if option(options, "rhythm", "outputFrames", False):
        return record, frames_record(pool, skip=("beats_count",))
    return record
