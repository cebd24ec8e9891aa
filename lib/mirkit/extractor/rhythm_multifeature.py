"""Multi-feature beat tracking after Zapata, Davies & Gómez (2014), "Multi-Feature Beat
Tracking", IEEE/ACM TASLP 22(4) (first presented at ISMIR 2012 as "Assigning a confidence
threshold on automatic beat annotation in large datasets"). Implemented from the papers.

1. Several onset detection functions (ODFs) of the 44100 Hz signal, all from 2048-sample
   Hann-windowed frames with hop 1024 (frames start at sample 0), one pass over the signal:

   * CSD: complex spectral difference (Bello et al. 2004), shared with the Degara tracker;
   * EF: energy flux (Laroche 2003), half-wave rectified first difference of frame energy;
   * SFX: spectral flux of log-compressed magnitudes ``log(1 + 100 |X|)``, rectified;
   * MF: mel spectral flux, rectified difference of 40 log mel-band energies (Ellis 2007);
   * HF: harmonic feature, the modified Kullback-Leibler distance between successive
     magnitude spectra (Hainsworth & Macleod 2003).

   The four frame-difference ODFs are delayed by one frame and summed over two frames
   (:func:`_align`) to share the CSD's timing.

2. A beat tracker on each ODF: the Degara et al. (2012) tracker of
   :mod:`mirkit.extractor.rhythm_degara` (periods after Davies & Plumbley, HMM decoding).

3. Committee selection: the Information Gain (Davies, Degara & Plumbley 2011; 40-bin beat
   error histogram, errors normalised by the local inter-beat interval, both directions, the
   lower of the two gains) between every pair of beat sequences; the sequence with the
   maximum mean mutual agreement (MMA) with the others is the output. Its MMA (bits) is a
   confidence value (Zapata et al. 2012: below ~1.5 bits the beats are unreliable).

The paper's beat emphasis function (Davies et al. 2009) is not implemented; the ODF set
therefore differs from Essentia's RhythmExtractor2013(method="multifeature"), which also uses
a different per-feature tracker; measured agreement is in tests/test_rhythm_multifeature.py.
"""

import numpy as np

from . import framing
from .rhythm_degara import FRAME_SIZE, HOP_SIZE, SAMPLE_RATE, complex_odf_blocks, tempo_tap_degara

N_MEL = 40
IG_BINS = 40
_TINY = 1e-10


def _mel_filterbank(n_bands=N_MEL, frame_size=FRAME_SIZE, sr=SAMPLE_RATE, fmin=40.0,
                    fmax=16000.0):
    """Triangular mel filters (HTK mel scale), shape (K, n_bands)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    K = frame_size // 2 + 1
    freqs = np.arange(K) * sr / frame_size
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_bands + 2))
    lo, ce, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lo) / (ce - lo)
    down = (hi - freqs[:, None]) / (hi - ce)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def spectral_odfs(x, frame_size=FRAME_SIZE, hop_size=HOP_SIZE):
    """(EF, SFX, MF, HF) ODFs, float64 arrays of one value per frame (frames from 0)."""
    if not hasattr(x, "read"):
        x = np.asarray(x, np.float32)
    n = framing.frame_count(len(x), frame_size, hop_size, True)
    ef, sfx, mf, hf = (np.zeros(n) for _ in range(4))
    win = framing.make_window("hann", frame_size)
    fb = _mel_filterbank(N_MEL, frame_size)
    K = frame_size // 2 + 1
    prev_e = np.zeros(1)
    prev_lm = np.zeros((1, K), np.float32)
    prev_mel = np.full((1, N_MEL), np.float32(np.log(_TINY)))
    prev_mag = np.zeros((1, K), np.float32)
    for index, frames in framing.iter_frame_blocks(x, frame_size, hop_size, True, "keep", 256):
        mag = np.abs(np.fft.rfft(frames * win, axis=1)).astype(np.float32)
        energy = np.sum(frames.astype(np.float64) ** 2, axis=1)
        e = np.concatenate([prev_e, energy])
        ef[index] = np.maximum(np.diff(e), 0.0)
        lm = np.log1p(100.0 * mag)
        l2 = np.concatenate([prev_lm, lm])
        sfx[index] = np.maximum(np.diff(l2, axis=0), 0.0).sum(axis=1)
        melv = np.log(np.maximum((mag * mag) @ fb, _TINY)).astype(np.float32)
        m2 = np.concatenate([prev_mel, melv])
        mf[index] = np.maximum(np.diff(m2, axis=0), 0.0).sum(axis=1)
        mg = np.concatenate([prev_mag, mag])
        # modified KL: sum_k log2(|X_t| / |X_t-1|) over the bins that grow (above a floor)
        ratio = np.log2((mg[1:] + 1e-4) / (mg[:-1] + 1e-4))
        hf[index] = np.maximum(ratio, 0.0).sum(axis=1)
        prev_e, prev_lm, prev_mel, prev_mag = energy[-1:], lm[-1:], m2[-1:], mag[-1:]
    return ef, sfx, mf, hf


def onset_detection_functions(x, frame_size=FRAME_SIZE, hop_size=HOP_SIZE):
    """The committee's ODFs, ``{name: array}`` at 44100/hop_size Hz."""
    csd, _ = complex_odf_blocks(x, frame_size, hop_size)
    out = {"csd": csd}
    for name, f in zip(("ef", "sfx", "mf", "hf"), spectral_odfs(x, frame_size, hop_size)):
        out[name] = _align(f)
    return out


