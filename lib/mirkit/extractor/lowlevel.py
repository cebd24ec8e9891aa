"""Frame-wise ``lowlevel.*`` descriptors of extractor.md §6.2, vectorised over frames.

:func:`compute_frames` cuts S0 (and its equal-loudness copy) into LL frames block by block,
with one batched FFT per block, and returns ``{name: array}``: ``(n,)`` for scalar
descriptors, ``(n, D)`` for vector ones (n = number of frames). Formulas: §7.1-§7.5.
Whole-signal descriptors (average loudness, dynamic complexity, EBU R128) are in
:mod:`mirkit.extractor.loudness`.
"""

import functools

import numpy as np

from . import bands, framing, peaks
from .signal import _EQLOUD_44100, _impulse_response, _poly_mul, fir_filter

# db2lin(-X/2) = 10**(-X/2/20): 20dB -> 0.1, 30dB -> 0.0316228, 60dB -> 0.001
SILENCE_THRESHOLDS = {"silence_rate_20dB": 0.1, "silence_rate_30dB": 10 ** (-1.5),
                      "silence_rate_60dB": 0.001}

ENERGY_BANDS = (("spectral_energyband_low", 20.0, 150.0),
                ("spectral_energyband_middle_low", 150.0, 800.0),
                ("spectral_energyband_middle_high", 800.0, 4000.0),
                ("spectral_energyband_high", 4000.0, 20000.0))

#: names of every frame-wise descriptor computed here (frames-pool order is alphabetical)
SCALAR_NAMES = (
    "barkbands_crest", "barkbands_flatness_db", "barkbands_kurtosis", "barkbands_skewness",
    "barkbands_spread", "dissonance", "erbbands_crest", "erbbands_flatness_db",
    "erbbands_kurtosis", "erbbands_skewness", "erbbands_spread", "hfc", "melbands_crest",
    "melbands_flatness_db", "melbands_kurtosis", "melbands_skewness", "melbands_spread",
    "pitch_salience", "silence_rate_20dB", "silence_rate_30dB", "silence_rate_60dB",
    "spectral_centroid", "spectral_complexity", "spectral_decrease", "spectral_energy",
    "spectral_energyband_high", "spectral_energyband_low", "spectral_energyband_middle_high",
    "spectral_energyband_middle_low", "spectral_entropy", "spectral_flux", "spectral_kurtosis",
    "spectral_rms", "spectral_rolloff", "spectral_skewness", "spectral_spread",
    "spectral_strongpeak", "zerocrossingrate")
VECTOR_NAMES = ("barkbands", "erbbands", "gfcc", "melbands", "melbands128", "mfcc",
                "spectral_contrast_coeffs", "spectral_contrast_valleys")


# ---- helpers on batches of frames ----------------------------------------------------------

def zero_crossing_rate(frames):
    """Sign changes (|v| <= 0 counts as non-positive) over the frame length."""
    pos = frames > 0.0
    return (pos[:, 1:] != pos[:, :-1]).sum(axis=1) / np.float32(frames.shape[1])


def central_moments(a, rng):
    """Essentia's CentralMoments(pdf) rows -> (m2, m3, m4) scaled by range powers.

    Computed from the raw moments E[t^k] (one matrix product) in float64.
    """
    a = np.asarray(a)
    n = a.shape[1]
    t = np.arange(n, dtype=np.float64) / (n - 1)
    T = np.stack([np.ones(n), t, t * t, t ** 3, t ** 4], axis=1)
    M = a.astype(np.float64, copy=False) @ T
    s = M[:, 0]
    ok = s > 0
    s1 = np.where(ok, s, 1.0)
    e1, e2, e3, e4 = (M[:, k] / s1 for k in range(1, 5))
    c = e1
    m2 = np.maximum(e2 - c * c, 0.0)
    m3 = e3 - 3 * c * e2 + 2 * c ** 3
    m4 = e4 - 4 * c * e3 + 6 * c * c * e2 - 3 * c ** 4
    m2, m3, m4 = (np.where(ok, m, 0.0) for m in (m2, m3, m4))
    return m2 * rng ** 2, m3 * rng ** 3, m4 * rng ** 4


