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
