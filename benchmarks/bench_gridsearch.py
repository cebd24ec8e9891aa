#!/usr/bin/env python3
"""Benchmark: mirkit gridsearch vs scikit-learn GridSearchCV(SVC) on Gaia's full default grid.

Target (issue 3): the full default Gaia grid (6 preprocessings x 2 kernels x 9 C x 8 gamma x
2 balance = 1728 configurations x 5 folds) on 1000 tracks x ~900 dims in at least 20x less
time than GridSearchCV(SVC, n_jobs=2) over the same grid and folds, with identical
per-configuration accuracies.

What it measures:

1. It writes N synthetic descriptor files (Essentia JSON, 2.1-beta5 layout, 865 dims after
   ``basic``; :mod:`mirkit.svm.synthetic`, 4 balanced classes) with a groundtruth and a
   filelist.
2. mirkit: ``bin/gridsearch -j JOBS -v`` on the FULL default grid, end to end (loading the
   files, merging, the six preprocessings, the grid, 1728 .param/.result files, report.tsv,
   retraining the best model with probabilities). Wall time, and CPU time = the gridsearch
   process + its pool workers (which it reports with -v). Per preprocessing: the grid's
   CPU time in the workers.
3. scikit-learn: ``GridSearchCV(Pipeline(GaiaScaler, SVC), n_jobs=JOBS, refit=False)`` on
   the same features (mirkit's preprocessed datasets; ``GaiaScaler`` = Gaia's per-fold
   cleaner + independent min-max, enum codes unscaled, exactly what mirkit feeds libsvm),
   with Gaia's folds given as ``cv``, over, per preprocessing:
   * a stratified sample of the configurations: for each (kernel, balance) cell, every C
     once, each with a different gamma (gamma index = C index + an offset that differs per
     cell and per preprocessing, so one preprocessing's 36 configurations cover 36 distinct
     (C, gamma) pairs and the six preprocessings cover all 72 several times) -- 36 of 288
     configurations, 180 fits;
   * or all 288 configurations (``--sklearn-full PREP``; default: ``mfcc``, whose cost is
     dominated by a few slow high-C polynomial solves that a sample would estimate badly).
   Wall and CPU (this process + the joblib workers, read from /proc, workers started
   before the clock starts) are measured per preprocessing; a sampled preprocessing is
   extrapolated to its 288 configurations by the factor 288 / sampled configurations (the
   sample is balanced over kernel, C, gamma and balance, so the factor is the ratio of fit
   counts); the total is the sum over the six preprocessings.
4. Identical accuracies: for every configuration scikit-learn ran, the number of correct
   test predictions per fold must equal mirkit's (from its .result files).

Ratios are printed overall (wall and CPU, mirkit end to end against scikit-learn's grid
alone) and per preprocessing (CPU: scikit-learn's extrapolated CPU over mirkit's grid CPU
for that preprocessing). CPU time is the meaningful measure on a machine shared with other
jobs; wall times are printed too.

Measured on the 2-core machine, 1000 tracks, -j 2. Run 1 (idle machine): mirkit 29.0 s
wall / 51.3 s CPU (grid 43.7 s CPU, of which mfcc 29.7 s; workers idle at the end 0.0 and
0.2 s); scikit-learn: 2340 fits measured (the five 180-fit samples + all 1440 mfcc fits),
632 s wall / 1172 s CPU extrapolated to 8640 fits: 21.8x wall, 22.8x CPU. Run 2 (mirkit's
main process trimmed; scikit-learn's part under load from other jobs): mirkit 27.4 s wall /
49.3 s CPU, scikit-learn 763 s wall / 1136 s CPU: 27.9x wall, 23.0x CPU. Per preprocessing
(CPU) 64-86x for the four with 647-865 dims, 35-38x nobands, 7x mfcc. Run 3, no
extrapolation (``--skip-mirkit --preps P --sklearn-full P`` for the five others, niced under
load, so CPU only): all 8640 fits took 1207 CPU s (basic 229, lowlevel 187, nobands 112,
normalized 230, gaussianized 240, mfcc 209): 24.5x mirkit's 49.3 CPU s; 1728/1728
configurations identical fold by fold. Final code (folds worked pair by pair; idle
machine): mirkit 27.7 s wall / 49.7 s CPU: 22.8x run 1's scikit-learn wall, 24.3x run 3's
CPU. 468/468 compared
configurations identical fold by fold; the .result files identical byte for byte to those
of the engine before the shared-C solves. (Session 1, before the shared-C solves and on a
loaded machine: mirkit 62 s wall / 88 s CPU, 14.6x CPU.)

Usage: python benchmarks/bench_gridsearch.py [--tracks 1000] [--jobs 2]
       [--sklearn-full mfcc] [--preps basic,...] [--keep DIR] [--no-sklearn]
       [--sklearn-from EARLIER_OUTPUT]
Takes about 30 s for mirkit and 5-6 min for scikit-learn (2 cores, 2 jobs).
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
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

PREPS = ["basic", "lowlevel", "nobands", "normalized", "gaussianized", "mfcc"]
KERNELS = ["poly", "rbf"]
CS = list(range(-5, 12, 2))                 # 9 values
GAMMAS = [3, 1, -1, -3, -5, -7, -9, -11]    # 8 values
BALANCE = [False, True]
FULL_PER_PREP = len(KERNELS) * len(CS) * len(GAMMAS) * len(BALANCE)  # 288


def sample_configs(prep_index):
    """36 configurations: per (kernel, balance) cell, each C once with gamma index
    (C index + offset) mod 8, offset = 2*kernel + balance + prep index (distinct per cell)."""
    out = []
    for k, kernel in enumerate(KERNELS):
        for b, balance in enumerate(BALANCE):
            offset = 2 * k + b + prep_index
            for i, c in enumerate(CS):
                out.append((kernel, c, GAMMAS[(i + offset) % len(GAMMAS)], balance))
    return out


def all_configs():
    return [(k, c, g, b) for k in KERNELS for c in CS for g in GAMMAS for b in BALANCE]


def cpu_self_and_children():
    """CPU seconds of this process, its reaped children, and its live children (read from
    /proc: the joblib workers stay alive between searches)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == me:  # ppid
            total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    return total


