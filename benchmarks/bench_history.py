#!/usr/bin/env python3
"""Throughput of mirkit's .history classifier vs Essentia's GaiaTransform.

For every model of ../shared/fixtures/gaia/history-reference, the 30 reference pools are
repeated into a stream of --records records and classified with mirkit

* in batches (``predict_many``, what ``classify`` uses), and
* one record at a time (``predict``).

The oracle (optional) is Essentia's ``GaiaTransform`` from essentia==2.1b6.dev234, the last
wheel that can run .history files; it needs Python 3.7 (history-format.md §12)::

    make oracle-gaia        # Python 3.7 venv in .oracle-gaia/ with essentia==2.1b6.dev234

It runs in a subprocess of that interpreter, with ONE GaiaTransform instance reused for all
pools (its best case) and the pools already loaded into essentia Pools, so only the transform
itself is timed (best of --oracle-repeat passes). mirkit is timed the same way: records
already in memory, best of --repeat passes. It also reports whether both give the same value
on every pool.

End to end (the issue-4 target): ``bin/classify -m MODEL`` on a msgpack stream of --records
and of 5 x --records records (msgpack in, msgpack out, a subprocess as a user runs it);
the difference of the two wall times gives the records/s after interpreter start-up and
model loading, and the long run alone the rate including them. Both are compared with
GaiaTransform's pools/s.

    PYTHONPATH=lib python benchmarks/bench_history.py [--records 600] [--oracle-python PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from mirkit.gaia.history import load_model  # noqa: E402

REFDIR = ROOT.parent / "shared" / "fixtures" / "gaia" / "history-reference"
HISTDIR = ROOT.parent / "shared" / "fixtures" / "gaia" / "history"

ORACLE = r"""
import json, sys, time
import essentia
essentia.log.infoActive = False
essentia.log.warningActive = False
import essentia.standard as es
jobs = json.loads(sys.stdin.read())
out = {}
for model, (history, pool_files, repeat, cname) in jobs.items():
    pools = [es.YamlInput(filename=p, format='json')() for p in pool_files]
    g = es.GaiaTransform(history=history)
    values = []
    for p in pools:
        res = g(p)
        names = res.descriptorNames()
        key = cname + '.value' if cname + '.value' in names else cname
        values.append(res[key] if key in names else None)
    best = best_cpu = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for p in pools:
            g(p)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best = dt if best is None else min(best, dt)
        best_cpu = dc if best_cpu is None else min(best_cpu, dc)
    out[model] = {"seconds": best, "cpu": best_cpu, "pools": len(pools), "values": values}
