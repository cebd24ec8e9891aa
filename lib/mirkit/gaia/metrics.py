"""Confusion matrices, Gaia's accuracy figures, ranking, report.tsv and the HTML report
(gaia.md §1.6, §1.7, §6.2, §6.3).

All figures are percentages:

* ``accuracy``: pooled over every test prediction of every fold;
* ``std``: population std of the per-fold accuracies, over folds holding test points;
* ``normalized_accuracy``: mean over folds of the per-fold mean recall (over the classes
  present as true labels in that fold); ``normalized_std`` its population std.
"""

import csv
import html
import io
import json
import math

from .. import yamlio

REPORT_COLUMNS = ["accuracy_rank", "accuracy", "accuracy_std", "normalized_accuracy_rank",
                  "normalized_accuracy", "normalized_accuracy_std", "results_file", "param_file",
                  "kernel", "C", "preprocessing", "balance_classes", "type", "classifier", "gamma",
                  "evaluation"]
EXTRA_COLUMNS = ["status", "reason"]


class ConfusionMatrix:
    """``matrix[true][predicted] = [ids]`` and ``fold[id] = fold index``."""

    def __init__(self, matrix=None, fold=None):
        self.matrix = matrix if matrix is not None else {}
        self.fold = fold if fold is not None else {}

    def add(self, expected, predicted, pid, fold):
        self.matrix.setdefault(expected, {}).setdefault(predicted, []).append(pid)
        self.fold[pid] = fold

    @classmethod
    def from_predictions(cls, expected, predicted, fold_of):
        """Build from ``{id: true}``, ``{id: predicted}`` and ``{id: fold}`` (ids sorted in
        each cell, for deterministic files)."""
        cm = cls()
        for pid in sorted(predicted):
            cm.add(expected[pid], predicted[pid], pid, fold_of[pid])
        return cm

    def classes(self):
        out = set(self.matrix)
        for row in self.matrix.values():
            out.update(row)
        return sorted(out)

    def _items(self):
        for exp, row in self.matrix.items():
            for pred, ids in row.items():
                for pid in ids:
                    yield exp, pred, pid

    def total(self):
        return sum(len(ids) for row in self.matrix.values() for ids in row.values())

    def correct(self):
        return sum(len(row.get(exp, [])) for exp, row in self.matrix.items())

    def folds(self):
        return sorted(set(self.fold.values()))

    def accuracy(self):
        total = self.total()
        return self.correct() * 100.0 / total if total else 0.0

    def fold_accuracies(self):
        stats = {}
        for exp, pred, pid in self._items():
            f = self.fold[pid]
            n, ok = stats.get(f, (0, 0))
            stats[f] = (n + 1, ok + (exp == pred))
        return [ok * 100.0 / n for f, (n, ok) in sorted(stats.items()) if n]

    def fold_normalized_accuracies(self):
        per = {}  # fold -> class -> [n, correct]
        for exp, pred, pid in self._items():
            cell = per.setdefault(self.fold[pid], {}).setdefault(exp, [0, 0])
            cell[0] += 1
            cell[1] += exp == pred
        out = []
        for f in sorted(per):
            recalls = [ok * 100.0 / n for n, ok in per[f].values()]
            out.append(sum(recalls) / len(recalls))
        return out

    def std(self):
        return _pstd(self.fold_accuracies())

    def normalized_accuracy(self):
        values = self.fold_normalized_accuracies()
        return sum(values) / len(values) if values else 0.0

    def normalized_std(self):
        return _pstd(self.fold_normalized_accuracies())

    def summary(self):
        return {"accuracy": self.accuracy(), "std": self.std(),
                "normalized_accuracy": self.normalized_accuracy(),
                "normalized_std": self.normalized_std()}

    # ---- files ----------------------------------------------------------------------------
    def to_data(self):
        return {"fold": dict(sorted(self.fold.items())),
                "matrix": {e: {p: list(ids) for p, ids in sorted(row.items())}
                           for e, row in sorted(self.matrix.items())}}

    def to_yaml(self):
        """YAML text of :meth:`to_data` (keys sorted, as ``yaml.dump``); strings are written
        double-quoted (JSON style, valid YAML) so that any id reads back unchanged. Written
        directly rather than through PyYAML: a grid writes thousands of these."""
        q = json.dumps
        lines = ["fold:"]
        lines.extend(f"  {q(pid)}: {f}" for pid, f in sorted(self.fold.items()))
        if not self.fold:
            lines[-1] = "fold: {}"
        lines.append("matrix:" if self.matrix else "matrix: {}")
        for exp, row in sorted(self.matrix.items()):
            lines.append(f"  {q(exp)}:")
            for pred, ids in sorted(row.items()):
                lines.append(f"    {q(pred)}: [{', '.join(q(i) for i in ids)}]")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_data(cls, data):
        matrix = {str(e): {str(p): [str(i) for i in ids] for p, ids in row.items()}
                  for e, row in (data.get("matrix") or {}).items()}
        fold = {str(k): int(v) for k, v in (data.get("fold") or {}).items()}
        return cls(matrix, fold)

    @classmethod
    def load(cls, path):
        return cls.from_data(yamlio.load(path, gaia=False) or {})

    # ---- HTML -----------------------------------------------------------------------------
    def to_html(self):
        """A table of row percentages (%.2f), off-diagonal cells >= 10 % in red, and a
        Proportion column (100 * row count / total), as Gaia's ``toHtml``."""
        classes = self.classes()
        total = self.total()
        out = ["<table border=\"1\" cellpadding=\"4\" style=\"border-collapse: collapse\">",
               "<tr><th>Actual \\ Predicted (%)</th>"
               + "".join(f"<th>{html.escape(c)}</th>" for c in classes)
               + "<th>Proportion</th></tr>"]
        for exp in classes:
            row = self.matrix.get(exp, {})
            n = sum(len(v) for v in row.values())
            cells = []
            for pred in classes:
                pct = len(row.get(pred, [])) * 100.0 / n if n else 0.0
                style = ""
                if pred == exp:
                    style = " style=\"font-weight: bold\""
                elif pct >= 10:  # 10 %: the threshold Gaia hard-codes
                    style = " style=\"color: red\""
                cells.append(f"<td{style}>{pct:.2f}</td>")
            prop = n * 100.0 / total if total else 0.0
            out.append(f"<tr><th>{html.escape(exp)}</th>{''.join(cells)}<td>{prop:.2f}</td></tr>")
        out.append("</table>")
        return "\n".join(out) + "\n"


