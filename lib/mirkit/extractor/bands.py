"""Filterbank matrices (mel, ERB/gammatone, Bark) and the DCT of the cepstra (§7.3).

Each bank is a (K, bands) float32 matrix ``W`` so that ``bands = E @ W`` with ``E = S**2``
the power spectrum of K bins; banks are built once per (K, sample rate) and cached.
"""

import functools

import numpy as np

from ..errors import MirkitError

BARK_EDGES = (0, 50, 100, 150, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000,
              2320, 2700, 3150, 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500, 20500)


def _hz2mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel2hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def mel_bank(n_bins, n_bands, low=0.0, high=22050.0, sample_rate=44100.0):
    """HTK-mel triangular bank, weights in the mel domain, each band normalised to unit sum."""
    mlow, mhigh = float(_hz2mel(low)), float(_hz2mel(high))
    step = np.float32((mhigh - mlow) / (n_bands + 1))
    # edges accumulated iteratively in float32, as Essentia does
    mels = np.empty(n_bands + 2, np.float32)
    acc = np.float32(mlow)
    for i in range(n_bands + 2):
        mels[i] = acc
        acc = np.float32(acc + step)
    edges = _mel2hz(mels.astype(np.float64))
    bin_hz = (sample_rate / 2.0) / (n_bins - 1)
    freqs = np.arange(n_bins) * bin_hz
    fmel = _hz2mel(freqs)
    W = np.zeros((n_bins, n_bands), np.float64)
    for i in range(n_bands):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        k0 = int(np.ceil(lo / bin_hz))
        k1 = min(int(np.floor(hi / bin_hz)), n_bins - 1)
        if k1 < k0:
            raise MirkitError(f"mel filterbank: the number of spectrum bins ({n_bins}) is "
                              f"insufficient for {n_bands} bands")
        k = np.arange(k0, k1 + 1)
        f = freqs[k]
        m = fmel[k]
        mlo, mmid, mhi = _hz2mel(lo), _hz2mel(mid), _hz2mel(hi)
        w = np.where(f < mid, (m - mlo) / (mmid - mlo), (mhi - m) / (mhi - mmid))
        w = np.maximum(w, 0.0)
        s = w.sum()
        if s <= 0:
            raise MirkitError(f"mel filterbank: the number of spectrum bins ({n_bins}) is "
                              f"insufficient for {n_bands} bands")
        W[k, i] = w / s
    W = W.astype(np.float32)
    W.setflags(write=False)
    return W


# Essentia computes each gammatone's normalising gain in single precision; for the lowest
# centre frequencies the gain formula cancels heavily and its float32 result is off by up to
# 0.34 % (band 0). Measured black-box against the oracle wheel (ERBBands fed one-bin power
# spectra, least-squares ratio of our double-precision column to Essentia's) for the
# extractor's configuration; the other bands agree within 2e-5 (float32 noise).
# Key: (n_bins, n_bands, low, high, sample_rate) -> our gain / Essentia's gain, first bands.
_ERB_FLOAT32_GAIN = {
    (1025, 40, 40.0, 22050.0, 44100.0): (0.9965838, 1.0007385, 1.0005687, 1.0002041,
                                         1.0000168, 0.9999144),
}


