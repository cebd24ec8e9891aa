import json

import msgpack
import pytest

from mirkit import yamlio
from mirkit.gaia.groundtruth import load_filelist
from mirkit.sigfiles import safe_stem


def essentia_json(i, label="x"):
    return {"metadata": {"version": {"essentia": "2.1-beta5-dev", "extractor": "music 2.0"},
                         "tags": {"file_name": f"t{i}.mp3", "artist": ["A"]},
                         "audio_properties": {"sample_rate": 44100.0, "lossless": 0.0, "length": 3.0}},
            "lowlevel": {"mfcc": {"mean": [1.0, 2.0], "cov": [[1.0, 0.5], [0.5, 2.0]]}},
            "tonal": {"key_edma": {"key": "C", "scale": "major", "strength": 0.5}}}


def test_filelist_mode_converts_next_to_json(tmp_path, run_tool):
    (tmp_path / "d").mkdir()
    for i in range(3):
        (tmp_path / "d" / f"t{i}.json").write_text(json.dumps(essentia_json(i)))
    (tmp_path / "fl.yaml").write_text("".join(f"'0{i}': d/t{i}.json\n" for i in range(3)) + "'09': d/missing.json\n")
    res = run_tool("json2sig", "--filelist", tmp_path / "fl.yaml", "-o", tmp_path / "out.yaml")
    assert res.returncode == 1
    assert b"missing.json" in res.stderr and b"json2sig: " in res.stderr
    out = load_filelist(tmp_path / "out.yaml")
    assert out == {f"0{i}": f"d/t{i}.sig" for i in range(3)}
    sig = yamlio.load(tmp_path / "d" / "t0.sig")
    assert "tags" not in sig["metadata"]
    assert "sample_rate" not in sig["metadata"]["audio_properties"]
    assert "lossless" not in sig["metadata"]["audio_properties"]
    assert sig["tonal"]["key_edma"]["key"] == "C"
    assert sig["lowlevel"]["mfcc"]["cov"] == [[1.0, 0.5], [0.5, 2.0]]
    text = (tmp_path / "d" / "t0.sig").read_text()
    assert 'key: "C"' in text


def test_keep_all(tmp_path, run_tool):
    (tmp_path / "t.json").write_text(json.dumps(essentia_json(0)))
    (tmp_path / "fl.yaml").write_text("a: t.json\n")
    res = run_tool("json2sig", "--keep-all", "--filelist", tmp_path / "fl.yaml")
    assert res.returncode == 0, res.stderr
    assert yamlio.load(tmp_path / "t.sig")["metadata"]["tags"]["artist"] == ["A"]


def test_stream_mode_names_cannot_escape(tmp_path, run_tool):
    recs = [essentia_json(i) for i in range(3)]
    recs[0]["metadata"]["id"] = "../../etc/passwd"
    recs[1]["metadata"]["id"] = "a/b"
    recs[2]["metadata"]["id"] = "a_b"
    data = b"".join(msgpack.packb(r) for r in recs)
    out = tmp_path / "sigs"
    res = run_tool("json2sig", "-d", out, input=data)
    assert res.returncode == 0, res.stderr
    fl = yamlio.loads(res.stdout)
    assert set(fl) == {"../../etc/passwd", "a/b", "a_b"}
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3 and all(p.parent == out for p in out.iterdir())
    assert len(set(fl.values())) == 3


def test_stream_mode_bad_input_goes_on(tmp_path, run_tool):
    good = tmp_path / "g.json"
    good.write_text(json.dumps(essentia_json(1)))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2, 3]")
    res = run_tool("json2sig", "-d", tmp_path / "o", bad, tmp_path / "absent.json", good)
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "bad.json" in err and "not a record" in err and "absent.json" in err
    assert list((tmp_path / "o").iterdir())[0].name == "t1.mp3.sig"


def test_unwritable_directory_is_fatal(tmp_path, run_tool):
    (tmp_path / "file").write_text("x")
    res = run_tool("json2sig", "-d", tmp_path / "file" / "sub", input=b"")
    assert res.returncode == 2
    assert res.stderr.decode().count("\n") == 1


def test_safe_stem():
    assert safe_stem("song.mp3") == "song.mp3"
    assert safe_stem("a/b") != safe_stem("a_b")
    assert "/" not in safe_stem("../x") and not safe_stem("../x").startswith(".")
    assert len(safe_stem("x" * 1000)) < 140


def test_real_fixture_sig_roundtrip_through_stream_mode(gaia_fixtures, tmp_path, run_tool):
    """.sig -> record -> .sig gives the same descriptors and types for the real files."""
    src = gaia_fixtures / "projects" / "21beta5_data" / "00.sig"
    res = run_tool("json2sig", "--keep-all", "-d", tmp_path, src)
    assert res.returncode == 0, res.stderr
    (written,) = yamlio.loads(res.stdout).values()
    assert yamlio.load(written) == yamlio.load(src)


