"""Robustness of the .history reader: truncations and bit flips of the real files, and hostile
QDataStream data, raise MirkitError only, quickly, without large allocations."""

import json
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mirkit.errors import MirkitError
from mirkit.gaia.history import HistoryModel
from mirkit.gaia.history_format import parse_history
from mirkit.gaia.qdatastream import QDataStreamError, Reader, Writer

ROOT = Path(__file__).resolve().parents[1]
GAIA = ROOT.parent / "shared" / "fixtures" / "gaia"
SMALL = ["test_svm_singledesc.history", "gaia_2_0_pca.hist", "test_svm_probability.history"]
POOL = {"test_svm_singledesc.history": "gaia-test__test_svm_singledesc",
        "test_svm_probability.history": "gaia-test__test_svm_probability",
        "gaia_2_0_pca.hist": "gaia-test__test_svm_singledesc",
        "danceability.history": "danceability"}

_data = {}


def fixture_bytes(name):
    if not (GAIA / "history").is_dir():
        pytest.skip("../shared fixtures not available")
    if name not in _data:
        pool_file = GAIA / "history-reference" / POOL[name] / "pool_003.json"
        _data[name] = ((GAIA / "history" / name).read_bytes(), json.loads(pool_file.read_text()))
    return _data[name]


def exercise(data, pool):
    """Parse, compile, describe and run; only MirkitError may escape."""
    t0 = time.perf_counter()
    try:
        model = HistoryModel(parse_history(bytes(data), "fuzz.history"), "fuzz")
        json.dumps(model.describe())
        out = model.predict_many([pool])
        assert isinstance(out[0], (dict, MirkitError))
    except MirkitError as exc:
        assert "\n" not in str(exc)
    assert time.perf_counter() - t0 < 5.0


FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", SMALL)
@FAST
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncations(name, cut):
    data, pool = fixture_bytes(name)
    exercise(data[:int(cut * len(data))], pool)


@pytest.mark.parametrize("name", SMALL)
@FAST
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                      min_size=1, max_size=4),
       head=st.booleans())
def test_bit_flips(name, flips, head):
    data, pool = fixture_bytes(name)
    b = bytearray(data)
    # half of the cases aim at the first 4 KiB, where the structure fields are densest
    span = min(len(b), 4096) if head else len(b)
    for pos, bit in flips:
        b[int(pos * span)] ^= 1 << bit
    exercise(b, pool)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_bit_flips_large_model(pos, bit):
    data, pool = fixture_bytes("danceability.history")
    b = bytearray(data)
    b[int(pos * len(b))] ^= 1 << bit
    exercise(b, pool)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes(raw):
    exercise(bytes.fromhex("6aea723d00000066") + raw, {})
    r = Reader(raw, "x")
    try:
        while not r.at_end():
            r.qvariant()
    except QDataStreamError:
        pass


def test_huge_counts_are_refused_without_allocation():
    # a QStringList claiming 4 billion items, a QByteArray claiming 4 GiB, a map of 2^31
    for payload in (struct.pack(">IBI", 11, 0, 0xFFFFFFF0), struct.pack(">IBI", 12, 0, 0x7FFFFFFF),
                    struct.pack(">IBI", 8, 0, 0x80000000), struct.pack(">IBI", 9, 0, 0xFFFFFFFE)):
        t0 = time.perf_counter()
        with pytest.raises(QDataStreamError, match="exceeds|truncated"):
            Reader(payload + b"\0" * 64, "x").qvariant()
        assert time.perf_counter() - t0 < 0.1
    header = bytes.fromhex("6aea723d00000066") + struct.pack(">I", 0xFFFFFFFF)
    with pytest.raises(MirkitError, match="exceeds"):
        parse_history(header + b"\0" * 100, "x")


def test_deep_nesting_is_refused():
    nested = struct.pack(">IBI", 9, 0, 1) * 10000 + struct.pack(">IBi", 2, 0, 7)
    with pytest.raises(QDataStreamError, match="nested deeper"):
        Reader(nested, "x").qvariant()


def test_odd_and_invalid_strings():
    with pytest.raises(QDataStreamError, match="odd"):
        Reader(struct.pack(">I", 3) + b"abc", "x").qstring()
    with pytest.raises(QDataStreamError, match="UTF-16"):
        Reader(struct.pack(">I", 2) + b"\xdc\x00", "x").qstring()
    assert Reader(struct.pack(">I", 0xFFFFFFFF), "x").qstring() is None


def test_variant_round_trip():
    value = {"b": [1.5, 2, True, "x", None, b"\x00\x01", {"z": -3}], "a": ["p", "q"],
             "c": [0.25] * 50 + [1], "d": 1e300}
    w = Writer()
    w.qvariant(value)
    r = Reader(w.getvalue(), "x")
    assert r.qvariant() == value
    assert r.at_end()
    # Qt 4 writes maps in descending key order; the reader sorts
    assert list(Reader(w.getvalue(), "x").qvariant()) == ["a", "b", "c", "d"]


_json_leaf = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=2),
    max_leaves=8)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), _json_leaf), min_size=1,
                      max_size=4))
def test_hostile_record_values(picks):
    """Any JSON value in place of a descriptor: a result or a one-line MirkitError."""
    from mirkit.gaia.history import load_model
    from mirkit.records import flatten, unflatten
    data, pool = fixture_bytes("test_svm_probability.history")
    if "model" not in _data:
        _data["model"] = load_model(GAIA / "history" / "test_svm_probability.history")
    model = _data["model"]
    flat = flatten(pool)
    keys = sorted(flat)
    for pos, value in picks:
        flat[keys[int(pos * len(keys))]] = value
    try:
        record = unflatten(flat)
    except MirkitError:
        return
    model.reset()
    out = model.predict_many([record, pool])
    assert isinstance(out[0], (dict, MirkitError))
    if isinstance(out[0], MirkitError):
        assert "\n" not in str(out[0])