# ---------------------------------------------------------------------------------------
# mirkit
# ---------------------------------------------------------------------------------------

def run_mirkit(workdir, gt, fl, jobs):
    """bin/gridsearch on the full default grid. Returns a dict of timings."""
    from mirkit.gaia.project import template_text
    pdir = os.path.join(workdir, "proj-full")
    os.makedirs(pdir, exist_ok=True)
    text = template_text("2.1-beta5", "synthetic", os.path.join(pdir, "datasets"),
                         os.path.join(pdir, "results"), fl, gt, seed=1)
    pfile = os.path.join(pdir, "project.yaml")
    with open(pfile, "w") as fh:
        fh.write(text)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"), OMP_NUM_THREADS="1")
    t0 = time.time()
    r0 = os.times()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "gridsearch"), gt, fl,
                           "-p", pfile, "-j", str(jobs), "-v", "--force"], env=env,
                          capture_output=True, text=True)
    wall = time.time() - t0
    r1 = os.times()
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("gridsearch failed")
    # the gridsearch process itself; its pool workers are not reaped into it (forkserver
    # children), it reports their CPU time with -v
    main_cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    worker_cpu, grid_cpu, per_prep, grid_line = 0.0, 0.0, {}, ""
    for line in proc.stderr.splitlines():
        if "grid CPU per preprocessing:" in line:
            for part in line.split(":", 2)[2].split(","):
                name, value = part.split()[:2]
                per_prep[name] = float(value)
        if "s CPU in the workers" in line:
            value = float(line.split(" s CPU in the workers")[0].split()[-1])
            worker_cpu += value
            if "grid:" in line:
                grid_cpu = value
                grid_line = line.split("grid:", 1)[1].strip()
    return {"dir": pdir, "wall": wall, "cpu": main_cpu + worker_cpu, "main_cpu": main_cpu,
            "grid_cpu": grid_cpu, "grid_cpu_per_prep": per_prep,
            "grid_line": grid_line, "result_line": proc.stdout.strip()}


def mirkit_fold_counts(pdir):
    """{(prep, kernel, C, gamma, balance): [correct per fold]} from the .result files."""
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
        key = (model["preprocessing"], model["kernel"].lower(), int(model["C"]),
               int(model["gamma"]), bool(model["balanceClasses"]))
        out[key] = [counts.get(f, 0) for f in range(5)]
    return out


# ---------------------------------------------------------------------------------------
# scikit-learn
# ---------------------------------------------------------------------------------------

def sklearn_setup(pdir, gt_path, prep):
    from mirkit.gaia.dataset import Dataset
    from mirkit.gaia.folds import gaia_folds
    from mirkit.gaia.groundtruth import load_groundtruth
    from mirkit.svm.features import FeatureBlock

    pds = Dataset.load(os.path.join(pdir, "datasets", f"synthetic-{prep}.npz"))
    block = FeatureBlock.from_dataset(pds)
    gt = load_groundtruth(gt_path)
    classes = sorted(set(gt.labels.values()))
    y = np.array([classes.index(gt.labels[p]) for p in pds.ids])
    _, fold_of = gaia_folds(gt.labels, 5, 1)
    fold = np.array([fold_of[p] for p in pds.ids])
    cv = [(np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]) for f in range(5)]
    return block, y, cv


