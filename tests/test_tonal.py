"""Tonal descriptors (lib/mirkit/extractor/tonal.py) on synthetic signals with known answers.

Hand-computed cases say how they were computed; the audio cases use chords of known
pitch (so the key, tuning and chords are known by construction).
"""

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.extractor import framing, tonal
from mirkit.extractor.tonal_common import DEFAULT_STATS, aggregate, spectral_peaks

SR = 44100


def midi_hz(m, a4=440.0):
    return a4 * 2.0 ** ((m - 69) / 12.0)


def chord_signal(chords, seconds_each=2.0, a4=440.0, harmonics=4, seed=0):
    """Chords (lists of MIDI notes) with decaying harmonics, mono float32 in [-0.8, 0.8]."""
    n = int(seconds_each * SR)
    t = np.arange(n) / SR
    parts = []
    for notes in chords:
        seg = np.zeros(n)
        for m in notes:
            f = midi_hz(m, a4)
            for h in range(1, harmonics + 1):
                seg += np.sin(2 * np.pi * f * h * t) / h
        parts.append(seg * np.exp(-t * 0.7))
    x = np.concatenate(parts)
    x += 1e-3 * np.random.default_rng(seed).standard_normal(len(x))
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


C_MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]        # C F G C
A_MINOR = [[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]]        # Am Dm E Am


# ---- spectral peaks -------------------------------------------------------------------------

def test_peaks_plateau_boundary_and_interpolation():
    # scale = (sr/2)/(K-1) = 1 Hz per bin with sr=22, K=12
    row = np.array([5, 4, 0, 1, 4, 2, 0, 3, 3, 3, 1, 0], np.float32)
    fr, f, m = spectral_peaks(row[None], sample_rate=22.0, min_frequency=0, max_frequency=11,
                              order_by="frequency")
    # bin 0: boundary peak (5 > 4), not interpolated.
    # bin 4: l=1, c=4, r=2 -> d = 0.5*(1-2)/(1-8+2) = 0.1, pos 4.1, val 4 - 0.25*(-1)*0.1 = 4.025
    # bins 7..9: plateau at 3 -> middle 8, value 3
    assert fr.tolist() == [0, 0, 0]
    assert np.allclose(f, [0.0, 4.1, 8.0])
    assert np.allclose(m, [5.0, 4.025, 3.0])
    # threshold, range and ordering by magnitude: starting at bin 1 (4 > 0) makes it a
    # boundary peak; the plateau (3) is below the threshold
    fr, f, m = spectral_peaks(row[None], sample_rate=22.0, min_frequency=1, max_frequency=11,
                              magnitude_threshold=3.5, order_by="magnitude")
    assert np.allclose(f, [4.1, 1.0]) and np.allclose(m, [4.025, 4.0])


def test_peaks_of_a_sinusoid():
    t = np.arange(4096) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000.3 * t)).astype(np.float32)
    spec = framing.spectrum(x[None], "blackmanharris62")
    fr, f, m = spectral_peaks(spec, SR, 20, 3500, 1e-5, 1)
    assert len(f) == 1 and abs(f[0] - 1000.3) < 1.0


# ---- HPCP / key / chords -------------------------------------------------------------------

def test_hpcp_single_peak_window():
    # A peak exactly on C (3 semitones above the A reference) lands on bin 9 of 36; with a
    # one-semitone cosine window (half width 1.5 bins) bins 8 and 10 get cos(pi/3) = 0.5.
    f = np.array([440.0 * 2 ** (3 / 12)])
    h = tonal.hpcp(np.array([0]), f, np.array([1.0]), 1, 440.0, **tonal.HPCP_KEY)[0]
    expect = np.zeros(36)
    expect[[8, 9, 10]] = [0.5, 1.0, 0.5]
    assert np.allclose(h, expect)


def test_key_of_diatonic_pcps():
    # 12-bin PCPs (index 0 = A): the C major scale and the A harmonic-minor scale
    c_major = np.zeros(12)
    c_major[[3, 5, 7, 8, 10, 0, 2]] = 1.0
    c_major[[3, 7, 10]] = 2.0          # C-E-G triad stressed
    for profile in ("edma", "krumhansl", "temperley"):
        assert tonal.estimate_key(c_major, profile)[:2] == ("C", "major")
    a_minor = np.zeros(12)
    a_minor[[0, 2, 3, 5, 7, 8, 11]] = 1.0
    a_minor[[0, 3, 7]] = 2.0           # A-C-E triad stressed
    for profile in ("edma", "krumhansl", "temperley"):
        assert tonal.estimate_key(a_minor, profile)[:2] == ("A", "minor")


def test_key_pcp_detuning_correction():
    # maximum at bin 10 (one third of a semitone above C): 10 % 3 = 1 <= 3//2 -> rotate left by 1
    p = np.zeros(36)
    p[10], p[22] = 1.0, 0.1            # 0.1 is below the 0.2 gate and disappears
    q = tonal.key_pcp(p)
    assert np.argmax(q) == 9 and q[21] == 0.0 and q.max() == 1.0
    # maximum at bin 11: 11 % 3 = 2 > 1 -> rotate left by -1 (right by one) to bin 12
    p = np.zeros(36)
    p[11] = 1.0
    assert np.argmax(tonal.key_pcp(p)) == 12


