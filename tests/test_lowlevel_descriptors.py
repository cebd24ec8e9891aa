"""Unit tests of the lowlevel formulas (extractor.md §5, §7) on hand-computed cases."""

import math

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.extractor import bands, loudness, lowlevel, stats


def test_aggregate_hand_computed():
    x = np.array([1.0, 3.0, 2.0, 6.0])
    a = stats.aggregate(x, stats.DEFAULT_STATS)
    assert a["mean"] == 3.0
    assert a["var"] == pytest.approx(3.5)               # (4+0+1+9)/4
    assert a["stdev"] == pytest.approx(math.sqrt(3.5))
    assert a["median"] == 2.5                           # even n: mean of 2 and 3
    assert (a["min"], a["max"]) == (1.0, 6.0)
    # d = [2, -1, 4] -> |d| = [2, 1, 4]: mean 7/3, var = ((1/3)^2+(4/3)^2+(5/3)^2)/3 = 14/9
    assert a["dmean"] == pytest.approx(7 / 3) and a["dvar"] == pytest.approx(14 / 9)
    # d2 = [-3, 5] -> |d2| = [3, 5]: mean 4, var 1
    assert a["dmean2"] == 4.0 and a["dvar2"] == 1.0


def test_aggregate_edge_cases_and_cov():
    one = stats.aggregate([5.0], stats.DEFAULT_STATS)
    assert one["dmean"] == 0 and one["dvar"] == 0 and one["dmean2"] == 0 and one["median"] == 5.0
    v = np.array([[1.0, 2.0], [2.0, 1.0], [4.0, 7.0]])
    a = stats.aggregate(v, ["mean", "cov", "icov"])
    cov = np.cov(v, rowvar=False, ddof=1)
    assert np.allclose(a["cov"], cov, rtol=1e-6)
    assert np.allclose(np.array(a["icov"]) @ cov, np.eye(2), atol=1e-5)
    with pytest.raises(MirkitError):
        stats.aggregate(np.ones((4, 2)), ["icov"])
    with pytest.raises(MirkitError):
        stats.check_stats(["mean", "bogus"])


def test_stats_choice_by_substring():
    opts = {"lowlevel.stats": ["mean"], "lowlevel.mfccStats": ["cov"], "tonal.stats": ["max"]}
    assert stats.stats_for("lowlevel.mfcc", opts) == ["cov"]
    assert stats.stats_for("lowlevel.hfc", opts) == ["mean"]
    assert stats.stats_for("tonal.hpcp", opts) == ["max"]
    assert list(stats.stats_for("lowlevel.gfcc", opts)) == ["mean", "cov", "icov"]


def test_zero_crossing_rate():
    f = np.tile(np.array([1.0, -1.0], np.float32), 1024)[None, :]
    assert lowlevel.zero_crossing_rate(f)[0] == pytest.approx(2047 / 2048)
    # zeros count as non-positive: [1, 0, 1, 0] has 3 changes
    assert lowlevel.zero_crossing_rate(np.array([[1, 0, 1, 0]], np.float32))[0] == 0.75


def test_energy_band_and_contrast_bins():
    K = 1025
    idx = [(int(round(lo / 22050 * (K - 1))), int(round(hi / 22050 * (K - 1))))
           for _, lo, hi in lowlevel.ENERGY_BANDS]
    assert idx == [(1, 7), (7, 37), (37, 186), (186, 929)]            # §7.2
    assert lowlevel.contrast_bands(2048) == (1, [15, 17, 26, 49, 113, 291])  # §7.5


def test_rolloff_centroid_strongpeak_flatness():
    E = np.zeros((1, 1025), np.float32)
    E[0, 10] = 1.0
    E[0, 20] = 9.0
    bin_hz = 22050 / 1024
    # 85% of 10 is reached at bin 20
    assert lowlevel.rolloff(E, bin_hz)[0] == pytest.approx(20 * bin_hz)
    # strong peak: S = [0,...,1 at 5, 4 at 6, 4 at 7, 1 at 8]: max 4 at bin 6, thr 2,
    # left walk stops at 5 -> l = 6, right at 8 -> r = 8: 4 / log10(8/6)
    S = np.zeros((1, 20), np.float32)
    S[0, 5:9] = [1, 4, 4, 1]
    assert lowlevel.strong_peak(S)[0] == pytest.approx(4 / math.log10(8 / 6), rel=1e-6)
    assert lowlevel.flatness_db(np.array([[1.0, 1.0, 1.0]]))[0] == 0.0
    assert lowlevel.flatness_db(np.array([[0.0, 1.0]]))[0] == 1.0
    assert lowlevel.crest(np.array([[1.0, 3.0]]))[0] == 1.5
    assert lowlevel.entropy(np.array([[1.0, 1.0, 1.0, 1.0]]))[0] == pytest.approx(2.0)


