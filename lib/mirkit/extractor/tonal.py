"""Tonal descriptors of the music extractor: ``tonal.*`` of the "music 2.0" layout.

Input signal: S0, the extractor's analysis signal (mono mix, replay-gain scaled by
``10**((RG+6)/20)`` and clipped to [-1, 1], 44100 Hz), **without** the equal-loudness filter
(extractor.md §3.7).

Processing (extractor.md §6.4, §7.8), all vectorised over frames:

* "TON" frames: 4096 samples, hop 2048 (``tonal.frameSize``/``hopSize``), centred framing,
  silent frames get the deterministic noise, Blackman-Harris 62 window, magnitude spectrum.
* Tuning frequency: spectral peaks 40-5000 Hz (threshold 1e-5) into a 1-cent deviation
  histogram per frame; the winning deviation of each frame adds the frame's peak energy to
  a global histogram; its maximum gives the tuning (the value after the last frame).
* HPCP (Gómez 2006) from the tonal peaks (20-3500 Hz, 60 strongest, threshold 1e-5), with the
  tuning frequency as reference (index 0 = pitch class A): "hpcp_key" (36 bins, cosine
  weighting, window 1 semitone, no harmonics) gives ``tonal.hpcp``, ``thpcp`` and the three
  keys; "hpcp_chord" (8 harmonics, band preset split at 500 Hz, window 1/2 semitone,
  non-linear mapping) gives chords, ``hpcp_entropy`` and ``hpcp_crest``; the 120-bin
  "hpcp_highres" (chord settings) gives the tuning-system features.
* Keys: profile correlation (Krumhansl, Temperley, EDMA profiles expanded through the tonic,
  subdominant and dominant triads with 4 harmonics, slope 0.6) on the mean HPCP, thresholded
  at 0.2 and corrected for an average detuning of one third of a semitone.
* Chords: per frame, the mean chord HPCP over a 2-second window against tonic triads.

:func:`compute` returns the aggregated ``tonal`` sub-record; :func:`analyze` the raw
frame-wise one (the extractor's frames output), :func:`aggregate` turns the second into the
first.
"""

import numpy as np

from ..errors import MirkitError
from . import framing
from .tonal_common import aggregate_pool
from .tonal_common import frames_record, option, spectral_peaks, stats_option

SAMPLE_RATE = 44100.0
KEY_NAMES = ("A", "Bb", "B", "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab")