def distribution_shape(m2, m3, m4):
    """(spread, skewness, kurtosis) from central moments."""
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(m2 > 0, m3 / np.power(np.maximum(m2, 1e-300), 1.5), 0.0)
        kurt = np.where(m2 > 0, m4 / np.maximum(m2, 1e-300) ** 2 - 3.0, -3.0)
    return m2, skew, kurt


def flatness_db(a):
    a = np.asarray(a, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        anyzero = (a <= 0).any(axis=1)
        geo = np.exp(np.mean(np.log(np.maximum(a, 1e-300)), axis=1))
        ari = a.mean(axis=1)
        flat = np.where(anyzero | (ari <= 0), 0.0, geo / np.where(ari > 0, ari, 1.0))
        out = np.where(flat <= 0, 1.0,
                       np.minimum(10.0 * np.log10(np.maximum(flat, 1e-300)) / -60.0, 1.0))
    return out


def crest(a):
    a = np.asarray(a, np.float64)
    mx = a.max(axis=1)
    mean = a.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mx > 0, mx / np.where(mean > 0, mean, 1.0), 0.0)


def entropy(a):
    a = np.asarray(a, np.float32)
    s = a.sum(axis=1, keepdims=True)
    p = np.where(s > 0, a / np.where(s > 0, s, 1.0), a)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.where(p > 0, np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -(p * lp).sum(axis=1)


def band_shape(prefix, b, out):
    """``<prefix>_{spread,skewness,kurtosis,flatness_db,crest}`` of band energies ``b``."""
    m2, m3, m4 = central_moments(b, b.shape[1] - 1)
    spread, skew, kurt = distribution_shape(m2, m3, m4)
    out[prefix + "_spread"] = spread
    out[prefix + "_skewness"] = skew
    out[prefix + "_kurtosis"] = kurt
    out[prefix + "_flatness_db"] = flatness_db(b)
    out[prefix + "_crest"] = crest(b)


def rolloff(E, bin_hz, cutoff=0.85):
    c = np.cumsum(E, axis=1, dtype=np.float32)
    total = c[:, -1:] * np.float32(cutoff)
    reached = c >= total
    k = np.argmax(reached, axis=1)
    found = reached.any(axis=1)
    return np.where(found, k * bin_hz, 0.0)


def strong_peak(S):
    n, K = S.shape
    i = np.argmax(S, axis=1)
    M = S[np.arange(n), i]
    thr = (M / 2.0)[:, None]
    below = S < thr
    k = np.arange(K)[None, :]
    left = np.where(below & (k < i[:, None]), k, -1).max(axis=1)
    right = np.where(below & (k > i[:, None]), k, K).min(axis=1)
    l_final = left + 1   # -1 -> 0 (division by zero -> 0), stopped at l -> l+1
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.where(l_final > 0, M / np.log10(right / np.maximum(l_final, 1)), 0.0)
    val = np.where(M == S.min(axis=1), 0.0, val)
    return np.where(np.isfinite(val), val, 0.0)


def _fast_len(n):
    """Smallest 2^a 3^b 5^c >= n (an efficient FFT length)."""
    best = 1 << int(np.ceil(np.log2(n)))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def pitch_salience(S, sample_rate=44100.0):
    n, K = S.shape
    lo = int(100.0 * K / (sample_rate / 2.0))
    hi = int(5000.0 * K / (sample_rate / 2.0))
    # no circular wrap for lags < hi when nfft >= K + hi
    nfft = _fast_len(K + hi)
    F = np.fft.rfft(S.astype(np.float32), nfft, axis=1)
    acf = np.fft.irfft(F * np.conj(F), nfft, axis=1)[:, :hi]
    a0 = acf[:, 0]
    mx = acf[:, lo:hi].max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a0 > 0, mx / np.where(a0 > 0, a0, 1.0), 0.0)


