"""Signal preparation: downmix, replay gain, gain + clipping, equal-loudness filter, IIR filters.

The analysis signal ``S0`` that every lowlevel, rhythm and tonal descriptor reads
(extractor.md §3.1, §3.7; assembled block by block in :mod:`mirkit.extractor.pipeline`):

    audio = resample(decoded audio, to 44100 Hz)     # libsamplerate sinc_medium (resample)
    audio = audio[start:end]                         # --start/--end trim
    mono  = downmix(audio, "mix")                    # 0.5*(L+R); mono files pass through
    S0    = clip(mono * 10**((replay_gain + 6)/20), -1, 1)   float32, 1-D (easy_loader_signal)

``replay_gain`` is :class:`ReplayGain` of ``equal_loudness(clip(mono, -1, 1))`` (§3.2),
retried with ``downmix="left"`` when it fails or exceeds 40 dB (§1 step 5).

:func:`equal_loudness` gives the "EQ" signal used by the centroid, spectral moments,
dissonance, entropy and contrast descriptors (§3.3).

IIR filters are run without a Python loop over samples: :func:`lfilter` convolves with the
filter's impulse response (computed from the frequency response, truncated where it has
decayed below 1e-13 of its peak) by FFT overlap-add, in float64 (float32 on request), with
zero initial state; :class:`mirkit.extractor.stream.StreamingFIR` does the same block by block.
"""

import functools

import numpy as np

from ..errors import MirkitError

#: reference of the streaming ReplayGain (dB)
REPLAY_GAIN_REFERENCE = -31.462667465209961

# Equal-loudness filter coefficients at 44100 Hz (extractor.md §3.3).
_EQLOUD_44100 = {
    "by": [0.05418656406430, -0.02911007808948, -0.00848709379851, -0.00851165645469,
           -0.00834990904936, 0.02245293253339, -0.02596338512915, 0.01624864962975,
           -0.00240879051584, 0.00674613682247, -0.00187763777362],
    "ay": [1.0, -3.47845948550071, 6.36317777566148, -8.54751527471874, 9.47693607801280,
           -8.81498681370155, 6.85401540936998, -4.39470996079559, 2.19611684890774,
           -0.75104302451432, 0.13149317958808],
    "bb": [0.98500175787242, -1.97000351574484, 0.98500175787242],
    "ab": [1.0, -1.96977855582618, 0.97022847566350],
}


def db2amp(db):
    return 10.0 ** (0.05 * db)


def pow2db(p):
    """``10*log10(p)``, or -100 when ``p < 1e-10`` (Essentia's pow2db with silence cutoff)."""
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(p < 1e-10, -100.0, 10.0 * np.log10(np.maximum(p, 1e-30)))
    return out if out.ndim else float(out)


# ---- IIR filtering without a per-sample loop --------------------------------------------

@functools.lru_cache(maxsize=32)
def _impulse_response(b, a, tol=1e-13):
    # (cached: b and a must be tuples)
    """Impulse response of b/a, truncated where it has decayed (float64 array)."""
    b = np.asarray(b, np.float64)
    a = np.asarray(a, np.float64)
    roots = np.roots(a) if len(a) > 1 else np.zeros(0)
    r = float(np.max(np.abs(roots))) if len(roots) else 0.0
    if r >= 1.0:
        raise MirkitError("unstable IIR filter")
    # samples until r**n < tol (times a margin for repeated poles)
    n_decay = 64 if r < 1e-6 else int(np.log(tol) / np.log(r) * 1.5) + 64
    nfft = 1 << int(np.ceil(np.log2(max(4 * n_decay, 1024))))
    h = np.fft.irfft(np.fft.rfft(b, nfft) / np.fft.rfft(a, nfft), nfft)
    h = h[:n_decay]
    peak = np.max(np.abs(h))
    keep = np.flatnonzero(np.abs(h) > tol * peak)
    return h[:keep[-1] + 1 if len(keep) else 1].copy()


