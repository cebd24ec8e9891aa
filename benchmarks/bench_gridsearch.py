#!/usr/bin/env python3
"""Benchmark: mirkit gridsearch vs scikit-learn GridSearchCV(SVC) on Gaia's grid.

Target (issue 3): the full default Gaia grid (6 preprocessings x 2 kernels x 9 C x 8 gamma
x 2 balance = 1728 configurations x 5 folds) on 1000 tracks x ~900 dims in at least 20x less
time than GridSearchCV(SVC, n_jobs=2) over the same grid and folds, with identical
per-configuration accuracies.

What it does:

1. writes N synthetic descriptor files (Essentia JSON, 2.1-beta5 layout, ~880 dims after
   ``basic``; :mod:`mirkit.svm.synthetic`, 4 balanced classes) with a groundtruth and a
   filelist;
2. for the ``basic`` (865 dims) and ``mfcc`` (13 dims) preprocessings, on the subset grid
   (both kernels x C in {-5,1,7} x gamma in {1,-3,-7} x both balance settings: 36
   configurations, 180 fits each):
   * times ``bin/gridsearch -j 2`` end to end (loading the files, merging, the preprocessing,
     the grid, report.tsv, retraining the best model); CPU time includes the pool workers,
     which gridsearch reports with ``-v``;
   * times scikit-learn ``GridSearchCV(Pipeline(GaiaScaler, SVC), n_jobs=2)`` on the same
     features (mirkit's preprocessed dataset), Gaia's folds given as ``cv``, ``refit=False``;
     ``GaiaScaler`` applies the same per-fold cleaner + min-max as Gaia (enum codes
     unscaled), so both sides train on identical features; joblib's workers are reaped so
     that their CPU time counts;
3. compares, configuration by configuration and fold by fold, the numbers of correct test
   predictions (scikit-learn's per-fold scores x fold sizes vs mirkit's ``.result`` files);
4. extrapolates both sides to the full default grid (8x the subset's C x gamma; ``basic``
   standing for the five preprocessings with hundreds of dims -- an overestimate for lowlevel
   and nobands -- and ``mfcc`` for itself): the full scikit-learn run (8640 fits, about half
   an hour of CPU) is too long for a shared 2-core machine. ``--full`` also times mirkit on
   the real full grid.

CPU time is the meaningful measure on a machine shared with other jobs; wall times are
printed too.

Usage: python benchmarks/bench_gridsearch.py [--tracks 1000] [--full] [--sklearn-full]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "lib"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

SUBSET = {"preprocessing": ["basic", "mfcc"], "C": [-5, 1, 7], "gamma": [1, -3, -7]}


def project_text(template, subset, preps=None):
    """The default 2.1-beta5 project, optionally with the grid cut to the subset."""
    if not subset:
        return template
    preps = preps or SUBSET["preprocessing"]
    out = []
    for line in template.splitlines():
        s = line.strip()
        if s.startswith("- preprocessing:"):
            line = line.split("[")[0] + "[ " + ", ".join(preps) + " ]"
        elif s.startswith("C:"):
            line = line.split("[")[0] + "[ " + ", ".join(map(str, SUBSET["C"])) + " ]"
        elif s.startswith("gamma:"):
            line = line.split("[")[0] + "[ " + ", ".join(map(str, SUBSET["gamma"])) + " ]"
        out.append(line)
    return "\n".join(out) + "\n"


def run_mirkit(workdir, gt, fl, subset, jobs, preps=None):
    """Time bin/gridsearch end to end. Returns (project dir, wall, CPU, grid CPU, RESULT)."""
    from mirkit.gaia.project import template_text
    name = ("proj-" + "-".join(preps)) if preps else ("proj-subset" if subset else "proj-full")
    pdir = os.path.join(workdir, name)
    os.makedirs(pdir, exist_ok=True)
    text = template_text("2.1-beta5", "synthetic", os.path.join(pdir, "datasets"),
                         os.path.join(pdir, "results"), fl, gt, seed=1)
    pfile = os.path.join(pdir, "project.yaml")
    with open(pfile, "w") as fh:
        fh.write(project_text(text, subset, preps))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"), OMP_NUM_THREADS="1")
    t0 = time.time()
    r0 = os.times()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "gridsearch"), gt, fl,
                           "-p", pfile, "-j", str(jobs), "-v"], env=env, capture_output=True,
                          text=True)
    wall = time.time() - t0
    r1 = os.times()
    # the gridsearch process itself (its pool workers are not its reaped children: it
    # reports their CPU time on stderr with -v)
    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    grid = 0.0
    for line in proc.stderr.splitlines():
        if "grid CPU per preprocessing" in line:
            print("  " + line.split(": ", 1)[1])
        if "s CPU in the workers" in line:
            value = float(line.split(" s CPU in the workers")[0].split()[-1])
            cpu += value
            if "grid:" in line:
                grid = value
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("gridsearch failed")
    return pdir, wall, cpu, grid, proc.stdout.strip()


def mirkit_fold_counts(pdir):
    """{(kernel, C, gamma, balance): [correct per fold]} from the .result files."""
    from mirkit import yamlio
    from mirkit.gaia.metrics import ConfusionMatrix
    out = {}
    rdir = os.path.join(pdir, "results")
    for name in os.listdir(rdir):
        if not name.endswith(".result"):
            continue
        stem = os.path.join(rdir, name[:-len(".result")])
        model = yamlio.load(stem + ".param", gaia=False)["model"]
        cm = ConfusionMatrix.load(stem + ".result")
        counts = {}
        for exp, row in cm.matrix.items():
            for pred, ids in row.items():
                for pid in ids:
                    f = cm.fold[pid]
                    counts[f] = counts.get(f, 0) + (exp == pred)
        key = (model["preprocessing"], model["kernel"].lower(), model["C"], model["gamma"],
               bool(model["balanceClasses"]))
        out[key] = [counts.get(f, 0) for f in range(5)]
    return out


def run_sklearn(pdir, gt_path, full, jobs, prep):
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from mirkit.gaia.dataset import Dataset
    from mirkit.gaia.folds import gaia_folds
    from mirkit.gaia.groundtruth import load_groundtruth
    from mirkit.svm.features import FeatureBlock, fit_scaling

    pds = Dataset.load(os.path.join(pdir, "datasets", f"synthetic-{prep}.npz"))
    block = FeatureBlock.from_dataset(pds)
    gt = load_groundtruth(gt_path)
    classes = sorted(set(gt.labels.values()))
    y = np.array([classes.index(gt.labels[p]) for p in pds.ids])
    _, fold_of = gaia_folds(gt.labels, 5, 1)
    fold = np.array([fold_of[p] for p in pds.ids])
    cv = [(np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]) for f in range(5)]

    class GaiaScaler(BaseEstimator, TransformerMixin):
        """Gaia's per-fold cleaner + independent min-max (enum codes unscaled)."""

        def fit(self, X, y=None):
            sub = FeatureBlock(block.names, block.kinds, block.dims, X.astype(np.float32))
            self.scaling_ = fit_scaling(sub, np.arange(len(X)))
            return self

        def transform(self, X):
            return self.scaling_.apply(X.astype(np.float32))

    Cs = list(range(-5, 12, 2)) if full else SUBSET["C"]
    gammas = [3, 1, -1, -3, -5, -7, -9, -11] if full else SUBSET["gamma"]
    grid = {"svc__kernel": ["poly", "rbf"], "svc__C": [2.0 ** c for c in Cs],
            "svc__gamma": [2.0 ** g for g in gammas], "svc__class_weight": [None, "balanced"]}
    pipe = Pipeline([("scale", GaiaScaler()), ("svc", SVC(degree=3, coef0=0.0, tol=1e-3,
                                                          cache_size=100, shrinking=True))])
    search = GridSearchCV(pipe, grid, cv=cv, n_jobs=jobs, refit=False, scoring="accuracy",
                          error_score=np.nan)
    t0 = time.time()
    r0 = os.times()
    search.fit(block.matrix, y)
    wall = time.time() - t0
    try:  # reap joblib's worker processes so that their CPU time is counted
        from joblib.externals.loky import get_reusable_executor
        get_reusable_executor().shutdown(wait=True)
    except Exception:  # pragma: no cover - depends on the joblib version
        pass
    r1 = os.times()
    cpu = (r1.user - r0.user) + (r1.system - r0.system) + \
        (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    sizes = [len(t) for _, t in cv]
    counts = {}
    res = search.cv_results_
    for i, params in enumerate(res["params"]):
        key = (prep, params["svc__kernel"], int(round(np.log2(params["svc__C"]))),
               int(round(np.log2(params["svc__gamma"]))), params["svc__class_weight"] is not None)
        counts[key] = [int(round(res[f"split{f}_test_score"][i] * sizes[f])) for f in range(5)]
    return wall, cpu, len(res["params"]) * 5, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also time mirkit on the full grid")
    ap.add_argument("--sklearn-full", action="store_true",
                    help="time scikit-learn on the full basic grid (slow)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    args = ap.parse_args()

    from mirkit.svm.synthetic import write_dataset
    workdir = args.keep or tempfile.mkdtemp(prefix="bench-gridsearch-")
    os.makedirs(workdir, exist_ok=True)
    t0 = time.time()
    gt, fl = write_dataset(workdir, args.tracks, args.classes, seed=7, separation=0.25)
    print(f"wrote {args.tracks} descriptor files in {time.time() - t0:.1f} s ({workdir})")

    ours, theirs = {}, {}
    mk, sk = {}, {}
    for prep in SUBSET["preprocessing"]:
        pdir, wall, cpu, grid, line = run_mirkit(workdir, gt, fl, True, args.jobs, [prep])
        mk[prep] = (wall, cpu, grid)
        print(f"mirkit {prep} subset (36 configs x 5 folds; loading {args.tracks} files, merging, "
              f"preprocessing, report and final model included): {wall:.1f} s wall, {cpu:.1f} s "
              f"CPU, of which the grid {grid:.1f} s CPU ({grid / 180 * 1000:.0f} CPU ms per fit)"
              f"\n  {line}")
        ours.update(mirkit_fold_counts(pdir))
        w, c, n, counts = run_sklearn(pdir, gt, args.sklearn_full, args.jobs, prep)
        sk[prep] = (w, c, n)
        print(f"scikit-learn GridSearchCV(SVC) n_jobs={args.jobs}, {prep}: {n} fits in {w:.1f} s "
              f"wall, {c:.1f} s CPU ({c / n * 1000:.0f} CPU ms per fit)")
        print(f"  ratio {prep}: wall {w / wall:.1f}x, CPU {c / cpu:.1f}x (grid only: "
              f"{c / grid:.1f}x)")
        theirs.update(counts)
    same = sum(1 for k in theirs if k in ours and ours[k] == theirs[k])
    differ = [k for k in theirs if k in ours and ours[k] != theirs[k]]
    print(f"per-configuration, per-fold correct counts identical: {same}/{len(theirs)}"
          + (f"; different: {differ[:5]}" if differ else ""))
    # full grid: 8x the subset's C x gamma; basic stands for the 5 preprocessings with
    # hundreds of dims (an overestimate for lowlevel and nobands), mfcc for itself
    k = 8640 / (6 * 180)  # = 8: the full grid is 48 subsets of 180 fits
    sk_full_cpu = k * (5 * sk["basic"][1] + sk["mfcc"][1])
    sk_full_est = k * (5 * sk["basic"][0] + sk["mfcc"][0])
    overhead = mk["basic"][1] - mk["basic"][2]
    mk_full_cpu = overhead + k * (5 * mk["basic"][2] + mk["mfcc"][2])
    print(f"full grid extrapolated (C x gamma x 8; basic x 5 + mfcc): scikit-learn "
          f"{sk_full_cpu:.0f} s CPU, mirkit {mk_full_cpu:.0f} s CPU -> {sk_full_cpu / mk_full_cpu:.1f}x")
    result = {"tracks": args.tracks, "mirkit": mk, "sklearn": sk, "identical_configs": same,
              "compared_configs": len(theirs), "sklearn_full_estimate_cpu": sk_full_cpu,
              "mirkit_full_estimate_cpu": mk_full_cpu,
              "full_ratio_estimate_cpu": sk_full_cpu / mk_full_cpu}
    if args.full:
        pdir_f, wall_full, cpu_full, _, line_f = run_mirkit(workdir, gt, fl, False, args.jobs)
        print(f"mirkit full default grid (1728 configs x 5 folds, files loaded included): "
              f"{wall_full:.1f} s wall, {cpu_full:.1f} s CPU\n  {line_f}")
        print(f"full-grid ratio (sklearn extrapolated / mirkit measured): wall "
              f"{sk_full_est / wall_full:.1f}x, CPU {sk_full_cpu / cpu_full:.1f}x")
        result.update(mirkit_full_wall=wall_full, mirkit_full_cpu=cpu_full,
                      full_ratio_cpu=sk_full_cpu / cpu_full)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