def test_central_moments_and_shape():
    # mass 1 at t=0 and t=1 (n=3 -> t = 0, .5, 1): centroid .5, m2 = .25, m3 = 0, m4 = 1/16
    a = np.array([[1.0, 0.0, 1.0]])
    m2, m3, m4 = lowlevel.central_moments(a, 2.0)
    assert m2[0] == pytest.approx(0.25 * 4) and m3[0] == pytest.approx(0) and m4[0] == pytest.approx(16 / 16)
    spread, skew, kurt = lowlevel.distribution_shape(m2, m3, m4)
    assert kurt[0] == pytest.approx(1.0 / 1.0 - 3.0)
    assert lowlevel.distribution_shape(np.zeros(1), np.zeros(1), np.zeros(1))[2][0] == -3.0


def test_spectral_peaks_interpolation_and_plateau():
    S = np.zeros((1, 64))
    S[0, 10:13] = [1.0, 3.0, 2.0]          # parabola through (9..) l=1, m=3, r=2
    S[0, 30:33] = [1.0, 2.0, 2.0]          # plateau 31..32 then 0
    S[0, 33] = 0.5
    f, m, count = lowlevel.spectral_peaks(S, 1.0, 0.0, 60.0, 0.0, 100, "frequency")
    d = 0.5 * (1 - 2) / (1 - 6 + 2)
    assert count[0] == 2
    assert f[0, 0] == pytest.approx(11 + d) and m[0, 0] == pytest.approx(3 - 0.25 * (1 - 2) * d)
    assert f[0, 1] == pytest.approx(31.5) and m[0, 1] == 2.0


def test_dissonance_of_single_peak_is_zero_and_pair_positive():
    f = np.array([[440.0, np.inf], [440.0, 470.0]])
    m = np.array([[1.0, 0.0], [1.0, 1.0]])
    d = lowlevel.dissonance(f, m)
    assert d[0] == 0.0 and 0.0 < d[1] <= 1.0


def test_mel_bank_unit_sum_and_mfcc_of_silence():
    W = bands.mel_bank(1025, 40, 0.0, 11000.0)
    assert np.allclose(W.sum(axis=0), 1.0, atol=1e-5)
    mf = bands.cepstrum(np.zeros((1, 40)), 13)
    # every band below 1e-10 -> -200 dB: c0 = -200 * 40 / sqrt(40) = -1264.9, the rest 0
    assert mf[0, 0] == pytest.approx(-200 * math.sqrt(40), rel=1e-6)
    assert np.allclose(mf[0, 1:], 0, atol=1e-3)
    with pytest.raises(MirkitError):
        bands.mel_bank(513, 128, 0.0, 22050.0)


def test_average_loudness_and_dynamic_complexity():
    assert loudness.average_loudness([2.0, 2.0]) == pytest.approx(0.5 + 0.5 * math.tanh(-1 + 2 * 5 / 3))
    assert loudness.average_loudness([]) is None
    steady = np.full(44100 * 3, 0.3, np.float32)
    assert loudness.dynamic_complexity(np.zeros(100, np.float32)) == 0.0
    dc_steady = loudness.dynamic_complexity(np.sin(np.arange(44100 * 3) * 0.1).astype(np.float32))
    env = np.repeat([0.01, 0.5], 44100)
    dc_varying = loudness.dynamic_complexity((np.sin(np.arange(88200) * 0.1) * env).astype(np.float32))
    assert dc_steady < 0.5 < dc_varying
    assert steady.size


def test_ebu_r128_silence_and_sine():
    r = loudness.ebu_r128(np.zeros((44100, 2), np.float32))
    assert r["momentary"][0] == pytest.approx(-300.691, abs=1e-3)
    t = np.arange(44100 * 5) / 44100.0
    x = np.zeros((len(t), 2), np.float32)
    x[:, 0] = np.sin(2 * np.pi * 997 * t)
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS
    assert loudness.ebu_r128(x)["integrated"] == pytest.approx(-3.01, abs=0.05)


def test_first_order_recursion_matches_loop():
    rng = np.random.default_rng(5)
    g = rng.standard_normal(3000)
    for p in (0.9719, 0.5, 0.999, 0.0033):
        y = np.zeros(len(g))
        acc = 0.25
        for i, v in enumerate(g):
            acc = v + p * acc
            y[i] = acc
        assert np.allclose(loudness._first_order(g, p, 0.25), y, rtol=1e-9, atol=1e-9)