def test_chords_descriptors_hand_example():
    # C twice, G, Am: histogram (circle of fifths C=0, G=2, Am=23) = 50, 25, 25 percent;
    # key C major -> no rotation; 3 chords above 1 % over 4 frames; 2 changes over 4 frames.
    d = tonal.chords_descriptors(["C", "C", "G", "Am"], "C", "major")
    h = np.array(d["chords_histogram"])
    assert h[0] == 50 and h[2] == 25 and h[23] == 25 and h.sum() == 100
    assert d["chords_number_rate"] == pytest.approx(0.75)
    assert d["chords_changes_rate"] == pytest.approx(0.5)
    assert (d["chords_key"], d["chords_scale"]) == ("C", "major")
    # rotated to the key chord: key G major puts G at index 0 and C at index 22
    h = np.array(tonal.chords_descriptors(["C", "C", "G", "Am"], "G", "major")["chords_histogram"])
    assert h[0] == 25 and h[22] == 50


def test_high_resolution_features_tempered():
    # energy only on semitone centres: no deviation, no non-tempered energy
    h = np.zeros(120)
    h[[0, 30, 70]] = [1.0, 0.5, 0.7]
    dev, ratio = tonal.high_resolution_features(h)
    assert dev == 0.0 and ratio == 0.0
    # one peak 3 bins (0.3 semitone) off: deviation 0.3 weighted by magnitude
    h[33] = 1.0
    h[30] = 0.0
    dev, ratio = tonal.high_resolution_features(h)
    assert dev == pytest.approx(0.3 * 1.0 / (1.0 + 1.0 + 0.7))
    assert ratio == pytest.approx(1.0 / (1.0 + 1.0 + 0.49))


# ---- whole tonal record on audio -----------------------------------------------------------

def test_c_major_progression():
    rec = tonal.compute(chord_signal(C_MAJOR), SR)
    for profile in ("edma", "krumhansl", "temperley"):
        assert (rec[f"key_{profile}"]["key"], rec[f"key_{profile}"]["scale"]) == ("C", "major")
        assert 0.5 < rec[f"key_{profile}"]["strength"] <= 1.0
    assert abs(rec["tuning_frequency"] - 440.0) < 0.6          # within one cent
    assert (rec["chords_key"], rec["chords_scale"]) == ("C", "major")
    assert len(rec["hpcp"]["mean"]) == 36 and len(rec["thpcp"]) == 36 and rec["thpcp"][0] == 1.0
    # C (bin 9), E (21) and G (30) are the strongest pitch classes of the mean HPCP
    top = set(np.argsort(rec["hpcp"]["mean"])[-3:])
    assert top == {9, 21, 30}
    assert len(rec["chords_histogram"]) == 24
    assert set(rec["chords_strength"]) == set(DEFAULT_STATS)


def test_a_minor_progression_and_tuning():
    a4 = 446.0                          # +23.5 cents: tuning must follow, key must not move
    rec = tonal.compute(chord_signal(A_MINOR, a4=a4), SR)
    for profile in ("edma", "krumhansl", "temperley"):
        assert (rec[f"key_{profile}"]["key"], rec[f"key_{profile}"]["scale"]) == ("A", "minor")
    assert abs(1200 * np.log2(rec["tuning_frequency"] / a4)) <= 1.0
    assert rec["tuning_equal_tempered_deviation"] < 0.1


def test_layout_and_stats_option():
    x = chord_signal(C_MAJOR[:2], 1.0)
    rec = tonal.compute(x, SR, {"tonal.stats": ["mean", "max"]})
    expected = {"hpcp", "chords_strength", "hpcp_entropy", "hpcp_crest", "key_edma", "key_krumhansl",
                "key_temperley", "chords_histogram", "chords_number_rate", "chords_changes_rate",
                "chords_key", "chords_scale", "tuning_diatonic_strength",
                "tuning_equal_tempered_deviation", "tuning_nontempered_energy_ratio",
                "tuning_frequency", "thpcp"}
    assert set(rec) == expected
    assert set(rec["hpcp"]) == {"mean", "max"}
    raw = tonal.analyze(x, SR, {"frameSize": 2048, "hopSize": 1024})
    assert raw["hpcp"].shape == (framing.frame_count(len(x), 2048, 1024), 36)


def test_silence_is_deterministic_and_empty():
    rec = tonal.compute(np.zeros(3 * SR, np.float32), SR)
    assert rec["tuning_frequency"] == 440.0
    assert rec["hpcp"]["max"] == [0.0] * 36
    assert rec == tonal.compute(np.zeros(3 * SR, np.float32), SR)


