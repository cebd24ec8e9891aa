"""Loading and merging descriptor files the way Gaia does (gaia.md §1.3, §3)."""

import json
import math

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.dataset import (REAL, STRING, Dataset, load_dataset, load_typed_file,
                                 merge_points, type_leaf, type_record)
from mirkit.gaia.preprocess import Chain
from mirkit.gaia.project import Project, template_text
from mirkit import yamlio


def test_typing_rules():
    assert type_leaf("a", 1)[0] == REAL
    assert type_leaf("a", 2.5) == (REAL, (2.5,))
    assert type_leaf("a", True) == (REAL, (1.0,))
    assert type_leaf("a", "C") == (STRING, ("C",))
    assert type_leaf("a", ["x", "y"]) == (STRING, ("x", "y"))
    kind, value = type_leaf("a", [])
    assert kind == REAL and len(value) == 0
    kind, value = type_leaf("a", [[1, 2, 3], [4, 5, 6]])  # matrix -> [rows, cols, row-major]
    assert list(value) == [2, 3, 1, 2, 3, 4, 5, 6]
    with pytest.raises(MirkitError, match="mixes numbers"):
        type_leaf("a", [1, "x"])
    with pytest.raises(MirkitError, match="dimension > 2"):
        type_leaf("a", [[[1]]])
    with pytest.raises(MirkitError, match="map inside a list"):
        type_leaf("a", [{"x": 1}])


def test_type_record_drops_segments_and_configuration():
    typed = type_record({"lowlevel": {"x": 1.0}, "segments": {"y": 1}, "configuration": {"z": 1}})
    assert list(typed) == ["lowlevel.x"]


def _points(values):
    return {pid: type_record(rec) for pid, rec in values.items()}


def test_merge_removevl_cleaner_and_layout():
    recs = {
        "b": {"x": 1.0, "vl": [1.0, 2.0], "const": [3.0, 4.0], "nan": 1.0, "s": "k", "v": [1, 5]},
        "a": {"x": 2.0, "vl": [1.0], "const": [3.0, 4.0], "nan": math.nan, "s": "l", "v": [1, 6]},
        "c": {"x": 3.0, "vl": [1.0, 2.0], "const": [3.0, 4.0], "nan": 2.0, "s": "m", "v": [1, 7],
              "extra": 1.0},
    }
    warnings = []
    ds, report = merge_points(_points(recs), warnings.append)
    assert ds.ids == ["a", "b"]  # sorted; c has an incompatible layout
    assert "only in this point: extra" in report.dropped_points["c"]
    assert warnings and "c" in warnings[0]
    assert report.variable_length == ["vl"]
    assert sorted(report.cleaned) == ["const", "nan"]
    assert ds.names == ["s", "v", "x"]  # v kept: one constant dim is not enough to clean it
    assert ds.data["x"].tolist() == [[2.0], [1.0]] and ds.data["x"].dtype == np.float32
    assert ds.data["s"].tolist() == [["l"], ["k"]]


def test_empty_list_in_first_point_is_removed():
    ds, report = merge_points(_points({"a": {"e": [], "x": 1.0}, "b": {"e": [], "x": 2.0}}))
    assert report.variable_length == ["e"] and ds.names == ["x"]


def test_dataset_save_load_round_trip(tmp_path):
    ds, _ = merge_points(_points({"a": {"x": [1.0, 2.0], "s": "q"}, "b": {"x": [3.0, 5.0], "s": "r"}}))
    ds.meta = {"hello": [1, 2]}
    ds.save(tmp_path / "d.npz")
    back = Dataset.load(tmp_path / "d.npz")
    assert back.ids == ds.ids and back.kinds == ds.kinds and back.meta == ds.meta
    assert np.array_equal(back.data["x"], ds.data["x"])
    assert back.data["s"].tolist() == ds.data["s"].tolist()


def test_fixture_sig_files_merge(gaia_fixtures):
    base = gaia_fixtures / "projects" / "21beta5_data"
    ds, report = load_dataset({"00": str(base / "00.sig"), "01": str(base / "01.sig")},
                              exclude=["metadata.tags*"])
    assert ds.ids == ["00", "01"]
    assert "rhythm.beats_position" in report.variable_length
    assert not any(n.startswith("metadata.tags") for n in ds.names)
    assert ds.kinds["tonal.chords_key"] == STRING


def test_missing_file_and_mixed_versions(gaia_fixtures, tmp_path):
    base = gaia_fixtures / "projects"
    warnings = []
    ds, report = load_dataset({"00": str(base / "21beta5_data" / "00.sig"),
                               "01": str(tmp_path / "missing.sig")},
                              exclude=["metadata.tags*"], warn=warnings.append)
    assert ds.ids == ["00"] and "01" in report.dropped_points
    # a beta2 and a beta5 file have different layouts: the second is dropped
    ds, report = load_dataset({"00": str(base / "21beta2_data" / "00.sig"),
                               "01": str(base / "21beta5_data" / "01.sig")},
                              exclude=["metadata.tags*"], warn=warnings.append)
    assert ds.ids == ["00"] and "incompatible layout" in report.dropped_points["01"]


