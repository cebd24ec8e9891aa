"""Beat tracking after Degara et al. (2012), "Reliability-informed beat tracking of musical
signals", IEEE TASLP 20(1), with the beat-period estimation of Davies & Plumbley (2007),
as specified behaviourally in extractor.md §7.7 (Essentia's BeatTrackerDegara).

1. Onset detection function: complex spectral difference (Bello et al. 2004) of 2048-sample
   Hann-windowed frames, hop 1024 (frames start at sample 0), at 44100 Hz.
2. The ODF is normalised, upsampled ×2 (linear interpolation; 86.13 Hz, ``res`` = 11.6 ms).
3. Beat periods: adaptive threshold (centred moving median-free mean, half-wave rectified),
   6-second frames (512 ODF samples, hop 128), unbiased autocorrelation, comb filter bank
   with a Rayleigh weighting (preferred 120 BPM), Viterbi over the period lags.
4. Beat positions: a hidden Markov model whose states count the ODF samples since the last
   beat; the transition to "beat" follows a Gaussian (sigma 25 ms) around the local period
   (hazard form); observations are ``log(0.99*ODF)`` (beat) and ``log(1-0.99*ODF)``;
   minimum-cost Viterbi decoding.

Everything is vectorised except the two Viterbi recursions (a loop over ODF samples with
small numpy vectors; the state graph only allows "one more sample" or "beat", so the
back-pointers are one integer per time step).
"""

import numpy as np

from . import framing

SAMPLE_RATE = 44100.0
FRAME_SIZE = 2048
HOP_SIZE = 1024
_EPS = float(np.finfo(np.float32).eps)


def complex_odf_blocks(x, frame_size=FRAME_SIZE, hop_size=HOP_SIZE, start_from_zero=True,
                       want_hfc=False):
    """Complex-domain ODF (and optionally Brossier's HFC) of Hann-windowed frames.

    ``ODF_t = sum_k | |X_{t-1}| - |X_t| exp(j(phi_t - 2 phi_{t-1} + phi_{t-2})) |`` with the
    previous spectra initialised to zero (a zero bin has phase 0). Computed without angles:
    with unit phasors ``u = X/|X|``, ``cos(dphi) = Re(u_t conj(u_{t-1})^2 u_{t-2})`` and
    ``|a - b e^{jd}| = sqrt(a^2 + b^2 - 2ab cos d)``. Returns (ODF, HFC or None), float64.
    """
    if not hasattr(x, "read"):           # an array, or a signal store read in blocks
        x = np.asarray(x, np.float32)
    n = framing.frame_count(len(x), frame_size, hop_size, start_from_zero)
    odf = np.zeros(n)
    hfc = np.zeros(n) if want_hfc else None
    K = frame_size // 2 + 1
    prev_mag = np.zeros((1, K), np.float32)
    # u_{t-2}, u_{t-1} of the zero spectra before the first frame (phase 0 in Essentia's
    # zero-phase FFT). The frames below are not rotated by h = (F+1)//2 samples, which only
    # multiplies bin k by exp(2j pi k h / F): a constant that cancels in the phase prediction
    # except against these initial phases, which therefore get exp(-2j pi k h / F) ((-1)**k).
    h = (frame_size + 1) // 2
    if 2 * h == frame_size:
        ph = np.where(np.arange(K) % 2 == 0, 1.0, -1.0)
    else:
        ph = np.exp(-2j * np.pi * np.arange(K) * h / frame_size)
    prev_ph = ph.astype(np.complex64)
    prev_u = np.tile(prev_ph, (2, 1))
    kk = (np.arange(K) * (SAMPLE_RATE / frame_size)).astype(np.float32)  # HFC: k*binHz (Brossier)
    win = framing.make_window("hann", frame_size)
    for index, frames in framing.iter_frame_blocks(x, frame_size, hop_size, start_from_zero,
                                                   "keep", 256):
        # no zero-phase rotation: it multiplies bin k by a constant phasor, which cancels in
        # the second phase difference phi_t - 2 phi_{t-1} + phi_{t-2} (and in |X|)
        spec = np.fft.rfft(frames * win, axis=1).astype(np.complex64, copy=False)
        mag = np.abs(spec)
        # u = spec / |spec| as a real scaling of the (re, im) pairs (faster than complex /)
        inv = np.float32(1.0) / np.where(mag > 0, mag, np.float32(1.0))
        u = spec.copy()
        u.view(np.float32).reshape(u.shape + (2,))[...] *= inv[..., None]
        zero = mag == 0
        if zero.any():                      # zero bins have phase 0 in the rotated FFT
            u[zero] = np.broadcast_to(prev_ph, u.shape)[zero]
        uu = np.concatenate([prev_u, u])
        pm = np.concatenate([prev_mag, mag[:-1]])
        z = uu[2:] * uu[:-2]
        z *= np.conj(uu[1:-1]) ** 2
        cosd = z.real
        d2 = pm * pm + mag * mag - 2.0 * pm * mag * cosd
        np.maximum(d2, 0.0, out=d2)
        odf[index] = np.sqrt(d2).sum(axis=1, dtype=np.float64)
        if want_hfc:
            hfc[index] = (mag @ kk).astype(np.float64)
        prev_u = uu[-2:].copy()
        prev_mag = mag[-1:].copy()
    return odf, hfc


