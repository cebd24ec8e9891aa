import pytest

from mirkit.errors import MirkitError
from mirkit.records import delete_path, flatten, get_path, record_id, set_path, unflatten


def test_flatten_unflatten_roundtrip():
    rec = {"lowlevel": {"mfcc": {"mean": [1.0, 2.0], "cov": [[1.0, 0.0], [0.0, 1.0]]},
                        "zcr": {"mean": 0.1}}, "metadata": {"id": "a"}}
    flat = flatten(rec)
    assert flat == {"lowlevel.mfcc.mean": [1.0, 2.0], "lowlevel.mfcc.cov": [[1.0, 0.0], [0.0, 1.0]],
                    "lowlevel.zcr.mean": 0.1, "metadata.id": "a"}
    assert list(flat) == ["lowlevel.mfcc.mean", "lowlevel.mfcc.cov", "lowlevel.zcr.mean", "metadata.id"]
    assert unflatten(flat) == rec


def test_name_clash_is_an_error():
    with pytest.raises(MirkitError):
        unflatten({"a.b": 1, "a.b.c": 2})
    with pytest.raises(MirkitError):
        unflatten({"a.b.c": 2, "a.b": 1})


def test_get_set_delete():
    rec = {}
    set_path(rec, "tonal.key_edma.key", "C")
    assert get_path(rec, "tonal.key_edma.key") == "C"
    assert get_path(rec, "tonal.nope", None) is None
    with pytest.raises(KeyError):
        get_path(rec, "tonal.nope")
    assert delete_path(rec, "tonal.key_edma.key")
    assert rec == {}  # empty parents pruned
    assert not delete_path(rec, "x.y")


@pytest.mark.parametrize("meta, expected", [
    ({"id": "x.mp3", "tags": {"file_name": "f"}}, "x.mp3"),
    ({"tags": {"musicbrainz_trackid": ["mbid"], "file_name": "f"}}, "mbid"),
    ({"tags": {"file_name": "f.mp3"}}, "f.mp3"),
    ({"tags": {"musicbrainz_trackid": [], "file_name": ["f.mp3"]}}, "f.mp3"),
    ({}, None),
])
def test_record_id_rule(meta, expected):
    assert record_id({"metadata": meta}) == expected
    assert record_id({"lowlevel": {}}) is None
