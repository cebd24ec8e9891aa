"""Bounded-memory processing gives the same values as whole-signal processing."""

import numpy as np
import pytest

from mirkit.extractor import loudness, pipeline, signal, stream
from mirkit.records import flatten


def _wav(path, x, sr):
    import soundfile as sf
    sf.write(str(path), x, sr, subtype="FLOAT")
    return str(path)


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
def test_block_decoding_equals_one_shot_resampling(tmp_path, monkeypatch, sr):
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((30011, 2))).astype(np.float32)
    path = _wav(tmp_path / "a.wav", x, sr)
    monkeypatch.setattr(stream, "DECODE_BLOCK", 4096)
    blocks = list(stream.decode_blocks(path, "a.wav", 44100))
    y = np.concatenate(blocks)
    ref = signal.resample(x, sr, 44100)
    assert y.shape == ref.shape
    assert np.array_equal(y, ref)
    # trimming in the 44.1 kHz domain: int(t * 44100)
    part = np.concatenate(list(stream.decode_blocks(path, "a.wav", 44100, 0.1, 0.3)))
    assert np.array_equal(part, ref[4410:13230])


def test_spilled_store_and_streaming_filters_give_the_same_record(tmp_path, monkeypatch):
    t = np.arange(44100 * 3) / 44100
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    x = np.stack([x, 0.5 * x], axis=1)
    path = _wav(tmp_path / "b.wav", x, 44100)
    ref = pipeline.extract_file(path, {"descriptors": ("lowlevel",)})
    monkeypatch.setattr(stream, "MEMORY_LIMIT", 1000)       # every store spills to a file
    monkeypatch.setattr(stream, "DECODE_BLOCK", 5000)
    spilled = pipeline.extract_file(path, {"descriptors": ("lowlevel",)})
    a, b = flatten(ref["lowlevel"]), flatten(spilled["lowlevel"])
    assert a.keys() == b.keys()
    for name, value in a.items():
        assert np.allclose(b[name], value, rtol=1e-5, atol=1e-9), name


def test_streaming_fir_and_ebu_blocks():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((20000, 2)).astype(np.float32)
    h = signal.equal_loudness_fir()
    whole = signal.fir_filter(h, x, out_dtype=np.float64)
    fir = stream.StreamingFIR(h, channels=2)
    parts = np.concatenate([fir(x[i:i + 3001]) for i in range(0, len(x), 3001)])
    assert np.allclose(parts, whole, atol=1e-9)
    acc = loudness.EBUR128(2)
    for i in range(0, len(x), 777):
        acc.add(x[i:i + 777])
    r1, r2 = acc.result(), loudness.ebu_r128(x)
    assert r1["integrated"] == pytest.approx(r2["integrated"], abs=1e-6)
    assert np.allclose(r1["momentary"], r2["momentary"], atol=1e-4)
