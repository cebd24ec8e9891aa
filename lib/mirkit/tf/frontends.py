"""Numpy front ends of Essentia's TensorFlow models (tensorflow.md §2, §3.3, §3.7).

Everything here is numpy only (no TensorFlow): resampling, framing, windows, mel filterbanks,
the per-model log-mel front ends, and patching. All functions are vectorised over frames; long
signals are processed in blocks of frames to bound memory.

Front ends (sample rate, frame, hop, bands):

* ``musicnn``  16 kHz, 512/256, 96 Slaney bands 0-8000 Hz, unit_tri, power, log10(1+1e4 x)
  (also EffNet-Discogs and, normalised, MAEST);
* ``vggish``   16 kHz, 400 (zero-padded to FFT 512)/160, 64 HTK bands 125-7500 Hz, triangles
  in the mel domain, peak 1, magnitude, ln(x+0.01);
* ``tempocnn`` 11025 Hz, 1024/512, 40 Slaney bands 20-5000 Hz, unit_tri, magnitude, no log;
  each 256-frame patch standardised, layout [B, 40, 256, 1];
* ``openl3``   48 kHz, 1 s chunks centred on multiples of the hop, 199 frames of 2048/242 per
  chunk, 128 Slaney bands 0-24 kHz, magnitude, dB with an 80 dB floor per chunk; [B,128,199,1].
"""

import math

import numpy as np

from ..errors import MirkitError

# ---------------------------------------------------------------------------------------------
# Resampling (tensorflow.md §3.6)


