"""Groundtruth and filelist YAML (gaia.md §1.1, §1.2)."""

import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.groundtruth import (GroundTruth, check_consistent, load_filelist,
                                     load_groundtruth, save_filelist, save_groundtruth)


def write(tmp_path, text, name="gt.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_gaia_fixture_keeps_string_ids(gaia_fixtures):
    gt = load_groundtruth(gaia_fixtures / "projects" / "grountruth.yaml")
    assert gt.class_name == "grountruth"
    assert gt.labels == {"00": "a", "01": "b"}  # '00' stays a string, not the integer 0
    assert gt.groups is None
    fl = load_filelist(gaia_fixtures / "projects" / "21beta5filelist.yaml")
    assert fl == {"00": "data/classification_projects/21beta5_data/00.sig",
                  "01": "data/classification_projects/21beta5_data/01.sig"}


def test_round_trip_with_groups(tmp_path):
    gt = GroundTruth("genre", {"b/2.wav": "rock", "a/1.wav": "jazz", "007": "rock"},
                     {"b/2.wav": "artist x", "a/1.wav": "y", "007": "artist x"})
    path = str(tmp_path / "gt.yaml")
    text = save_groundtruth(path, gt)
    assert open(path).read() == text
    back = load_groundtruth(path)
    assert back.labels == gt.labels and back.groups == gt.groups
    assert back.class_name == "genre"
    assert "type: singleClass" in text and "version: 1.0" in text
    assert back.classes == ["jazz", "rock"]


def test_filelist_round_trip(tmp_path):
    mapping = {"00": "x/00.sig", "true": "y z/1.json", "1.5": "a: b.sig"}
    path = write(tmp_path, save_filelist(mapping), "fl.yaml")
    assert load_filelist(path) == mapping


@pytest.mark.parametrize("text,message", [
    ("groundTruth: {a: x}\ntype: singleClass\nversion: 1.0\n", "className"),
    ("className: c\ntype: singleClass\nversion: 1.0\n", "groundTruth"),
    ("className: c\ngroundTruth: {a: x}\nversion: 1.0\n", "'version' and the 'type'"),
    ("className: c\ngroundTruth: {a: x}\ntype: multi\nversion: 2.0\n", "unsupported"),
    ("className: c\ngroundTruth: [a, b]\ntype: singleClass\nversion: 1.0\n", "must be a map"),
    ("className: c\ngroundTruth: {a: x}\ntype: singleClass\nversion: 1.0\ngroups: {zz: g}\n",
     "not in groundTruth"),
])
def test_invalid_groundtruths(tmp_path, text, message):
    with pytest.raises(MirkitError) as err:
        load_groundtruth(write(tmp_path, text))
    assert message in str(err.value)
    assert "gt.yaml" in str(err.value)


def test_version_and_type_check_uses_and(tmp_path):
    # Gaia refuses only when both differ: AcousticBrainz writes type "unknown", version 1.0
    gt = load_groundtruth(write(tmp_path, "className: c\ngroundTruth: {a: x, b: 1}\n"
                                          "type: unknown\nversion: 1.0\n"))
    assert gt.labels == {"a": "x", "b": "1"}
    load_groundtruth(write(tmp_path, "className: c\ngroundTruth: {a: x}\n"
                                     "type: singleClass\nversion: 2.0\n"))


def test_consistency_check_names_the_ids():
    gt = GroundTruth("c", {"a": "x", "b": "y"})
    check_consistent(gt, {"a": "1", "b": "2"})
    with pytest.raises(MirkitError) as err:
        check_consistent(gt, {"a": "1", "c": "2"})
    assert "'b'" in str(err.value) and "'c'" in str(err.value)
