#!/usr/bin/env python3
"""Check: on real descriptors, gridsearch's shared solves give every configuration exactly the
predictions of training it on its own.

bench_gridsearch.py measures speed on synthetic tracks with balanced classes. This script
checks exactness where it is harder: real music (Debian game soundtracks, the material of
bench_rhythm_tonal.py), descriptors from ``extract``, unbalanced classes (so balanceClasses
configurations are real weighted problems), Gaia's full default grid.

1. Audio: every track of five Debian packages (``apt-get download``, cached in
   ~/.cache/mirkit-bench); items are 10-second windows (0-10 s, 10-20 s, 20-30 s of each
   track long enough), the class is the package. ``extract -j JOBS --start --end`` per
   window; ids ``<file>#<window>``.
2. ``gridsearch`` on the record stream (stdin), full default grid, 5 folds, ``-j JOBS``.
3. For every configuration and fold: libsvm trained on that configuration alone, on dense
   vectors (libsvm's own kernel, ``svm_predict``: what Gaia does), compared with the test
   predictions behind the ``.result`` file (per-fold correct counts and every predicted
   class).

Usage: python benchmarks/bench_gridsearch_real.py [--jobs 2] [--keep DIR] [--windows 3]
Takes about 12 minutes on 2 cores (extraction 1.5 min, gridsearch 20 s, the direct
per-configuration check 10 min).

Measured (2 cores, shared with other jobs): 557 items from 374 files (drascula-music 510,
extremetuxracer-data 20, asc-music / frozen-bubble-data / lincity-ng-data 9 each); gridsearch
full default grid 17.4 s wall; 1728/1728 configurations give the predictions of their own
libsvm training in every fold.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "lib"))
sys.path.insert(0, HERE)
os.environ["OMP_NUM_THREADS"] = "1"

import msgpack  # noqa: E402
import numpy as np  # noqa: E402

import bench_rhythm_tonal  # noqa: E402  (the Debian soundtrack material)

WINDOW = 10.0
ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"), OMP_NUM_THREADS="1")


def all_tracks(cache):
    """Every decodable audio file of the packages, with its package name."""
    import soundfile as sf
    out = []
    for pkg in bench_rhythm_tonal.PACKAGES:
        try:
            root = bench_rhythm_tonal.fetch_package(cache, pkg)
        except (subprocess.CalledProcessError, IndexError) as exc:
            print(f"  (skipping {pkg}: {exc})")
            continue
        for d, _, files in os.walk(root):
            for f in sorted(files):
                if not f.lower().endswith((".ogg", ".mp3", ".wav", ".flac")):
                    continue
                path = os.path.join(d, f)
                try:
                    seconds = sf.info(path).duration
                except Exception:
                    continue
                out.append((pkg, path, seconds))
    return sorted(out)


def extract_windows(tracks, windows, jobs, out_path):
    """extract each window of every long-enough track; returns {id: class}."""
    labels = {}
    with open(out_path, "wb") as out:
        for w in range(windows):
            start, end = w * WINDOW, (w + 1) * WINDOW
            chosen = [(pkg, p) for pkg, p, sec in tracks if sec >= end]
            if not chosen:
                continue
            proc = subprocess.run(
                [sys.executable, os.path.join(ROOT, "bin", "extract"), "-q", "-j", str(jobs),
                 "--start", str(start), "--end", str(end)],
                input="\n".join(p for _, p in chosen).encode(), capture_output=True, env=ENV)
            unpacker = msgpack.Unpacker(raw=False)
            unpacker.feed(proc.stdout)
            klass = dict((p, pkg) for pkg, p in chosen)
            for rec in unpacker:
                src = rec["metadata"]["id"]  # the audio path
                pid = f"{src}#{w}"
                rec["metadata"]["id"] = pid
                labels[pid] = klass.get(src)
                out.write(msgpack.packb(rec))
    return {k: v for k, v in labels.items() if v is not None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()

    from mirkit import yamlio
    from mirkit.gaia.dataset import Dataset
    from mirkit.gaia.folds import gaia_folds
    from mirkit.gaia.metrics import ConfusionMatrix
    from mirkit.svm.engine import evaluate_config_direct
    from mirkit.svm.features import FeatureBlock

    work = args.keep or tempfile.mkdtemp(prefix="bench-gridsearch-real-")
    os.makedirs(work, exist_ok=True)
    cache = os.path.expanduser("~/.cache/mirkit-bench")
    tracks = all_tracks(cache)
    records = os.path.join(work, "records.msgpack")
    gt_path = os.path.join(work, "groundtruth.yaml")
    t0 = time.time()
    if not os.path.exists(gt_path):
        labels = extract_windows(tracks, args.windows, args.jobs, records)
        with open(gt_path, "w") as fh:
            fh.write(yamlio.dump({"className": "package", "groundTruth": labels,
                                  "type": "singleClass", "version": 1.0}))
    gt = yamlio.load(gt_path, gaia=False)["groundTruth"]
    counts = collections.Counter(gt.values())
    print(f"{len(gt)} items from {len(tracks)} files ({time.time() - t0:.0f} s): "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    pdir = os.path.join(work, "project")
    t0 = time.time()
    with open(records, "rb") as fh:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "gridsearch"), gt_path,
                               "-", "-d", pdir, "-j", str(args.jobs), "--force", "-v"],
                              stdin=fh, capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("gridsearch failed")
    print(f"gridsearch full default grid: {time.time() - t0:.1f} s wall")
    print("  " + proc.stdout.strip())

    # the direct check
    t0 = time.time()
    rdir = os.path.join(pdir, "results")
    classes = sorted(set(gt.values()))
    cache_blocks = {}
    compared = identical = 0
    differ = []
    for name in sorted(os.listdir(rdir)):
        if not name.endswith(".result"):
            continue
        stem = os.path.join(rdir, name[:-len(".result")])
        model = yamlio.load(stem + ".param", gaia=False)["model"]
        prep = model["preprocessing"]
        if prep not in cache_blocks:
            pds = Dataset.load(os.path.join(pdir, "datasets", f"package-{prep}.npz"))
            block = FeatureBlock.from_dataset(pds)
            y = np.array([classes.index(gt[p]) for p in pds.ids])
            _, fold_of = gaia_folds(gt, 5, 1)
            fold = np.array([fold_of[p] for p in pds.ids])
            cache_blocks[prep] = (pds.ids, block, y, fold)
        ids, block, y, fold = cache_blocks[prep]
        cm = ConfusionMatrix.load(stem + ".result")
        predicted = {}
        for exp, row in cm.matrix.items():
            for pred, pids in row.items():
                for pid in pids:
                    predicted[pid] = pred
        ok = True
        for f in range(5):
            test = np.nonzero(fold == f)[0]
            train = np.nonzero(fold != f)[0]
            direct = evaluate_config_direct(block, y, len(classes), train, test, model)
            ours = [predicted[ids[i]] for i in test]
            if [classes[c] for c in direct] != ours:
                ok = False
        compared += 1
        identical += ok
        if not ok:
            differ.append(model)
    print(f"direct per-configuration training ({time.time() - t0:.0f} s): "
          f"{identical}/{compared} configurations give identical predictions in every fold"
          + (f"; different: {differ[:3]}" if differ else ""))
    print(json.dumps({"items": len(gt), "classes": dict(counts), "compared": compared,
                      "identical": identical}))


if __name__ == "__main__":
    main()
