"""Gaia .history models: parsing the real files and matching Essentia's GaiaTransform.

The reference outputs (history-reference/<model>/reference*.jsonl) were produced by
essentia 2.1b6.dev234's GaiaTransform (history-format.md §12), with a fresh instance per pool
and with one instance reused across the pools.
"""

import json
import os
import copy
from pathlib import Path

import numpy as np
import pytest

from mirkit.errors import MirkitError, MissingDescriptorsError
from mirkit.gaia.history import load_model, gaussianize_table, erfinv
from mirkit.gaia.history_format import REAL, STRING, read_history

ROOT = Path(__file__).resolve().parents[1]
REFDIR = ROOT.parent / "shared" / "fixtures" / "gaia" / "history-reference"
MODELS = sorted(os.listdir(REFDIR)) if REFDIR.is_dir() else ["(fixtures absent)"]

_cache = {}


def model_path(gaia_fixtures, ref_name):
    stem = ref_name.split("__")[-1]
    for suffix in (".history", ".hist"):
        p = gaia_fixtures / "history" / (stem + suffix)
        if p.exists():
            return p
    raise AssertionError(f"no history file for {ref_name}")


def get_model(gaia_fixtures, ref_name):
    if ref_name not in _cache:
        _cache[ref_name] = load_model(model_path(gaia_fixtures, ref_name))
    return _cache[ref_name]


def pools(gaia_fixtures, ref_name, mode):
    d = gaia_fixtures / "history-reference" / ref_name
    refs = [json.loads(line) for line in open(d / mode)]
    for ref in refs:
        with open(d / os.path.basename(ref["pool"])) as fh:
            yield ref, json.load(fh)


def same_f32(a, b):
    """Equal as float32 (one float32 ulp of slack)."""
    a32, b32 = np.float32(a), np.float32(b)
    return abs(float(a32) - float(b32)) <= float(np.spacing(max(abs(a32), abs(b32))))


@pytest.mark.parametrize("ref_name", MODELS)
@pytest.mark.parametrize("mode", ["reference.jsonl", "reference.shared.jsonl"])
def test_matches_gaiatransform(gaia_fixtures, ref_name, mode):
    model = get_model(gaia_fixtures, ref_name)
    model.reset()
    n = 0
    for ref, pool in pools(gaia_fixtures, ref_name, mode):
        if mode == "reference.jsonl":
            model.reset()
        assert ref.get("ok", True), ref
        res = model.predict(pool)
        assert res["value"] == ref["value"], (ref["index"], res, ref)
        if "all" in ref:
            assert list(res["all"]) == list(ref["all"]) or set(res["all"]) == set(ref["all"])
            for cls, p in ref["all"].items():
                assert same_f32(res["all"][cls], p), (ref["index"], cls, res["all"][cls], p)
            assert same_f32(res["probability"], ref["probability"])
            assert res["probability"] == max(res["all"].values())
        else:
            assert res["probability"] is None and res["all"] == {}
        n += 1
    assert n == 30


@pytest.mark.parametrize("ref_name", MODELS)
def test_predict_many_equals_predict(gaia_fixtures, ref_name):
    model = get_model(gaia_fixtures, ref_name)
    refs_pools = list(pools(gaia_fixtures, ref_name, "reference.shared.jsonl"))
    model.reset()
    one = [model.predict(p) for _, p in refs_pools]
    model.reset()
    many = model.predict_many([p for _, p in refs_pools])
    assert one == many


def test_shared_instance_state_differs_from_fresh(gaia_fixtures):
    """history-format.md §10: in a reused mood_happy instance, pool 7's unseen key gets code 13."""
    model = get_model(gaia_fixtures, "mood_happy")
    all_pools = [p for _, p in pools(gaia_fixtures, "mood_happy", "reference.jsonl")]
    model.reset()
    fresh = model.predict(all_pools[7])
    model.reset()
    shared = model.predict_many(all_pools[:8])[7]
    assert fresh["all"] != shared["all"]
    assert model.svm.unseen[".tonal.key_key"] == {"H": 12, "unknown": 13}
    assert model.svm.unseen[".tonal.key_scale"] == {"UNSEEN_major": 2, "unknown": 3}
    model.reset()


