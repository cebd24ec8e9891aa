"""Multi-feature beat tracking after Zapata, Davies & Gómez (2014), "Multi-Feature Beat
Tracking", IEEE/ACM TASLP 22(4), as documented for Essentia's BeatTrackerMultiFeature /
RhythmExtractor2013(method="multifeature"). Implemented from the papers, that documentation
and black-box measurements of the ``essentia`` wheel (no Essentia source was used).

1. Onset detection functions (ODFs) of the 44100 Hz signal, from Hann-windowed frames that
   start at sample 0 (four of the five of Essentia's committee):

   * ``csd``: complex spectral difference (Bello et al. 2004), 2048/1024, shared with the
     Degara tracker (:func:`mirkit.extractor.rhythm_degara.complex_odf_blocks`);
   * ``rms``: energy flux (Laroche 2003), the half-wave rectified first difference of the RMS
     of the magnitude spectrum, 2048/1024, 0 at the first frame (measured: Essentia's
     OnsetDetection 'rms' is this up to a constant factor 1/sqrt(1025));
   * ``mel``: mel flux (Ellis 2007), 2048/1024: 40 triangular HTK-mel bands from 0 to 4 kHz
     with unit-sum weights over the power spectrum, ``20 log10(max(E, 1e-10))``, half-wave
     rectified first difference summed over the bands, 0 at the first frame (measured against
     OnsetDetection 'melflux': same filter support, floor and gain within 0.2 dB);
   * ``ig``: the modified information gain of Hainsworth & Macleod (2003), 2048/512: for frame
     ``t`` the magnitude spectra (bins below ~5 kHz) summed over the five frames ``t-4..t`` are
     compared with those summed over the five frames ``t-10..t-6``:
     ``sum_k max(0, log2((A_k + e_k) / (B_k + e_k)))`` with ``e_k`` the mean magnitude of bin
     ``k`` over the signal (fitted to OnsetDetectionGlobal 'infogain': correlation 0.85-0.99
     of the ODFs, mostly the same beat candidates);

   Essentia's fifth feature, Davies et al.'s (2009) beat emphasis function (OnsetDetectionGlobal
   'beat_emphasis': sub-band complex spectral differences weighted by their periodicity over
   the whole signal), is not implemented: no stand-in measured (the complex spectral
   difference at hop 512, raw or smoothed) gave Essentia's beat-emphasis beats on more than
   53 % of real-music excerpts, and a wrong fifth member lowers the committee's agreement
   with Essentia (benchmarks/bench_rhythm_multifeature.py: 0.68 instead of 0.73 of the beats
   within 20 ms on real music). The committee therefore has four members.

2. A beat tracker on each ODF: the Degara et al. (2012) tracker of
   :mod:`mirkit.extractor.rhythm_degara`, on the ×2 upsampled ODF for the hop-1024 features
   and on the ODF itself for the hop-512 ones (both at 86.13 Hz, as TempoTapDegara with
   ``resample`` "x2" / "none").

3. Committee selection (TempoTapMaxAgreement; Zapata et al. 2012, Holzapfel et al. 2012): the
   information gain between every pair of beat sequences, the sequence with the maximum mean
   mutual agreement (MMA) is the output (the first one on ties), and the confidence is the mean
   agreement over all pairs. Black-box measurements of TempoTapMaxAgreement fixed most details:
   beats before 5 s are ignored, beat errors are normalised by the mean inter-beat interval of
   the reference sequence, the 40-bin histogram has a bin edge at zero error, the gain is
   ``5 - H`` bits (so 5.0 for identical sequences; the documented range says 5.32) and the
   lower of the two directions counts. Some difference remains (a quarter of the pairs
   measured get another gain).

Measured agreement with Essentia: benchmarks/bench_rhythm_multifeature.py. Essentia's output
is always, bit for bit, one of its five candidates (the ones its documented algorithms give
when called one by one), but its choice is not always the one TempoTapMaxAgreement makes on
those five candidates (6 of the 15 short clips of the benchmark differ): some internal
difference was not found. The candidates differ from one another by whole ODF samples
(11.6 ms), so the 20 ms agreement depends on picking the same member.
"""

import numpy as np

