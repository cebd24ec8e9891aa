"""Metadata of extract: tags of each container, codec names, bit rates, md5 of the payload."""

import hashlib

import numpy as np
import pytest

from mirkit.extractor import audio, tags


@pytest.mark.parametrize("fmt, ext, subtype, codec", [
    ("WAV", "wav", "PCM_16", "pcm_s16le"),
    ("WAV", "wav", "FLOAT", "pcm_f32le"),
    ("FLAC", "flac", "PCM_16", "flac"),
    ("OGG", "ogg", "VORBIS", "vorbis"),
    ("MP3", "mp3", None, "mp3"),
    ("AIFF", "aiff", "PCM_24", "pcm_s24be"),
])
def test_tags_and_codecs(tmp_path, fmt, ext, subtype, codec):
    import soundfile as sf
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    path = tmp_path / f"t.{ext}"
    x = (0.1 * np.sin(np.arange(22050) * 0.05)).astype(np.float32)
    with sf.SoundFile(str(path), "w", 44100, 1, format=fmt, subtype=subtype) as f:
        f.title = "A title"
        f.artist = "Someone"
        f.write(x)
    found = tags.read_tags(str(path))
    assert found["title"] == ["A title"] and found["artist"] == ["Someone"]
    info = audio.open_info(str(path))
    props = audio.probe(str(path), info)
    assert props["codec"] == codec
    assert props["lossless"] == (0.0 if codec in ("vorbis", "mp3") else 1.0)
    if codec == "pcm_s16le":
        assert props["bit_rate"] == 44100 * 16
    if codec == "flac":
        assert props["bit_rate"] == 0.0          # as FFmpeg
    if codec in ("vorbis", "mp3"):
        assert props["bit_rate"] > 0


def test_md5_of_wav_data_chunk_and_flac_frames(tmp_path):
    import soundfile as sf
    x = (0.1 * np.sin(np.arange(4410) * 0.05)).astype(np.float32)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), x, 44100, subtype="PCM_16")
    raw = wav.read_bytes()
    data = raw[raw.index(b"data") + 8:]
    info = audio.open_info(str(wav))
    assert audio.probe(str(wav), info)["md5_encoded"] == hashlib.md5(data).hexdigest()
    # FLAC: everything after the metadata blocks (the frames)
    flac = tmp_path / "a.flac"
    sf.write(str(flac), x, 44100, subtype="PCM_16")
    raw = flac.read_bytes()
    pos = 4
    while True:
        last, size = raw[pos] & 0x80, int.from_bytes(raw[pos + 1:pos + 4], "big")
        pos += 4 + size
        if last:
            break
    assert audio.probe(str(flac), audio.open_info(str(flac)))["md5_encoded"] == hashlib.md5(raw[pos:]).hexdigest()


def test_tag_whitelist_and_bad_tags(tmp_path):
    # vorbis comments: keys are case-insensitive, unknown keys dropped, '.' -> '_'
    body = b"".join(len(c).to_bytes(4, "little") + c for c in
                    [b"ARTIST=X", b"artist=Y", b"NOT_A_TAG=1", b"MUSICBRAINZ_TRACKID=abc", b"junk"])
    data = (6).to_bytes(4, "little") + b"vendor" + (5).to_bytes(4, "little") + body
    found = {}
    tags._vorbis_comments(data, found)
    assert found == {"artist": ["X", "Y"], "musicbrainz_trackid": ["abc"]}
    # a truncated comment block is ignored, not an error
    tags._vorbis_comments(data[:20], {})
    (tmp_path / "x.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    assert tags.read_tags(str(tmp_path / "x.wav")) == {}


@pytest.mark.parametrize("fmt, ext, subtype, channels", [
    ("WAV", "wav", "PCM_16", 1), ("WAV", "wav", "FLOAT", 6), ("FLAC", "flac", "PCM_24", 2),
    ("OGG", "ogg", "VORBIS", 2), ("MP3", "mp3", None, 2)])
def test_streamed_mono_mix_equals_whole_file_mix(tmp_path, fmt, ext, subtype, channels):
    """read_mono (what the models read, block by block) gives the samples of decoding the
    whole file and mixing it, for any start/end and block size (MP3: within one float32
    ulp, libsndfile's MP3 decoder depends on the read size)."""
    import soundfile as sf
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    rng = np.random.default_rng(channels)
    x = (0.3 * rng.standard_normal((30011, channels))).astype(np.float32)
    x[100, 0] = np.nan if subtype == "FLOAT" else x[100, 0]
    path = str(tmp_path / f"t.{ext}")
    sf.write(path, x, 22050, format=fmt, subtype=subtype)
    whole, sr = sf.read(path, dtype="float32", always_2d=True)  # the whole file at once
    whole = np.nan_to_num(whole, nan=0.0, posinf=1.0, neginf=-1.0)
    for start, end, block in [(0, None, audio.DECODE_BLOCK), (0, None, 4096), (5000, 17000, 3333),
                              (29000, 10 ** 9, 1000), (40000, 50000, 4096)]:
        mono, sr2, decoded = audio.read_mono(path, start, end, block)
        want = whole[start:end].mean(axis=1, dtype=np.float32)
        assert sr2 == sr and decoded == len(whole)
        assert mono.dtype == np.float32 and len(mono) == len(want)
        if fmt == "MP3":
            assert np.allclose(mono, want, rtol=0, atol=2.0 ** -22), (start, end, block)
        else:
            assert np.array_equal(mono, want), (start, end, block)
