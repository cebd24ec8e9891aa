"""retrain: from a .param file or explicit parameters."""

import json
from pathlib import Path

import numpy as np
import pytest

from mirkit import yamlio
from mirkit.gaia.project import write_default_project
from mirkit.svm.synthetic import write_dataset

PROJECT_GRID = """        - preprocessing: [ mfcc ]
          type: [ C-SVC ]
          kernel: [ RBF ]
          C: [ 1, 5 ]
          gamma: [ -3 ]
          balanceClasses: [ False ]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import subprocess
    import sys
    from conftest import BIN, tool_env
    d = tmp_path_factory.mktemp("rt")
    gt, fl = write_dataset(str(d), 30, 3, seed=4, separation=0.8)
    proj = d / "proj"
    proj.mkdir()
    write_default_project(proj / "project.yaml", "2.1-beta5", "synthetic", str(proj), fl, gt)
    text = (proj / "project.yaml").read_text()
    head, tail = text.split("classifiers:\n    svm:\n")
    tail = tail[tail.index("\nevaluations:"):]
    (proj / "project.yaml").write_text(head + "classifiers:\n    svm:\n" + PROJECT_GRID + tail)
    proc = subprocess.run([sys.executable, str(BIN / "gridsearch"), "-p", proj / "project.yaml",
                           "--force", "--history"], env=tool_env(), capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proj


def test_retrain_from_param_reproduces_best_model(project, run_tool):
    best_param = project / "synthetic.model.param"
    proc = run_tool("retrain", project / "project.yaml", best_param, "-o", project / "again.model")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (project / "again.model").read_bytes() == (project / "synthetic.model").read_bytes()


def test_retrain_explicit_parameters(project, run_tool):
    model = yamlio.load(project / "synthetic.model.param", gaia=False)["model"]
    args = ["--preprocessing", model["preprocessing"], "--kernel", model["kernel"],
            "--C", model["C"], "--gamma", model["gamma"]]
    proc = run_tool("retrain", "-p", project / "project.yaml", *args, "-o", project / "x.model")
    assert proc.returncode == 0, proc.stderr.decode()
    a = json.loads((project / "x.model").read_text())
    b = json.loads((project / "synthetic.model").read_text())
    assert a["classifier"] == b["classifier"] and a["preprocessing"] == b["preprocessing"]
    proc = run_tool("retrain", "-p", project / "project.yaml", *args, "--balance",
                    "--class-name", "other", "-o", project / "y.model")
    assert proc.returncode == 0
    y = json.loads((project / "y.model").read_text())
    assert y["className"] == "other" and y["classifier"]["svm"]["balanceClasses"] is True


def test_retrain_usage_errors(project, run_tool):
    proc = run_tool("retrain", project / "project.yaml", project / "synthetic.model.param")
    assert proc.returncode == 2 and b"-o MODEL" in proc.stderr
    proc = run_tool("retrain", "-p", project / "project.yaml", "--kernel", "RBF", "-o", "m")
    assert proc.returncode == 2
    proc = run_tool("retrain", "-p", project / "project.yaml", "--preprocessing", "nope",
                    "--kernel", "RBF", "--C", "1", "--gamma", "1", "-o", project / "z.model")
    assert proc.returncode == 2 and b"'nope' is not defined" in proc.stderr


def test_retrain_uses_the_labels_stored_with_the_dataset(project, run_tool, tmp_path):
    # a project given to gridsearch with the groundtruth on the command line has no
    # 'groundtruth' key: retrain takes the labels saved with the dataset
    text = "".join(line for line in (project / "project.yaml").read_text().splitlines(True)
                   if not line.startswith(("groundtruth:", "filelist:")))
    (tmp_path / "p.yaml").write_text(text)
    proc = run_tool("retrain", tmp_path / "p.yaml", project / "synthetic.model.param",
                    "-o", tmp_path / "m.model")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "m.model").read_bytes() == (project / "synthetic.model").read_bytes()


def _records(project):
    d = Path(project).parent / "descriptors"
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))]


def _same_predictions(history_path, model_path, records):
    from mirkit.modelio import load_model
    hist = load_model(str(history_path))
    model = load_model(str(model_path))
    mine, theirs = hist.predict_many(records), model.predict_many(records)
    for m, t in zip(mine, theirs):
        assert not isinstance(m, Exception), m
        assert m["value"] == t["value"]
        for cls, p in t["all"].items():
            assert np.float32(m["all"][cls]) == np.float32(p)
    return mine


def test_gridsearch_history_beside_model(project):
    """gridsearch --history: PROJECTDIR/<className>.history predicts as the .model."""
    mine = _same_predictions(project / "synthetic.history", project / "synthetic.model",
                             _records(project))
    assert len({m["value"] for m in mine}) == 3     # a real 3-class problem, not a constant


def test_retrain_history(project, run_tool, tmp_path):
    proc = run_tool("retrain", project / "project.yaml", project / "synthetic.model.param",
                    "-o", tmp_path / "r.model", "--history")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "r.history").read_bytes() == (project / "synthetic.history").read_bytes()
    # classify runs it like any model, and gives the .model's answers
    recs = _records(project)[:6]
    stream = "".join(json.dumps(r) + "\n" for r in recs).encode()
    outs = []
    for m in ("r.history", "r.model"):
        proc = run_tool("classify", "-m", tmp_path / m, "--name", "x", "-f", "json", input=stream)
        assert proc.returncode == 0, proc.stderr.decode()
        outs.append([json.loads(line)["highlevel"]["x"] for line in proc.stdout.splitlines()])
    assert [o["value"] for o in outs[0]] == [o["value"] for o in outs[1]]
    proc = run_tool("gridsearch", "-p", project / "project.yaml", "--no-model", "--history")
    assert proc.returncode == 2 and b"--no-model" in proc.stderr


def test_written_history_runs_in_gaiatransform(project):
    """Essentia's GaiaTransform (py3.7 oracle) loads gridsearch's .history and agrees."""
    from mirkit.records import flatten
    from test_history_oracle import oracle_python, run_oracle
    python = oracle_python()
    data = json.loads((project / "synthetic.model").read_text())
    names = [d["name"] for d in data["inputs"]]
    records = _records(project)[:15]
    flat = [{n: flatten(r)[n] for n in names} for r in records]
    ref = run_oracle(python, project / "synthetic.history", flat)
    mine = _same_predictions(project / "synthetic.history", project / "synthetic.model", records)
    for r, m in zip(ref, mine):
        assert "error" not in r, r
        assert r["highlevel.synthetic.value"] == m["value"]
        for cls, p in m["all"].items():
            assert np.float32(r[f"highlevel.synthetic.all.{cls}"]) == np.float32(p)


def test_training_failure_names_the_input_and_configuration(run_tool, tmp_path):
    # a dimension constant over every point (the rest of its descriptor varies, so the
    # cleaner keeps it) makes Gaia's normalization fail; the message said only
    # "retrain: Normalize: ..." without naming the project or the configuration
    fl = {}
    for i in range(10):
        rec = {"lowlevel": {"v": [float(i % 5) + i / 10.0, 5.0]}}
        (tmp_path / f"t{i}.json").write_text(json.dumps(rec))
        fl[f"t{i}"] = str(tmp_path / f"t{i}.json")
    (tmp_path / "fl.yaml").write_text(yamlio.dump(fl))
    (tmp_path / "gt.yaml").write_text(yamlio.dump({
        "className": "c", "groundTruth": {f"t{i}": "ab"[i % 2] for i in range(10)},
        "type": "singleClass", "version": 1.0}))
    proj = tmp_path / "project.yaml"
    write_default_project(proj, "2.1-beta2", "c", str(tmp_path), str(tmp_path / "fl.yaml"),
                          str(tmp_path / "gt.yaml"))
    proc = run_tool("retrain", "-p", proj, "--preprocessing", "raw", "--kernel", "RBF",
                    "--C", "1", "--gamma", "-3", "-o", tmp_path / "m.model")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.startswith(f"retrain: {proj}: cannot train raw RBF: ") and "Division by zero" in err
    assert not (tmp_path / "m.model").exists()


def _project_copy(project, tmp_path, name, filelist=True):
    """The fixture's project with its own (empty) datasets directory: retrain must rebuild
    the dataset from the descriptors."""
    lines = []
    for line in (project / "project.yaml").read_text().splitlines(True):
        if line.startswith("datasetsDirectory:"):
            line = f"datasetsDirectory: {tmp_path / (name + '-datasets')}\n"
        elif line.startswith("filelist:") and not filelist:
            line = "filelist: null\n"
        lines.append(line)
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(lines))
    return path


def test_retrain_from_records_on_stdin(project, run_tool, tmp_path):
    """`retrain PROJECT X.param --filelist - -o MODEL < records` (the stream gridsearch reads
    with FILELIST '-') gives the same model file as the filelist."""
    import msgpack
    param = project / "synthetic.model.param"
    text = (project / "project.yaml").read_text()
    fl_path = [line.split(":", 1)[1].strip() for line in text.splitlines()
               if line.startswith("filelist:")][0]
    filelist = yamlio.load(fl_path, gaia=False)
    base = Path(fl_path).parent
    records = []
    for pid in reversed(sorted(filelist)):      # any order: matched by record id
        rec = json.loads((base / filelist[pid]).read_text())
        rec.setdefault("metadata", {})["id"] = pid
        records.append(rec)
    stream = b"".join(msgpack.packb(r) for r in records)

    from_file = _project_copy(project, tmp_path, "file")
    proc = run_tool("retrain", from_file, param, "-o", tmp_path / "file.model")
    assert proc.returncode == 0, proc.stderr.decode()
    reference = (tmp_path / "file.model").read_bytes()
    assert reference == (project / "synthetic.model").read_bytes()

    from_stdin = _project_copy(project, tmp_path, "stdin")
    proc = run_tool("retrain", from_stdin, param, "--filelist", "-", "-o",
                    tmp_path / "stdin.model", input=stream)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "stdin.model").read_bytes() == reference
    # a project without a filelist (as `gridsearch GT - -d DIR` writes it) reads the pipe,
    # a bad item in the stream is reported: exit 1, the model is written all the same
    no_fl = _project_copy(project, tmp_path, "nofl", filelist=False)
    proc = run_tool("retrain", no_fl, param, "-o", tmp_path / "nofl.model",
                    input=stream + msgpack.packb([1, 2]))
    assert proc.returncode == 1, proc.stderr.decode()
    assert proc.stderr.startswith(b"retrain: -: item 31 ") and b"not a record" in proc.stderr
    assert (tmp_path / "nofl.model").read_bytes() == reference
    # nothing on stdin matches the groundtruth: one clear error, no model
    proc = run_tool("retrain", _project_copy(project, tmp_path, "empty"), param,
                    "--filelist", "-", "-o", tmp_path / "none.model", input=b"")
    assert proc.returncode == 2 and b"no record on stdin matches" in proc.stderr
    assert not (tmp_path / "none.model").exists()
