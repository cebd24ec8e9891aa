#!/usr/bin/env python3
"""Start-up time of every tool's --help (issue 2: `classify --help` should take < 0.3 s).

Runs each bin/ tool with --help N times and reports the median wall and CPU time of the
child, and whether TensorFlow got imported (it must not be for --help).

    python benchmarks/bench_startup.py [-n 7]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["extract", "json2sig", "mkgroundtruth", "gridsearch", "retrain", "classify"]


def run_once(tool):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"))
    subprocess.run([sys.executable, str(ROOT / "bin" / tool), "--help"], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def imports_tensorflow(tool):
    code = (f"import sys, runpy; sys.argv = ['{tool}', '--help']\n"
            f"try:\n    runpy.run_path('{ROOT / 'bin' / tool}', run_name='__main__')\n"
            f"except SystemExit:\n    pass\n"
            f"sys.stderr.write(str('tensorflow' in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "lib")))
    return res.stderr.decode().strip().endswith("True")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs per tool (default 7)")
    args = parser.parse_args()
    base = [run_once_python() for _ in range(args.n)]
    print(f"{'python -c pass':16s} wall {statistics.median(w for w, _ in base):.3f} s  "
          f"cpu {statistics.median(c for _, c in base):.3f} s  (interpreter alone)")
    for tool in TOOLS:
        runs = [run_once(tool) for _ in range(args.n)]
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        flag = "OK " if wall < 0.3 else "SLOW"
        print(f"{tool:16s} wall {wall:.3f} s  cpu {cpu:.3f} s  {flag}  "
              f"tensorflow imported: {imports_tensorflow(tool)}")


def run_once_python():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    main()