def test_basic_preprocessing_matches_appendix_a(gaia_fixtures):
    """gaia.md Appendix A: 'basic' keeps 221 descriptors, 884 dims (876 real + 8 enum) of the
    2.1-beta5 sample files, before the dataset-dependent cleaner."""
    base = gaia_fixtures / "projects" / "21beta5_data"
    points = {pid: load_typed_file(str(base / f"{pid}.sig"), ["metadata.tags*"])
              for pid in ("00", "01")}
    ds, report = merge_points(points, clean=False)
    assert report.variable_length == ["rhythm.beats_position"]
    project = Project(yamlio.loads(template_text("2.1-beta5", "c", "d", "r", "f", "g"), gaia=False))
    out = Chain.from_steps(project.preprocessing["basic"]).fit_apply(ds)
    dims = {k: 0 for k in ("real", "enum", "string")}
    for name in out.names:
        dims[out.kinds[name]] += out.dims(name)
    assert len(out.names) == 221
    assert dims == {"real": 876, "enum": 8, "string": 0}
    mfcc = Chain.from_steps(project.preprocessing["mfcc"]).fit_apply(ds)
    assert mfcc.names == ["lowlevel.mfcc.mean"] and mfcc.dims("lowlevel.mfcc.mean") == 13


def test_beta2_template_on_beta5_files_fails_like_gaia(gaia_fixtures):
    base = gaia_fixtures / "projects" / "21beta5_data"
    ds, _ = load_dataset({"00": str(base / "00.sig"), "01": str(base / "01.sig")},
                         exclude=["metadata.tags*"])
    project = Project(yamlio.loads(template_text("2.1-beta2", "c", "d", "r", "f", "g"), gaia=False))
    with pytest.raises(MirkitError, match='pattern "tonal.key_key" didn\'t match'):
        Chain.from_steps(project.preprocessing["basic"]).fit_apply(ds)


def test_json_and_stream_inputs(tmp_path):
    rec = {"metadata": {"version": {"essentia": "2.1-beta5"}}, "lowlevel": {"x": [1, 2]}}
    (tmp_path / "a.json").write_text(json.dumps(rec))
    typed = load_typed_file(str(tmp_path / "a.json"))
    assert list(typed["lowlevel.x"][1]) == [1.0, 2.0]
    ds, _ = load_dataset(None, records={"r1": rec, "r2": {**rec, "lowlevel": {"x": [3, 4]}}})
    assert ds.ids == ["r1", "r2"]


def test_filelist_entries_pointing_into_a_record_stream(tmp_path):
    # `mkgroundtruth --label KEY -l fl.yaml records.msgpack` lists every id with the stream
    # file that holds it; each id takes its own record (by record id), read once per file
    import msgpack
    from mirkit.gaia.dataset import essentia_version

    def rec(rid, x):
        return {"metadata": {"id": rid, "version": {"mirkit": "0.1.0"}}, "lowlevel": {"x": [x, 2 * x]}}
    stream = tmp_path / "records.msgpack"
    stream.write_bytes(b"".join(msgpack.packb(rec(r, x)) for r, x in
                                (("a", 1.0), ("b", 3.0), ("c", 5.0), ("d", 7.0))))
    (tmp_path / "e.json").write_text(json.dumps(rec("e", 9.0)))
    filelist = {"a": str(stream), "b": str(stream), "d": str(stream),
                "e": str(tmp_path / "e.json"), "z": str(stream)}
    warnings = []
    ds, report = load_dataset(filelist, warn=warnings.append)
    assert ds.ids == ["a", "b", "d", "e"]
    assert ds.data["lowlevel.x"][:, 0].tolist() == [1.0, 3.0, 7.0, 9.0]
    assert "z" in report.dropped_points and any("z:" in w for w in warnings)
    # one id alone pointing into a stream works too
    ds, _ = load_dataset({"c": str(stream), "e": str(tmp_path / "e.json")})
    assert ds.data["lowlevel.x"][:, 0].tolist() == [5.0, 9.0]
    assert essentia_version(str(stream)) == "2.1-beta6"  # mirkit records: beta5 template
    # several ids sharing one single-record file (Gaia allows it) all get that record
    ds, _ = load_dataset({"p": str(tmp_path / "e.json"), "q": str(tmp_path / "e.json")})
    assert ds.ids == ["p", "q"]  # (identical points: the cleaner drops lowlevel.x)