def _align(f):
    """``g[t] = (f[t-1] + f[t-2]) / 2``: the frame-difference ODFs peak at the first frame
    that reaches an onset, one frame before the CSD and in a single frame; this delay and
    two-frame sum give them the CSD's timing and width, which the tracker's integer-lag comb
    filter bank needs (a one-frame spike biases its period by one lag, e.g. 118 for 120 BPM)."""
    g = np.zeros_like(f)
    if len(f) > 1:
        g[1:] = 0.5 * f[:-1]
        g[2:] += 0.5 * f[:-2]
    return g


# ---- information gain ------------------------------------------------------------------------

def _error_histogram(est, ref, bins=IG_BINS):
    """Beat error histogram (probabilities) of ``est`` against ``ref``: each estimated beat's
    error to its nearest reference beat, in units of the reference inter-beat interval on the
    side of the error, wrapped to [-0.5, 0.5)."""
    j = np.clip(np.searchsorted(ref, est), 1, len(ref) - 1)
    left, right = ref[j - 1], ref[j]
    near = np.where(est - left <= right - est, j - 1, j)
    err = est - ref[near]
    ibi_after = np.diff(ref)
    # interval after the nearest beat (for late errors) or before it (early errors)
    after = ibi_after[np.minimum(near, len(ref) - 2)]
    before = ibi_after[np.maximum(near - 1, 0)]
    norm = err / np.where(err >= 0, after, before)
    norm = (norm + 0.5) % 1.0 - 0.5
    idx = np.minimum(((norm + 0.5) * bins).astype(np.int64), bins - 1)
    h = np.bincount(idx, minlength=bins).astype(np.float64)
    return h / h.sum()


def information_gain(a, b, bins=IG_BINS):
    """Information gain (bits, 0..log2(bins)) between two beat sequences (seconds)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return 0.0
    gains = []
    for est, ref in ((a, b), (b, a)):
        p = _error_histogram(est, ref, bins)
        nz = p[p > 0]
        gains.append(np.log2(bins) + float(np.sum(nz * np.log2(nz))))
    return float(min(gains))


def select(sequences, bins=IG_BINS):
    """(index of the sequence with maximum mean mutual agreement, its MMA, MMA matrix)."""
    m = len(sequences)
    ig = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            ig[i, j] = ig[j, i] = information_gain(sequences[i], sequences[j], bins)
    mma = ig.sum(axis=1) / max(m - 1, 1)
    best = int(np.argmax(mma))
    return best, float(mma[best]), ig


def beat_track(x, min_tempo=40, max_tempo=208, return_details=False):
    """Beat positions (s) of the 44100 Hz signal ``x`` by multi-feature committee selection.
    With ``return_details``: ``(beats, {"confidence": MMA bits, "feature": name,
    "candidates": {name: beats}})``."""
    odfs = onset_detection_functions(x)
    names = list(odfs)
    cands = [tempo_tap_degara(odfs[k], SAMPLE_RATE / HOP_SIZE, min_tempo, max_tempo)
             for k in names]
    best, conf, _ = select(cands)
    beats = cands[best]
    if return_details:
        return beats, {"confidence": conf, "feature": names[best],
                       "candidates": dict(zip(names, cands))}
    return beats