def resample(audio, in_rate, out_rate):
    """Resample mono float audio as Essentia's ``MonoLoader(sampleRate=..., resampleQuality=4)``.

    That is libsamplerate's linear converter (``SRC_LINEAR``) with the ratio rounded to float32
    (a float64 ratio drifts by a few samples over a song). Essentia bundles libsamplerate 0.1.8,
    which rounds the difference of the two neighbouring samples to float32 before interpolating;
    the ``samplerate`` wheel bundles 0.2.2, which keeps it in double, so its output differs from
    Essentia's by 1-2 float32 ulps in 4-30 % of the samples (measured), and sometimes by one
    sample in length. :func:`linear_resample` reproduces Essentia bit for bit (checked against
    Resample and MonoLoader for 24 rate pairs); the ``samplerate`` package is only a fallback
    for signals of fewer than 4 samples, upsampling by more than 64x, or positions the
    vectorised emulation cannot settle (never seen).
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if int(in_rate) == int(out_rate) or audio.size == 0:
        return audio
    ratio = np.float32(float(out_rate) / float(in_rate))
    out = linear_resample(audio, ratio)
    if out is None:
        import samplerate  # noqa: PLC0415  (fallback only, see linear_resample)

        out = samplerate.resample(audio, ratio, "linear")
    return np.ascontiguousarray(out, dtype=np.float32)


_RESAMPLE_CHUNK = 1 << 18     # outputs per vectorised chunk (about 40 MiB of temporaries)
_FSM_BLOCK = 512              # outputs per block of the rounding scan


def linear_resample(audio, ratio):
    """libsamplerate's linear converter (one call, whole signal), vectorised; None if unsure.

    The converter keeps a double read position: output k is ``x[0]`` while the position is
    below 1, else ``float32(x[n-1] + t * float32(x[n] - x[n-1]))`` with ``n`` its integer and
    ``t`` its fractional part; then ``t += 1/ratio`` in double and the integer part moves to
    ``n``; it stops when the double ``n + t`` reaches ``len(x)``. In integer units of the
    step's ulp, ``t + 1/ratio`` is exact unless it exceeds 2**53 units, where it is rounded to
    even; the positions are ``k * step`` plus the accumulated rounding, computed per chunk by
    :func:`_rounded_positions` (a finite-state scan over the low bits) or, for periodic
    trajectories such as 1/3, from one period.
    """
    x = np.asarray(audio, dtype=np.float32)
    n_in = len(x)
    step = 1.0 / float(np.float32(ratio))
    if n_in < 4 or not math.isfinite(step) or step <= 0:
        return None
    e = math.frexp(step)[1]
    q = 53 - e                                   # 1.0 = 2**q position units
    s = int(step * 2.0 ** q)                     # the step, exact, in [2**52, 2**53)
    if not 28 <= q <= 58:
        return None
    lost = ((1 << q) + s - 1).bit_length() - 53  # bits the largest sum t + step can lose
    exact = lost <= 0 or s % (1 << lost) == 0    # never rounded: positions are k * step
    dmax = max(1, lost)
    count = -(-(n_in << q) // s) + 2             # outputs (the rounding moves it < 1e-6)
    period = None if exact else _periodic_positions(step, n_in)
    out = np.empty(count, np.float32)
    carry = 0
    for k0 in range(0, count, _RESAMPLE_CHUNK):
        k = np.arange(k0, min(count, k0 + _RESAMPLE_CHUNK), dtype=np.int64)
        if exact:
            n, t = _shifted_positions(k, s, q, np.zeros(len(k), np.int64))
        elif period is not None:
            pn, pt, adv = period
            n, t = (k // len(pn)) * adv + pn[k % len(pn)], pt[k % len(pn)]
        else:
            res = _rounded_positions(k, s, q, dmax, carry)
            if res is None:
                return None
            n, t, carry = res
        stop = np.flatnonzero(n.astype(np.float64) + t >= n_in)
        if len(stop):
            n, t = n[:stop[0]], t[:stop[0]]
        n1 = np.clip(n, 1, n_in - 1)
        left = x[n1 - 1]
        y = (left.astype(np.float64) + t * (x[n1] - left).astype(np.float64)).astype(np.float32)
        y[n < 1] = x[0]
        out[k0:k0 + len(y)] = y
        if len(stop):
            return out[:k0 + len(y)]
    return out


def _shifted_positions(k, s, q, corr):
    """(n, t) of positions ``k * s + corr`` (units 2**-q), without int64 overflow."""
    hi, lo = s >> 27, s & ((1 << 27) - 1)
    a, b = k * hi, k * lo                        # k * s = a * 2**27 + b
    low = ((a & ((1 << (q - 27)) - 1)) << 27) + (b & ((1 << q) - 1)) + corr
    n = (a >> (q - 27)) + (b >> q) + (low >> q)
    return n, (low & ((1 << q) - 1)).astype(np.float64) * (2.0 ** -q)


def _periodic_positions(step, n_in, limit=4096):
    """One period of the double position trajectory if it returns to 0 within ``limit``
    outputs (integer-ratio upsampling such as 1/3, 1/6): (n, t, n advance), else None."""
    pos, n, ns, ts = 0.0, 0, [], []
    for _ in range(min(limit, n_in)):          # bounded: one period, not the signal
        ns.append(n)
        ts.append(pos)
        pos += step
        whole = math.floor(pos)
        n, pos = n + int(whole), pos - whole
        if pos == 0.0:
            return np.array(ns, np.int64), np.array(ts, np.float64), n
    return None


def _round_table(dmax):
    """delta[w, d]: change made by rounding a sum whose low bits are w to a multiple of 2**d
    (ties to even)."""
    m = 1 << (dmax + 1)
    w = np.arange(m)[:, None]
    d = np.arange(dmax + 1)[None, :]
    r = w & ((1 << d) - 1)
    half = (1 << d) >> 1
    up = (r > half) | ((r == half) & (((w >> d) & 1) == 1))
    return np.where(r == 0, 0, np.where(up, (1 << d) - r, -r)).astype(np.int64)


def _rounded_positions(k, s, q, dmax, carry, max_iter=8):
    """Positions of outputs ``k`` given ``carry`` = the rounding accumulated before k[0].

    The rounding of each sum depends on its magnitude (which binade: how many low bits are
    dropped, from the positions so far) and on its low ``dmax + 1`` bits (a finite state,
    scanned block-parallel: every block runs all states at once, then the blocks are
    chained). Repeated until the magnitudes agree with the positions they produce (a fixed
    point is the converter's own trajectory); None if that does not settle.
    """
    m = 1 << (dmax + 1)
    delta = _round_table(dmax)
    size = len(k)
    nb = -(-size // _FSM_BLOCK)
    pad = nb * _FSM_BLOCK - size
    low_k1 = ((k + 1) % m) * (s % m) % m          # (k + 1) * s mod m
    corr = np.full(size, carry, np.int64)
    used = None
    for _ in range(max_iter):
        _, t = _shifted_positions(k, s, q, corr)
        units = (t * 2.0 ** q).astype(np.int64) + s  # the sums, in units
        drop = np.zeros(size, np.int64)
        for dd in range(1, dmax + 1):
            drop[units >= (1 << (52 + dd))] = dd
        if used is not None and np.array_equal(drop, used):
            n, t = _shifted_positions(k, s, q, corr)
            last = int(corr[-1] + delta[(low_k1[-1] + corr[-1]) % m, drop[-1]])
            return n, t, last
        used = drop
        a = np.concatenate([low_k1, np.zeros(pad, np.int64)]).reshape(nb, _FSM_BLOCK)
        d = np.concatenate([drop, np.zeros(pad, np.int64)]).reshape(nb, _FSM_BLOCK)
        states = np.tile(np.arange(m, dtype=np.int64), (nb, 1))   # every start state
        for j in range(_FSM_BLOCK):
            states = (states + delta[(a[:, j:j + 1] + states) % m, d[:, j:j + 1]]) % m
        starts = np.empty(nb, np.int64)
        c = carry % m
        for b in range(nb):                         # chain the blocks (one per _FSM_BLOCK outputs)
            starts[b] = c
            c = int(states[b, c])
        steps = np.empty((nb, _FSM_BLOCK), np.int64)
        c = starts
        for j in range(_FSM_BLOCK):
            steps[:, j] = delta[(a[:, j] + c) % m, d[:, j]]
            c = (c + steps[:, j]) % m
        flat = steps.reshape(-1)[:size]
        corr = carry + np.concatenate([[0], np.cumsum(flat[:-1])])
    return None


# ---------------------------------------------------------------------------------------------
# Framing and windows (tensorflow.md §2.1, §3.7 A-B)


def frame_count(n_samples, hop):
    """Number of frames of Essentia's streaming FrameCutter: ceil(N / hop) + 1 (0 for N = 0)."""
    if n_samples <= 0:
        return 0
    return -(-int(n_samples) // int(hop)) + 1


def frames(audio, frame_size, hop, start=0, count=None):
    """Frames ``start .. start+count-1`` of Essentia's FrameCutter as a [count, frame_size] view.

    Frame k covers samples [k*hop - (frame_size+1)//2, ... + frame_size), zeros outside [0, N).
    """
    audio = np.asarray(audio, dtype=np.float32)
    n = audio.shape[0]
    total = frame_count(n, hop)
    if count is None:
        count = total - start
    count = max(0, min(count, total - start))
    if count == 0:
        return np.zeros((0, frame_size), dtype=np.float32)
    first = start * hop - (frame_size + 1) // 2
    last = (start + count - 1) * hop - (frame_size + 1) // 2 + frame_size
    lo, hi = max(first, 0), min(last, n)
    seg = np.zeros(last - first, dtype=np.float32)
    if hi > lo:
        seg[lo - first:hi - first] = audio[lo:hi]
    view = np.lib.stride_tricks.sliding_window_view(seg, frame_size)[::hop]
    return view[:count]


def hann(size):
    """Symmetric Hann window 0.5 - 0.5 cos(2 pi i / (N - 1)), float32 (Essentia's default)."""
    i = np.arange(size, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * i / (size - 1))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Mel filterbanks (tensorflow.md §2.1 MelBands -> TriangularBands)


def hz_to_mel(f, scale):
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale == "slaney":
        lin = 3.0 * f / 200.0
        log = 15.0 + np.log(np.maximum(f, 1e-30) / 1000.0) / (math.log(6.4) / 27.0)
        return np.where(f < 1000.0, lin, log)
    raise ValueError(f"unknown mel scale {scale!r}")


def mel_to_hz(m, scale):
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if scale == "slaney":
        lin = 200.0 * m / 3.0
        log = 1000.0 * np.exp((m - 15.0) * (math.log(6.4) / 27.0))
        return np.where(m < 15.0, lin, log)
    raise ValueError(f"unknown mel scale {scale!r}")


def mel_filterbank(sample_rate, n_bins, n_bands, fmin, fmax, scale="slaney",
                   weighting="linear", normalize="unit_tri"):
    """Triangular mel filterbank [n_bands, n_bins] (float64) as Essentia's MelBands builds it.

    Edges are ``n_bands + 2`` points linear in the mel ``scale`` between fmin and fmax; bin j
    has frequency j * (sr/2) / (n_bins - 1); triangles are linear in Hz (``weighting='linear'``)
    or in HTK mel (``'warping'``); ``unit_tri`` divides each triangle by half its width in the
    weighting domain (librosa ``norm='slaney'``), ``unit_max`` leaves a peak of 1.
    """
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale),
                                     n_bands + 2), scale)
    bin_hz = np.arange(n_bins, dtype=np.float64) * (sample_rate / 2.0) / (n_bins - 1)

    def warp(f):
        return hz_to_mel(f, "htk") if weighting == "warping" else np.asarray(f, np.float64)

    w_edges = warp(edges_hz)
    w_bins = warp(bin_hz)
    lo, mid, hi = w_edges[:-2, None], w_edges[1:-1, None], w_edges[2:, None]
    rising = (w_bins[None, :] - lo) / (mid - lo)
    falling = (hi - w_bins[None, :]) / (hi - mid)
    weights = np.where(bin_hz[None, :] < edges_hz[1:-1, None], rising, falling)
    inside = (bin_hz[None, :] >= edges_hz[:-2, None]) & (bin_hz[None, :] <= edges_hz[2:, None])
    weights = np.where(inside, np.maximum(weights, 0.0), 0.0)
    if normalize == "unit_tri":
        weights *= 2.0 / (hi - lo)
    elif normalize == "unit_sum":
        sums = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, sums, out=np.zeros_like(weights), where=sums > 0)
    elif normalize != "unit_max":
        raise ValueError(f"unknown normalisation {normalize!r}")
    return weights


