"""gridsearch end to end (bin/gridsearch as a subprocess) on small synthetic data."""

import csv
import json
import os
import re

import msgpack
import numpy as np
import pytest

from mirkit import yamlio
from mirkit.gaia.metrics import REPORT_COLUMNS, ConfusionMatrix
from mirkit.svm.synthetic import make_records, write_dataset

PROJECT = """
className: synthetic
datasetsDirectory: datasets
resultsDirectory: results
seed: 1
clusterMode: False
excludedDescriptors: [ 'metadata.tags*' ]
failOnUnmatched: False
preprocessing:
    basic:
        - {transfo: remove, params: {descriptorNames: &u ['metadata.*', '*dmean*', '*dvar*', '*.min', '*.max', '*cov']}}
        - {transfo: enumerate, params: {descriptorNames: &s ['tonal.chords_key', 'tonal.chords_scale', 'tonal.key_*.key', 'tonal.key_*.scale']}}
    mfcc:
        - {transfo: remove, params: {descriptorNames: *u}}
        - {transfo: enumerate, params: {descriptorNames: *s}}
        - {transfo: select, params: {descriptorNames: 'lowlevel.mfcc*'}}
classifiers:
    svm:
        - preprocessing: [basic, mfcc]
          type: [C-SVC]
          kernel: [poly, RBF]
          C: [-1, 3]
          gamma: [-3]
          balanceClasses: [False, True]
        - {preprocessing: [basic], type: [C-SVC], kernel: [bogus], C: [1], gamma: [1], balanceClasses: [False]}
evaluations:
    nfoldcrossvalidation:
        - nfold: [ 4 ]
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("gs")
    gt, fl = write_dataset(str(d), 36, 3, seed=1, separation=0.8)
    (d / "project.yaml").write_text(PROJECT)
    return d


@pytest.fixture(scope="module")
def run(data, run_tool_module):
    proc = run_tool_module("gridsearch", "-p", data / "project.yaml", data / "groundtruth.yaml",
                           data / "filelist.yaml", "-j", "2")
    return proc


@pytest.fixture(scope="module")
def run_tool_module():
    import subprocess
    import sys
    from conftest import BIN, tool_env

    def go(name, *args, input=None, cwd=None):
        return subprocess.run([sys.executable, str(BIN / name), *map(str, args)], input=input,
                              capture_output=True, cwd=cwd, env=tool_env(), timeout=300)
    return go


def read_report(path):
    with open(path) as fh:
        return list(csv.reader(fh, delimiter="\t"))


def test_outputs(data, run):
    assert run.returncode == 0, run.stderr.decode()
    line = run.stdout.decode().strip()
    assert re.fullmatch(r"RESULT \S+project\.yaml\tAcc:\d+\.\d{3}\tStd:\d+\.\d{3}\tnormalized "
                        r"Acc:\d+\.\d{3}\tnormalized Std:\d+\.\d{3}\t\S+_0\.result", line), line
    rows = read_report(data / "report.tsv")
    assert rows[0] == REPORT_COLUMNS + ["status", "reason"]
    body = rows[1:]
    assert len(body) == 17  # 16 configurations + the failing one
    assert [r[16] for r in body] == ["ok"] * 16 + ["failed"]
    assert "unknown kernel 'bogus'" in body[-1][17] and body[-1][0] == ""
    assert [int(r[0]) for r in body[:16]] == list(range(1, 17))
    for r in body[:16]:
        assert re.fullmatch(r".*/results/synthetic[0-9a-f]{16}_0\.result", r[6])
        assert r[7] == r[6][:-len(".result")] + ".param" and os.path.exists(r[7])
    assert body[16][6] == "" and os.path.exists(body[16][7])  # failed: .param, no .result
    assert os.path.exists(body[16][7][:-len(".param")] + ".failed")
    accs = [float(r[1]) for r in body[:16]]
    assert accs == sorted(accs, reverse=True)
    # the best model, its .param and the HTML report
    assert os.path.exists(data / "synthetic.model")
    assert open(data / "synthetic.model.param").read() == open(body[0][7]).read()
    assert "Accuracy:" in (data / "synthetic.model.results.html").read_text()
    # .result content: every id tested once, metrics recomputed from the file
    cm = ConfusionMatrix.load(body[0][6])
    assert len(cm.fold) == 36 and set(cm.fold.values()) == {0, 1, 2, 3}
    assert abs(cm.accuracy() - float(body[0][1])) < 1e-9
    param = yamlio.load(body[0][7], gaia=False)
    assert param["evaluation"] == {"nfold": 4, "type": "nfoldcrossvalidation"}
    assert set(param["model"]) == {"C", "balanceClasses", "classifier", "gamma", "kernel",
                                   "preprocessing", "type"}


def test_rerun_skips_and_force_restarts(data, run, run_tool_module):
    assert run.returncode == 0
    results = sorted((data / "results").iterdir())
    mtimes = {p: p.stat().st_mtime_ns for p in results}
    again = run_tool_module("gridsearch", "-p", data / "project.yaml", data / "groundtruth.yaml",
                            data / "filelist.yaml", "-v", "--no-model")
    assert again.returncode == 0, again.stderr.decode()
    assert b"17 already done" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in sorted((data / "results").iterdir())} == mtimes
    assert again.stdout == run.stdout
    forced = run_tool_module("gridsearch", "-p", data / "project.yaml", data / "groundtruth.yaml",
                             data / "filelist.yaml", "--force", "--no-model")
    assert forced.returncode == 0
    assert all(p.stat().st_mtime_ns != mtimes[p] for p in results if p.suffix == ".result")
    assert forced.stdout == run.stdout  # deterministic


def test_bad_inputs(data, run_tool_module, tmp_path):
    fl = yamlio.load(data / "filelist.yaml", gaia=False)
    del fl["track0003"]
    (tmp_path / "fl.yaml").write_text(yamlio.dump(fl))
    proc = run_tool_module("gridsearch", data / "groundtruth.yaml", tmp_path / "fl.yaml",
                           "-d", tmp_path / "p")
    assert proc.returncode == 2
    assert b"track0003" in proc.stderr and b"missing from the filelist" in proc.stderr
    gt = yamlio.load(data / "groundtruth.yaml", gaia=False)
    gt["groundTruth"]["track0000"] = "lonely"
    (tmp_path / "gt.yaml").write_text(yamlio.dump(gt))
    proc = run_tool_module("gridsearch", tmp_path / "gt.yaml", data / "filelist.yaml",
                           "-d", tmp_path / "p2")
    assert proc.returncode == 2 and b"'lonely' has 1" in proc.stderr


def test_stream_input_group_folds_and_fold_failure(run_tool_module, tmp_path):
    """Records on stdin, --group-by groups, a NaN descriptor (cleaned at merge) and a
    configuration failing in exactly one fold (a dimension constant without one record)."""
    records, labels = make_records(24, 2, seed=3, separation=1.0)
    groups = {}
    for i, (rec, pid) in enumerate(zip(records, labels)):
        rec["metadata"]["id"] = pid
        rec["lowlevel"]["odd"] = [float(i), 7.0 if pid != "track0005" else 8.0]
        rec["lowlevel"]["broken"] = float("nan") if i == 3 else 1.0 + i
        groups[pid] = f"artist{i // 2}"
    gt = {"className": "duo", "groundTruth": labels, "groups": groups, "type": "singleClass",
          "version": 1.0}
    (tmp_path / "gt.yaml").write_text(yamlio.dump(gt))
    project = PROJECT.replace("className: synthetic", "className: duo").replace(
        "nfold: [ 4 ]", "nfold: [ 3 ]")
    (tmp_path / "project.yaml").write_text(project)
    stream = b"".join(msgpack.packb(r) for r in records)
    proc = run_tool_module("gridsearch", "-p", tmp_path / "project.yaml", tmp_path / "gt.yaml",
                           "-", "--group-by", "groups", "--no-model", input=stream)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = read_report(tmp_path / "report.tsv")[1:]
    failed = [r for r in rows if r[16] == "failed"]
    # basic keeps lowlevel.odd, whose 2nd dim is constant when track0005 is in the test fold
    basic_failed = [r for r in failed if r[10] == "basic" and r[8] != "bogus"]
    assert len(basic_failed) == 8 and all("Division by zero in .lowlevel.odd" in r[17]
                                          for r in basic_failed)
    fold_of_5 = {r[17].split(":")[0] for r in basic_failed}
    assert len(fold_of_5) == 1  # one fold only
    ok = [r for r in rows if r[16] == "ok"]
    assert len(ok) == 8 and all(r[10] == "mfcc" for r in ok)
    cm = ConfusionMatrix.load(ok[0][6])
    for g in set(groups.values()):
        assert len({cm.fold[p] for p in labels if groups[p] == g}) == 1
    base = np.load(tmp_path / "datasets" / "duo.npz")
    header = json.loads(base["header"].tobytes())
    assert "lowlevel.broken" in header["meta"]["removed"]["cleaner"]


def test_killed_run_resumes_to_the_same_report(data, run, tmp_path):
    """SIGKILL in the middle of a run leaves no partial file; the rerun completes the grid
    and gives the same report (file names are stable hashes of the configurations)."""
    import signal
    import subprocess
    import sys
    import time
    from conftest import BIN, tool_env
    assert run.returncode == 0
    project = tmp_path / "project.yaml"
    project.write_text(PROJECT)
    args = [sys.executable, str(BIN / "gridsearch"), "-p", str(project),
            str(data / "groundtruth.yaml"), str(data / "filelist.yaml"), "-j", "1", "--no-model"]
    proc = subprocess.Popen(args, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = tmp_path / "results"
    deadline = time.time() + 60
    while time.time() < deadline and not (results.is_dir() and
                                          any(p.suffix == ".result" for p in results.iterdir())):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    for p in results.iterdir():  # whatever exists is complete
        if p.suffix == ".result":
            ConfusionMatrix.load(p)
    again = subprocess.run(args, env=tool_env(), capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr.decode()
    assert not [p for p in results.iterdir() if p.name.startswith(".~")]

    def norm(rows):
        return [[os.path.basename(c) if "/" in c else c for c in r] for r in rows]
    assert norm(read_report(tmp_path / "report.tsv")) == norm(read_report(data / "report.tsv"))


def test_real_gaia_sig_files(gaia_fixtures, run_tool_module, tmp_path):
    """Gaia's 2.1-beta5 unit-test .sig files (5 ids per file, two classes) through the
    default template's basic and gaussianized preprocessings, then classify the originals;
    and the template choice for the 2.1-beta2 files (Gaia's filelists name paths relative to
    its test directory: rewritten here)."""
    base = gaia_fixtures / "projects"
    labels, files = {}, {}
    for n in range(10):
        src = "00" if n < 5 else "01"
        labels[f"t{n}"] = "a" if n < 5 else "b"
        files[f"t{n}"] = str(base / "21beta5_data" / f"{src}.sig")
    (tmp_path / "gt.yaml").write_text(yamlio.dump({"className": "kaiser", "groundTruth": labels,
                                                   "type": "singleClass", "version": 1.0}))
    (tmp_path / "fl.yaml").write_text(yamlio.dump(files))
    from mirkit.gaia.project import template_text
    text = template_text("2.1-beta5", "kaiser", "datasets", "results", None, None)
    head, tail = text.split("classifiers:\n")
    grid = ("classifiers:\n    svm:\n        - {preprocessing: [basic, gaussianized], "
            "type: [C-SVC], kernel: [RBF], C: [1], gamma: [-3], balanceClasses: [False]}\n")
    (tmp_path / "p.yaml").write_text(head + grid + tail[tail.index("\nevaluations:"):])
    proc = run_tool_module("gridsearch", "-p", tmp_path / "p.yaml", tmp_path / "gt.yaml",
                           tmp_path / "fl.yaml")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = read_report(tmp_path / "report.tsv")[1:]
    assert [r[16] for r in rows] == ["ok", "ok"] and float(rows[0][1]) == 100.0
    proc = run_tool_module("classify", "-m", tmp_path / "kaiser.model", "-f", "json",
                           "--only-highlevel", base / "21beta5_data" / "00.sig",
                           base / "21beta5_data" / "01.sig")
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [o["highlevel"]["kaiser"]["value"] for o in out] == ["a", "b"]
    # template choice: the 2.1-beta2 files get the 2.1-beta2 template
    fl = yamlio.load(base / "21beta2filelist.yaml", gaia=False)
    fl = {k: str(base / v.replace("data/classification_projects/", "")) for k, v in fl.items()}
    (tmp_path / "fl2.yaml").write_text(yamlio.dump(fl))
    gt2 = yamlio.load(base / "grountruth.yaml", gaia=False)
    (tmp_path / "gt2.yaml").write_text(yamlio.dump(gt2))
    proc = run_tool_module("gridsearch", tmp_path / "gt2.yaml", tmp_path / "fl2.yaml",
                           "-d", tmp_path / "p2")
    assert proc.returncode == 2 and b"at least 5 items" in proc.stderr  # 1 item per class
    assert "templateVersion: 2.1-beta2" in (tmp_path / "p2" / "project.yaml").read_text()


def test_unreadable_descriptor_file_is_a_failed_input(tmp_path, run_tool):
    """A listed file that cannot be read is reported, the rest is trained, exit status 1."""
    gt, fl = write_dataset(str(tmp_path), 24, 2, seed=3, separation=0.8)
    filelist = yamlio.load(str(tmp_path / "filelist.yaml"), gaia=False)
    victim = sorted(filelist)[0]
    os.unlink(os.path.join(str(tmp_path), filelist[victim]))
    (tmp_path / "project.yaml").write_text(PROJECT.replace("kernel: [bogus]", "kernel: [RBF]"))
    proc = run_tool("gridsearch", "-p", tmp_path / "project.yaml", tmp_path / "groundtruth.yaml",
                    tmp_path / "filelist.yaml", "-j", "1", "-q")
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert f"{victim}: could not read point" in err
    assert (tmp_path / "report.tsv").exists() or list(tmp_path.rglob("report.tsv"))


def test_groundtruth_fold_errors_name_the_groundtruth(data, run_tool_module, tmp_path):
    """Every fatal error about what the groundtruth cannot give is one line
    'gridsearch: GROUNDTRUTH: reason', before any dataset is built."""
    gt = yamlio.load(data / "groundtruth.yaml", gaia=False)
    project = tmp_path / "project.yaml"
    project.write_text(PROJECT)     # nfold 4

    def fails(name, gt_data, *extra):
        path = tmp_path / name
        path.write_text(yamlio.dump(gt_data))
        proc = run_tool_module("gridsearch", "-p", project, path, data / "filelist.yaml",
                               "--no-model", "-q", *extra)
        assert proc.returncode == 2, proc.stderr
        line = proc.stderr.decode()
        assert line.startswith(f"gridsearch: {path}: ") and line.count("\n") == 1, line
        assert not (tmp_path / "datasets").exists()
        return line

    one_group = dict(gt, groups={pid: "same artist" for pid in gt["groundTruth"]})
    assert "only 1 group(s) for 4 folds" in fails("gt1.yaml", one_group, "--group-by", "groups")
    no_groups = {k: v for k, v in gt.items() if k != "groups"}
    assert "needs a 'groups' map" in fails("gt2.yaml", no_groups, "--group-by", "groups")
    small = dict(gt, groundTruth=dict(gt["groundTruth"], track0000="lonely"))
    assert "'lonely' has 1" in fails("gt3.yaml", small)
    single = dict(gt, groundTruth={pid: "all" for pid in gt["groundTruth"]})
    assert "need at least two classes" in fails("gt4.yaml", single)


def test_folds_over_the_memory_budget_give_the_same_results(data, run, tmp_path, monkeypatch,
                                                            capsys):
    """When even one class pair's kernel matrices would not fit in a worker's share of the
    memory, every configuration is trained on its own: same .result files, and a warning."""
    from mirkit.commands.gridsearch import main
    from mirkit.svm import gridsearch as gs
    assert run.returncode == 0
    monkeypatch.setattr(gs, "_memory_budget", lambda workers: 1000.0)
    project = tmp_path / "project.yaml"
    project.write_text(PROJECT)
    with pytest.raises(SystemExit) as exit_:
        main(["-p", str(project), str(data / "groundtruth.yaml"), str(data / "filelist.yaml"),
              "-j", "1", "--no-model"])
    assert exit_.value.code == 0
    assert "configurations are trained one by one" in capsys.readouterr().err
    mine = sorted(p.name for p in (tmp_path / "results").glob("*.result"))
    assert len(mine) == 16
    for name in mine:
        assert (tmp_path / "results" / name).read_bytes() == \
            (data / "results" / name).read_bytes(), name
