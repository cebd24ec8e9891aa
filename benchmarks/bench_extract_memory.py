#!/usr/bin/env python3
"""Peak memory of ``extract`` on a long stereo file (target: one hour < 400 MiB peak RSS).

Writes a long 16-bit stereo WAV (the example clips tiled, with a slowly varying gain) to a
temporary directory, runs ``bin/extract`` on it as a subprocess and reports the child's peak
RSS (``ru_maxrss``) and CPU time. ``--descriptors`` defaults to ``all`` (the whole extractor:
for inputs longer than about 9 minutes the mono signal is spilled to a temporary file and
lowlevel, rhythm and tonal read it block by block); ``lowlevel`` measures issue 5's part
alone. ``--minutes 4`` checks the 4-minute target (<= 300 MiB).

    python benchmarks/bench_extract_memory.py [--minutes 60] [--descriptors all]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_long_wav(path, minutes):
    import soundfile as sf
    clips = []
    for name in ("frozen-bubble-intro-excerpt.ogg", "frozen-bubble-main-excerpt.flac",
                 "chromium-bsu-music-game.wav"):
        x, sr = sf.read(os.path.join(ROOT, "examples", "audio", name), dtype="float32", always_2d=True)
        if sr != 44100:
            import samplerate
            x = samplerate.resample(x, 44100 / sr, "sinc_medium").astype(np.float32)
        if x.shape[1] == 1:
            x = np.repeat(x, 2, axis=1)
        clips.append(x)
    loop = np.concatenate(clips)
    total = int(minutes * 60 * 44100)
    with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as f:
        done = 0
        while done < total:
            n = min(len(loop), total - done)
            gain = 0.5 + 0.4 * np.sin(done / 44100 / 60.0)
            f.write(loop[:n] * gain)
            done += n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--descriptors", default="all")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "long.wav")
        t0 = time.time()
        make_long_wav(wav, args.minutes)
        print(f"wrote {args.minutes:g} min stereo WAV ({os.path.getsize(wav) / 2**20:.0f} MiB) "
              f"in {time.time() - t0:.1f} s", file=sys.stderr)
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"), OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        res = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "extract"), "-j", "1",
                              "--descriptors", args.descriptors, "-o", os.path.join(tmp, "out"), wav],
                             env=env, capture_output=True)
        wall = time.time() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode:
        print(res.stderr.decode(), file=sys.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{args.minutes:g} min stereo, --descriptors {args.descriptors}: exit {res.returncode}, "
          f"peak RSS {after.ru_maxrss / 1024:.0f} MiB, CPU {cpu:.1f} s, wall {wall:.1f} s")


if __name__ == "__main__":
    main()