_FILTERBANKS = {}


def _filterbank(*args):
    if args not in _FILTERBANKS:
        _FILTERBANKS[args] = np.ascontiguousarray(mel_filterbank(*args).T)  # [bins, bands]
    return _FILTERBANKS[args]


def _spectral_bands(audio, frame_size, hop, fft_size, fbank_t, power, block=4096):
    """[T, bands] mel energies: frames x symmetric Hann -> |rfft| (or squared) -> filterbank."""
    n = frame_count(len(audio), hop)
    out = np.empty((n, fbank_t.shape[1]), dtype=np.float64)
    window = hann(frame_size)
    for start in range(0, n, block):
        fr = frames(audio, frame_size, hop, start, block) * window  # float32, as Essentia
        spec = np.abs(np.fft.rfft(fr.astype(np.float64), n=fft_size, axis=1))
        if power:
            spec *= spec
        out[start:start + len(fr)] = spec @ fbank_t
    return out


# ---------------------------------------------------------------------------------------------
# Per-model front ends


def musicnn_bands(audio):
    """TensorflowInputMusiCNN over a 16 kHz signal: [T, 96] float32, log10(1 + 1e4 * mel)."""
    fb = _filterbank(16000, 257, 96, 0.0, 8000.0, "slaney", "linear", "unit_tri")
    mel = _spectral_bands(np.asarray(audio, np.float32), 512, 256, 512, fb, power=True)
    return np.log10(1.0 + 10000.0 * mel).astype(np.float32)


