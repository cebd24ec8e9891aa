import io
import json

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from mirkit.errors import MirkitError, StreamError
from mirkit.streams import RecordWriter, read_file, read_records

RECS = [{"metadata": {"id": f"t{i}"}, "lowlevel": {"x": {"mean": i * 0.5, "v": [1.0, 2.0]}}}
        for i in range(5)]


def read_all(data):
    good, bad = [], []
    for item in read_records(io.BytesIO(data), "s"):
        (bad if isinstance(item, MirkitError) else good).append(item)
    return good, bad


def encode(fmt, recs, indent=None):
    out = io.BytesIO()
    w = RecordWriter(out, fmt, indent=indent)
    for r in recs:
        w.write(r)
    return out.getvalue()


@pytest.mark.parametrize("fmt,indent", [("msgpack", None), ("json", None), ("json", 2)])
def test_roundtrip(fmt, indent):
    assert read_all(encode(fmt, RECS, indent)) == (RECS, [])


def test_concatenated_pretty_json_as_jq_accepts():
    data = b"".join(json.dumps(r, indent=4).encode() for r in RECS)
    assert read_all(data)[0] == RECS


def test_numpy_values_are_serialised():
    np = pytest.importorskip("numpy")
    rec = {"a": np.arange(3, dtype=np.float32), "b": np.float64(2.5), "m": np.eye(2)}
    for fmt in ("msgpack", "json"):
        (back,), _ = read_all(encode(fmt, [rec]))
        assert back == {"a": [0.0, 1.0, 2.0], "b": 2.5, "m": [[1.0, 0.0], [0.0, 1.0]]}


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_truncated_stream_yields_complete_records_then_error(fmt):
    data = encode(fmt, RECS)
    cut = len(encode(fmt, RECS[:3])) + 7
    got = []
    with pytest.raises(StreamError) as info:
        for item in read_records(io.BytesIO(data[:cut]), "in.stream"):
            got.append(item)
    assert got == RECS[:3]
    assert "byte offset" in str(info.value) and "in.stream" in str(info.value)
    assert info.value.offset == len(encode(fmt, RECS[:3])) - (1 if fmt == "json" else 0) or \
        info.value.offset >= 0


def test_non_record_items_are_reported_and_skipped():
    good, bad = read_all(b'{"a": {}}\n[1, 2]\n3\n{"b": {}}\n')
    assert good == [{"a": {}}, {"b": {}}]
    assert len(bad) == 2 and "not a record" in str(bad[0])


def test_corrupt_json_names_line():
    with pytest.raises(StreamError, match="line 2"):
        list(read_records(io.BytesIO(b'{"a": 1}\n{"a": [1,, 2]}\n{"b": 1}\n' + b" " * 200), "s"))


def test_empty_stream_has_no_records():
    assert read_all(b"") == ([], [])
    assert read_all(b" \n\n") == ([], [])


def test_essentia_yaml_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text('metadata:\n    version:\n        essentia: "2.1"\nlowlevel:\n    zcr: {mean: 0.5}\n')
    assert list(read_file(str(p))) == [{"metadata": {"version": {"essentia": "2.1"}},
                                        "lowlevel": {"zcr": {"mean": 0.5}}}]


def test_missing_file_error_names_it(tmp_path):
    with pytest.raises(MirkitError, match="nope.json"):
        list(read_file(str(tmp_path / "nope.json")))


def test_large_record_streams_in_linear_time():
    rec = {"x": list(range(300000))}
    data = encode("json", [rec, rec])
    assert read_all(data)[0] == [rec, rec]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes_only_documented_errors(data):
    try:
        read_all(data)
    except MirkitError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["msgpack", "json"]), st.integers(0, 10000), st.integers(0, 255))
def test_fuzz_mutated_streams(fmt, pos, byte):
    data = bytearray(encode(fmt, RECS))
    pos %= len(data)
    data[pos] = byte
    for cut in (len(data), pos):
        try:
            good, _ = read_all(bytes(data[:cut]))
        except MirkitError:
            continue
        assert all(isinstance(g, dict) for g in good)