from . import framing
from .rhythm_degara import (FRAME_SIZE, HOP_SIZE, SAMPLE_RATE, beat_periods, complex_odf_blocks,
                            decode_beats, normalise_odf, tempo_tap_degara)

HOP_FINE = 512
N_MEL = 40
MEL_FMAX = 4000.0
IG_BINS = 40
IG_MAX = 5.0            # information gain of identical sequences (TempoTapMaxAgreement)
IG_SKIP = 5.0           # beats before this time (s) are ignored by the agreement
INFOGAIN_BINS = 234     # spectrum bins (< ~5 kHz) of the infogain ODF
INFOGAIN_SPAN = 5       # frames summed on each side
INFOGAIN_GAP = 1        # frames between the two sums
INFOGAIN_EPS = 1.0      # floor: this times the bin's mean magnitude over the signal
_TINY = 1e-30
FEATURES = ("csd", "rms", "mel", "ig")


def _mel_filterbank(n_bands=N_MEL, frame_size=FRAME_SIZE, sr=SAMPLE_RATE, fmin=0.0,
                    fmax=MEL_FMAX):
    """Triangular filters on the HTK mel scale, unit-sum weights, shape (K, n_bands)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    K = frame_size // 2 + 1
    freqs = np.arange(K) * sr / frame_size
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_bands + 2))
    lo, ce, hi = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((freqs[:, None] - lo) / (ce - lo),
                                   (hi - freqs[:, None]) / (hi - ce)))
    s = w.sum(axis=0)
    return w / np.where(s > 0, s, 1.0)


def energy_mel_odfs(x, frame_size=FRAME_SIZE, hop_size=HOP_SIZE):
    """(rms, mel) ODFs, float64 arrays of one value per frame (frames from 0, first value 0)."""
    if not hasattr(x, "read"):
        x = np.asarray(x, np.float32)
    n = framing.frame_count(len(x), frame_size, hop_size, True)
    rms, mel = np.zeros(n), np.zeros(n)
    win = framing.make_window("hann", frame_size)
    fb = _mel_filterbank(N_MEL, frame_size)
    prev_r, prev_m = None, None
    for index, frames in framing.iter_frame_blocks(x, frame_size, hop_size, True, "keep", 256):
        p = np.abs(np.fft.rfft(frames * win, axis=1)).astype(np.float64) ** 2
        r = np.sqrt(p.mean(axis=1))
        m = 20.0 * np.log10(np.maximum(p @ fb, 1e-10))
        r2 = np.concatenate([r[:1] if prev_r is None else prev_r, r])
        m2 = np.concatenate([m[:1] if prev_m is None else prev_m, m])
        rms[index] = np.maximum(np.diff(r2), 0.0)
        mel[index] = np.maximum(np.diff(m2, axis=0), 0.0).sum(axis=1)
        prev_r, prev_m = r[-1:], m[-1:]
    return rms, mel


def infogain_odf(x, frame_size=FRAME_SIZE, hop_size=HOP_FINE):
    """Modified information gain ODF (see the module docstring), one value per frame."""
    if not hasattr(x, "read"):
        x = np.asarray(x, np.float32)
    n = framing.frame_count(len(x), frame_size, hop_size, True)
    if n == 0:
        return np.zeros(0)
    kb = min(INFOGAIN_BINS, frame_size // 2 + 1)
    mag = np.zeros((n, kb), np.float32)
    win = framing.make_window("hann", frame_size)
    for index, frames in framing.iter_frame_blocks(x, frame_size, hop_size, True, "keep", 256):
        mag[index] = np.abs(np.fft.rfft(frames * win, axis=1)[:, :kb])
    span, gap = INFOGAIN_SPAN, INFOGAIN_GAP
    lead = 2 * span + gap                         # zero frames before the first one
    m = np.concatenate([np.zeros((lead, kb), np.float32), mag])
    sums = m[:len(m) - span + 1].copy()           # sums[i] = m[i] + ... + m[i+span-1]
    for j in range(1, span):
        sums += m[j:len(m) - span + 1 + j]
    eps = (INFOGAIN_EPS * mag.mean(axis=0, dtype=np.float64) + _TINY).astype(np.float32)
    out = np.zeros(n)
    for a in range(0, n, 4096):                   # frame t: after = sums[t+lead-span+1]
        b = min(n, a + 4096)
        after = sums[a + lead - span + 1:b + lead - span + 1] + eps
        before = sums[a + 1:b + 1] + eps          # frames t-2*span-gap+1 .. t-span-gap
        out[a:b] = np.maximum(np.log2(after / before), 0.0).sum(axis=1, dtype=np.float64)
    return out


def onset_detection_functions(x):
    """The committee's ODFs: ``{name: (array, rate in Hz, upsample x2)}``."""
    coarse = SAMPLE_RATE / HOP_SIZE
    fine = SAMPLE_RATE / HOP_FINE
    csd, _ = complex_odf_blocks(x, FRAME_SIZE, HOP_SIZE)
    rms, mel = energy_mel_odfs(x)
    return {"csd": (csd, coarse, True), "rms": (rms, coarse, True), "mel": (mel, coarse, True),
            "ig": (infogain_odf(x), fine, False)}