def test_every_fixture_parses(gaia_fixtures):
    # facts from history-format.md §1 (per-file table)
    expected = {"danceability.history": (102, 11, 425), "mood_happy.history": (102, 12, 425),
                "test_svm_all.history": (102, 5, 74), "test_svm_singledesc.history": (102, 5, 74),
                "test_svm_multidimdesc.history": (102, 5, 74),
                "test_svm_probability.history": (102, 5, 74), "gaia_2_0_pca.hist": (100, 3, 74)}
    for fname, (version, n, ninput) in expected.items():
        h = read_history(gaia_fixtures / "history" / fname)
        assert (h.version, len(h.transformations), len(h.input_layout().descs)) == \
            (version, n, ninput)
    h = read_history(gaia_fixtures / "history" / "mood_happy.history")
    types = [d.type for d in h.input_layout().descs.values()]
    assert types.count(REAL) == 413 and types.count(STRING) == 12
    # §5: the enum maps of mood_happy, first seen in record 4
    maps = h.transformations[4].layout.str2enum
    assert maps[".tonal.key_key"]["E"] == 0 and maps[".tonal.key_key"]["C#"] == 11
    assert maps[".tonal.chords_key"]["F#"] == 11
    assert h.transformations[3].layout.str2enum == {}
    # §7.5 example coefficient of the first normalize
    c = h.transformations[4].params["coeffs"][".lowlevel.average_loudness"]
    assert c["a"] == [1.0714776515960693] and c["b"] == [-0.05737008526921272]
    pca = read_history(gaia_fixtures / "history" / "gaia_2_0_pca.hist")
    # format 100 dotproduct params are rewrapped as {applyClipping, coeffs}
    assert pca.transformations[1].params["applyClipping"] is False
    assert ".barkbands.mean" in pca.transformations[1].params["coeffs"]


def test_format_100_is_described_but_not_applied(gaia_fixtures):
    model = load_model(gaia_fixtures / "history" / "gaia_2_0_pca.hist")
    d = model.describe()
    json.dumps(d)
    assert d["format_version"] == 100 and d["applicable"] is False
    assert [s["applier"] for s in d["chain"]] == ["removedesc", "dotproduct", "matmult"]
    with pytest.raises(MirkitError, match="Gaia >= 2.3"):
        model.predict({})


def test_describe(gaia_fixtures):
    model = get_model(gaia_fixtures, "mood_happy")
    d = json.loads(json.dumps(model.describe()))
    assert d["name"] == "mood_happy" and d["classes"] == ["happy", "not_happy"]
    assert d["class_name"] == "highlevel.mood_happy"
    assert d["features"]["dimensions"] == 645
    assert d["svm"]["kernel_type"] == "polynomial" and d["svm"]["total_sv"] == 143
    assert len(d["chain"]) == 12 and d["chain"][5]["applier"] == "distribute"
    assert len(d["input"]["descriptors"]["real"]) == 413
    assert d["features"]["enums"]["tonal.key_scale"] == {"major": 0, "minor": 1}
    # §6: 13x13 matrices are 171 values, bark bands 27
    assert d["input"]["sizes"]["lowlevel.mfcc.cov"] == 171
    assert d["input"]["sizes"]["lowlevel.barkbands.mean"] == 27
    assert d["input"]["optional"] == ["metadata.version.essentia", "metadata.version.extractor"]


def test_missing_descriptors_all_listed(gaia_fixtures):
    model = load_model(model_path(gaia_fixtures, "danceability"))
    _, pool = next(pools(gaia_fixtures, "danceability", "reference.jsonl"))
    pool = copy.deepcopy(pool)
    del pool["lowlevel"]["average_loudness"]
    del pool["rhythm"]["beats_position"]          # dropped by the first step, still required
    del pool["tonal"]["key_key"]
    del pool["metadata"]["version"]               # metadata.version.* is never required
    with pytest.raises(MissingDescriptorsError) as info:
        model.predict(pool)
    assert sorted(info.value.names) == ["lowlevel.average_loudness", "rhythm.beats_position",
                                        "tonal.key_key"]
    assert "danceability" in str(info.value)
    pool["lowlevel"]["average_loudness"] = "loud"
    pool["rhythm"]["beats_position"] = [1.0]
    pool["tonal"]["key_key"] = "C"
    with pytest.raises(MirkitError, match="wrong type.*average_loudness"):
        model.predict(pool)


def test_flat_records_and_errors_per_record(gaia_fixtures):
    from mirkit.records import flatten
    model = load_model(model_path(gaia_fixtures, "danceability"))
    items = list(pools(gaia_fixtures, "danceability", "reference.jsonl"))
    ref, pool = items[0]
    assert model.predict(flatten(pool))["value"] == ref["value"]
    out = model.predict_many([{"lowlevel": {}}, pool, "not a record"])
    assert isinstance(out[0], MissingDescriptorsError) and isinstance(out[2], MirkitError)
    assert out[1]["value"] == ref["value"]


def test_fixlength_sizes_come_from_the_first_record(gaia_fixtures):
    """history-format.md §10: a bad first point poisons the instance; a bad later one does not."""
    model = load_model(model_path(gaia_fixtures, "mood_happy"))
    items = [p for _, p in pools(gaia_fixtures, "mood_happy", "reference.jsonl")]
    good = items[0]
    bad = copy.deepcopy(good)
    bad["lowlevel"]["barkbands"]["mean"] = bad["lowlevel"]["barkbands"]["mean"][:26]
    out = model.predict_many([bad, good, good])
    assert "layout differs" in str(out[0])
    assert "barkbands.mean (26 values, expected 27)" in str(out[0])
    assert "has 27 values" in str(out[1]) and "fixed its size to 26" in str(out[1])
    assert isinstance(out[2], MirkitError)
    model.reset()
    out = model.predict_many([good, bad, good])
    assert isinstance(out[0], dict) and isinstance(out[2], dict)
    assert "has 26 values" in str(out[1])
    # two strings for an enum descriptor: a layout error too
    two = copy.deepcopy(good)
    two["tonal"]["key_key"] = ["C", "D"]
    assert "tonal.key_key" in str(model.predict_many([two])[0])
    # a matrix and its flattened [rows, cols, values...] form are the same input
    flat = copy.deepcopy(good)
    cov = np.asarray(flat["lowlevel"]["mfcc"]["cov"], dtype=float)
    assert cov.shape == (13, 13)
    flat["lowlevel"]["mfcc"]["cov"] = [13.0, 13.0] + cov.ravel().tolist()
    assert model.predict(flat) == model.predict(good)