def _pstd(values):
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def html_report(class_name, project_file, cm):
    """The ``<model>.results.html`` page."""
    s = cm.summary()
    return ("<html><head><meta charset=\"utf-8\"><title>" + html.escape(class_name)
            + "</title></head><body>\n"
            f"<h1>{html.escape(class_name)} ({html.escape(str(project_file))})</h1>\n"
            f"Accuracy: {s['accuracy']}. Std: {s['std']}.<br>\n"
            f"Normalized accuracy: {s['normalized_accuracy']}. "
            f"Normalized std: {s['normalized_std']}.<br>\n"
            + cm.to_html() + "</body></html>\n")


def result_line(project_file, summary, result_file):
    """Gaia's summary line (printed on stdout)."""
    return (f"RESULT {project_file}\tAcc:{summary['accuracy']:.3f}\tStd:{summary['std']:.3f}"
            f"\tnormalized Acc:{summary['normalized_accuracy']:.3f}"
            f"\tnormalized Std:{summary['normalized_std']:.3f}\t{result_file}")


# ---- ranking ---------------------------------------------------------------------------

def rank(entries):
    """Sort ``entries`` (dicts with accuracy, std, normalized_accuracy, normalized_std,
    results_file) the way Gaia's ``ClassificationResults.best`` does: descending on that
    tuple. Returns the sorted list; each entry gets ``accuracy_rank`` and
    ``normalized_accuracy_rank`` (Gaia's rule: sort the pairs (normalized accuracy, accuracy
    rank) descending)."""
    ranked = sorted(entries, key=lambda e: (e["accuracy"], e["std"], e["normalized_accuracy"],
                                            e["normalized_std"], e["results_file"]),
                    reverse=True)
    for i, e in enumerate(ranked):
        e["accuracy_rank"] = i + 1
    pairs = sorted(((e["normalized_accuracy"], e["accuracy_rank"]) for e in ranked), reverse=True)
    position = {pair: i + 1 for i, pair in enumerate(pairs)}
    for e in ranked:
        e["normalized_accuracy_rank"] = position[(e["normalized_accuracy"], e["accuracy_rank"])]
    return ranked


def _str(value):
    if isinstance(value, float):
        return repr(value)
    return str(value)


def report_tsv(ranked, failed=()):
    """``report.tsv`` text: Gaia's 16 columns (same names and order, tab-separated, header
    first) plus ``status`` and ``reason``. ``ranked`` from :func:`rank` (each entry with
    ``results_file``, ``param_file``, ``model`` and ``evaluation`` dicts); ``failed`` entries
    (``results_file``, ``param_file``, ``model``, ``evaluation``, ``reason``) follow, with
    empty rank and metric columns."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=REPORT_COLUMNS + EXTRA_COLUMNS, delimiter="\t",
                            lineterminator="\n")
    writer.writeheader()

    def common(e):
        m = e["model"]
        return {"results_file": e["results_file"], "param_file": e["param_file"],
                "kernel": _str(m.get("kernel", "")), "C": _str(m.get("C", "")),
                "preprocessing": _str(m.get("preprocessing", "")),
                "balance_classes": _str(m.get("balanceClasses", False)),
                "type": _str(m.get("type", "")), "classifier": _str(m.get("classifier", "")),
                "gamma": _str(m.get("gamma", "")), "evaluation": repr(e["evaluation"])}

    for e in ranked:
        row = common(e)
        row.update({"accuracy_rank": e["accuracy_rank"], "accuracy": _str(e["accuracy"]),
                    "accuracy_std": _str(e["std"]),
                    "normalized_accuracy_rank": e["normalized_accuracy_rank"],
                    "normalized_accuracy": _str(e["normalized_accuracy"]),
                    "normalized_accuracy_std": _str(e["normalized_std"]),
                    "status": "ok", "reason": ""})
        writer.writerow(row)
    for e in failed:
        row = common(e)
        row.update({k: "" for k in REPORT_COLUMNS[:6]})
        row["results_file"] = ""  # a failed configuration has no .result
        row.update({"status": "failed", "reason": " ".join(str(e["reason"]).split())})
        writer.writerow(row)
    return buf.getvalue()
