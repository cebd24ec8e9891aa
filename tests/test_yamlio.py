import math

import pytest
from hypothesis import given, settings, strategies as st

from mirkit import yamlio
from mirkit.errors import MirkitError


def test_gaia_scalar_rules():
    d = yamlio.loads('00: a\nx: "1.5"\ny: 1.5\nz: yes\nw: null\nn: nan\ni: -inf\ne: 1e-3\n')
    n = d.pop("n")
    # unquoted words that are not numbers stay strings, as QString::toFloat fails on them
    assert d == {"00": "a", "x": "1.5", "y": 1.5, "z": "yes", "w": "null", "i": -math.inf, "e": 0.001}
    assert math.isnan(n)


def test_plain_loader_keeps_string_keys_and_yaml_types():
    d = yamlio.loads("01: true\nseed: 1\n", gaia=False)
    assert d == {"01": True, "seed": 1}


def test_anchors_and_aliases():
    d = yamlio.loads("a: &u ['x', 'y']\nb: *u\n", gaia=False)
    assert d["a"] == d["b"] == ["x", "y"]


def test_no_arbitrary_objects():
    with pytest.raises(MirkitError):
        yamlio.loads("!!python/object/apply:os.system ['true']")


def test_invalid_yaml_names_line():
    with pytest.raises(MirkitError, match="line 2"):
        yamlio.loads("a: 1\nb: c: d\n", source="f.yaml")


def test_sig_dump_types_survive():
    rec = {"b": {"s": "1.0", "n": 1.0, "v": [1.0, 2.5], "m": [[1.0, 2.0], [3.0, 4.0]],
                 "nan": float("nan"), "k": "C"}, "a": "x"}
    text = yamlio.dump_sig(rec)
    assert text.index("a:") < text.index("b:")  # keys sorted
    back = yamlio.loads(text)
    assert back["b"]["s"] == "1.0" and back["b"]["n"] == 1.0 and back["b"]["m"] == [[1.0, 2.0], [3.0, 4.0]]
    assert math.isnan(back["b"]["nan"])


leaf = st.one_of(st.floats(allow_nan=False, width=32), st.text(max_size=8),
                 st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4))
records = st.recursive(leaf, lambda c: st.dictionaries(
    st.text(alphabet="abc0123 ._-", min_size=1, max_size=5), c, min_size=1, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=4), records, min_size=1, max_size=3))
def test_sig_roundtrip_property(rec):
    assert yamlio.loads(yamlio.dump_sig(rec)) == rec


def test_real_sig_fixtures_roundtrip(gaia_fixtures):
    sigs = sorted((gaia_fixtures / "sig").glob("*.sig")) + sorted(gaia_fixtures.glob("projects/*/*.sig"))
    assert sigs
    for path in sigs:
        rec = yamlio.load(str(path))
        text = yamlio.dump_sig(rec)
        again = yamlio.loads(text)
        assert again == rec, path
        assert yamlio.dump_sig(again) == text, path


def test_sig_dump_spells_nan_and_inf_plainly():
    # json2sig(1) says NaN and infinities are written nan, inf, -inf; PyYAML wrote
    # "!!float nan" (an explicit tag a non-PyYAML reader such as Gaia's may not expect)
    text = yamlio.dump_sig({"x": float("nan"), "y": math.inf, "z": [-math.inf, 1.0], "s": "nan"})
    assert "!!" not in text
    assert "x: nan\n" in text and "y: inf\n" in text and "- -inf\n" in text and 's: "nan"' in text
    back = yamlio.loads(text)
    assert math.isnan(back["x"]) and back["y"] == math.inf and back["z"] == [-math.inf, 1.0]
    assert back["s"] == "nan"