def test_audio_file_given_as_records_says_so(tmp_path):
    # a filelist of audio instead of descriptor files gave "invalid YAML: unacceptable
    # character #x00b1" for a WAV file
    import numpy as np
    import soundfile as sf
    for name, fmt, kind in (("a.wav", "WAV", "WAV"), ("a.flac", "FLAC", "FLAC"),
                            ("a.ogg", "OGG", "Ogg")):
        path = tmp_path / name
        sf.write(str(path), np.zeros(4410), 44100, format=fmt)
        with pytest.raises(StreamError, match=f"audio file \\({kind}\\).*extract"):
            list(read_file(str(path)))
    # text and records starting like audio magic words are still read as records
    assert read_all(b'{"RIFF": 1}')[0] == [{"RIFF": 1}]
    assert len(read_all(b"FORM: 1\n")[0]) == 1
    # a UTF-16 byte-order mark (FF FE) is not an MP3 frame sync
    assert read_all("a: 1\n".encode("utf-16-le").join([b"\xff\xfe", b""]))[0] == [{"a": 1.0}]


def _strict(data):
    """Parse as strict JSON (RFC 8259): NaN/Infinity literals refused."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return [json.loads(line, parse_constant=refuse) for line in data.decode().splitlines()]


def test_non_finite_numbers_are_null_in_json_and_read_back_as_nan():
    import math
    np = pytest.importorskip("numpy")
    nan, inf = float("nan"), float("inf")
    rec = {"a": nan, "b": [inf, -inf, 1.5], "c": np.array([np.nan, 2.0], np.float32),
           "d": np.float64("inf"), "s": "nan inf -inf", "m": [[1.0, nan]]}
    for indent in (None, 2):
        data = encode("json", [rec], indent)
        if indent is None:
            assert _strict(data) == [{"a": None, "b": [None, None, 1.5], "c": [None, 2.0],
                                      "d": None, "s": "nan inf -inf", "m": [[1.0, None]]}]
        ((back,), _) = read_all(data)
        assert math.isnan(back["a"]) and back["b"][2] == 1.5 and back["s"] == "nan inf -inf"
        assert all(math.isnan(v) for v in back["b"][:2] + [back["c"][0], back["d"], back["m"][0][1]])
    # msgpack keeps them exactly
    ((back,), _) = read_all(encode("msgpack", [{"b": [inf, -inf], "a": nan}]))
    assert back["b"] == [inf, -inf] and math.isnan(back["a"])


def test_essentia_and_python_non_finite_literals_are_read():
    """Essentia's YamlOutput(format='json') writes bare nan, inf, -inf; Python's json writes
    NaN, Infinity, -Infinity. Both are read; the same words inside strings are untouched."""
    import math
    text = (b'{"a": {"n": nan, "v": [[1, nan, inf]], "w": -inf, "s": "nan, inf \\" -inf"}}\n'
            b'{"p": [NaN, Infinity, -Infinity], "t": "inf"}')
    (first, second), bad = read_all(text)
    assert bad == []
    assert math.isnan(first["a"]["n"]) and first["a"]["w"] == -math.inf
    assert first["a"]["v"][0][0] == 1 and math.isnan(first["a"]["v"][0][1])
    assert first["a"]["v"][0][2] == math.inf and first["a"]["s"] == 'nan, inf " -inf'
    assert math.isnan(second["p"][0]) and second["p"][1:] == [math.inf, -math.inf]
    assert second["t"] == "inf"
    # still an error when it is not one of those words
    with pytest.raises(StreamError):
        read_all(b'{"a": nana}')


@pytest.mark.oracle
def test_essentia_json_with_non_finite_values(tmp_path):
    es = pytest.importorskip("essentia.standard")
    import math
    import essentia
    pool = essentia.Pool()
    pool.set("x.nan", float("nan"))
    pool.set("x.inf", float("inf"))
    pool.set("x.ninf", float("-inf"))
    pool.set("x.name", "nan inf")
    path = tmp_path / "e.json"
    es.YamlOutput(filename=str(path), format="json")(pool)
    (rec,) = list(read_file(str(path)))
    assert math.isnan(rec["x"]["nan"]) and rec["x"]["inf"] == math.inf
    assert rec["x"]["ninf"] == -math.inf and rec["x"]["name"] == "nan inf"


def test_null_in_metadata_stays_null():
    """Only descriptors are numbers: a null id or tag is not turned into NaN."""
    import math
    ((back,), _) = read_all(b'{"metadata": {"id": null, "tags": {"genre": [null]}}, "x": null}')
    assert back["metadata"] == {"id": None, "tags": {"genre": [None]}} and math.isnan(back["x"])
