#!/usr/bin/env python3
"""Agreement of ``rhythm.method: multifeature`` (mirkit.extractor.rhythm_multifeature) with
Essentia's RhythmExtractor2013(method="multifeature") (the ``essentia`` wheel, test oracle).

Material (default): the three example clips (examples/audio), three synthetic chord/click
pieces (tests/test_rhythm_tonal_oracle._piece at 84, 100, 132 BPM) and nine noise-burst click
tracks (tests/test_rhythm.click_track, 90..160 BPM). With ``--real``: the real-music 30 s
excerpts of benchmarks/bench_rhythm_tonal.py instead (openly licensed game soundtracks fetched
from Debian packages at run time, cached in ``--cache``; 45 tracks by default), read as 16-bit
WAV excerpts and downmixed to mono so that both trackers see the same samples.

Reported per clip: mirkit's and Essentia's bpm, whether they agree within 1 %, the share of
mirkit's beats with an Essentia beat within 20 ms and within 70 ms, the committee member
mirkit chose, the best share any of mirkit's candidates reaches (what a perfect committee
selection would give), both confidences and mirkit's CPU time. The summary gives the means
and the pooled (beat-weighted) shares.

    PYTHONPATH=lib python benchmarks/bench_rhythm_multifeature.py
    PYTHONPATH=lib python benchmarks/bench_rhythm_multifeature.py --real [--tracks 45]
        [--seconds 30] [--start 20] [--cache ~/.cache/mirkit-bench]

Measured 2026-11-25 (bpm within 1 % / beats within 20 ms / within 70 ms / best candidate):
short clips 15/15, 0.679, 0.925, 0.950 (previous committee csd/ef/sfx/mf/hf: 15/15, 0.697,
0.984, 0.873); real music 38/45, 0.728 (pooled 0.754), 0.898, 0.958 (previous: 35/45, 0.576
(pooled 0.598), 0.853, 0.765). mirkit CPU 0.13 s per 30 s excerpt (0.12 s before).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from mirkit.extractor import rhythm, rhythm_multifeature as mf  # noqa: E402


def _share(a, b, tol=0.02):
    """Share of the beats of ``a`` with a beat of ``b`` within ``tol`` s."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return 0.0
    return float(np.mean(np.min(np.abs(a[:, None] - b[None, :]), axis=1) < tol))


def short_clips():
    from test_rhythm import click_track
    from test_rhythm_multifeature import _load
    from test_rhythm_tonal_oracle import _piece
    clips = [(n, _load(n)) for n in ("chromium-bsu-music-game.wav",
                                     "frozen-bubble-intro-excerpt.ogg",
                                     "frozen-bubble-main-excerpt.flac")]
    for bpm, seed in ((100, 3), (84, 5), (132, 7)):
        p = _piece(14.0, bpm, seed)
        p = p.mean(axis=1) if p.ndim > 1 else p
        clips.append((f"piece{bpm}", np.ascontiguousarray(p, np.float32)))
    for bpm in (90, 100, 110, 120, 128, 135, 140, 150, 160):
        clips.append((f"click{bpm}", click_track(bpm, seed=bpm)[0]))
    return clips


def real_clips(args, tmp):
    """(name, mono float32) of the bench_rhythm_tonal excerpts, one at a time."""
    import soundfile as sf
    from bench_rhythm_tonal import decode, fetch_tracks, write_excerpt
    for i, src in enumerate(fetch_tracks(args.cache)[:args.tracks]):
        wav = os.path.join(tmp, f"track{i}.wav")
        write_excerpt(decode(src), wav, args.start, args.seconds)
        x, _ = sf.read(wav, dtype="float32", always_2d=True)
        yield os.path.basename(src), np.ascontiguousarray(x.mean(axis=1), np.float32)


def run(clips):
    import essentia
    import essentia.standard as es
    essentia.log.warningActive = False
    s20, s70, best, agree, n, pooled, total, cpu = [], [], [], 0, 0, 0, 0, []
    for name, x in clips:
        e = es.RhythmExtractor2013(method="multifeature")(x)
        eb = np.asarray(e[1], float)
        t = time.process_time()
        b, d = mf.beat_track(x, return_details=True)
        cpu.append(time.process_time() - t)
        bpm = rhythm.bpm_from_ticks(b)
        ok = abs(bpm / e[0] - 1) <= 0.01 if e[0] else False
        agree += ok
        n += 1
        s20.append(_share(b, eb))
        s70.append(_share(b, eb, 0.07))
        best.append(max(_share(c, eb) for c in d["candidates"].values()))
        pooled += int(round(s20[-1] * len(b)))
        total += len(b)
        print(f"{name[:30]:30s} bpm {bpm:7.2f} essentia {e[0]:7.2f} {'ok' if ok else 'XX'} "
              f"beats@20ms {s20[-1]:.2f} @70ms {s70[-1]:.2f} chose {d['feature']:4s} "
              f"best {best[-1]:.2f} conf {d['confidence']:.2f}/{e[2]:.2f} cpu {cpu[-1]:.2f}s",
              flush=True)
    if not n:
        print("no clips")
        return
    print(f"clips: {n}; bpm within 1 %: {agree}/{n}; mean share of beats within 20 ms "
          f"{np.mean(s20):.3f} (pooled {pooled}/{total} = {pooled / max(total, 1):.3f}), "
          f"within 70 ms {np.mean(s70):.3f}; best single candidate within 20 ms "
          f"{np.mean(best):.3f}; mirkit CPU per clip {np.mean(cpu):.2f} s "
          f"(median {np.median(cpu):.2f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", action="store_true",
                    help="real-music excerpts of bench_rhythm_tonal.py instead of the short clips")
    ap.add_argument("--tracks", type=int, default=45)
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt length (0 = whole track)")
    ap.add_argument("--start", type=float, default=20.0, help="excerpt start (s)")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/mirkit-bench"))
    args = ap.parse_args()
    try:
        import essentia  # noqa: F401
    except ImportError:
        sys.exit("this benchmark needs the essentia wheel (the test oracle)")
    if args.real:
        with tempfile.TemporaryDirectory() as tmp:
            run(real_clips(args, tmp))
    else:
        run(short_clips())


if __name__ == "__main__":
    main()