def spectral_peaks(S, bin_hz, min_freq, max_freq, threshold, max_peaks, order="magnitude",
                   count_only=False):
    """SpectralPeaks (PeakDetection, interpolate=true) on every row of S
    (:func:`mirkit.extractor.peaks.spectral_peaks`, the extractor's one implementation).

    Returns ``(freq, mag, count)``: (n, P) arrays padded with ``inf`` / 0 and the number of
    peaks per row, ordered by magnitude (desc.) or frequency, truncated to ``max_peaks``.
    With ``count_only`` only the counts are computed (``freq``/``mag`` are None).
    """
    n, K = S.shape
    fr, fq, mg = peaks.spectral_peaks(S, bin_hz * 2.0 * (K - 1), min_freq, max_freq, threshold,
                                      max_peaks, "frequency" if count_only else order)
    if count_only:
        return None, None, np.bincount(fr, minlength=n)[:n]
    return peaks.padded_peaks(n, fr, fq, mg)


def _hz2bark(f):
    b = 26.81 * f / (1960.0 + f) - 0.53
    b = np.where(b < 2, b + 0.15 * (2 - b), b)
    b = np.where(b > 20.1, b + 0.22 * (b - 20.1), b)
    return b


def _bark2hz(b):
    b = np.where(b < 2, (b - 0.3) / 0.85, b)
    b = np.where(b > 20.1, (b + 4.422) / 1.22, b)
    return 1960.0 * (b + 0.53) / (26.28 - b)


def _a_weight(f):
    f2 = f * f
    return (1.25893 * 12200.0 ** 2 * f2 * f2
            / ((f2 + 20.6 ** 2) * (f2 + 12200.0 ** 2)
               * np.sqrt(f2 + 107.7 ** 2) * np.sqrt(f2 + 737.9 ** 2)))


def _plomp(x):
    p = (-6.58977878 * x ** 5 + 28.58224226 * x ** 4 - 47.36739986 * x ** 3
         + 35.70679761 * x ** 2 - 10.36526344 * x + 1.00026609)
    p = np.clip(p, 0.0, 1.0)
    return np.where((x < 0) | (x > 1.18), 1.0, p)


def dissonance(freq, mag):
    """Dissonance (§7.4) of frequency-ordered peaks (n, P) padded with inf/0.

    Only pairs closer than 1.18 critical bandwidths contribute (the Plomp-Levelt curve is
    1, i.e. no dissonance, beyond); peaks are sorted by frequency, so the pairs are visited
    as diagonals ``p2 = p1 + o`` of growing |o| until no pair is that close.
    """
    n, P = freq.shape
    if P == 0:
        return np.zeros(n)
    valid = np.isfinite(freq)
    f = np.where(valid, freq, 1e9)
    with np.errstate(over="ignore", invalid="ignore"):
        L = np.where(valid, mag * _a_weight(f) ** 2, 0.0)
    T = L.sum(axis=1)
    Ts = np.where(T > 0, T, 1.0)
    bark = _hz2bark(f)
    cb = 52548.0 / (bark ** 2 - 52.56 * bark + 690.39)
    lo = np.minimum(_bark2hz(bark - 1.18), 50.0)
    hi = np.minimum(_bark2hz(bark + 1.18), 10000.0)
    per = np.zeros(n * P)
    for o in range(1, P):
        # unordered pairs (p1, p1 + o); d is symmetric, the range test is not
        fa, fb = f[:, :P - o], f[:, o:]
        x = (fb - fa) / np.minimum(cb[:, :P - o], cb[:, o:])
        near = (x <= 1.18) & valid[:, o:]
        if not near.any():
            break
        r, c = np.nonzero(near)
        xs = x[r, c]
        d = 1.0 - _plomp(xs)
        pos = d > 0
        if not pos.any():
            continue
        r, c, d = r[pos], c[pos], d[pos]
        c2 = c + o
        f1, f2 = f[r, c], f[r, c2]
        w = d * (L[r, c] + L[r, c2])
        fwd = (f2 >= lo[r, c]) & (f2 < hi[r, c])        # p2 in the range of p1
        bwd = (f1 >= lo[r, c2]) & (f1 < hi[r, c2])      # p1 in the range of p2
        flat = r * P
        per += np.bincount(flat[fwd] + c[fwd], weights=w[fwd], minlength=n * P)
        per += np.bincount(flat[bwd] + c2[bwd], weights=w[bwd], minlength=n * P)
    per = per.reshape(n, P)
    per = per / Ts[:, None]
    per = np.minimum(per, L / Ts[:, None])
    per = np.where(valid & (f > 50.0), per, 0.0)
    return np.where(T > 0, per.sum(axis=1) / 2.0, 0.0)


