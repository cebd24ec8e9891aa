#!/usr/bin/env python3
"""CPU time of extract against Essentia's MusicExtractor, one core.

Same material as bench_extract_fidelity.py (Debian game soundtracks, fetched at run time,
decoded to 16-bit WAV excerpts). For each track, the median over ``--runs`` runs of the
process CPU time of: Essentia's whole MusicExtractor; mirkit's part of issue 5 (decoding,
metadata, lowlevel, statistics: ``--descriptors lowlevel``); the whole mirkit extractor
(lowlevel + rhythm + tonal, when those modules are installed). Targets: mirkit lowlevel part
<= 0.3x and whole <= 0.5x of Essentia.

    PYTHONPATH=lib python benchmarks/bench_extract_speed.py [--seconds 180] [--tracks 4] [--runs 3]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from bench_extract_fidelity import excerpt_wav, fetch_tracks  # noqa: E402


def cpu(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "mirkit-bench-audio"))
    ap.add_argument("--seconds", type=float, default=180.0, help="excerpt length (0 = whole)")
    ap.add_argument("--tracks", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import essentia
    import essentia.standard as es
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    from mirkit.extractor import pipeline

    tracks = fetch_tracks(args.cache)
    step = max(1, len(tracks) // max(1, args.tracks))
    tracks = tracks[::step][:args.tracks]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(tracks):
            wav = os.path.join(tmp, f"t{i}.wav")
            excerpt_wav(src, wav, 0.0, args.seconds)
            import soundfile as sf
            dur = sf.info(wav).duration
            pipeline.extract_file(wav, {"descriptors": ("lowlevel",)})      # warm caches
            t_es = cpu(lambda: es.MusicExtractor()(wav), args.runs)
            t_ll = cpu(lambda: pipeline.extract_file(wav, {"descriptors": ("lowlevel",)}), args.runs)
            t_all = cpu(lambda: pipeline.extract_file(wav), args.runs)
            rows.append((os.path.basename(src), dur, t_es, t_ll, t_all))
            print(f"{os.path.basename(src)[:40]:40s} {dur:6.1f} s  essentia {t_es:6.2f} s  "
                  f"mirkit lowlevel {t_ll:6.2f} s ({t_ll / t_es:.2f}x)  "
                  f"mirkit all {t_all:6.2f} s ({t_all / t_es:.2f}x)", flush=True)
    es_t = sum(r[2] for r in rows)
    print(f"total: essentia {es_t:.2f} s; mirkit lowlevel {sum(r[3] for r in rows):.2f} s "
          f"({sum(r[3] for r in rows) / es_t:.2f}x); mirkit all {sum(r[4] for r in rows):.2f} s "
          f"({sum(r[4] for r in rows) / es_t:.2f}x)")


if __name__ == "__main__":
    main()
