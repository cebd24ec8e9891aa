#!/usr/bin/env python3
"""CPU time and peak memory of ``extract`` against Essentia's MusicExtractor, one core.

Material: real 3-5 minute tracks from Debian packages (openly licensed game soundtracks,
fetched at run time with the code of bench_rhythm_tonal.py; nothing is committed), each
decoded once and written as a 16-bit WAV at its own sample rate, so that both extractors
read identical samples.

Every measurement is a fresh child process (``OMP_NUM_THREADS=1``, optionally pinned with
``taskset``) that reports its own process CPU time (``time.process_time``: user + system, all
threads) separately for the imports and for the work, and its peak RSS (``ru_maxrss``):

* ``essentia``: ``essentia.standard.MusicExtractor()(wav)`` (default profile);
* ``mirkit``: the ``extract`` command in-process (``mirkit.commands.extract.main([wav, -o
  FILE])``, default profile: lowlevel + rhythm + tonal, msgpack written to a file), with the
  CPU time of every pipeline stage (``extract_file(..., timings=)``);
* ``mirkit-lowlevel``: the same with ``--descriptors lowlevel`` (issue 5's part: decoding,
  metadata, EBU R128, replay gain, lowlevel frames, loudness, statistics).

Runs are interleaved (essentia, mirkit, mirkit-lowlevel, next track, ...) so that machine
load affects all three alike; each figure is the median over ``--runs``. Targets: whole
extractor <= 0.5x Essentia's CPU time (issue 6), lowlevel part <= 0.3x (issue 5), peak RSS
of a 4-minute track <= 300 MiB (see also bench_extract_memory.py).

    PYTHONPATH=lib python benchmarks/bench_extract_speed.py [--tracks 4] [--runs 3] [--cpu 1]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

CHILD = r"""
import json, os, resource, sys, time
mode, wav, out = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.process_time()
res = {"mode": mode}
if mode == "essentia":
    import essentia
    import essentia.standard as es
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    t1 = time.process_time()
    es.MusicExtractor()(wav)
else:
    from mirkit.commands import extract
    from mirkit.extractor import pipeline
    t1 = time.process_time()
    stages = {}
    orig = pipeline.extract_file
    pipeline.extract_file = lambda p, o=None, source=None: orig(p, o, source, timings=stages)
    argv = [wav, "-o", out, "-j", "1"]
    if mode == "mirkit-lowlevel":
        argv += ["--descriptors", "lowlevel"]
    try:
        extract.main(argv)
    except SystemExit as exc:
        if exc.code:
            raise
    res["stages"] = stages