def _c_round(x):
    return int(np.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def contrast_bands(frame_size, sample_rate=44100.0, n_bands=6, low=20.0, high=11000.0,
                   neighbour_ratio=0.4, static_distribution=0.15):
    bin_w = sample_rate / frame_size
    start = _c_round(low / bin_w)
    tot = _c_round(high / bin_w)
    up = _c_round(0.85 * tot) * bin_w
    static = _c_round(static_distribution * tot / n_bands)
    ratio = (up / low) ** (1.0 / n_bands)
    f, last = low, start
    nbins = []
    for _ in range(n_bands):
        f *= ratio
        nbins.append(_c_round(f / bin_w - last + static))
        last = _c_round(f / bin_w)
    return start, nbins


def spectral_contrast(S, frame_size, sample_rate=44100.0):
    start, nbins = contrast_bands(frame_size, sample_rate)
    n = S.shape[0]
    coeffs = np.zeros((n, len(nbins)))
    valleys = np.zeros((n, len(nbins)))
    k = start
    for b, nb_ in enumerate(nbins):
        band = np.sort(S[:, k:k + nb_].astype(np.float64), axis=1)
        width = band.shape[1]
        if width == 0:
            k += nb_
            continue
        mean = band.sum(axis=1) / nb_ + 1e-30
        nb = max(_c_round(0.4 * nb_), 1)
        valley = band[:, :nb].sum(axis=1) / nb + 1e-30
        peak = band[:, width - nb:].sum(axis=1) / nb + 1e-30
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            coeffs[:, b] = -np.power(peak / valley, 1.0 / np.log(mean))
        valleys[:, b] = np.log(valley)
        k += nb_
    return coeffs, valleys


# ---- the frame loop ------------------------------------------------------------------------

def _eq_block(x, first_sample, last_sample, h):
    """Equal-loudness signal over [first_sample, last_sample) from S0, exact for the
    truncated impulse response ``h`` (computed with len(h)-1 samples of warm-up)."""
    n = len(x)
    a = max(0, first_sample - (len(h) - 1))
    b = min(n, max(last_sample, 0))
    out = np.zeros(max(0, last_sample - first_sample), np.float32)
    if b <= max(first_sample, 0):
        return out
    y = fir_filter(h, x.read(a, b) if hasattr(x, "read") else x[a:b])
    lo = max(first_sample, 0)
    out[lo - first_sample:b - first_sample] = y[lo - a:]
    return out


def compute_frames(s0, sample_rate=44100.0, frame_size=2048, hop_size=1024, zero_padding=0,
                   window_type="blackmanharris62", silent_frames="noise", block_frames=512,
                   eq_signal=None):
    """Every frame-wise lowlevel descriptor of S0: ``{name: (n,) or (n, D) float32 array}``.

    ``eq_signal`` is the equal-loudness copy of S0 if the caller has it (else it is computed
    block by block here, with the filter's warm-up, so that no full-length copy is needed).
    """
    sr = float(sample_rate)
    x = s0 if hasattr(s0, "read") else np.asarray(s0, np.float32)
    F, H, zp = int(frame_size), int(hop_size), int(zero_padding)
    K = (F + zp) // 2 + 1
    bin_hz = (sr / 2.0) / (K - 1)
    c = _EQLOUD_44100
    h_eq = _impulse_response(tuple(_poly_mul(c["by"], c["bb"])), tuple(_poly_mul(c["ay"], c["ab"])))
    W_mel = bands.mel_bank(K, 40, 0.0, 11000.0, 44100.0)
    W_mel128 = bands.mel_bank(K, 128, 0.0, 22050.0, 44100.0)
    W_erb = bands.erb_bank(K, 40, 40.0, 22050.0, 44100.0)
    W_bark = bands.bark_bank(K, 44100.0)
    eb_idx = [(int(round(lo / (sr / 2) * (K - 1))), int(round(hi / (sr / 2) * (K - 1))))
              for _, lo, hi in ENERGY_BANDS]
    kk = np.arange(K, dtype=np.float64)
    dec_x = kk * (sr / 2) / (K - 1) - sr / 4
    dec_den = float((dec_x ** 2).sum())
    prev_S = np.zeros(K, np.float32)
    total = framing.frame_count(len(x), F, H, False)
    # outputs preallocated for every frame (rows filled block by block, no concatenation)
    store = {}
    state = {"row": 0, "last_S": prev_S}

    def put(name, value):
        if name == "_last_S":
            state["last_S"] = value
            return
        value = np.asarray(value, np.float32)
        arr = store.get(name)
        if arr is None:
            arr = store[name] = np.empty((total,) + value.shape[1:], np.float32)
        arr[state["row"]:state["row"] + len(value)] = value

    first = 0
    while first < total:
        count = min(block_frames, total - first)
        index, frames = framing.cut_frames(x, F, H, False, silent_frames, first, count)
        if len(index):
            # equal-loudness frames of the same positions (same silence rule on the EQ stream)
            s_first = -((F + 1) // 2) + first * H
            s_last = s_first + (count - 1) * H + F
            if eq_signal is not None and hasattr(eq_signal, "read"):
                eq = np.array(eq_signal.read(s_first, s_last), np.float32)
            elif eq_signal is not None:
                eq = np.zeros(s_last - s_first, np.float32)
                lo, hi = max(s_first, 0), min(s_last, len(eq_signal))
                if hi > lo:
                    eq[lo - s_first:hi - s_first] = eq_signal[lo:hi]
            else:
                eq = _eq_block(x, s_first, s_last, h_eq)
            eqv = np.lib.stride_tricks.as_strided(eq, shape=(count, F), strides=(H * 4, 4))
            eq_frames = np.array(eqv[index - first])
            _, eq_frames = framing.handle_silent_frames(eq_frames, index.copy(), F, H,
                                                        "noise" if silent_frames == "noise" else "keep")
            _compute_block(frames, eq_frames, put, sr, F, zp, window_type, K, bin_hz,
                           W_mel, W_mel128, W_erb, W_bark, eb_idx, kk, dec_x, dec_den, prev_S)
            prev_S = state["last_S"]
            state["row"] += len(index)
        first += count
    rows = state["row"]
    out = {}
    for name in SCALAR_NAMES:
        out[name] = store.pop(name)[:rows] if name in store else np.zeros(0, np.float32)
    dims = {"barkbands": 27, "erbbands": 40, "gfcc": 13, "melbands": 40, "melbands128": 128,
            "mfcc": 13, "spectral_contrast_coeffs": 6, "spectral_contrast_valleys": 6}
    for name in VECTOR_NAMES:
        out[name] = (store.pop(name)[:rows] if name in store
                     else np.zeros((0, dims[name]), np.float32))
    return out


def _compute_block(frames, eq_frames, put, sr, F, zp, window_type, K, bin_hz, W_mel,
                   W_mel128, W_erb, W_bark, eb_idx, kk, dec_x, dec_den, prev_S):
    power = np.einsum("ij,ij->i", frames, frames) / np.float32(F)
    for name, thr in SILENCE_THRESHOLDS.items():
        put(name, (power < thr).astype(np.float32))
    put("zerocrossingrate", zero_crossing_rate(frames))

    S = framing.spectrum(frames, window_type, zp)
    E = S * S

    mel = E @ W_mel
    put("melbands", mel)
    put("mfcc", bands.cepstrum(mel, 13))
    band_shape("melbands", mel, _Putter(put))
    put("melbands128", E @ W_mel128)
    erb = E @ W_erb
    put("erbbands", erb)
    put("gfcc", bands.cepstrum(erb, 13))
    band_shape("erbbands", erb, _Putter(put))
    bark = E @ W_bark
    put("barkbands", bark)
    band_shape("barkbands", bark, _Putter(put))

    # every linear reduction of E in one float64 product: energy, decrease, hfc, bands
    lin = E.astype(np.float64) @ _linear_matrix(K, bin_hz, tuple(eb_idx), sr)
    energy = lin[:, 0]
    put("spectral_energy", energy)
    put("spectral_rms", np.sqrt(energy / K))
    put("spectral_decrease", (lin[:, 1] - energy / K * dec_x.sum()) / dec_den)
    put("spectral_rolloff", rolloff(E, bin_hz))
    put("hfc", lin[:, 2])
    for j, (name, _, _) in enumerate(ENERGY_BANDS):
        put(name, lin[:, 3 + j])
    diff = np.diff(np.concatenate([prev_S[None, :], S]), axis=0)
    put("spectral_flux", np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64)))
    put("_last_S", S[-1].copy())
    put("spectral_strongpeak", strong_peak(S))
    _, _, count = spectral_peaks(S, bin_hz, 100.0, 5000.0, 0.005, 100, "magnitude",
                                 count_only=True)
    put("spectral_complexity", count.astype(np.float32))
    put("pitch_salience", pitch_salience(S, 44100.0))

    Seq = framing.spectrum(eq_frames, window_type, zp)
    ce = (Seq * Seq).astype(np.float64) @ _centroid_matrix(K)
    tot = ce[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        put("spectral_centroid", np.where(tot > 0, ce[:, 1] / np.where(tot > 0, tot, 1) * (sr / 2) / (K - 1), 0.0))
    m2, m3, m4 = central_moments(Seq, sr / 2.0)
    spread, skew, kurt = distribution_shape(m2, m3, m4)
    put("spectral_spread", spread)
    put("spectral_skewness", skew)
    put("spectral_kurtosis", kurt)
    put("spectral_entropy", entropy(Seq))
    freq, mag, _ = spectral_peaks(Seq, bin_hz, 0.0, 5000.0, 0.0, 100, "frequency")
    put("dissonance", dissonance(freq, mag))
    coeffs, valleys = spectral_contrast(Seq, F + zp, sr)
    put("spectral_contrast_coeffs", coeffs)
    put("spectral_contrast_valleys", valleys)


@functools.lru_cache(maxsize=8)
def _linear_matrix(K, bin_hz, eb_idx, sr):
    kk = np.arange(K, dtype=np.float64)
    M = np.zeros((K, 3 + len(eb_idx)))
    M[:, 0] = 1.0
    M[:, 1] = kk * (sr / 2) / (K - 1) - sr / 4          # decrease regressor x_i
    M[:, 2] = kk * bin_hz                                 # hfc (Masri)
    for j, (a, b) in enumerate(eb_idx):
        M[a:b + 1, 3 + j] = 1.0
    M.setflags(write=False)
    return M


@functools.lru_cache(maxsize=8)
def _centroid_matrix(K):
    M = np.stack([np.ones(K), np.arange(K, dtype=np.float64)], axis=1)
    M.setflags(write=False)
    return M


class _Putter(dict):
    def __init__(self, put):
        super().__init__()
        self._put = put

    def __setitem__(self, key, value):
        self._put(key, value)