def test_non_history_files(tmp_path):
    p = tmp_path / "x.history"
    for data, pattern in [(b"", "too short"), (b'{"json": 1}' * 3, "bad magic"),
                          (bytes.fromhex("6aea723d00000067") + b"\0" * 8, "version 103")]:
        p.write_bytes(data)
        with pytest.raises(MirkitError, match=pattern) as info:
            load_model(p)
        assert str(p) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MirkitError, match="cannot read"):
        load_model(tmp_path / "absent.history")


def test_modelio_dispatch(gaia_fixtures):
    from mirkit import modelio
    model = modelio.load_model(str(gaia_fixtures / "history" / "test_svm_singledesc.history"))
    assert model.name == "test_svm_singledesc"
    assert modelio.load_model(str(gaia_fixtures / "history" / "gaia_2_0_pca.hist")).name == \
        "gaia_2_0_pca"


def test_gaussianize_table_matches_scipy_erfinv():
    """§7.6: scipy's erfinv in double, cast to float32, matched Gaia in all reference pools."""
    special = pytest.importorskip("scipy.special")
    for n in (2, 7, 100, 245, 253, 279, 344, 1000, 4099):
        ranks = np.arange(n + 1)
        p = (ranks.astype(np.float32) / np.float32(n)).astype(np.float32)
        expected = special.erfinv(2.0 * p.astype(np.float64) - 1.0).astype(np.float32)
        got = gaussianize_table(n)
        np.testing.assert_array_equal(got[1:n], expected[1:n])
    xs = np.linspace(-0.999999, 0.999999, 2001)
    np.testing.assert_allclose([erfinv(x) for x in xs], special.erfinv(xs), rtol=1e-9, atol=0)


@pytest.mark.parametrize("ref_name", MODELS)
def test_fresh_option_equals_fresh_reference(gaia_fixtures, ref_name):
    """load_model(fresh=True): every record as with a new GaiaTransform (reference.jsonl)."""
    model = load_model(model_path(gaia_fixtures, ref_name), fresh=True)
    items = list(pools(gaia_fixtures, ref_name, "reference.jsonl"))
    out = model.predict_many([p for _, p in items])
    for (ref, _), res in zip(items, out):
        assert res["value"] == ref["value"]
        for cls, p in ref.get("all", {}).items():
            assert same_f32(res["all"][cls], p)


def test_lenient_option(gaia_fixtures):
    """lenient=True: descriptors the SVM never sees may be absent, with identical results."""
    path = model_path(gaia_fixtures, "mood_happy")
    strict, lenient = load_model(path), load_model(path, lenient=True)
    _, pool = next(pools(gaia_fixtures, "mood_happy", "reference.jsonl"))
    expected = strict.predict(pool)
    strict.reset()
    pool = copy.deepcopy(pool)
    del pool["metadata"]["tags"]                                 # removed with metadata.*
    del pool["rhythm"]["beats_position"]                         # removed by the first step
    del pool["lowlevel"]["mfcc"]["cov"]                          # removed by '*cov'
    assert "lowlevel.mfcc.cov" not in lenient.describe()["features"]["descriptors"]
    with pytest.raises(MissingDescriptorsError):
        strict.predict(pool)
    assert lenient.predict(pool) == expected
    del pool["lowlevel"]["average_loudness"]                     # an SVM feature
    with pytest.raises(MissingDescriptorsError) as info:
        lenient.predict(pool)
    assert info.value.names == ["lowlevel.average_loudness"]


def test_layout_error_notes_size_fixing_only_after_the_first_record(gaia_fixtures):
    """A record whose descriptor sizes differ from the training layout: the first record a
    model instance sees (every record with fresh instances) gets the plain error; a later
    record of a reused instance is told that the first record fixed the sizes."""
    model = load_model(gaia_fixtures / "history" / "danceability.history")
    with open(REFDIR / "mood_happy" / "pool_001.json") as fh:
        other = json.load(fh)  # mood_happy's pools carry sizes danceability was not trained on
    note = "sizes are fixed by the first record"
    first, second = model.predict_many([other, other])
    assert isinstance(first, MirkitError) and "record layout differs" in str(first)
    assert note not in str(first) and note in str(second)
    model.reset()
    model.fresh = True
    try:
        assert all(note not in str(r) for r in model.predict_many([other, other]))
    finally:
        model.fresh = False