def vggish_bands(audio):
    """TensorflowInputVGGish over a 16 kHz signal: [T, 64] float32, ln(mel + 0.01)."""
    fb = _filterbank(16000, 257, 64, 125.0, 7500.0, "htk", "warping", "unit_max")
    mel = _spectral_bands(np.asarray(audio, np.float32), 400, 160, 512, fb, power=False)
    return np.log(np.maximum(mel + 0.01, 1e-30)).astype(np.float32)


def tempocnn_bands(audio):
    """TensorflowInputTempoCNN over an 11025 Hz signal: [T, 40] float32 magnitude mel, no log."""
    fb = _filterbank(11025, 513, 40, 20.0, 5000.0, "slaney", "linear", "unit_tri")
    mel = _spectral_bands(np.asarray(audio, np.float32), 1024, 512, 1024, fb, power=False)
    return mel.astype(np.float32)


MAEST_MEAN = 2.06755686098554
MAEST_STD = 1.268292820667291


def maest_bands(audio):
    """MAEST input: MusiCNN bands normalised as (x - mean) / (2 std)."""
    return ((musicnn_bands(audio) - MAEST_MEAN) / (2.0 * MAEST_STD)).astype(np.float32)


def openl3_patches(audio, hop_seconds=0.1, n_bands=128):
    """OpenL3 input from a 48 kHz signal: [B, n_bands, 199, 1] float32 (tensorflow.md §2.7).

    1 s chunks (the first centred on t = 0, hop ``hop_seconds``), 199 frames of 2048/242 each
    (no centring inside a chunk), magnitude mel, per-chunk dB floored at max - 80 and shifted
    so that the chunk maximum is 0 dB; frames restacked into 199-frame patches.
    """
    sr, chunk = 48000, 48000
    hop = int(round(hop_seconds * sr))
    audio = np.asarray(audio, np.float32)
    n_chunks = frame_count(len(audio), hop)
    if n_chunks == 0:
        return np.zeros((0, n_bands, 199, 1), np.float32)
    fb = _filterbank(sr, 1025, n_bands, 0.0, 24000.0, "slaney", "linear", "unit_tri")
    window = hann(2048)
    # inner frames: FrameCutter(2048, 242) on each chunk, centred on 0, 199 kept (the 200th is
    # less than half inside the chunk and validFrameThresholdRatio=0.5 drops it)
    idx = (np.arange(199) * 242)[:, None] + np.arange(2048)[None, :]
    out = np.empty((n_chunks, 199, n_bands), np.float32)
    block = 16
    for c0 in range(0, n_chunks, block):
        ch = frames(audio, chunk, hop, c0, block)                      # [c, 48000]
        padded = np.zeros((len(ch), chunk + 2048), np.float32)
        padded[:, 1024:1024 + chunk] = ch
        inner = padded[:, idx] * window                                # [c, 199, 2048]
        spec = np.abs(np.fft.rfft(inner.astype(np.float64), axis=-1))
        mel = spec @ fb
        db = 10.0 * np.log10(np.maximum(1e-10, mel))
        peak = db.max(axis=(1, 2), keepdims=True)
        db = np.maximum(db, peak - 80.0) - peak
        out[c0:c0 + len(ch)] = db
    return np.transpose(out, (0, 2, 1))[..., None]