def _adaptive_threshold(x, h=8, ma_len=17):
    """``x - centred moving mean`` (edge-padded by h), half-wave rectified."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return x
    pad = np.concatenate([np.full(h, x[0]), x, np.full(h, x[-1])])
    c = np.concatenate([[0.0], np.cumsum(pad)])
    # causal MA of length ma_len at padded index 2h+i, zero initial state
    idx = 2 * h + np.arange(len(x))
    lo = idx - ma_len + 1
    ma = (c[idx + 1] - c[np.maximum(lo, 0)]) / ma_len
    return np.maximum(x - ma, 0.0)


def _rayleigh(n, beta):
    tau = np.arange(1, n + 1, dtype=np.float64)
    w = tau / beta ** 2 * np.exp(-tau ** 2 / (2.0 * beta ** 2))
    return w / w.sum()


def beat_periods(odf, sr_odf, min_tempo=40, max_tempo=208):
    """Beat period (s) at each ODF sample, from the Davies-Plumbley comb-filter/Viterbi stage."""
    n = len(odf)
    frame, hop = int(round(5.944308390022676 * sr_odf)), int(round(5.944308390022676 * sr_odf)) // 4
    nlags = frame // 4                       # 128 period candidates (lags 1..128)
    beta = round(60.0 * sr_odf / 120.0)
    w = _rayleigh(nlags, beta)
    th = _adaptive_threshold(odf, 8, int(2 * np.floor(0.1 * sr_odf) + 1))
    nfr = framing.frame_count(len(th), frame, hop, start_from_zero=True)
    starts = np.arange(nfr) * hop
    buf = np.zeros(starts[-1] + frame if nfr else frame)
    buf[:len(th)] = th
    frames = np.lib.stride_tricks.sliding_window_view(buf, frame)[::hop][:nfr]
    # unbiased autocorrelation via FFT
    nfft = 2 * frame
    X = np.fft.rfft(frames, nfft, axis=1)
    acf = np.fft.irfft(np.abs(X) ** 2, nfft, axis=1)[:, :frame]
    acf = acf / (frame - np.arange(frame))[None, :]
    # comb filter bank
    r = np.zeros((nfr, nlags))
    p = np.arange(3, nlags - 1)
    for c in range(1, 5):
        for reg in range(1 - c, c):
            r[:, p] += acf[:, (p + 1) * c - 1 + reg] / (2 * c - 1)
    r *= w[None, :]
    r = np.apply_along_axis(_adaptive_threshold, 1, r) if nfr else r
    pmin = int(np.floor(60.0 / max_tempo * sr_odf)) - 1
    pmax = min(nlags - 1, int(np.ceil(60.0 / min_tempo * sr_odf)) - 1)
    r[:, :pmin + 1] = 0.0
    r[:, pmax + 1:] = 0.0
    s = r.sum(axis=1, keepdims=True)
    r = np.divide(r, s, out=np.zeros_like(r), where=s > 0)
    # Viterbi over the lags: prior w, Gaussian transitions (sigma 8) between lags 27..107
    sigma = 8.0
    half = 4 * int(sigma)
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    g[g < 1e-12] = 0.0
    lo_s, hi_s = 27, 107
    T = np.zeros((nlags, nlags))
    i = np.arange(lo_s, hi_s + 1)
    d = i[None, :] - i[:, None] + half
    ok = (d >= 0) & (d < len(g))
    T[lo_s:hi_s + 1, lo_s:hi_s + 1] = np.where(ok, g[np.clip(d, 0, len(g) - 1)], 0.0)
    path = _viterbi_prob(w, T, r)
    periods = (path + 1) / sr_odf
    # the period of frame t holds for ODF samples [(t+1)*hop, (t+2)*hop); frame 0's period
    # also covers the first hop (matches Essentia's beat positions)
    per_sample = np.repeat(np.concatenate([periods[:1], periods]), hop) if nfr else np.zeros(0)
    if len(per_sample) < n:
        per_sample = np.concatenate([per_sample, np.full(n - len(per_sample), periods[-1] if nfr else 0.5)])
    return per_sample[:n]


def _viterbi_prob(prior, trans, obs):
    """Most probable state path (max-product, per-step renormalised)."""
    nt, ns = obs.shape
    if nt == 0:
        return np.zeros(0, np.int64)
    delta = prior * obs[0]
    s = delta.sum()
    delta = delta / s if s > 0 else delta
    back = np.zeros((nt, ns), np.int64)
    for t in range(1, nt):
        cand = delta[:, None] * trans
        back[t] = np.argmax(cand, axis=0)
        delta = cand[back[t], np.arange(ns)] * obs[t]
        s = delta.sum()
        if s > 0:
            delta = delta / s
    path = np.zeros(nt, np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(nt - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _gaussian_pdf(x, mu, sigma):
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def decode_beats(odf, periods, res, sigma_ibi=0.025):
    """Degara's HMM beat decoding -> beat times (s)."""
    n = len(odf)
    if n == 0:
        return np.zeros(0)
    odf = np.where(odf == 0, _EPS, odf)
    nstates = int(np.floor((periods.max() + 0.075) / res + 1e-9))
    nstates = max(nstates, 2)
    # transition costs for each distinct period
    uniq, which = np.unique(periods, return_inverse=True)
    beat_cost = np.zeros((len(uniq), nstates))       # -0.5*log A[i][0]
    cont_cost = np.zeros((len(uniq), nstates))       # -0.5*log A[i][i+1]
    grid = np.arange(nstates) * res
    for u, period in enumerate(uniq):
        centre = round(period / res - 1)
        pdf = _gaussian_pdf(grid, centre * res, sigma_ibi) * 0.01 / 2
        a0 = np.zeros(nstates)
        surv = 1.0
        for i in range(nstates):
            v = pdf[i] / surv if surv > 0 else 1.0
            v = min(max(v, 0.0), 1.0)
            a0[i] = v
            surv *= (1.0 - v)
        with np.errstate(divide="ignore"):
            beat_cost[u] = -0.5 * np.log(a0)
            cont_cost[u] = -0.5 * np.log(1.0 - a0)
    with np.errstate(divide="ignore"):
        ob_beat = -0.5 * np.log(0.99 * odf)
        ob_none = -0.5 * np.log(1.0 - 0.99 * odf)
    # the chain starts as if a beat had just occurred (state 0 before the first sample)
    cost = np.full(nstates, np.inf)
    cost[0] = beat_cost[which[0], 0] + ob_beat[0]
    cost[1] = cont_cost[which[0], 0] + ob_none[0]
    bp = np.zeros(n, np.int64)
    new = np.empty(nstates)
    for t in range(1, n):
        u = which[t]
        tot = cost + beat_cost[u]
        j = int(np.argmin(tot))
        bp[t] = j
        new[0] = tot[j] + ob_beat[t]
        new[1:] = cost[:-1] + cont_cost[u, :-1] + ob_none[t]
        cost, new = new, cost
    state = int(np.argmin(cost))
    beats = []
    for t in range(n - 1, -1, -1):
        if state == 0:
            beats.append(t)
            state = int(bp[t]) if t > 0 else 0
        else:
            state -= 1
    return np.asarray(beats[::-1], np.float64) * res