def test_bad_options():
    with pytest.raises(MirkitError):
        tonal.compute(np.zeros(SR, np.float32), SR, {"windowType": "nope"})
    with pytest.raises(MirkitError):
        tonal.compute(np.zeros(SR, np.float32), SR, {"stats": ["mean", "bogus"]})


def test_aggregate_hand_computed():
    # x = 1, 2, 4: d = 1, 2; d2 = 1
    a = aggregate(np.array([1.0, 2.0, 4.0]))
    assert a["mean"] == pytest.approx(7 / 3) and a["median"] == 2.0
    assert a["var"] == pytest.approx(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 3)
    assert a["dmean"] == 1.5 and a["dvar"] == 0.25 and a["dmean2"] == 1.0 and a["dvar2"] == 0.0
    assert (a["min"], a["max"]) == (1.0, 4.0)


def test_peaks_fast_path_equals_run_length_scan():
    # rows without plateaus take the strict-maximum path; it must agree with the general
    # run-length scan, also when the block mixes rows with and without plateaus
    from mirkit.extractor import peaks as tc
    rng = np.random.default_rng(5)
    spec = rng.random((40, 300)).astype(np.float32)
    spec[3, 50:53] = 2.0                               # a plateau in row 3 only
    fr, f, m = spectral_peaks(spec, 44100.0 * 299 / 2048, 0, 1e9, 0.1, 1000, "frequency")
    rows, pos, val = tc._peaks_runs(spec, 0.1)
    rows, pos, val = (np.concatenate(a) for a in (rows, pos, val))
    order = np.lexsort((pos, rows))
    scale = 44100.0 * 299 / 2048 / 2 / 299
    assert fr.tolist() == rows[order].tolist()
    assert np.allclose(f, pos[order] * scale) and np.allclose(m, val[order])
    assert np.any((fr == 3) & np.isclose(f, 51 * scale))   # the plateau's middle


def test_output_frames_option():
    x = chord_signal(C_MAJOR[:2], 1.0)
    rec, frames = tonal.compute(x, SR, {"outputFrames": True})
    n = framing.frame_count(len(x), 4096, 2048)
    assert len(frames["hpcp"]) == n and len(frames["hpcp"][0]) == 36
    assert len(frames["chords_strength"]) == n
    assert frames["key_edma"] == rec["key_edma"]
    assert rec["hpcp"]["mean"] == pytest.approx(np.mean(frames["hpcp"], axis=0).tolist(), abs=1e-6)


def test_peaks_magnitude_order_and_padding():
    # magnitude order (desc.), ties by frequency, truncation per frame, checked against a
    # lexsort of the frequency-ordered peaks; lowlevel's padded form holds the same peaks
    from mirkit.extractor import lowlevel, peaks
    rng = np.random.default_rng(9)
    spec = np.round(rng.random((30, 200)) * 3).astype(np.float32)   # many ties and plateaus
    spec[:, 0] = 5.0                                                 # boundary peaks
    fr, f, m = peaks.spectral_peaks(spec, 44100.0, 0, 1e9, 0.5, None, "frequency")
    assert np.all(np.diff(fr) >= 0) and np.all(np.diff(f)[np.diff(fr) == 0] > 0)
    order = np.lexsort((f, -m, fr))
    fr2, f2, m2 = peaks.spectral_peaks(spec, 44100.0, 0, 1e9, 0.5, 7, "magnitude")
    rank = np.arange(len(fr)) - np.searchsorted(fr[order], fr[order])
    keep = rank < 7
    assert fr2.tolist() == fr[order][keep].tolist()
    assert f2.tolist() == f[order][keep].tolist() and m2.tolist() == m[order][keep].tolist()
    F, A, count = lowlevel.spectral_peaks(spec, 44100.0 / 2 / 199, 0, 1e9, 0.5, 7, "magnitude")
    assert count.tolist() == np.bincount(fr2, minlength=30).tolist()
    assert F[np.isfinite(F)].tolist() == f2.tolist() and A[np.isfinite(F)].tolist() == m2.tolist()


def test_hpcp_in_frame_chunks_equals_one_pass():
    # long inputs compute the HPCPs a chunk of frames at a time: same values
    from mirkit.extractor import tonal
    rng = np.random.default_rng(11)
    n = 50
    fr = np.sort(rng.integers(0, n, 2000))
    fq = rng.uniform(30.0, 4000.0, 2000)
    mg = rng.random(2000)
    for params in (tonal.HPCP_KEY, tonal.HPCP_CHORD, tonal.HPCP_HIGHRES):
        whole = tonal.hpcp(fr, fq, mg, n, 440.0, **params)
        parts = tonal._hpcp_chunks(fr, fq, mg, n, 440.0, params, chunk=7)
        assert np.array_equal(parts, whole.astype(np.float32))
        mean = tonal._hpcp_chunks(fr, fq, mg, n, 440.0, params, mean=True, chunk=7)
        assert np.allclose(mean, whole.mean(axis=0), rtol=1e-12, atol=1e-15)