@functools.lru_cache(maxsize=16)
def erb_bank(n_bins, n_bands=40, low=40.0, high=22050.0, sample_rate=44100.0):
    """Slaney's 4th-order gammatone magnitude responses on the K-bin grid (ERBBands width 1)."""
    ear_q, min_bw = 9.26449, 24.7
    bw = ear_q * min_bw
    i = np.arange(1, n_bands + 1)
    cf = -bw + np.exp(i * (np.log(low + bw) - np.log(high + bw)) / n_bands) * (high + bw)
    cf = cf[::-1]  # cf[nb - i] assignment -> ascending
    T = 1.0 / sample_rate
    erb = cf / ear_q + min_bw
    B = 1.019 * 2 * np.pi * erb
    arg = 2 * np.pi * cf * T
    eBT = np.exp(-B * T)
    s3p = np.sqrt(3 + 2 ** 1.5)
    s3m = np.sqrt(3 - 2 ** 1.5)
    # numerator zeros z_m = -A_m/T (Slaney); here A1m = -A_m, so |zT - A1m| = T|z - z_m|
    A11 = (2 * T * np.cos(arg) * eBT + 2 * s3p * T * np.sin(arg) * eBT) / 2
    A12 = (2 * T * np.cos(arg) * eBT - 2 * s3p * T * np.sin(arg) * eBT) / 2
    A13 = (2 * T * np.cos(arg) * eBT + 2 * s3m * T * np.sin(arg) * eBT) / 2
    A14 = (2 * T * np.cos(arg) * eBT - 2 * s3m * T * np.sin(arg) * eBT) / 2
    e2 = np.exp(2j * arg)
    g1 = -2 * e2 * T
    g2 = 2 * np.exp(-B * T + 1j * arg) * T
    cs, sn = np.cos(arg), np.sin(arg)
    num = ((g1 + g2 * (cs - s3m * sn)) * (g1 + g2 * (cs + s3m * sn))
           * (g1 + g2 * (cs - s3p * sn)) * (g1 + g2 * (cs + s3p * sn)))
    den = (-2 / np.exp(2 * B * T) - 2 * e2 + 2 * (1 + e2) / np.exp(B * T)) ** 4
    gain = np.abs(num / den)
    fft_size = 2 * (n_bins - 1)
    k = np.arange(n_bins)
    z = np.exp(2j * np.pi * k / fft_size)[:, None]         # (K, 1)
    zeros_prod = (np.abs(z * T - A11) * np.abs(z * T - A12) * np.abs(z * T - A13)
                  * np.abs(z * T - A14))
    pole = np.exp(-B * T) * np.exp(1j * arg)
    resp = (zeros_prod / T ** 4) * np.abs((pole - z) ** 2) ** -4
    W = (T ** 4 / gain) * resp
    corr = _ERB_FLOAT32_GAIN.get((int(n_bins), int(n_bands), float(low), float(high),
                                  float(sample_rate)))
    if corr is not None:
        W[:, :len(corr)] /= np.asarray(corr)
    W = W.astype(np.float32)
    W.setflags(write=False)
    return W


@functools.lru_cache(maxsize=16)
def bark_bank(n_bins, sample_rate=44100.0):
    """27 Bark bands: sums of E over ``[int(e_i/binHz+0.5), int(e_{i+1}/binHz+0.5))``."""
    bin_hz = (sample_rate / 2.0) / (n_bins - 1)
    W = np.zeros((n_bins, len(BARK_EDGES) - 1), np.float32)
    for i in range(len(BARK_EDGES) - 1):
        a = int(BARK_EDGES[i] / bin_hz + 0.5)
        b = min(int(BARK_EDGES[i + 1] / bin_hz + 0.5), n_bins)
        W[a:b, i] = 1.0
    W.setflags(write=False)
    return W


@functools.lru_cache(maxsize=8)
def dct_matrix(n_in, n_out):
    """Orthonormal DCT-II matrix (n_in, n_out): ``c = x @ D``."""
    j = np.arange(n_in)[:, None]
    i = np.arange(n_out)[None, :]
    D = np.sqrt(2.0 / n_in) * np.cos(np.pi * i * (j + 0.5) / n_in)
    D[:, 0] = 1.0 / np.sqrt(n_in)
    D.setflags(write=False)
    return D


def cepstrum(bands, n_coeffs=13):
    """``DCT-II_ortho(20*log10(band) or -200 below 1e-10)[:n_coeffs]`` per row (float32)."""
    b = np.asarray(bands, np.float64)
    with np.errstate(divide="ignore"):
        logb = np.where(b >= 1e-10, 20.0 * np.log10(np.maximum(b, 1e-30)), -200.0)
    return (logb @ dct_matrix(b.shape[1], n_coeffs)).astype(np.float32)