def _track(odf, rate, upsample, min_tempo, max_tempo):
    if upsample:
        return tempo_tap_degara(odf, rate, min_tempo, max_tempo)
    odf = normalise_odf(odf)
    if len(odf) == 0:
        return np.zeros(0)
    return decode_beats(odf, beat_periods(odf, rate, min_tempo, max_tempo), 1.0 / rate)


# ---- information gain ------------------------------------------------------------------------

def _error_histogram(est, ref, bins=IG_BINS):
    """Beat error histogram (probabilities) of ``est`` against ``ref``: each estimated beat's
    error to its nearest reference beat in units of the mean reference inter-beat interval,
    wrapped to [-0.5, 0.5); bins ``[-0.5 + k/bins, -0.5 + (k+1)/bins)``, so a bin edge at zero
    error (both as measured on TempoTapMaxAgreement: with this normalisation 67 of 90 pairs
    of beat sequences measured get Essentia's gain to 1e-3, 61 with the inter-beat interval on
    the side of the error)."""
    j = np.clip(np.searchsorted(ref, est), 1, len(ref) - 1)
    near = np.where(est - ref[j - 1] <= ref[j] - est, j - 1, j)
    norm = (est - ref[near]) / np.diff(ref).mean()
    norm = (norm + 0.5) % 1.0 - 0.5
    idx = np.floor((norm + 0.5) * bins).astype(np.int64) % bins
    h = np.bincount(idx, minlength=bins).astype(np.float64)
    return h / h.sum()


def information_gain(a, b, bins=IG_BINS, skip=IG_SKIP):
    """Information gain (bits, ``5 - entropy``; 5 for identical sequences) between two beat
    sequences (seconds), ignoring beats before ``skip`` s; the lower of both directions."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a[a >= skip], b[b >= skip]
    if len(a) < 2 or len(b) < 2:
        return 0.0
    gains = []
    for est, ref in ((a, b), (b, a)):
        p = _error_histogram(est, ref, bins)
        nz = p[p > 0]
        gains.append(IG_MAX + float(np.sum(nz * np.log2(nz))))
    return float(min(gains))


def select(sequences, bins=IG_BINS):
    """(index of the sequence with maximum mean mutual agreement, confidence = mean agreement
    over all pairs, agreement matrix)."""
    m = len(sequences)
    ig = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            ig[i, j] = ig[j, i] = information_gain(sequences[i], sequences[j], bins)
    best = int(np.argmax(ig.sum(axis=1)))
    conf = float(ig[np.triu_indices(m, 1)].mean()) if m > 1 else 0.0
    return best, conf, ig


def beat_track(x, min_tempo=40, max_tempo=208, return_details=False):
    """Beat positions (s) of the 44100 Hz signal ``x`` by multi-feature committee selection.
    With ``return_details``: ``(beats, {"confidence": bits, "feature": name,
    "candidates": {name: beats}})``."""
    odfs = onset_detection_functions(x)
    names = list(odfs)
    cands = [_track(*odfs[k], min_tempo, max_tempo) for k in names]
    best, conf, _ = select(cands)
    beats = cands[best]
    if return_details:
        return beats, {"confidence": conf, "feature": names[best],
                       "candidates": dict(zip(names, cands))}
    return beats
