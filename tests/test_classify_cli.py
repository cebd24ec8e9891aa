"""classify and the mirkit model file."""

import json

import msgpack
import numpy as np
import pytest

from mirkit.errors import MirkitError, MissingDescriptorsError
from mirkit.gaia.dataset import load_dataset
from mirkit.gaia.preprocess import Chain
from mirkit.gaia.project import Project, template_text
from mirkit import yamlio
from mirkit.modelio import load_model
from mirkit.svm import libsvm_io
from mirkit.svm.features import FeatureBlock, fit_scaling
from mirkit.svm.modelfile import SvmModel, read_model_data, save_model
from mirkit.svm.synthetic import make_records
from mirkit.svm.train import train_final


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on 'gaussianized' (enumerate + normalize + gaussianize) features."""
    d = tmp_path_factory.mktemp("model")
    records, labels = make_records(30, 3, seed=2, separation=1.0)
    for rec, pid in zip(records, labels):
        rec["metadata"]["id"] = pid
    base, _ = load_dataset(None, exclude=["metadata.tags*"], records=dict(zip(labels, records)))
    project = Project(yamlio.loads(template_text("2.1-beta5", "c", "d", "r", "f", "g"), gaia=False))
    chain = Chain.from_steps(project.preprocessing["gaussianized"])
    pds = chain.fit_apply(base)
    config = {"kernel": "RBF", "C": 3, "gamma": -5, "balanceClasses": True, "type": "C-SVC",
              "classifier": "svm", "preprocessing": "gaussianized"}
    data = train_final(pds, labels, config, chain.to_data(), base.layout(), "genre", "gaussianized")
    path = d / "genre.model"
    save_model(path, data)
    return {"path": path, "records": records, "labels": labels, "pds": pds, "dir": d}


def test_model_reproduces_training_features(trained):
    model = load_model(str(trained["path"]))
    assert model.name == "genre" and model.classes == ["class0", "class1", "class2"]
    typed = [model._typed_inputs(r, "x") for r in trained["records"]]
    X = model._features(typed)
    block = FeatureBlock.from_dataset(trained["pds"])
    scaling = fit_scaling(block, np.arange(len(trained["records"])))
    assert np.array_equal(X, scaling.apply(block.matrix))


def test_predictions_match_libsvm_probabilities(trained):
    model = load_model(str(trained["path"]))
    results = model.predict_many(trained["records"])
    typed = [model._typed_inputs(r, "x") for r in trained["records"]]
    labels, probs = libsvm_io.predict_nodes(model.svm, libsvm_io.dense_nodes(model._features(typed)),
                                            probability=True)
    for res, lab, pr in zip(results, labels, probs):
        assert res["value"] == model.classes[int(lab)]
        assert res["probability"] == max(res["all"].values())
        assert abs(sum(res["all"].values()) - 1) < 1e-9
        assert sorted(res["all"].values()) == sorted(pr.tolist())
    assert model.predict(trained["records"][4]) == results[4]
    hits = sum(r["value"] == trained["labels"][rec["metadata"]["id"]]
               for r, rec in zip(results, trained["records"]))
    assert hits >= 25  # training data, well separated


def test_missing_descriptors_named(trained):
    model = load_model(str(trained["path"]))
    rec = json.loads(json.dumps(trained["records"][0]))
    del rec["lowlevel"]["mfcc"]["mean"]
    del rec["tonal"]["chords_key"]
    with pytest.raises(MissingDescriptorsError) as err:
        model.predict(rec)
    assert set(err.value.names) == {"lowlevel.mfcc.mean", "tonal.chords_key"}
    assert "track0000" in str(err.value) and "genre" in str(err.value)
    rec = json.loads(json.dumps(trained["records"][0]))
    rec["lowlevel"]["mfcc"]["mean"] = [1.0, 2.0]
    with pytest.raises(MirkitError, match="has 2 value"):
        model.predict(rec)
    rec["lowlevel"]["mfcc"]["mean"] = [float("nan")] * 13
    with pytest.raises(MirkitError, match="lowlevel.mfcc.mean holds NaN"):
        model.predict(rec)


def test_unknown_format_version_fails(trained, tmp_path):
    data = read_model_data(trained["path"])
    data["version"] = 99
    (tmp_path / "x.model").write_text(json.dumps(data))
    with pytest.raises(MirkitError, match="unsupported mirkit model format version 99"):
        load_model(str(tmp_path / "x.model"))
    (tmp_path / "y.model").write_text("not json")
    with pytest.raises(MirkitError, match="not a mirkit model"):
        load_model(str(tmp_path / "y.model"))


def test_classify_cli(trained, run_tool):
    d = trained["dir"]
    recs = [json.loads(json.dumps(r)) for r in trained["records"][:5]]
    del recs[2]["lowlevel"]["mfcc"]["mean"]
    stream = b"".join(msgpack.packb(r) for r in recs)
    proc = run_tool("classify", "-m", trained["path"], "-m", trained["path"], "--name", "g1",
                    "--name", "g2", "--only-highlevel", "-f", "json", input=stream)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "track0002" in err and "lowlevel.mfcc.mean" in err and err.count("\n") == 1
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [o["metadata"]["id"] for o in out] == ["track0000", "track0001", "track0003", "track0004"]
    assert set(out[0]) == {"metadata", "highlevel"}
    assert out[0]["highlevel"]["g1"] == out[0]["highlevel"]["g2"]
    assert set(out[0]["highlevel"]["g1"]) == {"value", "probability", "all"}
    # files as arguments; default name = file stem
    (d / "t.json").write_text(json.dumps(trained["records"][0]))
    proc = run_tool("classify", "-m", trained["path"], "-f", "json", d / "t.json")
    assert proc.returncode == 0, proc.stderr
    one = json.loads(proc.stdout)
    assert "genre" in one["highlevel"] and "lowlevel" in one
    proc = run_tool("classify", "--describe", trained["path"])
    desc = json.loads(proc.stdout)
    assert desc["classes"] == ["class0", "class1", "class2"] and desc["format"] == "mirkit-model"
    assert desc["classifier"]["svm"]["kernel"] == "RBF"
    proc = run_tool("classify", "-m", d / "nonexistent.model", input=stream)
    assert proc.returncode == 2 and b"nonexistent.model" in proc.stderr


def test_classify_history_model(gaia_fixtures, run_tool):
    """classify goes through mirkit.modelio: a Gaia .history loads the same way."""
    pytest.importorskip("mirkit.gaia.history")
    ref_dir = gaia_fixtures / "history-reference" / "mood_happy"
    refs = [json.loads(line) for line in (ref_dir / "reference.jsonl").read_text().splitlines()][:3]
    try:
        load_model(str(gaia_fixtures / "history" / "mood_happy.history"))
    except Exception as exc:  # the .history loader is another engineer's work in progress
        pytest.skip(f"history loader not usable yet: {exc}")
    paths = [ref_dir / r["pool"].rsplit("/", 1)[-1] for r in refs]
    proc = run_tool("classify", "-m", gaia_fixtures / "history" / "mood_happy.history",
                    "-f", "json", *paths)
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    for o, r in zip(out, refs):
        assert o["highlevel"]["mood_happy"]["value"] == r["value"]


def test_loader_options_forwarded_only_where_understood(trained, gaia_fixtures):
    """modelio.load_model takes options for every kind of model; each loader gets its own."""
    m = load_model(str(trained["path"]), fresh=True, lenient=True, allow_any_op=True)
    assert m.name == "genre"
    pytest.importorskip("mirkit.gaia.history")
    h = load_model(str(gaia_fixtures / "history" / "mood_happy.history"), fresh=True,
                   lenient=True, allow_any_op=True, name="x")
    assert (h.fresh, h.lenient, h.name) == (True, True, "x")
    h = load_model(str(gaia_fixtures / "history" / "mood_happy.history"), allow_any_op=True)
    assert (h.fresh, h.lenient) == (False, False)


def _pools(gaia_fixtures, n):
    ref_dir = gaia_fixtures / "history-reference" / "mood_happy"
    return [json.loads(p.read_text()) for p in sorted(ref_dir.glob("pool_*.json"))[:n]]


def test_classify_history_fresh_and_lenient(gaia_fixtures, run_tool):
    path = gaia_fixtures / "history" / "mood_happy.history"
    model = load_model(str(path))
    pools = _pools(gaia_fixtures, 4)
    # a descriptor the chain drops before the SVM: required by Essentia, optional if lenient
    unused = sorted(k for k, _, _, _ in model._required if k not in model._used)[0]
    vector = [k for k, size in model.describe()["input"]["sizes"].items()
              if k in model._used][0]
    head, _, leaf = unused.rpartition(".")
    recs = [json.loads(json.dumps(p)) for p in pools]
    node = recs[1]
    for part in head.split("."):
        node = node[part]
    del node[leaf]
    stream = b"".join(msgpack.packb(r) for r in recs)
    proc = run_tool("classify", "-m", path, "-f", "json", input=stream)
    assert proc.returncode == 1 and unused.encode() in proc.stderr
    assert len(proc.stdout.decode().splitlines()) == 3
    proc = run_tool("classify", "-m", path, "--history-lenient", "-f", "json", input=stream)
    assert proc.returncode == 0, proc.stderr.decode()
    lenient = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    ref = [model.predict(p) for p in pools]
    assert [o["highlevel"]["mood_happy"] for o in lenient] == ref
    # the first record fixes the sizes of one GaiaTransform instance: a first record with a
    # shorter vector makes every later one fail, unless each record gets a fresh instance
    recs = [json.loads(json.dumps(p)) for p in pools]
    node = recs[0]
    for part in vector.split(".")[:-1]:
        node = node[part]
    node[vector.rsplit(".", 1)[1]] = node[vector.rsplit(".", 1)[1]][:-1]
    stream = b"".join(msgpack.packb(r) for r in recs)
    proc = run_tool("classify", "-m", path, "-f", "json", input=stream)
    # every record failed, nothing written: "nothing could be done" (design.md §4), exit 2
    assert proc.returncode == 2 and proc.stdout == b"" and proc.stderr.count(b"\n") == 4
    proc = run_tool("classify", "-m", path, "--history-fresh", "-f", "json", input=stream)
    assert proc.returncode == 1 and proc.stderr.count(b"\n") == 1
    fresh = [json.loads(line)["highlevel"]["mood_happy"] for line in proc.stdout.splitlines()]
    assert fresh == ref[1:]


def test_msgpack_passthrough_equals_packing(trained, run_tool, tmp_path):
    """msgpack in and out: records are written back as their own bytes plus highlevel; the
    result decodes to what packing each record again gives (the JSON output), whatever the
    map header size, with an existing highlevel, and with faults in the stream."""
    recs = [json.loads(json.dumps(r)) for r in trained["records"][:6]]
    for i in range(15 - len(recs[1])):             # 15 top-level keys: fixmap -> map16
        recs[1][f"extra{i}"] = i
    recs[2]["highlevel"] = {"other": {"value": "x"}}   # merged, not duplicated
    stream = b"".join(msgpack.packb(r) for r in recs)
    outs = []
    for fmt in ("msgpack", "json"):
        proc = run_tool("classify", "-m", trained["path"], "-f", fmt, input=stream)
        assert proc.returncode == 0, proc.stderr.decode()
        outs.append(proc.stdout)
    packed = list(msgpack.Unpacker(__import__("io").BytesIO(outs[0]), raw=False))
    assert packed == [json.loads(line) for line in outs[1].splitlines()]
    assert len(packed[1]) == 16 and set(packed[2]["highlevel"]) == {"other", "genre"}
    # a file argument goes the same way
    (tmp_path / "s.msgpack").write_bytes(stream)
    proc = run_tool("classify", "-m", trained["path"], "-f", "msgpack", tmp_path / "s.msgpack")
    assert proc.returncode == 0 and proc.stdout == outs[0]
    # a non-record item, then a truncated record: the good records are written, each fault
    # is reported once with its byte offset
    bad = stream + msgpack.packb([1, 2]) + msgpack.packb(recs[0])[:-3]
    proc = run_tool("classify", "-m", trained["path"], "-f", "msgpack", input=bad)
    assert proc.returncode == 1 and proc.stdout == outs[0]
    err = proc.stderr.decode()
    assert err.count("\n") == 2 and "item 7" in err and "truncated msgpack stream" in err
    proc = run_tool("classify", "-m", trained["path"], "-f", "msgpack",
                    input=stream + b"\xc1" + stream)
    assert proc.returncode == 1 and proc.stdout == outs[0]
    assert b"corrupt msgpack stream at byte offset %d" % len(stream) in proc.stderr


def test_tensorflow_loader_gets_only_its_options(tmp_path, monkeypatch):
    """--allow-any-op reaches the TensorFlow loader; .history options do not."""
    import mirkit.tf.models as tfm
    seen = {}

    class Fake:
        name = "head"

    def fake_load_head(path, **options):
        seen.update(options)
        return Fake()

    monkeypatch.setattr(tfm, "load_head", fake_load_head)
    (tmp_path / "head.pb").write_bytes(b"")
    model = load_model(str(tmp_path / "head.pb"), name="h", fresh=False, lenient=True,
                       allow_any_op=True)
    assert seen == {"allow_any_op": True} and model.name == "h"
    seen.clear()
    load_model(str(tmp_path / "head.pb"), fresh=True, allow_any_op=None)
    assert seen == {}


def test_describe_takes_exactly_one_model(trained, run_tool):
    # `classify --describe a.model b.model` described a.model and ignored b.model silently
    proc = run_tool("classify", "--describe", trained["path"], trained["path"])
    assert proc.returncode == 2 and b"--describe takes one MODEL" in proc.stderr
    proc = run_tool("classify", "--describe", trained["path"], "-m", trained["path"])
    assert proc.returncode == 2 and proc.stdout == b""


def test_unappliable_history_is_fatal_once(gaia_fixtures, run_tool, tmp_path):
    # a format-100 history loads (--describe works) but cannot be applied: exit 2 with one
    # message, not one failure per record and exit 1
    pca = gaia_fixtures / "history" / "gaia_2_0_pca.hist"
    stream = b"".join(msgpack.packb({"metadata": {"id": f"r{i}"}}) for i in range(3))
    proc = run_tool("classify", "-m", pca, input=stream)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().count("\n") == 1 and b"Gaia >= 2.3" in proc.stderr
    assert run_tool("classify", "--describe", pca).returncode == 0


def test_every_record_failed_leaves_the_output_alone(trained, run_tool, tmp_path):
    """No record could be classified: exit 2, the -o file neither created nor replaced."""
    recs = [json.loads(json.dumps(r)) for r in trained["records"][:3]]
    for rec in recs:
        del rec["lowlevel"]["mfcc"]["mean"]
    stream = b"".join(msgpack.packb(r) for r in recs)
    out = tmp_path / "out.msgpack"
    for fmt in ("msgpack", "json"):
        proc = run_tool("classify", "-m", trained["path"], "-f", fmt, "-o", out, input=stream)
        assert proc.returncode == 2 and not out.exists()
        assert proc.stderr.count(b"lowlevel.mfcc.mean") == 3
    out.write_bytes(b"previous")
    proc = run_tool("classify", "-m", trained["path"], "-o", out, input=stream)
    assert proc.returncode == 2 and out.read_bytes() == b"previous"
    # an empty stream is not a failure: exit 0 and an (empty) output file
    proc = run_tool("classify", "-m", trained["path"], "-o", out, input=b"")
    assert proc.returncode == 0 and out.read_bytes() == b""
