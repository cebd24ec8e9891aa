"""Frame cutting, windows, spectra and signal preparation (extractor.md §3)."""

import numpy as np
import pytest

from mirkit.extractor import framing, signal


@pytest.mark.parametrize("n, frame, hop, start0, expected", [
    # §3.4 checked counts: N=882000 -> 863 lowlevel / 432 tonal, N=1323000 -> 1293 / 647
    (882000, 2048, 1024, False, 863),
    (882000, 4096, 2048, False, 432),
    (1323000, 2048, 1024, False, 1293),
    (1323000, 4096, 2048, False, 647),
    # F = 2H: ceil(N/H) + 1 ; N=1 -> 2 frames (centre of frame 1 at 1024 >= 1)
    (1, 2048, 1024, False, 2),
    (1024, 2048, 1024, False, 2),
    (1025, 2048, 1024, False, 3),
    # start from zero: first k with k*H + F >= N
    (88200, 88200, 44100, True, 1),
    (88201, 88200, 44100, True, 2),
    (100, 2205, 2205, True, 1),
    (0, 2048, 1024, False, 0),
])
def test_frame_count(n, frame, hop, start0, expected):
    assert framing.frame_count(n, frame, hop, start0) == expected


def test_first_frame_centred_on_zero():
    x = np.arange(1, 5001, dtype=np.float32)
    index, frames = framing.cut_frames(x, 2048, 1024, silent_frames="keep")
    assert frames.shape == (framing.frame_count(5000, 2048, 1024), 2048)
    # frame 0 covers samples -1024 .. 1023: zeros then x[0..1023]
    assert np.all(frames[0, :1024] == 0)
    assert np.array_equal(frames[0, 1024:], x[:1024])
    assert np.array_equal(frames[2, :], x[1024:3072])
    # blocks give the same frames as one call
    blocks = [f for _, f in framing.iter_frame_blocks(x, 2048, 1024, silent_frames="keep", block_frames=2)]
    assert np.array_equal(np.concatenate(blocks), frames)


def test_silent_frames_noise_is_deterministic():
    x = np.zeros(10000, np.float32)
    x[6000:] = 0.5
    i1, f1 = framing.cut_frames(x, 2048, 1024)
    i2, f2 = framing.cut_frames(x, 2048, 1024, first=3, count=2)
    assert np.array_equal(f1[3:5], f2)
    silent = framing.silent_mask(framing.cut_frames(x, 2048, 1024, silent_frames="keep")[1])
    assert silent[0] and not silent[-2]
    # noise only on silent frames, amplitude <= 1e-10, seeded by (F, H, k)
    assert 0 < np.abs(f1[0]).max() <= 1e-10
    expected = framing.silence_noise(2048, 1024, 0)
    assert np.array_equal(f1[0], expected)
    assert not np.array_equal(framing.silence_noise(2048, 1024, 1), expected)
    idx, kept = framing.cut_frames(x, 2048, 1024, silent_frames="drop")
    assert len(kept) == (~silent).sum() and np.array_equal(idx, np.flatnonzero(~silent))


def test_windows_normalised():
    for name in ("blackmanharris62", "hann", "hamming", "square", "triangular", "blackmanharris92"):
        w = framing.make_window(name, 2048)
        assert w.dtype == np.float32
        assert abs(float(np.abs(w).sum()) - 2.0) < 1e-4
    w = framing.make_window("blackmanharris62", 5, normalized=False)
    # w[0] = 0.44959 - 0.49364 + 0.05677 (hand-computed)
    assert abs(w[0] - 0.01272) < 1e-6 and abs(w[2] - 1.0) < 1e-6


def test_spectrum_of_sine_peaks_at_its_bin():
    n = np.arange(2048)
    x = np.sin(2 * np.pi * 100 * n / 2048).astype(np.float32)[None, :]
    s = framing.spectrum(x)
    assert s.shape == (1, 1025) and s.dtype == np.float32
    assert int(np.argmax(s[0])) == 100
    # a unit sine on a bin: |X[k]| = sum(w)/2 = 1 with the window normalised to sum 2
    assert abs(float(s[0, 100]) - 1.0) < 1e-4


def _direct_iir(b, a, x):
    y = np.zeros(len(x))
    for i in range(len(x)):
        acc = sum(b[k] * x[i - k] for k in range(len(b)) if i - k >= 0)
        acc -= sum(a[k] * y[i - k] for k in range(1, len(a)) if i - k >= 0)
        y[i] = acc
    return y


def test_lfilter_matches_direct_recursion():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3000)
    b, a = [0.98595, -0.98595], [1.0, -0.9719]
    assert np.allclose(signal.lfilter(b, a, x, out_dtype=np.float64), _direct_iir(b, a, x), atol=1e-9)
    c = signal._EQLOUD_44100
    b2 = signal._poly_mul(c["by"], c["bb"])
    a2 = signal._poly_mul(c["ay"], c["ab"])
    y = signal.equal_loudness(x.astype(np.float32))
    assert np.allclose(y, _direct_iir(b2, a2, x), atol=1e-5)


def test_replay_gain_and_gain_clipping():
    # constant power p everywhere: rg = -31.462667 - 10 log10(p)
    x = np.full(44100, 0.1, np.float32)
    assert abs(signal.replay_gain(x) - (-31.462667465209961 + 20.0)) < 1e-4
    y = signal.easy_loader_signal(np.array([0.5, -0.9], np.float32), 6.0)  # x * 10^(12/20)
    assert np.array_equal(y, np.array([1.0, -1.0], np.float32))


def test_downmix_and_resample_length():
    st = np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)
    assert np.array_equal(signal.downmix(st, "mix"), [0.5, 0.5])
    assert np.array_equal(signal.downmix(st, "left"), [1.0, 0.5])
    assert np.array_equal(signal.downmix(st, "right"), [0.0, 0.5])
    x = np.zeros(1000, np.float32)
    assert len(signal.resample(x, 22050, 44100)) == 1999        # ceil(2000) - 1
    assert len(signal.resample(x, 48000, 44100)) == 918         # ceil(918.75) - 1
    assert signal.resample(x, 44100, 44100) is not None and len(signal.resample(x, 44100, 44100)) == 1000
