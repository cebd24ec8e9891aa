#!/usr/bin/env python3
"""Agreement of ``rhythm.method: multifeature`` (mirkit.extractor.rhythm_multifeature) with
Essentia's RhythmExtractor2013(method="multifeature") (the ``essentia`` wheel, test oracle).

Material: the three example clips (examples/audio), three synthetic chord/click pieces
(tests/test_rhythm_tonal_oracle._piece at 84, 100, 132 BPM) and nine noise-burst click tracks
(tests/test_rhythm.click_track, 90..160 BPM). Reported per clip: mirkit's and Essentia's bpm,
whether they agree within 1 %, the share of mirkit's beats with an Essentia beat within 20 ms
and within 70 ms, and mirkit's time.

    PYTHONPATH=lib python benchmarks/bench_rhythm_multifeature.py
"""

import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from mirkit.extractor import rhythm, rhythm_multifeature as mf  # noqa: E402
from test_rhythm import click_track  # noqa: E402
from test_rhythm_multifeature import _load, _share  # noqa: E402
from test_rhythm_tonal_oracle import _piece  # noqa: E402


def main():
    import essentia.standard as es
    clips = [(n, _load(n)) for n in ("chromium-bsu-music-game.wav",
                                     "frozen-bubble-intro-excerpt.ogg",
                                     "frozen-bubble-main-excerpt.flac")]
    for bpm, seed in ((100, 3), (84, 5), (132, 7)):
        p = _piece(14.0, bpm, seed)
        p = p.mean(axis=1) if p.ndim > 1 else p
        clips.append((f"piece{bpm}", np.ascontiguousarray(p, np.float32)))
    for bpm in (90, 100, 110, 120, 128, 135, 140, 150, 160):
        clips.append((f"click{bpm}", click_track(bpm, seed=bpm)[0]))
    s20, s70, agree = [], [], 0
    for name, x in clips:
        e = es.RhythmExtractor2013(method="multifeature")(x)
        eb = np.asarray(e[1], float)
        t = time.process_time()
        b = mf.beat_track(x)
        dt = time.process_time() - t
        bpm = rhythm.bpm_from_ticks(b)
        ok = abs(bpm / e[0] - 1) <= 0.01 if e[0] else False
        agree += ok
        s20.append(_share(b, eb))
        s70.append(_share(b, eb, 0.07))
        print(f"{name:32s} bpm {bpm:7.2f} essentia {e[0]:7.2f} {'ok' if ok else 'XX'} "
              f"beats@20ms {s20[-1]:.2f} beats@70ms {s70[-1]:.2f} time {dt:.2f}s")
    print(f"bpm within 1 %: {agree}/{len(clips)}; mean share of beats within 20 ms "
          f"{np.mean(s20):.2f}, within 70 ms {np.mean(s70):.2f}")


if __name__ == "__main__":
    main()
