"""End-to-end tests of the extract tool (bin/extract as a subprocess) and its bad inputs."""

import io
import json
import os
from pathlib import Path

import msgpack
import numpy as np
import pytest

from mirkit.streams import read_records

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "audio"


def music_like(seconds=3.0, sr=44100, channels=2, seed=0):
    """A short synthetic 'music' signal: harmonic notes with envelopes, a noise hi-hat."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for k, f0 in enumerate([220.0, 277.2, 329.6, 440.0, 392.0, 293.7]):
        start = k * seconds / 6
        env = np.exp(-3 * np.clip(t - start, 0, None)) * (t >= start)
        for h in range(1, 6):
            x += env * np.sin(2 * np.pi * f0 * h * t) / h
    beats = (np.floor(t * 4) != np.floor((t - 1 / sr) * 4))
    x += 0.3 * np.convolve(beats.astype(float), np.exp(-np.arange(2000) / 200.0))[:len(t)] * rng.standard_normal(len(t))
    x = 0.25 * x / np.abs(x).max()
    out = np.stack([x, 0.8 * x], axis=1) if channels == 2 else x[:, None]
    if channels > 2:
        out = np.repeat(x[:, None], channels, axis=1)
    return out.astype(np.float32)


def write(path, data, sr=44100, subtype="PCM_16"):
    import soundfile as sf
    sf.write(os.fsencode(str(path)) if isinstance(path, str) else str(path), data, sr, subtype=subtype)
    return path


def records(out):
    return [r for r in read_records(io.BytesIO(out), "stdout")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write(tmp_path_factory.mktemp("audio") / "clip.wav", music_like())


def test_extract_record_layout(run_tool, clip):
    res = run_tool("extract", "--descriptors", "lowlevel", "-f", "json", clip)
    assert res.returncode == 0, res.stderr
    (rec,) = records(res.stdout)
    md = rec["metadata"]
    assert md["id"] == str(clip)
    assert md["version"]["extractor"] == "music 2.0" and "mirkit" in md["version"]
    ap = md["audio_properties"]
    assert ap["codec"] == "pcm_s16le" and ap["lossless"] == 1.0 and ap["number_channels"] == 2.0
    assert ap["bit_rate"] == 44100 * 2 * 16 and ap["length"] == pytest.approx(3.0)
    assert ap["analysis"] == {"downmix": "mix", "equal_loudness": 0.0, "length": pytest.approx(3.0),
                              "sample_rate": 44100.0, "start_time": 0.0}
    # md5 of the data chunk (the PCM payload)
    import hashlib
    raw = Path(clip).read_bytes()
    assert ap["md5_encoded"] == hashlib.md5(raw[raw.index(b"data") + 8:]).hexdigest()
    assert md["tags"]["file_name"] == "clip.wav"
    ll = rec["lowlevel"]
    assert set(ll["spectral_centroid"]) == {"mean", "var", "stdev", "median", "min", "max",
                                            "dmean", "dmean2", "dvar", "dvar2"}
    assert set(ll["mfcc"]) == {"mean", "cov", "icov"} and len(ll["mfcc"]["cov"]) == 13
    assert len(ll["melbands128"]["mean"]) == 128 and len(ll["barkbands"]["max"]) == 27
    assert len(ll["spectral_contrast_coeffs"]["mean"]) == 6 and len(ll["gfcc"]["mean"]) == 13
    for name in ("average_loudness", "dynamic_complexity"):
        assert isinstance(ll[name], float)
    assert set(ll["loudness_ebu128"]) == {"integrated", "loudness_range", "momentary", "short_term"}
    assert "rhythm" not in rec and "tonal" not in rec


def test_stdin_paths_jobs_order_and_failures(run_tool, clip, tmp_path):
    other = write(tmp_path / "b.wav", music_like(2.0, seed=1))
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio at all\n" * 10)
    listing = f"{clip}\n{bad}\n{other}\n".encode()
    res = run_tool("extract", "-j", "2", "--descriptors", "lowlevel", input=listing)
    assert res.returncode == 1
    ids = [r["metadata"]["id"] for r in records(res.stdout)]
    assert ids == [str(clip), str(other)]
    err = res.stderr.decode()
    assert f"extract: {bad}: cannot decode audio" in err and err.count("\n") == 1
    # msgpack by default when stdout is not a terminal
    assert res.stdout[0] & 0xF0 == 0x80 or res.stdout[0] in (0xDE, 0xDF)   # a msgpack map
    first = next(msgpack.Unpacker(io.BytesIO(res.stdout), raw=False))
    assert first["metadata"]["id"] == str(clip)


def test_bad_inputs_each_give_one_clear_error_or_a_record(run_tool, tmp_path):
    import soundfile as sf
    d = tmp_path
    (d / "empty.wav").write_bytes(b"")
    sf.write(str(d / "zero.wav"), np.zeros((0, 2), np.float32), 44100)
    good = write(d / "good.wav", music_like(1.0))
    raw = Path(good).read_bytes()
    (d / "truncated.wav").write_bytes(raw[:len(raw) // 3])
    (d / "text.mp3").write_text("this is not an mp3\n" * 50)
    sf.write(str(d / "one.wav"), np.array([[0.5, 0.5]], np.float32), 44100)
    sf.write(str(d / "silence.wav"), np.zeros((44100, 2), np.float32), 44100)
    write(d / "eight.wav", music_like(1.0, channels=8))
    write(d / "hires.wav", music_like(1.0, sr=192000), sr=192000, subtype="PCM_24")
    weird = os.path.join(os.fsencode(str(d)), b"caf\xe9.wav")
    sf.write(weird, music_like(1.0), 44100)
    (d / "adir.wav").mkdir()
    names = ["empty.wav", "zero.wav", "truncated.wav", "text.mp3", "one.wav", "silence.wav",
             "eight.wav", "hires.wav", os.fsdecode(b"caf\xe9.wav"), "adir.wav", "missing.wav"]
    listing = b"".join(os.fsencode(str(d / n)) + b"\n" for n in names)
    res = run_tool("extract", "--descriptors", "lowlevel", "-f", "json", input=listing)
    assert res.returncode == 1
    recs = {Path(r["metadata"]["id"]).name: r for r in records(res.stdout)}
    err = res.stderr.decode("utf-8", "replace").strip().splitlines()
    # one line per failure, each naming its input
    failed = {"empty.wav": "empty file", "zero.wav": "zero-length", "text.mp3": "format not recognised",
              "silence.wav": "silent", "adir.wav": "directory", "missing.wav": "no such file"}
    assert len(err) == len(failed), err
    for name, reason in failed.items():
        assert any(name in line and reason in line for line in err), (name, err)
    for name in ("truncated.wav", "one.wav", "eight.wav", "hires.wav", "caf\\xe9.wav"):
        assert name in recs, (name, sorted(recs))
    assert recs["eight.wav"]["metadata"]["audio_properties"]["number_channels"] == 8.0
    assert recs["hires.wav"]["metadata"]["audio_properties"]["sample_rate"] == 192000.0
    assert recs["hires.wav"]["metadata"]["audio_properties"]["analysis"]["length"] == pytest.approx(1.0, abs=1e-4)
    # one sample: two frames (§3.4), so dmean2 (needs 3 frames) is 0
    assert recs["one.wav"]["lowlevel"]["spectral_energy"]["dmean2"] == 0.0


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission")
def test_unreadable_file(run_tool, tmp_path):
    p = write(tmp_path / "locked.wav", music_like(0.5))
    os.chmod(p, 0)
    res = run_tool("extract", p)
    assert res.returncode == 1 and b"permission denied" in res.stderr


def test_profile_stats_lists_start_end_and_frames(run_tool, clip, tmp_path):
    prof = tmp_path / "profile.yaml"
    prof.write_text("lowlevel:\n  stats: [mean, max]\n  mfccStats: [mean]\n"
                    "mergeValues:\n  metadata.tags.dataset: demo\n")
    res = run_tool("extract", "--profile", prof, "--start", "0.5", "--end", "2.5",
                   "--descriptors", "lowlevel", "--frames", "-f", "json", clip)
    assert res.returncode == 0, res.stderr
    rec, frames = records(res.stdout)
    assert set(rec["lowlevel"]["hfc"]) == {"mean", "max"}
    assert set(rec["lowlevel"]["mfcc"]) == {"mean"}
    assert rec["metadata"]["tags"]["dataset"] == "demo"
    an = rec["metadata"]["audio_properties"]["analysis"]
    assert an["start_time"] == 0.5 and an["length"] == pytest.approx(2.0)
    assert frames["metadata"]["frames"] == 1.0 and frames["metadata"]["id"] == str(clip)
    n = len(frames["lowlevel"]["hfc"])
    assert n == int(np.ceil(2.0 * 44100 / 1024)) + 1
    assert len(frames["lowlevel"]["mfcc"]) == n and len(frames["lowlevel"]["mfcc"][0]) == 13
    assert rec["lowlevel"]["hfc"]["max"] == pytest.approx(max(frames["lowlevel"]["hfc"]))


def test_profile_errors_are_clear(run_tool, clip, tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text("lowlevel:\n  stats: [mean, average]\n")
    res = run_tool("extract", "--profile", prof, clip)
    assert res.returncode == 2 and b"average" in res.stderr and len(res.stderr.splitlines()) == 1
    prof.write_text("lowlevel:\n  frameSiz: 2048\n")
    res = run_tool("extract", "--profile", prof, clip)
    assert res.returncode == 2 and b"frameSiz" in res.stderr


def test_model_without_tf_backend_or_embeddings_alone(run_tool, clip):
    res = run_tool("extract", "--embeddings", clip)
    assert res.returncode == 2 and b"--model" in res.stderr


def test_examples_decode(run_tool):
    files = sorted(str(p) for p in EXAMPLES.iterdir() if p.suffix in (".ogg", ".flac", ".wav"))
    assert len(files) >= 3
    res = run_tool("extract", "--descriptors", "none", "-f", "json", *files)
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    codecs = {r["metadata"]["audio_properties"]["codec"] for r in recs}
    assert codecs == {"vorbis", "flac", "pcm_s16le"}
    ogg = [r for r in recs if r["metadata"]["audio_properties"]["codec"] == "vorbis"][0]
    assert ogg["metadata"]["tags"]["artist"] == ["The Frozen-Bubble Team"]
    assert ogg["metadata"]["audio_properties"]["bit_rate"] > 0


def test_digital_silence_is_deterministic_across_runs_and_jobs(run_tool, tmp_path):
    x = music_like(2.0)
    x[:44100] = 0.0                    # one second of digital silence first
    a = write(tmp_path / "a.wav", x)
    b = write(tmp_path / "b.wav", x)
    r1 = run_tool("extract", "--descriptors", "lowlevel", "-j", "1", "-f", "json", a, b)
    r2 = run_tool("extract", "--descriptors", "lowlevel", "-j", "2", "-f", "json", a, b)
    assert r1.returncode == 0 and r2.returncode == 0
    recs1, recs2 = records(r1.stdout), records(r2.stdout)
    for one, two in zip(recs1, recs2):
        assert one["lowlevel"] == two["lowlevel"]
    # same audio under two names: identical descriptors
    assert recs1[0]["lowlevel"] == recs1[1]["lowlevel"]
    ll = recs1[0]["lowlevel"]
    # silent frames: silence rates 1, zcr about 0.5 (noise), mfcc[0] = -1264.9 on them
    assert ll["silence_rate_60dB"]["max"] == 1.0
    assert ll["zerocrossingrate"]["max"] > 0.4


def test_unsupported_profile_keys(run_tool, clip, tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text("chromaprint:\n  compute: true\n")
    res = run_tool("extract", "--profile", prof, clip)
    assert res.returncode == 2 and b"chromaprint" in res.stderr
    res = run_tool("extract", "--start", "3", "--end", "2", clip)
    assert res.returncode == 2 and b"end time" in res.stderr


def test_unknown_model_is_a_fatal_error(run_tool, clip, tmp_path):
    res = run_tool("extract", "--model", str(tmp_path / "no-such-model.pb"), clip)
    assert res.returncode == 2
    assert b"no-such-model" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_non_audio_models_are_refused_once_before_any_file(run_tool, clip, tmp_path):
    # a .history/.model file, or a TF classification head (its .json names an embedding
    # model), is not an audio model: one fatal error (exit 2), not one failure per file
    hist = tmp_path / "mood.history"
    hist.write_bytes(b"\0" * 64)
    head = tmp_path / "head-msd-musicnn-1.pb"
    head.write_bytes(b"")
    (tmp_path / "head-msd-musicnn-1.json").write_text(json.dumps(
        {"inference": {"algorithm": "TensorflowPredict2D",
                       "embedding_model": {"model_name": "msd-musicnn-1"}}}))
    for model, words in ((hist, b"classify -m"), (head, b"classification head")):
        res = run_tool("extract", "--descriptors", "none", "--model", str(model), clip, clip)
        assert res.returncode == 2, res.stderr
        assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_audio_on_stdin_instead_of_paths_is_one_error(run_tool, clip):
    # `extract < song.wav` read the audio bytes as file names: ~1000 error lines, one of
    # them "internal error: ValueError: embedded null byte"
    res = run_tool("extract", input=Path(clip).read_bytes())
    assert res.returncode == 2 and res.stdout == b""
    assert res.stderr == b"extract: -: standard input holds WAV audio, not file names " \
                         b"(one per line): give the audio files as arguments\n"
    res = run_tool("extract", input=b"a\0b\n")
    assert res.returncode == 2 and b"binary data" in res.stderr


def test_every_input_failed_is_exit_2_and_leaves_the_output_alone(run_tool, clip, tmp_path):
    """design.md §4: nothing could be done -> 2; the -o file is neither created nor replaced
    (it was created empty, or an existing good file was replaced by an empty one)."""
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio\n")
    out = tmp_path / "out.msgpack"
    res = run_tool("extract", "-o", out, bad, tmp_path / "missing.wav")
    assert res.returncode == 2 and not out.exists()
    assert b"bad.wav" in res.stderr and b"missing.wav" in res.stderr
    assert b"out.msgpack: not written" in res.stderr
    out.write_bytes(b"previous good content")
    res = run_tool("extract", "-o", out, "-f", "json", bad)
    assert res.returncode == 2 and out.read_bytes() == b"previous good content"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".~")] == []
    res = run_tool("extract", bad, input=b"")
    assert res.returncode == 2 and res.stdout == b""
    # one good file among them: exit 1 and the file holds its record
    res = run_tool("extract", "--descriptors", "none", "-o", out, bad, clip)
    assert res.returncode == 1
    assert [r["metadata"]["id"] for r in records(out.read_bytes())] == [str(clip)]


def _tiny_model(path):
    """A mirkit model on two descriptors every extract record has (trained on 12 made-up
    records: loud/soft by average_loudness)."""
    from mirkit import yamlio
    from mirkit.gaia.dataset import load_dataset
    from mirkit.gaia.preprocess import Chain
    from mirkit.gaia.project import Project, template_text
    from mirkit.svm.modelfile import save_model
    from mirkit.svm.train import train_final
    recs, labels = {}, {}
    for i in range(12):
        recs[f"t{i}"] = {"metadata": {"id": f"t{i}"},
                         "lowlevel": {"average_loudness": (i % 2) + 0.05 * i,
                                      "dynamic_complexity": 0.3 * i}}
        labels[f"t{i}"] = "loud" if i % 2 else "soft"
    base, _ = load_dataset(None, exclude=["metadata.*"], records=recs)
    project = Project(yamlio.loads(template_text("2.1-beta5", "c", "d", "r", "f", "g"),
                                   gaia=False))
    chain = Chain.from_steps(project.preprocessing["raw"])
    config = {"kernel": "RBF", "C": 0, "gamma": 0, "balanceClasses": False, "type": "C-SVC",
              "classifier": "svm", "preprocessing": "raw"}
    save_model(path, train_final(chain.fit_apply(base), labels, config, chain.to_data(),
                                 base.layout(), "loudness", "raw"))
    return path


def test_non_utf8_file_name_gives_valid_utf8_records(run_tool, tmp_path):
    """b'caf\\xe9.wav' (Latin-1 name on a UTF-8 system): metadata.id and tags.file_name are
    decoded with backslashreplace ('caf\\\\xe9.wav', extract(1)); the JSON and msgpack output
    are valid UTF-8 and go through classify and json2sig."""
    from mirkit import yamlio
    import soundfile as sf
    raw = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.wav")
    sf.write(raw, music_like(1.0), 44100)
    name = os.fsdecode(raw)     # as argv: the byte as a surrogate escape
    shown = os.fsencode(str(tmp_path)).decode() + "/caf\\xe9.wav"
    outs = {}
    for fmt in ("json", "msgpack"):
        res = run_tool("extract", "--descriptors", "lowlevel", "-f", fmt, name)
        assert res.returncode == 0, res.stderr
        outs[fmt] = res.stdout
    (rec,) = [json.loads(line) for line in outs["json"].decode("utf-8").splitlines()]
    packed = list(msgpack.Unpacker(io.BytesIO(outs["msgpack"]), raw=False,
                                   unicode_errors="strict"))
    assert len(packed) == 1
    for r in (rec, packed[0]):
        assert r["metadata"]["id"] == shown
        assert r["metadata"]["tags"]["file_name"] == "caf\\xe9.wav"
    # the same id from a path list on stdin
    res = run_tool("extract", "--descriptors", "lowlevel", "-f", "json", input=raw + b"\n")
    assert json.loads(res.stdout)["metadata"]["id"] == shown
    model = _tiny_model(tmp_path / "tiny.model")
    for fmt, data in outs.items():
        res = run_tool("classify", "-m", model, "-f", fmt, input=data)
        assert res.returncode == 0, res.stderr
        (out,) = records(res.stdout)
        assert out["metadata"]["id"] == shown and out["highlevel"]["tiny"]["value"] in ("loud", "soft")
        res = run_tool("json2sig", "-d", tmp_path / f"sigs-{fmt}", input=data)
        assert res.returncode == 0, res.stderr
        (sig,) = yamlio.loads(res.stdout.decode("utf-8"), gaia=False).items()
        assert sig[0] == shown
        assert yamlio.load(sig[1])["lowlevel"]["average_loudness"] == rec["lowlevel"]["average_loudness"]