def fir_filter(h, x, out_dtype=np.float32, single=False):
    """``y = (h * x)[:len(x)]`` (causal FIR, zero initial state) by FFT overlap-add.

    ``x`` may be 1-D or 2-D (channels as columns: shape (n, c)). Computed in float64, or in
    float32 with ``single=True`` (about 1e-7 of the block's peak as error; used where the
    result only feeds dB-scale values).
    """
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] > 1:
        # channel by channel on contiguous data (a strided FFT axis is 3x slower)
        y = np.empty(x.shape, out_dtype)
        for c in range(x.shape[1]):
            y[:, c] = fir_filter(h, np.ascontiguousarray(x[:, c]), out_dtype, single)
        return y
    one_d = x.ndim == 1
    if one_d:
        x = x[:, None]
    n, nch = x.shape
    lh = len(h)
    y = np.empty((n, nch), out_dtype)
    if n == 0:
        return y[:, 0] if one_d else y
    ftype = np.float32 if single else np.float64
    nfft = max(4096, 1 << int(np.ceil(np.log2(8 * lh))))
    block = nfft - lh + 1
    H = np.fft.rfft(np.asarray(h, ftype), nfft)
    tail = np.zeros((lh - 1, nch), ftype)
    # several blocks per FFT call (batched), bounded memory
    group = max(1, (1 << 19) // nfft)
    nblocks = -(-n // block)
    for g0 in range(0, nblocks, group):
        g1 = min(nblocks, g0 + group)
        s0, s1 = g0 * block, min(n, g1 * block)
        seg = np.zeros(((g1 - g0) * block, nch), ftype)
        seg[:s1 - s0] = x[s0:s1]
        seg = seg.reshape(g1 - g0, block, nch)
        Y = np.fft.irfft(np.fft.rfft(seg, nfft, axis=1) * H[None, :, None], nfft, axis=1)
        out = Y[:, :block, :]
        if lh > 1:
            out[1:, :lh - 1, :] += Y[:-1, block:block + lh - 1, :]
            out[0, :lh - 1, :] += tail
            tail = Y[-1, block:block + lh - 1, :].copy()
        y[s0:s1] = out.reshape(-1, nch)[:s1 - s0]
    return y[:, 0] if one_d else y


def lfilter(b, a, x, out_dtype=np.float32, single=False):
    """IIR filter ``b/a`` (direct form, zero initial state) applied along axis 0 of ``x``."""
    h = _impulse_response(tuple(float(v) for v in b), tuple(float(v) for v in a))
    return fir_filter(h, x, out_dtype=out_dtype, single=single)


def _poly_mul(p, q):
    return tuple(np.convolve(p, q))


def equal_loudness(x, sample_rate=44100):
    """Essentia's EqualLoudness: Yule-Walk IIR then Butterworth high-pass (§3.3), float32.

    Only 44100 Hz coefficients are provided (the extractor's analysis rate).
    """
    if int(sample_rate) != 44100:
        raise MirkitError(f"equal-loudness filter: sample rate {sample_rate} Hz not supported (44100 only)")
    c = _EQLOUD_44100
    b = _poly_mul(c["by"], c["bb"])
    a = _poly_mul(c["ay"], c["ab"])
    return lfilter(b, a, np.asarray(x, np.float32))


# ---- replay gain ---------------------------------------------------------------------------

class ReplayGain:
    """Streaming replay gain (§3.2) over consecutive blocks of the equal-loudness signal.

    Frames of ``int(0.05*sr)`` samples, hop = frame, start at zero, the last one zero-padded;
    silent frames get the deterministic noise; ``p`` = the ``int(0.95*n)``-th smallest frame
    power; ``-31.462667 - pow2db(p)``.
    """

    def __init__(self, sample_rate=44100):
        self.F = int(0.05 * sample_rate)
        self.powers = []
        self.partial = np.zeros(0, np.float32)
        self.k = 0

    def _frames(self, frames):
        from . import framing
        index = np.arange(self.k, self.k + len(frames))
        _, frames = framing.handle_silent_frames(frames, index, self.F, self.F, "noise")
        f = frames.astype(np.float64)
        self.powers.append(np.einsum("ij,ij->i", f, f) / self.F)
        self.k += len(frames)

    def add(self, block):
        x = np.concatenate([self.partial, np.asarray(block, np.float32)])
        full = len(x) // self.F * self.F
        if full:
            self._frames(x[:full].reshape(-1, self.F).copy())
        self.partial = x[full:]

    def result(self):
        """The gain in dB; MirkitError on an empty signal."""
        if len(self.partial):
            last = np.zeros((1, self.F), np.float32)
            last[0, :len(self.partial)] = self.partial
            self._frames(last)
            self.partial = np.zeros(0, np.float32)
        if not self.powers:
            raise MirkitError("empty input signal")
        powers = np.sort(np.concatenate(self.powers))
        p = powers[int(0.95 * len(powers))]
        return float(REPLAY_GAIN_REFERENCE - pow2db(np.float32(p)))


def replay_gain(eqloud, sample_rate=44100):
    """Replay gain (dB) of the equal-loudness-filtered mono signal (see :class:`ReplayGain`)."""
    rg = ReplayGain(sample_rate)
    x = np.asarray(eqloud, np.float32)
    step = rg.F * 4096
    for i in range(0, len(x), step):
        rg.add(x[i:i + step])
    return rg.result()


def equal_loudness_fir():
    """The equal-loudness filter's (truncated) impulse response at 44100 Hz."""
    c = _EQLOUD_44100
    return _impulse_response(tuple(_poly_mul(c["by"], c["bb"])), tuple(_poly_mul(c["ay"], c["ab"])))


def apply_gain(x, gain_db, clip=True):
    """``x * 10**(gain_db/20)`` in float32, hard-clipped to [-1, 1] (Essentia's Scale)."""
    factor = np.float32(db2amp(gain_db))
    y = np.asarray(x, np.float32) * factor
    if clip:
        np.clip(y, -1.0, 1.0, out=y)
    return y


def easy_loader_signal(mono, replay_gain_db):
    """S0 = EasyLoader output: ``clip(mono * db2amp(replay_gain + 6))`` (§3.1)."""
    return apply_gain(mono, replay_gain_db + 6.0)


# ---- downmix / resample --------------------------------------------------------------------

DOWNMIX_MODES = ("mix", "left", "right")


def downmix(audio, mode="mix"):
    """Mono float32 from (n,) or (n, channels) audio, as Essentia's MonoMixer.

    ``mix`` = 0.5*(L+R) for stereo; for more than two channels (which Essentia cannot read)
    the mean of all channels. ``left``/``right`` pick channel 0 / 1. Mono passes through.
    """
    a = np.asarray(audio)
    if a.ndim == 1:
        return a.astype(np.float32, copy=False)
    if a.shape[1] == 1:
        return a[:, 0].astype(np.float32)
    if mode == "left":
        return a[:, 0].astype(np.float32)
    if mode == "right":
        return a[:, 1].astype(np.float32)
    if mode != "mix":
        raise MirkitError(f"downmix must be one of {', '.join(DOWNMIX_MODES)}, not {mode!r}")
    if a.shape[1] == 2:
        return (np.float32(0.5) * (a[:, 0] + a[:, 1])).astype(np.float32, copy=False)
    return a.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(x, rate_in, rate_out):
    """Resample along axis 0 with libsamplerate's sinc_medium converter (identity if equal)."""
    if int(rate_in) == int(rate_out):
        return np.asarray(x, np.float32)
    import samplerate
    x = np.ascontiguousarray(x, np.float32)
    if len(x) == 0:
        return x
    # Essentia passes the ratio as a float32 and gets ceil(n*ratio) - 1 samples back
    # (verified against the essentia wheel: with a float64 ratio the output drifts by up to
    # 7e-3 over 7 s of audio at 8 kHz).
    ratio = float(np.float32(float(rate_out) / float(rate_in)))
    y = np.asarray(samplerate.resample(x, ratio, "sinc_medium"), np.float32)
    n_out = max(0, int(np.ceil(len(x) * ratio)) - 1)
    return y[:n_out]