# Key profiles, index 0 = tonic (Krumhansl 1990; Temperley 1999; Faraldo et al. 2016 "edma";
# diatonic and tonic-triad binary profiles).
PROFILES = {
    "diatonic": ([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], [1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]),
    "krumhansl": ([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],
                  [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    "temperley": ([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0],
                  [5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0]),
    "tonictriad": ([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
    "edma": ([1, .29, .50, .40, .60, .56, .32, .80, .31, .45, .42, .39],
             [1, .31, .44, .58, .33, .49, .29, .78, .43, .29, .53, .32]),
}

CIRCLE_OF_FIFTHS = ("C", "Em", "G", "Bm", "D", "F#m", "A", "C#m", "E", "Abm", "B", "Ebm",
                    "F#", "Bbm", "C#", "Fm", "Ab", "Cm", "Eb", "Gm", "Bb", "Dm", "F", "Am")
_ALIASES = {"Gbm": "F#m", "Dbm": "C#m", "G#m": "Abm", "D#m": "Ebm", "Gb": "F#", "A#m": "Bbm",
            "Db": "C#", "G#": "Ab", "D#": "Eb", "A#": "Bb"}

TONAL_DEFAULTS = {"frameSize": 4096, "hopSize": 2048, "zeroPadding": 0,
                  "windowType": "blackmanharris62", "silentFrames": "noise"}

# (size, harmonics, band preset, window size (semitones), non-linear)
HPCP_KEY = dict(size=36, harmonics=0, band_preset=False, window_size=1.0, non_linear=False)
HPCP_CHORD = dict(size=36, harmonics=8, band_preset=True, window_size=0.5, non_linear=True)
HPCP_HIGHRES = dict(size=120, harmonics=8, band_preset=True, window_size=0.5, non_linear=True)


# ---- tuning frequency ----------------------------------------------------------------------

class TuningAccumulator:
    """Global deviation histogram of TuningFrequency (1-cent resolution), fed block by block."""

    def __init__(self):
        self.hist = np.zeros(100)

    def add(self, frame, freq, mag, n_frames):
        if n_frames == 0 or len(freq) == 0:
            return
        ok = freq > 0
        frame, freq, mag = frame[ok], freq[ok], mag[ok]
        note = 12.0 * np.log2(freq / 440.0)
        dev = 100.0 * (note - np.floor(note + 0.5))
        idx = ((50.0 + dev) + 0.5).astype(np.int64) % 100
        fh = np.bincount(frame * 100 + idx, weights=mag, minlength=n_frames * 100).reshape(n_frames, 100)
        best = np.argmax(fh, axis=1)
        energy = np.bincount(frame, weights=mag * mag, minlength=n_frames)
        self.hist += np.bincount(best, weights=energy, minlength=100)

    def frequency(self):
        if not np.any(self.hist > 0):
            cents = 0.0
        else:
            cents = float(np.argmax(self.hist)) - 50.0
            if cents < -35.0:
                cents += 100.0
        return float(np.float32(440.0 * 2.0 ** (cents / 1200.0)))


# ---- HPCP ----------------------------------------------------------------------------------

def _harmonic_table(harmonics):
    """[(semitone offset mod 12, weight)] with duplicate semitones merged (weights summed)."""
    table = {}
    for h in range(harmonics + 1):
        st = 12.0 * np.log2(h + 1.0)
        red = round(st % 12.0, 5) % 12.0
        w = 1.0 / max(1.0, st / 24.0)
        table[red] = table.get(red, 0.0) + w
    return sorted(table.items())


def hpcp(frame, freq, mag, n_frames, reference, size=36, harmonics=0, band_preset=False,
         split_frequency=500.0, min_frequency=20.0, max_frequency=3500.0, window_size=1.0,
         non_linear=False, weight_type="cosine"):
    """HPCP of every frame from its peaks (frame index, Hz, magnitude) -> (n_frames, size).

    Each peak ``f`` (and, with harmonics, each candidate fundamental ``f/(h+1)``) adds
    ``w * m**2 * hw**2`` to the bins within half a window of its fractional position
    ``size*log2(f'/reference)``, ``w = cos(pi*d/(res*window_size))`` (squared for
    "squaredCosine"), ``res = size/12``. Unit-max normalisation (per band with the band preset).
    """
    out_shape = (n_frames, size)
    if n_frames == 0:
        return np.zeros(out_shape)
    ok = (freq >= min_frequency) & (freq <= max_frequency) & (mag > 0) if len(freq) else np.zeros(0, bool)
    frame, freq, mag = frame[ok], freq[ok], mag[ok]
    res = size / 12.0
    half = res * window_size / 2.0
    nbins = int(np.floor(2 * half)) + 1
    nbands = 2 if band_preset else 1
    table = _harmonic_table(harmonics)
    st = np.array([t for t, _ in table])[:, None, None]            # (E, 1, 1)
    hw2 = np.array([w * w for _, w in table])[:, None, None]
    ks = np.arange(nbins + 1)[None, :, None]                          # (1, K, 1)
    cos_k = np.cos(np.pi / (2.0 * half) * ks)
    sin_k = np.sin(np.pi / (2.0 * half) * ks)
    acc = np.zeros((n_frames, nbands, size))
    # peaks are grouped by frame (ascending): blocks of peaks, one bincount per block into
    # the block's own frame range (bounded memory)
    step = 8000
    for p0 in range(0, len(freq), step):
        fq = freq[p0:p0 + step].astype(np.float64)
        fm = mag[p0:p0 + step].astype(np.float64)
        fr = frame[p0:p0 + step].astype(np.int64)
        f0, f1 = int(fr.min()), int(fr.max()) + 1
        b = size * np.log2(fq / reference)[None, None, :] - size * st / 12.0   # (E, 1, P)
        first = np.ceil(b - half)
        d0 = first - b                                                # (E, 1, P), in [-half, 1-half)
        # cos(c*(d0+k)) = cos(c d0) cos(c k) - sin(c d0) sin(c k): two trig calls per peak
        c = np.pi / (2.0 * half)
        w = np.cos(c * d0) * cos_k - np.sin(c * d0) * sin_k          # (E, K, P)
        if weight_type == "squaredCosine":
            w = w * w
        w = np.where(d0 + ks <= half, w, 0.0)
        w *= hw2 * (fm * fm)[None, None, :]
        base = (fr - f0) * (nbands * size)
        if band_preset:
            base = base + (fq >= split_frequency) * size
        idx = base[None, None, :] + (first.astype(np.int64) + ks) % size
        n_local = (f1 - f0) * nbands * size
        acc[f0:f1] += np.bincount(idx.ravel(), weights=w.ravel(),
                                  minlength=n_local).reshape(f1 - f0, nbands, size)
    acc = acc.transpose(1, 0, 2)
    if band_preset:
        mx = acc.max(axis=2, keepdims=True)
        acc = np.divide(acc, mx, out=np.zeros_like(acc), where=mx > 0)
    total = acc.sum(axis=0)
    mx = total.max(axis=1, keepdims=True)
    total = np.divide(total, mx, out=np.zeros_like(total), where=mx > 0)
    if non_linear:
        total = np.sin(total * np.pi / 2.0) ** 2
        low = total < 0.6
        total[low] = total[low] * (total[low] / 0.6) ** 2
    return total


# ---- key -----------------------------------------------------------------------------------

def _harm(profile, pc, c, num_harmonics, slope):
    for h in range(1, num_harmonics + 1):
        idx = pc + 12.0 * np.log2(h)
        w = c * slope ** (h - 1)
        frac = idx - np.floor(idx)
        if frac < 1e-9:
            profile[int(round(idx)) % 12] += w
        else:
            lo = int(np.floor(idx)) % 12
            # the upper neighbour of pitch class 11 does not wrap to 0 but stays on 11
            # (matches Essentia's Key numerically: the third harmonic of a major third)
            hi = lo + 1 if lo < 11 else 11
            profile[lo] += w * np.cos(np.pi / 2 * frac) ** 2
            profile[hi] += w * np.cos(np.pi / 2 * (1 - frac)) ** 2


def _triad(profile, root, third, c, num_harmonics, slope):
    for pc in (root, root + third, root + 7):
        _harm(profile, pc % 12, c, num_harmonics, slope)


def key_profiles(profile_type, size, use_polyphony=True, use_three_chords=True,
                 num_harmonics=4, slope=0.6):
    """(major, minor) profiles of length ``size`` (a multiple of 12), index 0 = tonic.

    With ``use_polyphony`` the profile is the sum of the tonic, subdominant and dominant
    triads (minor keys: minor, minor, major), each note with 4 harmonics decaying by
    ``slope``, weighted by the profile value of the triad's root. This reproduces Essentia's
    Key with ``useThreeChords=true`` (the extractor's setting) to about 1e-4 in strength for
    major keys and exactly for minor ones; ``use_three_chords=False`` (tonic triad only) is not
    a compatibility target.
    """
    if profile_type not in PROFILES:
        raise MirkitError(f"unknown key profile {profile_type!r}")
    maj, mnr = (np.asarray(p, np.float64) for p in PROFILES[profile_type])
    if use_polyphony:
        pm, pn = np.zeros(12), np.zeros(12)
        _triad(pm, 0, 4, maj[0], num_harmonics, slope)
        _triad(pn, 0, 3, mnr[0], num_harmonics, slope)
        if use_three_chords:
            _triad(pm, 5, 4, maj[5], num_harmonics, slope)
            _triad(pm, 7, 4, maj[7], num_harmonics, slope)
            _triad(pn, 5, 3, mnr[5], num_harmonics, slope)
            _triad(pn, 7, 4, mnr[7], num_harmonics, slope)
        maj, mnr = pm, pn
    n = size // 12
    j = np.arange(n)

    def resize(p):
        nxt = np.roll(p, -1)
        return (p[:, None] - j[None, :] * (p - nxt)[:, None] / n).ravel()

    return resize(maj), resize(mnr)


def _shift_matrix(profile):
    """Rows s = 0..size-1: ``profile[(i - s) mod size]``, centred and unit-norm."""
    size = len(profile)
    i = np.arange(size)
    m = profile[(i[None, :] - i[:, None]) % size]
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.sqrt((m * m).sum(axis=1, keepdims=True))
    return np.divide(m, norm, out=np.zeros_like(m), where=norm > 0)


def key_correlations(pcps, major, minor):
    """Correlation of each row of ``pcps`` with every rotation of the major / minor profiles."""
    p = np.atleast_2d(np.asarray(pcps, np.float64))
    p = p - p.mean(axis=1, keepdims=True)
    norm = np.sqrt((p * p).sum(axis=1, keepdims=True))
    p = np.divide(p, norm, out=np.zeros_like(p), where=norm > 0)
    return p @ _shift_matrix(major).T, p @ _shift_matrix(minor).T


def key_from_correlations(rmaj, rmin, size):
    """(key index array, is_major array, strength array) from correlation matrices."""
    smaj = np.argmax(rmaj, axis=1)
    smin = np.argmax(rmin, axis=1)
    vmaj = rmaj[np.arange(len(rmaj)), smaj]
    vmin = rmin[np.arange(len(rmin)), smin]
    major = vmaj > vmin
    shift = np.where(major, smaj, smin)
    return (shift * 12) // size, major, np.where(major, vmaj, vmin)


def estimate_key(pcp, profile_type, use_polyphony=True, use_three_chords=True,
                 num_harmonics=4, slope=0.6):
    """Standard Key on one PCP: (key name, "major"/"minor", strength)."""
    pcp = np.asarray(pcp, np.float64)
    major, minor = key_profiles(profile_type, len(pcp), use_polyphony, use_three_chords,
                                num_harmonics, slope)
    rmaj, rmin = key_correlations(pcp, major, minor)
    k, is_major, strength = key_from_correlations(rmaj, rmin, len(pcp))
    return KEY_NAMES[int(k[0]) % 12], "major" if is_major[0] else "minor", float(np.float32(strength[0]))


def _normalize_max(v):
    m = np.max(v) if len(v) else 0.0
    return v / m if m > 0 else v


def key_pcp(mean_hpcp, threshold=0.2):
    """The streaming Key's preparation of the mean HPCP: unit max, gate below ``threshold``,
    then the average-detuning correction (rotate the maximum onto a semitone centre)."""
    p = _normalize_max(np.asarray(mean_hpcp, np.float64).copy())
    p[p < threshold] = 0.0
    p = _normalize_max(p)
    size = len(p)
    res = size // 12
    r = int(np.argmax(p)) % res
    shift = r if r <= res // 2 else r - res
    return np.roll(p, -shift)


# ---- chords --------------------------------------------------------------------------------

def detect_chords(hpcp_chord, hop_size=2048, window_seconds=2.0, sample_rate=SAMPLE_RATE):
    """Chord name and strength for every frame (ChordsDetection; hop fixed at 2048)."""
    n = len(hpcp_chord)
    if n == 0:
        return [], np.zeros(0)
    nw = int(window_seconds * sample_rate / hop_size) - 1
    half = nw // 2
    cs = np.vstack([np.zeros((1, hpcp_chord.shape[1])), np.cumsum(hpcp_chord, axis=0)])
    i = np.arange(n)
    a = np.maximum(0, i - half)
    b = np.minimum(i + half, n)
    b = np.maximum(b, a + 1)
    mean = (cs[b] - cs[a]) / (b - a)[:, None]
    major, minor = key_profiles("tonictriad", hpcp_chord.shape[1], use_polyphony=False)
    rmaj, rmin = key_correlations(mean, major, minor)
    k, is_major, strength = key_from_correlations(rmaj, rmin, hpcp_chord.shape[1])
    names = [KEY_NAMES[int(kk) % 12] + ("" if mj else "m") for kk, mj in zip(k, is_major)]
    return names, strength.astype(np.float32)


def chords_descriptors(chords, key, scale):
    """chords_histogram (rotated to the key's chord), number rate, changes rate, key, scale."""
    n = len(chords)
    out = {"chords_histogram": [0.0] * 24, "chords_number_rate": 0.0,
           "chords_changes_rate": 0.0, "chords_key": "A", "chords_scale": "major"}
    if n == 0:
        return out
    index = {c: i for i, c in enumerate(CIRCLE_OF_FIFTHS)}

    def idx(c):
        c = _ALIASES.get(c, c)
        if c not in index:
            raise MirkitError(f"unknown chord {c!r}")
        return index[c]

    ids = np.array([idx(c) for c in chords])
    hist = np.bincount(ids, minlength=24) * 100.0 / n
    key_chord = key + ("m" if scale == "minor" else "")
    kidx = idx(key_chord)
    rotated = np.zeros(24)
    rotated[(np.arange(24) - kidx) % 24] = hist
    out["chords_histogram"] = np.asarray(rotated, np.float32).astype(np.float64).tolist()
    out["chords_number_rate"] = float(np.float32(np.count_nonzero(rotated > 1.0) / n))
    out["chords_changes_rate"] = float(np.float32(np.count_nonzero(ids[1:] != ids[:-1]) / n))
    top = CIRCLE_OF_FIFTHS[int(np.argmax(hist))]
    if top.endswith("m"):
        out["chords_key"], out["chords_scale"] = top[:-1], "minor"
    else:
        out["chords_key"], out["chords_scale"] = top, "major"
    return out


# ---- tuning-system features ----------------------------------------------------------------

def high_resolution_features(h, max_peaks=24):
    """(equal-tempered deviation, non-tempered energy ratio) of a unit-max 120-bin HPCP."""
    h = np.asarray(h, np.float64)
    size = len(h)
    per = size // 12
    left, right = np.roll(h, 1), np.roll(h, -1)
    pk = np.flatnonzero((left <= h) & (h >= right))
    order = np.lexsort((pk, -h[pk]))[:max_peaks]
    pos, mag = pk[order].astype(np.float64), h[pk[order]]
    dev = pos / per - np.floor(pos / per)
    dev = np.where(dev > 0.5, dev - 1.0, dev)
    msum = mag.sum()
    eq_dev = float(np.abs(dev * mag).sum() / msum) if msum > 0 else 0.0
    e = (h * h).sum()
    ratio = float(1.0 - (h[::per] ** 2).sum() / e) if e > 0 else 0.0
    return eq_dev, ratio


# ---- frame-wise analysis -------------------------------------------------------------------

def _tonal_options(options):
    o = {k: option(options, "tonal", k, v) for k, v in TONAL_DEFAULTS.items()}
    o["frameSize"], o["hopSize"], o["zeroPadding"] = int(o["frameSize"]), int(o["hopSize"]), int(o["zeroPadding"])
    if o["frameSize"] <= 0 or o["hopSize"] <= 0 or o["zeroPadding"] < 0:
        raise MirkitError(f"tonal: invalid frameSize/hopSize/zeroPadding "
                          f"{o['frameSize']}/{o['hopSize']}/{o['zeroPadding']}")
    framing.make_window(o["windowType"], 4)   # validates the window name
    return o


def _hpcp_chunks(fr, fq, mg, n_frames, ref, params, mean=False, chunk=8192):
    """:func:`hpcp` of the frames ``chunk`` at a time (frames are independent; bounded memory
    for long inputs): the (n_frames, size) float32 HPCPs, or with ``mean`` their float64 mean."""
    if n_frames <= chunk:
        h = hpcp(fr, fq, mg, n_frames, ref, **params)
        return h.mean(axis=0) if mean else h.astype(np.float32)
    out = None if mean else np.empty((n_frames, params.get("size", 36)), np.float32)
    total = 0.0
    for f0 in range(0, n_frames, chunk):
        f1 = min(n_frames, f0 + chunk)
        a, b = np.searchsorted(fr, [f0, f1], side="left")
        h = hpcp(fr[a:b] - f0, fq[a:b], mg[a:b], f1 - f0, ref, **params)
        if mean:
            total = total + h.sum(axis=0)
        else:
            out[f0:f1] = h
    return total / n_frames if mean else out


def analyze(signal, sample_rate=SAMPLE_RATE, options=None):
    """The raw (frame-wise) ``tonal`` pool of signal S0 (see the module docstring)."""
    o = _tonal_options(options)
    # an array, or a signal store (long files: read frame block by frame block)
    x = signal if hasattr(signal, "read") else np.asarray(signal, np.float32).ravel()
    # sample_rate is not used: like Essentia's, the tonal algorithms assume 44100 Hz
    # (extractor.md §3.8); the pipeline always analyses at 44100 Hz.
    F, H, Z = o["frameSize"], o["hopSize"], o["zeroPadding"]
    tuning = TuningAccumulator()
    peaks = []
    n_frames = 0
    for index, frames in framing.iter_frame_blocks(x, F, H, False, o["silentFrames"], 256):
        spec = framing.spectrum(frames, o["windowType"], Z)
        nb = len(frames)
        fr, fq, mg = spectral_peaks(spec, SAMPLE_RATE, 40.0, 5000.0, 1e-5, 10000, "frequency")
        tuning.add(fr, fq, mg, nb)
        fr, fq, mg = spectral_peaks(spec, SAMPLE_RATE, 20.0, 3500.0, 1e-5, 60, "magnitude")
        # compact storage (float32 like Essentia; about 12 bytes per peak)
        peaks.append(((fr + n_frames).astype(np.int32), fq.astype(np.float32), mg.astype(np.float32)))
        n_frames += nb
    if peaks:
        fr = np.concatenate([p[0] for p in peaks])
        fq = np.concatenate([p[1] for p in peaks])
        mg = np.concatenate([p[2] for p in peaks])
    else:
        fr, fq, mg = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    ref = tuning.frequency()
    h_key = _hpcp_chunks(fr, fq, mg, n_frames, ref, HPCP_KEY)
    h_chord = _hpcp_chunks(fr, fq, mg, n_frames, ref, HPCP_CHORD)
    hr_mean = _hpcp_chunks(fr, fq, mg, n_frames, ref, HPCP_HIGHRES, mean=True)

    pool = {}
    pool["hpcp"] = h_key
    names, strength = detect_chords(h_chord.astype(np.float64))
    pool["chords_strength"] = strength
    # entropy and crest of the chord HPCP (as upstream)
    hc = h_chord.astype(np.float64)
    s = hc.sum(axis=1, keepdims=True)
    p = np.divide(hc, s, out=hc.copy(), where=s > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    pool["hpcp_entropy"] = ent.astype(np.float32)
    mx = hc.max(axis=1) if n_frames else np.zeros(0)
    mean = hc.mean(axis=1) if n_frames else np.zeros(0)
    pool["hpcp_crest"] = np.divide(mx, mean, out=np.zeros_like(mx), where=mx > 0).astype(np.float32)

    mean_key = h_key.astype(np.float64).mean(axis=0) if n_frames else np.zeros(36)
    kp = key_pcp(mean_key)
    for profile in ("edma", "krumhansl", "temperley"):
        k, sc, st = estimate_key(kp, profile)
        pool[f"key_{profile}"] = {"key": k, "scale": sc, "strength": st}
    pool.update(chords_descriptors(names, pool["key_temperley"]["key"], pool["key_temperley"]["scale"]))

    hr = _normalize_max(hr_mean if n_frames else np.zeros(120))
    eq_dev, ratio = high_resolution_features(hr)
    pool["tuning_diatonic_strength"] = estimate_key(hr, "diatonic")[2]
    pool["tuning_equal_tempered_deviation"] = float(np.float32(eq_dev))
    pool["tuning_nontempered_energy_ratio"] = float(np.float32(ratio))
    pool["tuning_frequency"] = ref
    th = _normalize_max(mean_key)
    pool["thpcp"] = np.roll(th, -int(np.argmax(th))).astype(np.float32)
    return pool


FRAMEWISE = ("hpcp", "chords_strength", "hpcp_entropy", "hpcp_crest")


def aggregate(pool, options=None):
    """The ``tonal`` statistics sub-record from an :func:`analyze` pool."""
    return aggregate_pool(pool, FRAMEWISE, stats_option(options, "tonal"), "tonal")




def compute(signal, sample_rate=SAMPLE_RATE, options=None):
    """``tonal`` sub-record (statistics) of S0. ``options``: tonal.frameSize, hopSize,
    zeroPadding, windowType, silentFrames, stats (defaults as Essentia's extractor). With a
    true ``outputFrames`` option, returns ``(record, frames_record)``."""
    pool = analyze(signal, sample_rate, options)
    record = aggregate(pool, options)
    if option(options, "tonal", "outputFrames", False):
        return record, frames_record(pool)
    return record