@pytest.mark.oracle
def test_json2sig_on_essentia_made_json(tmp_path, run_tool):
    """Essentia's own JSON output converts to a .sig that loads with the same values."""
    es = pytest.importorskip("essentia.standard")
    import numpy as np
    pool = es.Pool() if hasattr(es, "Pool") else __import__("essentia").Pool()
    pool.add("lowlevel.x", np.float32(0.25))
    pool.set("tonal.key", "C#")
    pool.set("metadata.tags.file_name", "f.wav")
    pool.add("lowlevel.v", np.arange(3, dtype=np.float32))
    path = tmp_path / "e.json"
    es.YamlOutput(filename=str(path), format="json")(pool)
    (tmp_path / "fl.yaml").write_text("a: e.json\n")
    res = run_tool("json2sig", "--filelist", tmp_path / "fl.yaml")
    assert res.returncode == 0, res.stderr
    sig = yamlio.load(tmp_path / "e.sig")
    assert sig["tonal"]["key"] == "C#" and "tags" not in sig.get("metadata", {})
    assert sig["lowlevel"]["x"] == [0.25] or sig["lowlevel"]["x"] == 0.25


def test_filelist_mode_never_overwrites_a_sig_input(tmp_path, run_tool):
    # a filelist that already lists .sig files: the .sig "next to it" is the input itself;
    # rewriting it would drop its tags for good
    (tmp_path / "a.json").write_text(json.dumps(essentia_json(0)))
    original = yamlio.dump_sig(essentia_json(1))
    (tmp_path / "b.sig").write_text(original)
    (tmp_path / "fl.yaml").write_text("a: a.json\nb: b.sig\n")
    res = run_tool("json2sig", "--filelist", tmp_path / "fl.yaml")
    assert res.returncode == 1
    assert b"b.sig: already a .sig file" in res.stderr
    assert (tmp_path / "b.sig").read_text() == original
    assert load_filelist_text(res.stdout) == {"a": "a.sig"}


def load_filelist_text(data):
    return yamlio.loads(data.decode(), gaia=False)


def test_nothing_converted_creates_nothing(tmp_path, run_tool):
    """Every input failed: exit 2, no -d DIR created, -o filelist neither created nor
    replaced, nothing on stdout (design.md §4). DIR appears with the first .sig only."""
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2, 3]")
    sigs = tmp_path / "sigs" / "sub"
    res = run_tool("json2sig", "-d", sigs, bad, tmp_path / "absent.json")
    assert res.returncode == 2 and res.stdout == b"" and not (tmp_path / "sigs").exists()
    out = tmp_path / "fl.yaml"
    out.write_text("previous: content\n")
    res = run_tool("json2sig", "-d", sigs, "-o", out, bad)
    assert res.returncode == 2 and out.read_text() == "previous: content\n"
    assert not (tmp_path / "sigs").exists()
    # an empty stream is not a failure: exit 0, an empty filelist, still no directory
    res = run_tool("json2sig", "-d", sigs, input=b"")
    assert res.returncode == 0 and not (tmp_path / "sigs").exists()
    assert yamlio.loads(res.stdout.decode(), gaia=False) in ({}, None)
    # the first converted record creates it
    good = tmp_path / "g.json"
    good.write_text(json.dumps(essentia_json(1)))
    res = run_tool("json2sig", "-d", sigs, bad, good)
    assert res.returncode == 1 and [p.name for p in sigs.iterdir()] == ["t1.mp3.sig"]
    # filelist mode: every listed file failed
    (tmp_path / "list.yaml").write_text("a: absent.json\nb: bad.json\n")
    res = run_tool("json2sig", "--filelist", tmp_path / "list.yaml", "-o", out)
    assert res.returncode == 2 and out.read_text() == "previous: content\n"


def test_non_utf8_names_give_valid_utf8_filelists(tmp_path, run_tool):
    """A record without an id takes its file's stem, decoded as extract's ids are
    (b'caf\\xe9' -> 'caf\\\\xe9'); a -d directory whose name is not UTF-8 cannot be named by
    the (UTF-8) filelist: one clear error, exit 2."""
    import os
    rec = essentia_json(0)
    del rec["metadata"]["tags"]
    src = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.json")
    with open(src, "w") as fh:
        json.dump(rec, fh)
    res = run_tool("json2sig", "-d", tmp_path / "sigs", os.fsdecode(src))
    assert res.returncode == 0, res.stderr
    fl = yamlio.loads(res.stdout.decode("utf-8"), gaia=False)
    assert list(fl) == ["caf\\xe9"] and os.path.exists(fl["caf\\xe9"])
    res = run_tool("json2sig", "-d", os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"d\xe9")),
                   os.fsdecode(src))
    assert res.returncode == 2 and b"not valid UTF-8" in res.stderr
    assert res.stderr.count(b"\n") == 1 and b"Traceback" not in res.stderr
