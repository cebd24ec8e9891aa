"""Numpy front ends of the TensorFlow models (tensorflow.md §2-3): hand-computed cases, and
the Essentia wheel as an oracle (run in a subprocess, so that Essentia's bundled TensorFlow
never meets tensorflow-cpu in the test process). No TensorFlow is imported here."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import tf_oracle_env as oracle_env

from mirkit.errors import MirkitError
from mirkit.tf import frontends as fe


# --- hand-computed cases -------------------------------------------------------------------

def test_frame_count_and_centring():
    # ceil(N / hop) + 1 frames: ceil(1000/256) + 1 = 5; ceil(1024/256) + 1 = 5
    assert fe.frame_count(1000, 256) == 5
    assert fe.frame_count(1024, 256) == 5
    assert fe.frame_count(1025, 256) == 6
    assert fe.frame_count(0, 256) == 0
    # frame 4 / hop 2 on 0..9: first frame starts at -(5 // 2) = -2 (zeros on the left),
    # 6 frames, the last one [8, 9, 0, 0]
    fr = fe.frames(np.arange(10, dtype=np.float32), 4, 2)
    assert fr.shape == (6, 4)
    assert fr[0].tolist() == [0, 0, 0, 1]
    assert fr[1].tolist() == [0, 1, 2, 3]
    assert fr[5].tolist() == [8, 9, 0, 0]
    # partial ranges agree with the full framing
    np.testing.assert_array_equal(fe.frames(np.arange(10, dtype=np.float32), 4, 2, 2, 3), fr[2:5])


def test_symmetric_hann():
    # 0.5 - 0.5 cos(2 pi i / 4), i = 0..4
    np.testing.assert_allclose(fe.hann(5), [0, 0.5, 1, 0.5, 0], atol=1e-7)


def test_mel_scales():
    assert fe.hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert fe.hz_to_mel(6400.0, "slaney") == pytest.approx(42.0)   # 15 + ln(6.4) / (ln 6.4 / 27)
    assert fe.hz_to_mel(500.0, "slaney") == pytest.approx(7.5)     # 3 f / 200
    assert fe.hz_to_mel(700.0, "htk") == pytest.approx(2595 * math.log10(2))
    for scale in ("slaney", "htk"):
        f = np.array([20.0, 999.0, 1000.0, 4321.0])
        np.testing.assert_allclose(fe.mel_to_hz(fe.hz_to_mel(f, scale), scale), f)


def test_mel_filterbank_small_case():
    # sr 1600, 9 bins at 0, 100, ..., 800 Hz; 3 Slaney bands over 0-800 Hz (linear region):
    # edges 0, 200, 400, 600, 800; band 0 is the triangle 0-200-400 -> 0, .5, 1, .5, 0
    fb = fe.mel_filterbank(1600, 9, 3, 0.0, 800.0, "slaney", "linear", "unit_max")
    np.testing.assert_allclose(fb[0], [0, 0.5, 1, 0.5, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(fb[2], [0, 0, 0, 0, 0, 0.5, 1, 0.5, 0])
    # unit_tri divides by half the width: x 2 / 400
    tri = fe.mel_filterbank(1600, 9, 3, 0.0, 800.0, "slaney", "linear", "unit_tri")
    np.testing.assert_allclose(tri[1], [0, 0, 0, 0.0025, 0.005, 0.0025, 0, 0, 0])


def test_patching_discard_and_repeat():
    feats = np.arange(10, dtype=np.float32)[:, None]
    p = fe.patch(feats, 4, 3)                      # starts 0, 3, 6 (6 + 4 <= 10)
    assert p[:, :, 0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    p = fe.patch(feats, 4, 3, "repeat")            # leftover: frame 9 (next start 9)
    assert p[-1, :, 0].tolist() == [9, 9, 9, 9]
    p = fe.patch(feats[:5], 4, 2, "repeat")        # one patch, leftover 2..4 cycled
    assert p[:, :, 0].tolist() == [[0, 1, 2, 3], [2, 3, 4, 2]]
    assert fe.patch(feats[:5], 4, 0).shape == (1, 4, 1)   # hop 0 = patch size


def test_short_input_discard_empty_repeat_one_patch():
    feats = np.ones((3, 96), np.float32)
    empty = fe.patch(feats, 187, 93)
    assert empty.shape == (0, 187, 96)
    one = fe.patch(feats, 187, 93, "repeat")
    assert one.shape == (1, 187, 96)
    with pytest.raises(MirkitError):
        fe.patch(feats, 187, 93, "pad")
    # a 2 s clip at 16 kHz has 126 frames < 187: discard gives nothing
    assert fe.patch(fe.musicnn_bands(np.full(32000, 0.1, np.float32)), 187, 93).shape[0] == 0


def test_standardize_and_tempocnn_layout():
    p = fe.standardize_patches(np.array([[[1.0], [3.0]], [[2.0], [2.0]]]))
    np.testing.assert_allclose(p[0, :, 0], [-1, 1])        # mean 2, population std 1
    np.testing.assert_array_equal(p[1], 0)                  # constant patch -> zeros
    bands = np.random.default_rng(0).random((300, 40)).astype(np.float32)
    t = fe.tempocnn_patches(bands)
    assert t.shape == (1, 40, 256, 1)
    np.testing.assert_allclose(t[0, :, :, 0].T, fe.standardize_patches(bands[None, :256])[0],
                               atol=1e-6)


def test_zero_signal_gives_zero_musicnn_bands():
    bands = fe.musicnn_bands(np.zeros(16000, np.float32))
    assert bands.shape == (fe.frame_count(16000, 256), 96)
    assert not bands.any()


def test_resample_identity_and_length():
    x = np.random.default_rng(1).standard_normal(44100).astype(np.float32)
    assert fe.resample(x, 16000, 16000) is not None
    np.testing.assert_array_equal(fe.resample(x, 16000, 16000), x)
    y = fe.resample(x, 44100, 16000)
    assert y.dtype == np.float32 and abs(len(y) - 16000) <= 1


# --- oracle: Essentia's front ends -----------------------------------------------------------



ORACLE = textwrap.dedent("""
    import json, sys
    import numpy as np
    try:
        import essentia
        essentia.log.warningActive = False
        import essentia.standard as es
    except ImportError:
        sys.exit(77)
    data = np.load(sys.argv[1])
    x44 = data["x44"]
    out = {}
    x16 = es.Resample(inputSampleRate=44100, outputSampleRate=16000, quality=4)(x44)
    x11 = es.Resample(inputSampleRate=44100, outputSampleRate=11025, quality=4)(x44)
    out["x16"], out["x11"] = x16, x11
    x48 = es.Resample(inputSampleRate=44100, outputSampleRate=48000, quality=4)(x44)
    out["x48full"] = x48
    # other input rates (white noise of odd lengths), and MonoLoader on a 16-bit WAV
    for key in data.files:
        if key.startswith("in_"):
            rate = int(key[3:])
            for to in (16000, 11025, 48000):
                if to != rate:
                    out[f"rs_{rate}_{to}"] = es.Resample(inputSampleRate=rate,
                                                         outputSampleRate=to, quality=4)(data[key])
    for to in (16000, 11025, 48000):
        out[f"mono44100_{to}"] = es.MonoLoader(filename=sys.argv[3], sampleRate=to,
                                               resampleQuality=4)()
    for to in (16000, 48000):
        out[f"mono22050_{to}"] = es.MonoLoader(filename=sys.argv[4], sampleRate=to,
                                               resampleQuality=4)()
    def frames(x, size, hop):
        return np.array(list(es.FrameGenerator(x, frameSize=size, hopSize=hop,
                        startFromZero=False, validFrameThresholdRatio=0,
                        lastFrameToEndOfFile=False)))
    for name, x, size, hop, alg in (("musicnn", x16, 512, 256, es.TensorflowInputMusiCNN()),
                                    ("vggish", x16, 400, 160, es.TensorflowInputVGGish()),
                                    ("tempocnn", x11, 1024, 512, es.TensorflowInputTempoCNN())):
        fr = frames(x, size, hop)
        out[name + "_frames"] = fr
        out[name] = np.array([alg(f) for f in fr])
    # OpenL3 gist recipe on 48 kHz audio: 1 s chunks, 199 frames of 2048/242, magnitude mel, dB
    x48 = es.Resample(inputSampleRate=44100, outputSampleRate=48000, quality=4)(x44[:44100])
    w, s = es.Windowing(size=2048, normalized=False), es.Spectrum(size=2048)
    mb = es.MelBands(inputSize=1025, numberBands=128, sampleRate=48000, lowFrequencyBound=0,
                     highFrequencyBound=24000, warpingFormula="slaneyMel", weighting="linear",
                     normalize="unit_tri", type="magnitude", log=False)
    chunks = []
    for chunk in es.FrameGenerator(x48, frameSize=48000, hopSize=4800):
        m = np.array([mb(s(w(f))) for f in es.FrameGenerator(chunk, frameSize=2048,
                      hopSize=242, validFrameThresholdRatio=0.5)])
        db = 10 * np.log10(np.maximum(1e-10, m))
        db = np.maximum(db, db.max() - 80) - db.max()
        chunks.append(db)
    out["openl3"] = np.array(chunks)
    out["x48"] = x48
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tf_frontends")
    rng = np.random.default_rng(7)
    t = np.arange(int(44100 * 3.1)) / 44100
    x44 = (0.3 * np.sin(2 * np.pi * 330 * t * (1 + 0.05 * np.sin(3 * t)))
           + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    others = {f"in_{rate}": (0.3 * rng.standard_normal(int(rate * 1.37) + 3)).astype(np.float32)
              for rate in RESAMPLE_RATES}
    np.savez(tmp / "in.npz", x44=x44, **others)
    import soundfile as sf
    sf.write(str(tmp / "song.wav"), x44, 44100, subtype="PCM_16")
    sf.write(str(tmp / "song22.wav"), x44[::2], 22050, subtype="PCM_16")
    script = tmp / "oracle.py"
    script.write_text(ORACLE)
    env = oracle_env()
    proc = subprocess.run([sys.executable, str(script), str(tmp / "in.npz"), str(tmp / "out.npz"),
                           str(tmp / "song.wav"), str(tmp / "song22.wav")],
                          capture_output=True, env=env, timeout=300)
    if proc.returncode == 77:
        pytest.skip("essentia (oracle) not installed")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    ref = dict(np.load(tmp / "out.npz"))
    ref["x44"] = x44
    ref.update(others)
    ref["wav"], ref["wav22"] = str(tmp / "song.wav"), str(tmp / "song22.wav")
    return ref


# input rates of the resampling oracle: 22050/11025 -> 16000, 16000/32000/8000 -> 48000 and
# 12000-like pairs round the converter's read position (the scan path); the others are exact
RESAMPLE_RATES = (48000, 96000, 32000, 24000, 88200, 22050, 11025, 16000, 8000)


def test_resample_bit_identical_to_essentia(oracle):
    """libsamplerate linear + float32 ratio, the neighbour difference rounded to float32 (as
    Essentia's bundled libsamplerate 0.1.8) = Resample(quality=4) and MonoLoader(
    resampleQuality=4), bit for bit, for every rate pair tried (tensorflow.md §3.6). The
    ``samplerate`` wheel (libsamplerate 0.2.2) differs by 1-2 ulps on ~30 % of the samples."""
    for rate, key in ((16000, "x16"), (11025, "x11"), (48000, "x48full")):
        np.testing.assert_array_equal(fe.resample(oracle["x44"], 44100, rate), oracle[key])
    # the whole loader: 16-bit WAVs decoded by soundfile, resampled by mirkit
    import soundfile as sf
    for wav, rates in ((oracle["wav"], (16000, 11025, 48000)), (oracle["wav22"], (16000, 48000))):
        decoded, sr = sf.read(wav, dtype="float32")
        for rate in rates:
            np.testing.assert_array_equal(fe.resample(decoded, sr, rate),
                                          oracle[f"mono{sr}_{rate}"], err_msg=f"{sr}->{rate}")
    pairs = 0
    for rate in RESAMPLE_RATES:
        for to in (16000, 11025, 48000):
            if to == rate:
                continue
            x, ref = oracle[f"in_{rate}"], oracle[f"rs_{rate}_{to}"]
            ours = fe.linear_resample(x, np.float32(to / rate))
            assert ours is not None, f"{rate}->{to}"
            np.testing.assert_array_equal(ours, ref, err_msg=f"{rate}->{to}")
            pairs += 1
    assert pairs == 24


def reference_linear(x, ratio):
    """The converter one output at a time (pure Python, short signals only): a double read
    position advanced by 1/ratio, its integer part moved into n after each step; x[0] while
    the position is below 1; float32(a + t * float32(b - a)); stop when n + t >= len(x)."""
    step = 1.0 / float(np.float32(ratio))
    xs = [float(v) for v in np.asarray(x, np.float32)]
    out, t, n = [], 0.0, 0
    while n + t < len(xs):
        a, b = (xs[0], xs[0]) if n == 0 else (xs[n - 1], xs[n])
        diff = float(np.float32(b - a))
        out.append(np.float32(a + t * diff))
        t += step
        whole = math.floor(t)
        n, t = n + whole, t - whole
    return np.array(out, np.float32)


def test_linear_resample_equals_reference_loop(monkeypatch):
    # random rate pairs (exact, rounded and periodic positions), tiny chunks and blocks so that
    # the rounding carried from one chunk to the next is exercised
    monkeypatch.setattr(fe, "_RESAMPLE_CHUNK", 700)
    monkeypatch.setattr(fe, "_FSM_BLOCK", 16)
    rng = np.random.default_rng(11)
    kinds = set()
    for trial in range(40):
        a = int(rng.integers(4000, 200000)) if trial % 2 else int(rng.choice(RESAMPLE_RATES))
        b = int(rng.choice((16000, 11025, 48000))) if trial % 3 else int(rng.integers(4000, 99000))
        if a == b:
            continue
        x = rng.standard_normal(int(rng.integers(4, 2500))).astype(np.float32)
        ours = fe.linear_resample(x, np.float32(b / a))
        np.testing.assert_array_equal(ours, reference_linear(x, np.float32(b / a)),
                                      err_msg=f"{a}->{b}, {len(x)} samples")
        step = 1.0 / float(np.float32(b / a))
        kinds.add("periodic" if fe._periodic_positions(step, 10 ** 6) else "other")
    assert kinds == {"periodic", "other"}
    # fewer than 4 samples: the samplerate package
    assert len(fe.resample(np.ones(3, np.float32), 16000, 48000)) in (8, 9)


@pytest.mark.parametrize("name,size,hop,func", [
    ("musicnn", 512, 256, fe.musicnn_bands),
    ("vggish", 400, 160, fe.vggish_bands),
    ("tempocnn", 1024, 512, fe.tempocnn_bands),
])
def test_front_ends_match_essentia(oracle, name, size, hop, func):
    x = oracle["x11" if name == "tempocnn" else "x16"]
    np.testing.assert_array_equal(fe.frames(x, size, hop), oracle[name + "_frames"])
    ours = func(x)
    ref = oracle[name]
    assert ours.shape == ref.shape
    # float32 noise of Essentia's FFT (values up to ~6)
    np.testing.assert_allclose(ours, ref, atol=5e-4, rtol=1e-4)


def test_maest_normalisation():
    x = np.random.default_rng(3).standard_normal(20000).astype(np.float32) * 0.1
    np.testing.assert_allclose(fe.maest_bands(x),
                               (fe.musicnn_bands(x) - 2.06755686098554) / (2 * 1.268292820667291),
                               atol=1e-6)


def test_openl3_front_end_matches_gist(oracle):
    ours = fe.openl3_patches(oracle["x48"])          # [B, 128, 199, 1]
    ref = oracle["openl3"]                            # [B, 199, 128]
    assert ours.shape == (ref.shape[0], 128, 199, 1)
    np.testing.assert_allclose(ours[..., 0].transpose(0, 2, 1), ref, atol=2e-3)
