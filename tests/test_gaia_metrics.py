"""Confusion matrices, Gaia's accuracies, ranking and report.tsv (gaia.md §1.7, §6.2, §6.3)."""

import csv
import io
import math

from mirkit.gaia.metrics import (REPORT_COLUMNS, ConfusionMatrix, html_report, rank,
                                 report_tsv, result_line)


def cm_from(rows):
    """rows: (id, true, predicted, fold)"""
    cm = ConfusionMatrix()
    for pid, exp, pred, fold in rows:
        cm.add(exp, pred, pid, fold)
    return cm


def test_gaia_unit_test_example():
    # Gaia's test_confusionmatrix: A: 3/4 correct, B: 2/8 -> raw 5/12, normalized 50 %
    rows = [(f"a{i}", "A", "A" if i < 3 else "B", 0) for i in range(4)]
    rows += [(f"b{i}", "B", "B" if i < 2 else "A", 0) for i in range(8)]
    cm = cm_from(rows)
    assert math.isclose(cm.accuracy(), 500 / 12)
    assert math.isclose(cm.normalized_accuracy(), 50.0)
    assert cm.std() == 0.0 and cm.normalized_std() == 0.0


def test_two_folds_hand_computed():
    # fold 0: A A->A, A->B, B->B        : 2/3 correct; recalls A 1/2, B 1/1 -> 75
    # fold 1: A->A, B->A, B->B, B->B    : 3/4 correct; recalls A 1/1, B 2/3 -> 83.33
    rows = [("1", "A", "A", 0), ("2", "A", "B", 0), ("3", "B", "B", 0),
            ("4", "A", "A", 1), ("5", "B", "A", 1), ("6", "B", "B", 1), ("7", "B", "B", 1)]
    cm = cm_from(rows)
    assert math.isclose(cm.accuracy(), 500 / 7)  # pooled, not the mean of folds
    f = [200 / 3, 75.0]
    assert math.isclose(cm.std(), abs(f[0] - f[1]) / 2)  # population std of two values
    n = [75.0, (100 + 200 / 3) / 2]
    assert math.isclose(cm.normalized_accuracy(), sum(n) / 2)
    assert math.isclose(cm.normalized_std(), abs(n[0] - n[1]) / 2)
    # empty folds do not count
    assert cm.fold_accuracies() == f


def test_result_yaml_round_trip(tmp_path):
    cm = cm_from([("x: 1", "A", "B", 0), ("00", "A", "A", 1), ("y", "B", "B", 0)])
    path = tmp_path / "r.result"
    path.write_text(cm.to_yaml())
    back = ConfusionMatrix.load(path)
    assert back.matrix == cm.matrix and back.fold == cm.fold


def test_ranking_tie_breaks():
    entries = [
        {"results_file": "r1", "accuracy": 80.0, "std": 1.0, "normalized_accuracy": 70.0, "normalized_std": 0.0},
        {"results_file": "r2", "accuracy": 80.0, "std": 2.0, "normalized_accuracy": 60.0, "normalized_std": 0.0},
        {"results_file": "r3", "accuracy": 90.0, "std": 5.0, "normalized_accuracy": 60.0, "normalized_std": 0.0},
        {"results_file": "r4", "accuracy": 80.0, "std": 1.0, "normalized_accuracy": 75.0, "normalized_std": 0.0},
    ]
    ranked = rank(entries)
    # accuracy desc; ties -> larger std first, then larger normalized accuracy
    assert [e["results_file"] for e in ranked] == ["r3", "r2", "r4", "r1"]
    assert [e["accuracy_rank"] for e in ranked] == [1, 2, 3, 4]
    # normalized rank: pairs (nacc, acc rank) sorted desc: (75,3) (70,4) (60,2) (60,1)
    assert {e["results_file"]: e["normalized_accuracy_rank"] for e in ranked} == \
        {"r4": 1, "r1": 2, "r2": 3, "r3": 4}


def test_report_columns_and_failed_rows():
    ok = [{"results_file": "/r/X_0.result", "param_file": "/r/X_0.param", "accuracy": 90.5,
           "std": 1.5, "normalized_accuracy": 88.0, "normalized_std": 2.0,
           "model": {"kernel": "RBF", "C": -5, "gamma": 3, "preprocessing": "basic",
                     "balanceClasses": False, "type": "C-SVC", "classifier": "svm"},
           "evaluation": {"nfold": 5, "type": "nfoldcrossvalidation"}}]
    failed = [{"results_file": "/r/Y_0.result", "param_file": "/r/Y_0.param",
               "model": dict(ok[0]["model"], kernel="poly"), "evaluation": ok[0]["evaluation"],
               "reason": "fold 2: Normalize: Division by zero in .x"}]
    text = report_tsv(rank(ok), failed)
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    header = text.splitlines()[0].split("\t")
    assert header[:16] == REPORT_COLUMNS and header[16:] == ["status", "reason"]
    assert rows[0]["param_file"] == "/r/X_0.param"  # not Gaia's X_0.params
    assert rows[0]["accuracy_rank"] == "1" and rows[0]["status"] == "ok"
    assert rows[0]["evaluation"] == "{'nfold': 5, 'type': 'nfoldcrossvalidation'}"
    assert rows[0]["balance_classes"] == "False" and rows[0]["C"] == "-5"
    assert rows[1]["status"] == "failed" and rows[1]["accuracy"] == "" \
        and rows[1]["accuracy_rank"] == "" and "Division by zero" in rows[1]["reason"]


def test_html_and_result_line():
    cm = cm_from([("1", "A", "A", 0), ("2", "A", "B", 0), ("3", "B", "B", 1), ("4", "B", "B", 1)])
    page = html_report("genre", "p.yaml", cm)
    assert "<h1>genre (p.yaml)</h1>" in page and "50.00" in page and "Proportion" in page
    assert 'color: red' in page  # 50 % off-diagonal >= 10 %
    line = result_line("p.yaml", cm.summary(), "/r/X_0.result")
    assert line == "RESULT p.yaml\tAcc:75.000\tStd:25.000\tnormalized Acc:75.000\tnormalized Std:25.000\t/r/X_0.result"