t2 = time.process_time()
res["import"] = t1 - t0
res["run"] = t2 - t1
res["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print("RESULT " + json.dumps(res))
"""

MODES = ("essentia", "mirkit", "mirkit-lowlevel")


def pick_tracks(cache, count, lo, hi):
    """``count`` distinct tracks lasting lo..hi seconds (Debian game soundtracks)."""
    import soundfile as sf
    from bench_rhythm_tonal import fetch_tracks
    seen, found = set(), []
    for path in fetch_tracks(cache):
        name = os.path.basename(path)
        if name in seen:          # drascula ships the same music in several language dirs
            continue
        seen.add(name)
        try:
            dur = sf.info(path).duration
        except Exception:
            continue
        if lo <= dur <= hi:
            found.append((dur, path))
    found.sort()
    if len(found) > count:
        step = len(found) / count
        found = [found[int(i * step)] for i in range(count)]
    return found


def to_wav(src, dst):
    import soundfile as sf
    try:
        x, sr = sf.read(src, dtype="float32", always_2d=True)
    except Exception:
        import essentia.standard as es
        x, sr = es.AudioLoader(filename=src)()[:2]
    sf.write(dst, np.clip(x, -1, 1), int(sr), subtype="PCM_16")


def run_child(mode, wav, out, cpu):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.path.join(ROOT, "lib"))
    cmd = [sys.executable, "-c", CHILD, mode, wav, out]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{mode} failed on {wav}: {res.stderr[-2000:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/mirkit-bench"))
    ap.add_argument("--tracks", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=170.0)
    ap.add_argument("--max-seconds", type=float, default=330.0)
    ap.add_argument("--cpu", type=int, default=None, help="pin the children to this core (taskset)")
    args = ap.parse_args()

    tracks = pick_tracks(args.cache, args.tracks, args.min_seconds, args.max_seconds)
    if not tracks:
        sys.exit("no track of the wanted length")
    results = {}                  # (track, mode) -> list of child results
    with tempfile.TemporaryDirectory() as tmp:
        wavs = []
        for i, (dur, src) in enumerate(tracks):
            wav = os.path.join(tmp, f"{i}-{os.path.splitext(os.path.basename(src))[0]}.wav")
            to_wav(src, wav)
            wavs.append((dur, wav))
        for r in range(args.runs):
            for dur, wav in wavs:
                for mode in MODES:
                    res = run_child(mode, wav, os.path.join(tmp, "out.msgpack"), args.cpu)
                    results.setdefault((wav, mode), []).append(res)
                    print(f"  run {r + 1}: {os.path.basename(wav)[:28]:28s} {mode:16s} "
                          f"run {res['run']:6.2f} s  import {res['import']:.2f} s  "
                          f"rss {res['rss_mib']:.0f} MiB", file=sys.stderr, flush=True)

    def med(wav, mode, key="run"):
        return float(np.median([x[key] for x in results[(wav, mode)]]))

    print(f"\nmedian of {args.runs} runs, process CPU time without imports "
          f"(one core, OMP_NUM_THREADS=1{', taskset -c %d' % args.cpu if args.cpu is not None else ''})")
    print(f"{'track':30s} {'dur':>6s} {'essentia':>9s} {'mirkit':>8s} {'ratio':>6s} "
          f"{'lowlevel':>9s} {'ratio':>6s} {'RSS es/mk MiB':>14s}")
    tot = {m: 0.0 for m in MODES}
    ratios_all, ratios_ll = [], []
    for dur, wav in wavs:
        e, a, l_ = med(wav, "essentia"), med(wav, "mirkit"), med(wav, "mirkit-lowlevel")
        for m, v in zip(MODES, (e, a, l_)):
            tot[m] += v
        ratios_all.append(a / e)
        ratios_ll.append(l_ / e)
        print(f"{os.path.basename(wav)[:30]:30s} {dur:6.1f} {e:9.2f} {a:8.2f} {a / e:6.2f} "
              f"{l_:9.2f} {l_ / e:6.2f} {med(wav, 'essentia', 'rss_mib'):6.0f}/"
              f"{med(wav, 'mirkit', 'rss_mib'):.0f}")
    print(f"{'total':30s} {sum(d for d, _ in wavs):6.1f} {tot['essentia']:9.2f} {tot['mirkit']:8.2f} "
          f"{tot['mirkit'] / tot['essentia']:6.2f} {tot['mirkit-lowlevel']:9.2f} "
          f"{tot['mirkit-lowlevel'] / tot['essentia']:6.2f}")
    print(f"whole extractor: {tot['mirkit'] / tot['essentia']:.3f}x Essentia (target <= 0.5x; "
          f"per-track median {np.median(ratios_all):.3f}x)")
    print(f"lowlevel part:   {tot['mirkit-lowlevel'] / tot['essentia']:.3f}x Essentia (target <= 0.3x; "
          f"per-track median {np.median(ratios_ll):.3f}x)")
    imp = {m: float(np.median([x["import"] for k, v in results.items() if k[1] == m for x in v]))
           for m in MODES}
    print(f"imports (median, CPU): essentia {imp['essentia']:.2f} s, mirkit {imp['mirkit']:.2f} s")
    longest = max(wavs)
    print(f"peak RSS, whole extractor, {longest[0]:.0f} s track: "
          f"{med(longest[1], 'mirkit', 'rss_mib'):.0f} MiB (Essentia "
          f"{med(longest[1], 'essentia', 'rss_mib'):.0f} MiB; target <= 300 MiB for 4 minutes)")
    # where the time goes: per-stage medians summed over the tracks
    stages = {}
    for dur, wav in wavs:
        names = set().union(*(x["stages"] for x in results[(wav, "mirkit")]))
        for s in names:
            stages[s] = stages.get(s, 0.0) + float(np.median(
                [x["stages"].get(s, 0.0) for x in results[(wav, "mirkit")]]))
    total = sum(stages.values())
    print("mirkit stages (CPU s summed over the tracks; rest = CLI, output, first-call costs):")
    for s, v in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {s:20s} {v:6.2f} s  {100 * v / tot['mirkit']:5.1f} %")
    print(f"  {'(rest)':20s} {tot['mirkit'] - total:6.2f} s")


if __name__ == "__main__":
    main()