# ---------------------------------------------------------------------------------------------
# Patching (VectorRealToTensor, tensorflow.md §3.3, §3.7 D)


def patch(features, size, hop, last_patch="discard"):
    """Cut [T, F] features into [n, size, F] patches starting at 0, hop, 2 hop, ...

    ``last_patch='discard'`` drops leftover frames (audio shorter than one patch gives an empty
    [0, size, F] array); ``'repeat'`` builds one more patch from the leftover frames repeated
    cyclically. ``hop`` 0 means hop = size.
    """
    if last_patch not in ("discard", "repeat"):
        raise MirkitError(f"unknown last-patch mode {last_patch!r} (discard or repeat)")
    features = np.asarray(features, dtype=np.float32)
    t, f = features.shape
    hop = int(hop) or int(size)
    starts = np.arange(0, max(t - size + 1, 0), hop) if t >= size else np.zeros(0, int)
    idx = starts[:, None] + np.arange(size)[None, :]
    next_start = starts[-1] + hop if len(starts) else 0
    rest = t - next_start
    if last_patch == "repeat" and rest > 0:
        idx = np.concatenate([idx, (next_start + np.arange(size) % rest)[None, :]])
    if len(idx) == 0:
        return np.zeros((0, size, f), dtype=np.float32)
    return features[idx]


def standardize_patches(patches):
    """Per-patch standardisation over all values, population std; constant patches -> 0."""
    p = np.asarray(patches, dtype=np.float64)
    axes = tuple(range(1, p.ndim))
    mean = p.mean(axis=axes, keepdims=True)
    std = p.std(axis=axes, keepdims=True)
    std[std == 0] = 1.0
    return ((p - mean) / std).astype(np.float32)


def tempocnn_patches(bands, hop=128, last_patch="discard"):
    """TempoCNN tensor [B, 40, 256, 1] from [T, 40] bands (standardised per patch)."""
    p = standardize_patches(patch(bands, 256, hop, last_patch))
    return np.ascontiguousarray(np.transpose(p, (0, 2, 1))[..., None])


# name -> (sample rate, bands function, patch size, patch hop)
FRONT_ENDS = {
    "musicnn": (16000, musicnn_bands, 187, 93),
    "vggish": (16000, vggish_bands, 96, 93),
    "effnet": (16000, musicnn_bands, 128, 62),
    "maest": (16000, maest_bands, 1876, 1875),
    "tempocnn": (11025, tempocnn_bands, 256, 128),
    "openl3": (48000, None, 199, 199),
}