def make_scaler(block):
    from sklearn.base import BaseEstimator, TransformerMixin

    from mirkit.svm.features import FeatureBlock, fit_scaling

    class GaiaScaler(BaseEstimator, TransformerMixin):
        """Gaia's per-fold cleaner + independent min-max (enum codes unscaled)."""

        def fit(self, X, y=None):
            sub = FeatureBlock(block.names, block.kinds, block.dims, X.astype(np.float32))
            self.scaling_ = fit_scaling(sub, np.arange(len(X)))
            return self

        def transform(self, X):
            return self.scaling_.apply(X.astype(np.float32))

    return GaiaScaler()


def run_sklearn(pdir, gt_path, prep, configs, jobs):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    block, y, cv = sklearn_setup(pdir, gt_path, prep)
    grid = [{"svc__kernel": [k], "svc__C": [2.0 ** c], "svc__gamma": [2.0 ** g],
             "svc__class_weight": ["balanced" if b else None]} for k, c, g, b in configs]
    pipe = Pipeline([("scale", make_scaler(block)),
                     ("svc", SVC(degree=3, coef0=0.0, tol=1e-3, cache_size=100,
                                 shrinking=True))])
    search = GridSearchCV(pipe, grid, cv=cv, n_jobs=jobs, refit=False, scoring="accuracy",
                          error_score=np.nan)
    c0 = cpu_self_and_children()
    t0 = time.time()
    search.fit(block.matrix, y)
    wall = time.time() - t0
    cpu = cpu_self_and_children() - c0
    sizes = [len(t) for _, t in cv]
    counts = {}
    res = search.cv_results_
    for i, params in enumerate(res["params"]):
        key = (prep, params["svc__kernel"], int(round(np.log2(params["svc__C"]))),
               int(round(np.log2(params["svc__gamma"]))), params["svc__class_weight"] is not None)
        counts[key] = [int(round(res[f"split{f}_test_score"][i] * sizes[f])) for f in range(5)]
    return {"wall": wall, "cpu": cpu, "configs": len(configs), "fits": 5 * len(configs)}, counts


def warm_up_workers(jobs):
    """Start joblib's reusable workers before any clock starts (and import SVC in them)."""
    from joblib import Parallel, delayed
    Parallel(n_jobs=jobs)(delayed(_import_svc)() for _ in range(2 * jobs))