print(json.dumps(out))
"""


def history_file(ref_name):
    stem = ref_name.split("__")[-1]
    for suffix in (".history", ".hist"):
        if (HISTDIR / (stem + suffix)).exists():
            return HISTDIR / (stem + suffix)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=600, help="records per model (default 600)")
    ap.add_argument("--batch", type=int, default=100, help="predict_many batch size")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats, best kept")
    ap.add_argument("--only", metavar="NAME", action="append", default=[],
                    help="measure only these reference models (e.g. mood_happy; repeatable)")
    ap.add_argument("--no-cli", action="store_true",
                    help="skip the end-to-end 'classify' measurement (msgpack in and out)")
    ap.add_argument("--oracle-python", default=os.environ.get("MIRKIT_GAIA_ORACLE_PYTHON") or os.path.join(
                        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        ".oracle-gaia", "bin", "python"),
                    help="Python 3.7 with essentia==2.1b6.dev234 (skipped if absent)")
    ap.add_argument("--oracle-repeat", type=int, default=3,
                    help="timed passes over the 30 pools for the oracle, best kept (default 3)")
    args = ap.parse_args()
    if not REFDIR.is_dir():
        sys.exit("no ../shared/fixtures/gaia/history-reference")

    models = {}
    for ref_name in sorted(os.listdir(REFDIR)):
        path = history_file(ref_name)
        pool_files = sorted((REFDIR / ref_name).glob("pool_*.json"))
        if path and pool_files and (not args.only or ref_name in args.only):
            models[ref_name] = (path, pool_files)

    oracle = {}
    if args.oracle_python and os.path.exists(args.oracle_python):
        jobs = {m: (str(p), [str(f) for f in files], args.oracle_repeat,
                    load_model(p).svm.class_name.lstrip("."))
                for m, (p, files) in models.items()}
        proc = subprocess.run([args.oracle_python, "-c", ORACLE], input=json.dumps(jobs),
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode == 0:
            oracle = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            print(f"oracle failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
    else:
        print("oracle not measured: no Python 3.7 with essentia==2.1b6.dev234 at "
              f"{args.oracle_python}", file=sys.stderr)

    cli = {}
    print(f"{'model':34s} {'load s':>7s} {'batch rec/s':>12s} {'single rec/s':>13s} "
          f"{'essentia pools/s':>17s} {'speed-up':>9s}  same values")
    for ref_name, (path, pool_files) in models.items():
        pools = [json.loads(f.read_text()) for f in pool_files]
        stream = [pools[i % len(pools)] for i in range(args.records)]
        t0 = time.perf_counter()
        model = load_model(path)
        t_load = time.perf_counter() - t0

        batch_rate = single_rate = 0.0
        for _ in range(args.repeat):     # best of --repeat: the machine is shared
            model.reset()
            t0 = time.perf_counter()
            for s in range(0, len(stream), args.batch):
                model.predict_many(stream[s:s + args.batch])
            batch_rate = max(batch_rate, len(stream) / (time.perf_counter() - t0))
            model.reset()
            t0 = time.perf_counter()
            for rec in stream:
                model.predict(rec)
            single_rate = max(single_rate, len(stream) / (time.perf_counter() - t0))

        orate, ratio, same = "-", "-", "-"
        if ref_name in oracle:
            o = oracle[ref_name]
            rate = o["pools"] / o["seconds"]
            orate = f"{rate:.1f}"
            ratio = f"{batch_rate / rate:.0f}x"
            model.reset()
            mine = [r["value"] for r in model.predict_many(pools)]
            same = "yes" if mine == o["values"] else "NO"
        print(f"{ref_name:34s} {t_load:7.2f} {batch_rate:12.0f} {single_rate:13.0f} "
              f"{orate:>17s} {ratio:>9s}  {same}")
        if not args.no_cli:
            cli[ref_name] = (path, stream)

    for ref_name, (path, stream) in cli.items():
        import msgpack
        import resource
        env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"), OMP_NUM_THREADS="1")
        times, cpu = {}, {}
        for factor in (1, 5):
            blob = b"".join(msgpack.packb(r) for r in stream * factor)
            for _ in range(2):       # best of 2 (wall), and the CPU time of that run
                ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, str(ROOT / "bin" / "classify"), "-q",
                                       "-m", str(path)], input=blob, capture_output=True,
                                      env=env)
                dt = time.perf_counter() - t0
                ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                used = (ru2.ru_utime - ru.ru_utime) + (ru2.ru_stime - ru.ru_stime)
                if factor not in times or dt < times[factor]:
                    times[factor], cpu[factor] = dt, used
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        n1, n5 = len(stream), 5 * len(stream)
        marginal = (n5 - n1) / max(1e-9, times[5] - times[1])
        whole = n5 / times[5]
        cpu_marginal = (n5 - n1) / max(1e-9, cpu[5] - cpu[1])
        versus = ""
        if ref_name in oracle:
            rate = oracle[ref_name]["pools"] / oracle[ref_name]["seconds"]
            cpu_rate = oracle[ref_name]["pools"] / max(1e-9, oracle[ref_name]["cpu"])
            versus = (f"\n    vs GaiaTransform {rate:.0f} pools/s ({cpu_rate:.0f} per CPU "
                      f"second): {marginal / rate:.1f}x after start-up, {whole / rate:.1f}x "
                      f"including it, {cpu_marginal / cpu_rate:.1f}x per CPU second")
        print(f"end to end: classify -m {path.name}: {n1} msgpack records {times[1]:.2f} s, "
              f"{n5} records {times[5]:.2f} s wall ({cpu[5]:.2f} s CPU) -> {marginal:.0f} "
              f"records/s after start-up, {whole:.0f} records/s including it, "
              f"{cpu_marginal:.0f} records per CPU second after start-up [{status}]{versus}")


if __name__ == "__main__":
    main()