def normalise_odf(odf):
    """The ODF as float64, scaled to a maximum of 1 (left alone when it has no positive
    value)."""
    odf = np.asarray(odf, np.float64)
    mx = odf.max() if len(odf) else 0.0
    return odf / mx if mx > 0 else odf


def tempo_tap_degara(odf, sr_odf=SAMPLE_RATE / HOP_SIZE, min_tempo=40, max_tempo=208):
    """Beat times (s) from an ODF sampled at ``sr_odf`` (TempoTapDegara with resample x2)."""
    odf = normalise_odf(odf)
    if len(odf) == 0:
        return np.zeros(0)
    up = np.empty(2 * (len(odf) - 1) + 1)
    up[0::2] = odf
    up[1::2] = 0.5 * (odf[:-1] + odf[1:])
    sr2 = 2.0 * sr_odf
    periods = beat_periods(up, sr2, min_tempo, max_tempo)
    return decode_beats(up, periods, 1.0 / sr2)


def beat_track(x, min_tempo=40, max_tempo=208):
    """Beat positions (s) of the 44100 Hz signal ``x`` (BeatTrackerDegara)."""
    odf, _ = complex_odf_blocks(x)
    return tempo_tap_degara(odf, SAMPLE_RATE / HOP_SIZE, min_tempo, max_tempo)