def _import_svc():
    from sklearn.svm import SVC  # noqa: F401
    return os.getpid()


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--preps", default=",".join(PREPS),
                    help="preprocessings to run scikit-learn on (default: all six)")
    ap.add_argument("--sklearn-full", default="mfcc",
                    help="comma-separated preprocessings run by scikit-learn over all 288 "
                         "configurations instead of the 36-configuration sample ('' for none)")
    ap.add_argument("--no-sklearn", action="store_true", help="time mirkit only")
    ap.add_argument("--skip-mirkit", action="store_true",
                    help="reuse the mirkit run kept in --keep DIR (timings from its "
                         "bench-mirkit.json)")
    ap.add_argument("--sklearn-from", metavar="FILE",
                    help="reuse the scikit-learn timings of an earlier run's output (its last "
                         "line, the JSON summary) instead of running scikit-learn again; the "
                         "accuracy check is then skipped")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    args = ap.parse_args()

    from mirkit.svm.synthetic import write_dataset
    workdir = args.keep or tempfile.mkdtemp(prefix="bench-gridsearch-")
    os.makedirs(workdir, exist_ok=True)
    gt = os.path.join(workdir, "groundtruth.yaml")
    fl = os.path.join(workdir, "filelist.yaml")
    if not (args.skip_mirkit and os.path.exists(gt)):
        t0 = time.time()
        gt, fl = write_dataset(workdir, args.tracks, args.classes, seed=7, separation=0.25)
        print(f"wrote {args.tracks} descriptor files in {time.time() - t0:.1f} s ({workdir})")

    saved = os.path.join(workdir, "bench-mirkit.json")
    if args.skip_mirkit:
        with open(saved) as fh:
            mk = json.load(fh)
    else:
        mk = run_mirkit(workdir, gt, fl, args.jobs)
        with open(saved, "w") as fh:
            json.dump(mk, fh)
    print(f"mirkit full default grid (1728 configurations x 5 folds = 8640 fits; loading "
          f"{args.tracks} files, merging, 6 preprocessings, result files, report and final model "
          f"included), -j {args.jobs}: {mk['wall']:.1f} s wall, {mk['cpu']:.1f} s CPU "
          f"(grid {mk['grid_cpu']:.1f} s CPU in the workers, "
          f"{mk['grid_cpu'] / 8640 * 1000:.1f} CPU ms per fit)\n  {mk['result_line']}")
    print(f"  grid: {mk.get('grid_line', '')}")
    print("  grid CPU per preprocessing: " + ", ".join(
        f"{k} {v:.1f} s" for k, v in mk["grid_cpu_per_prep"].items()))
    result = {"tracks": args.tracks, "jobs": args.jobs, "mirkit": mk}
    if args.no_sklearn:
        print(json.dumps(result))
        return

    ours = mirkit_fold_counts(mk["dir"])
    full_preps = {p for p in args.sklearn_full.split(",") if p}
    earlier = None
    if args.sklearn_from:
        with open(args.sklearn_from) as fh:
            earlier = json.loads(fh.read().strip().splitlines()[-1])["sklearn"]
    else:
        warm_up_workers(args.jobs)
    sk, compared, same, differ = {}, 0, 0, []
    for pi, prep in enumerate(PREPS):
        if prep not in args.preps.split(","):
            continue
        if earlier is not None:
            if prep not in earlier:
                continue
            m = dict(earlier[prep])
            counts = {}
            print(f"(scikit-learn {prep}: timings from {args.sklearn_from})")
        else:
            configs = all_configs() if prep in full_preps else sample_configs(pi)
            m, counts = run_sklearn(mk["dir"], gt, prep, configs, args.jobs)
        m["factor"] = FULL_PER_PREP / m["configs"]
        m["full_wall"] = m["wall"] * m["factor"]
        m["full_cpu"] = m["cpu"] * m["factor"]
        if earlier is None:
            m["identical"] = sum(1 for k in counts if ours.get(k) == counts[k])
            m["compared"] = len(counts)
        sk[prep] = m
        compared += len(counts)
        same += sum(1 for k in counts if ours.get(k) == counts[k])
        differ += [k for k in counts if ours.get(k) != counts[k]]
        mine = mk["grid_cpu_per_prep"].get(prep)
        how = ("all 288 configurations" if m["factor"] == 1 else
               f"stratified sample of {m['configs']} configurations, x {m['factor']:g} to 288")
        print(f"scikit-learn {prep} ({how}): measured {m['fits']} fits in {m['wall']:.1f} s wall, "
              f"{m['cpu']:.1f} s CPU ({m['cpu'] / m['fits'] * 1000:.0f} CPU ms per fit) -> "
              f"full {prep} {m['full_wall']:.0f} s wall, {m['full_cpu']:.0f} s CPU; mirkit grid "
              f"{mine:.1f} s CPU -> CPU ratio {m['full_cpu'] / mine:.1f}x; identical "
              f"{m['identical']}/{m['compared']}" + (" (in the earlier run)" if earlier else ""),
              flush=True)
    result["sklearn"] = sk
    if len(sk) == len(PREPS):
        sk_wall = sum(m["full_wall"] for m in sk.values())
        sk_cpu = sum(m["full_cpu"] for m in sk.values())
        measured_fits = sum(m["fits"] for m in sk.values())
        print(f"scikit-learn full grid (8640 fits; {measured_fits} measured, the rest "
              f"extrapolated per preprocessing as above): {sk_wall:.0f} s wall, {sk_cpu:.0f} s CPU")
        print(f"RATIO full grid, scikit-learn (grid only) / mirkit (end to end): wall "
              f"{sk_wall / mk['wall']:.1f}x, CPU {sk_cpu / mk['cpu']:.1f}x (grid CPU only: "
              f"{sk_cpu / mk['grid_cpu']:.1f}x)")
        result.update(sklearn_full_wall=sk_wall, sklearn_full_cpu=sk_cpu,
                      ratio_wall=sk_wall / mk["wall"], ratio_cpu=sk_cpu / mk["cpu"])
    if earlier is not None:
        print("accuracy check skipped (--sklearn-from); compare the results directories of "
              "the two mirkit runs instead")
    print(f"per-configuration, per-fold correct counts identical: {same}/{compared}"
          + (f"; different: {differ[:5]}" if differ else ""))
    result.update(identical_configs=same, compared_configs=compared)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
