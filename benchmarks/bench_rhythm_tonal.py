#!/usr/bin/env python3
"""Fidelity, accuracy and speed of extract's rhythm.* and tonal.* descriptors (issue 6).

1. **Fidelity against Essentia** (the ``essentia`` wheel, MusicExtractor) on real music
   fetched at run time from Debian packages (openly licensed game soundtracks; nothing is
   committed). Each track becomes a 16-bit WAV excerpt so that both extractors read the same
   samples; mirkit runs its whole pipeline (``mirkit.extractor.pipeline.extract_file``).
   Reported: share of tracks whose keys/scales (edma, krumhansl, temperley, chords) are
   identical, whose bpm is within 1 %, share of Essentia's beats with a mirkit beat within
   20 ms, and share of all numeric rhythm/tonal values within tolerance (1e-3 relative with
   a 1e-5 absolute floor; Essentia's ``bpm_histogram_first_peak_weight`` is compared with
   mirkit's ``..._first_peak_spread``, project decision 3).
2. **Accuracy against ground truth**: pieces with known key and tempo are written as MIDI
   files by this script (chords, bass, melody and drums in a random key and tempo), rendered
   with fluidsynth and the TimGM6mb soundfont (Debian packages ``fluidsynth``,
   ``timgm6mb-soundfont``), and analysed by both extractors. Reported side by side: bpm
   within 4 % ("accuracy 1"), bpm within 4 % of 1/2, 1, 2 times the truth ("accuracy 2"),
   and key + scale exactly right for each profile.
3. **Speed**: CPU time (one core) of Essentia's MusicExtractor and of mirkit's complete
   extractor on the same full-length track (median of ``--runs``), mirkit's rhythm and tonal
   parts alone, peak memory of mirkit on a 4-minute signal (separate process), and a
   profile of where mirkit's time goes.

    PYTHONPATH=lib python benchmarks/bench_rhythm_tonal.py [--tracks 45] [--seconds 30]
        [--midi 8] [--runs 3] [--cache ~/.cache/mirkit-bench] [--skip fidelity,midi,speed]
"""

import argparse
import glob
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

PACKAGES = {
    "asc-music": "usr/share/games/asc/music/*.mp3",
    "frozen-bubble-data": "usr/share/games/frozen-bubble/snd/*zik*.ogg",
    "extremetuxracer-data": "usr/share/games/etr/music/*.ogg",
    "lincity-ng-data": "usr/share/games/lincity-ng/music/default/*.ogg",
    "drascula-music": "usr/share/scummvm/drascula/audio/*.ogg",
}
KEYS = ("A", "Bb", "B", "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab")
PROFILES = ("edma", "krumhansl", "temperley")


# ---- material -------------------------------------------------------------------------------

def fetch_package(cache, pkg):
    root = os.path.join(cache, pkg)
    if not os.path.isdir(root):
        os.makedirs(cache, exist_ok=True)
        debs = glob.glob(os.path.join(cache, f"{pkg}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", pkg], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            debs = glob.glob(os.path.join(cache, f"{pkg}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", debs[0], root], check=True)
    return root


def fetch_tracks(cache):
    tracks = []
    for pkg, pattern in PACKAGES.items():
        try:
            root = fetch_package(cache, pkg)
        except (subprocess.CalledProcessError, IndexError) as exc:
            print(f"  (skipping {pkg}: {exc})")
            continue
        tracks += sorted(glob.glob(os.path.join(root, pattern)))
    return tracks


def decode(path):
    """Stereo float32 at 44100 Hz (soundfile; essentia's loader for what soundfile cannot read)."""
    import soundfile as sf
    try:
        a, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception:
        import essentia.standard as es
        a, sr = es.AudioLoader(filename=path)()[:2]
    if sr != 44100:
        import samplerate
        a = samplerate.resample(a, 44100 / sr, "sinc_medium").astype(np.float32)
    return a


def write_excerpt(audio, dst, start, seconds):
    import soundfile as sf
    n = len(audio)
    if seconds:
        L = int(seconds * 44100)
        a = int(min(start * 44100, max(0, n - L)))
        audio = audio[a:a + L]
    sf.write(dst, np.clip(audio, -1, 1), 44100, subtype="PCM_16")


# ---- MIDI pieces with known key and tempo -----------------------------------------------------

def _vlq(v):
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    return bytes(reversed(out))


def midi_piece(path, tonic_pc, minor, bpm, bars=16, seed=0):
    """Write a format-0 MIDI file: piano chords, bass, melody and drums in the given key.

    ``tonic_pc``: pitch class with 0 = A (Essentia's key order). Progressions: I-IV-V-I
    (major) and i-iv-V-i (minor, harmonic-minor dominant); the melody walks the scale and
    lands on a chord tone on each downbeat."""
    rng = np.random.default_rng(seed)
    div = 480
    tonic = 57 + tonic_pc                       # MIDI note (A3 = 57)
    if minor:
        scale = [0, 2, 3, 5, 7, 8, 11]
        prog = [(0, [0, 3, 7]), (5, [0, 3, 7]), (7, [0, 4, 7]), (0, [0, 3, 7])]
    else:
        scale = [0, 2, 4, 5, 7, 9, 11]
        prog = [(0, [0, 4, 7]), (5, [0, 4, 7]), (7, [0, 4, 7]), (0, [0, 4, 7])]
    events = []                                  # (tick, bytes)

    def note(t, dur, ch, n, vel):
        events.append((t, bytes([0x90 | ch, n, vel])))
        events.append((t + dur, bytes([0x80 | ch, n, 0])))

    events.append((0, b"\xff\x51\x03" + struct.pack(">I", int(60e6 / bpm))[1:]))
    events.append((0, bytes([0xC0, 0])))         # piano
    events.append((0, bytes([0xC1, 33])))        # fingered bass
    events.append((0, bytes([0xC2, 73])))        # flute
    bar = 4 * div
    for b in range(bars):
        root, triad = prog[b % 4]
        t0 = b * bar
        for iv in triad:
            note(t0, bar - 10, 0, tonic + root + iv - (12 if root + iv > 9 else 0), 70)
        for beat in (0, 2):
            note(t0 + beat * div, 2 * div - 10, 1, tonic - 24 + root, 90)
        for beat in range(4):
            deg = scale[int(rng.integers(0, 7))] if beat else (root + triad[int(rng.integers(0, 3))]) % 12
            note(t0 + beat * div, div - 20, 2, tonic + 12 + deg, 60)
        for e in range(8):
            note(t0 + e * div // 2, div // 4, 9, 42, 50)                  # closed hi-hat
        for beat in range(4):
            note(t0 + beat * div, div // 2, 9, 36 if beat % 2 == 0 else 38, 100)
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80))
    track = bytearray()
    last = 0
    for t, data in events:
        track += _vlq(t - last) + data
        last = t
    track += _vlq(0) + b"\xff\x2f\x00"
    with open(path, "wb") as fh:
        fh.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, div))
        fh.write(b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def render_midi(mid, wav, sf2):
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", "44100", "-F", wav, sf2, mid],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---- running both extractors ----------------------------------------------------------------

def run_essentia(path):
    import essentia
    import essentia.standard as es
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    t = time.process_time()
    stats, _frames = es.MusicExtractor()(path)
    cpu = time.process_time() - t
    out = {}
    for name in stats.descriptorNames():
        if name.startswith(("rhythm.", "tonal.")):
            v = stats[name]
            out[name] = v.tolist() if isinstance(v, np.ndarray) else v
    return out, cpu


def run_mirkit(path):
    from mirkit.extractor import pipeline
    from mirkit.records import flatten
    t = time.process_time()
    rec = pipeline.extract_file(path)
    cpu = time.process_time() - t
    if isinstance(rec, tuple):
        rec = rec[0]
    flat = flatten({k: rec[k] for k in ("rhythm", "tonal") if k in rec})
    return flat, cpu


def _leaves(d):
    """Dotted name -> list of numbers (statistics vectors expanded) or str."""
    out = {}
    for k, v in d.items():
        if isinstance(v, str):
            out[k] = v
        else:
            a = np.asarray(v, np.float64).ravel()
            out[k] = a
    return out


def compare(ess, mine):
    """Per-track fidelity figures."""
    e, m = _leaves(ess), _leaves(mine)
    r = {}
    r["keys_same"] = all(m.get(f"tonal.key_{p}.{q}") == e.get(f"tonal.key_{p}.{q}")
                         for p in PROFILES for q in ("key", "scale"))
    r["chords_key_same"] = (m.get("tonal.chords_key"), m.get("tonal.chords_scale")) == \
        (e.get("tonal.chords_key"), e.get("tonal.chords_scale"))
    eb, mb = float(e["rhythm.bpm"][0]), float(m["rhythm.bpm"][0])
    r["bpm_within_1pct"] = abs(mb - eb) <= 0.01 * max(eb, 1e-9)
    be, bm = e["rhythm.beats_position"], m["rhythm.beats_position"]
    if len(be) and len(bm):
        d = np.abs(be[:, None] - bm[None, :]).min(axis=1)
        r["beats_close"], r["beats_total"] = int((d <= 0.020).sum()), len(be)
    else:
        r["beats_close"], r["beats_total"] = int(len(be) == len(bm)) * 0, len(be)
    ok = ok4 = total = 0
    bad = []
    for name, ev in e.items():
        if name == "rhythm.beats_position" or isinstance(ev, str):
            continue
        mname = name.replace("first_peak_weight", "first_peak_spread")
        mv = m.get(mname)
        if mv is None or isinstance(mv, str) or len(mv) != len(ev):
            total += len(ev)
            bad.append((name, "missing/shape"))
            continue
        tol = np.maximum(1e-3 * np.abs(ev), 1e-5)
        good = np.abs(mv - ev) <= tol
        ok += int(good.sum())
        ok4 += int((np.abs(mv - ev) <= np.maximum(1e-4 * np.abs(ev), 1e-6)).sum())
        total += len(ev)
        if not good.all():
            bad.append((name, float(np.max(np.abs(mv - ev)))))
    r["values_ok"], r["values_total"], r["bad"] = ok, total, bad
    r["values_ok4"] = ok4
    return r


# ---- sections -------------------------------------------------------------------------------

def fidelity(args, tmp):
    print("== fidelity against Essentia MusicExtractor (real music, WAV excerpts)")
    tracks = fetch_tracks(args.cache)[:args.tracks]
    rows = []
    for i, src in enumerate(tracks):
        wav = os.path.join(tmp, f"track{i}.wav")
        write_excerpt(decode(src), wav, args.start, args.seconds)
        ess, ecpu = run_essentia(wav)
        mine, mcpu = run_mirkit(wav)
        r = compare(ess, mine)
        rows.append(r)
        print(f"  {os.path.basename(src)[:28]:28s} keys {'=' if r['keys_same'] else 'X'} "
              f"chords {'=' if r['chords_key_same'] else 'X'} bpm {'=' if r['bpm_within_1pct'] else 'X'} "
              f"beats {r['beats_close']}/{r['beats_total']} values {r['values_ok']}/{r['values_total']} "
              f"cpu essentia {ecpu:.2f}s mirkit {mcpu:.2f}s")
        if r["bad"] and args.verbose:
            for name, err in r["bad"][:8]:
                print(f"      {name}: {err}")
    n = len(rows)
    if not n:
        print("  no tracks")
        return
    keys = sum(r["keys_same"] for r in rows)
    ck = sum(r["chords_key_same"] for r in rows)
    bpm = sum(r["bpm_within_1pct"] for r in rows)
    bc, bt = sum(r["beats_close"] for r in rows), sum(r["beats_total"] for r in rows)
    vo, vt = sum(r["values_ok"] for r in rows), sum(r["values_total"] for r in rows)
    print(f"  tracks: {n}")
    print(f"  keys+scales identical (3 profiles): {keys}/{n} = {100 * keys / n:.1f}%   (target >= 98%)")
    print(f"  chords key+scale identical:        {ck}/{n} = {100 * ck / n:.1f}%   (target >= 98%)")
    print(f"  bpm within 1%:                     {bpm}/{n} = {100 * bpm / n:.1f}%   (target >= 98%)")
    print(f"  beats within 20 ms:                {bc}/{bt} = {100 * bc / max(bt, 1):.2f}%  (target >= 95%)")
    print(f"  numeric values within tolerance:   {vo}/{vt} = {100 * vo / max(vt, 1):.2f}%  (target >= 99%)")
    v4 = sum(r["values_ok4"] for r in rows)
    print(f"  (within 1e-4 relative, 1e-6 abs:   {v4}/{vt} = {100 * v4 / max(vt, 1):.2f}%)")


def midi_accuracy(args, tmp):
    print("== accuracy against ground truth (synthesised MIDI pieces, known key and tempo)")
    if subprocess.run(["which", "fluidsynth"], stdout=subprocess.DEVNULL).returncode != 0:
        print("  fluidsynth missing: apt-get install fluidsynth (skipped)")
        return
    root = fetch_package(args.cache, "timgm6mb-soundfont")
    sf2 = glob.glob(os.path.join(root, "usr/share/sounds/sf2/*.sf2"))[0]
    rng = np.random.default_rng(2026)
    score = {"essentia": {"acc1": 0, "acc2": 0, **{p: 0 for p in PROFILES}},
             "mirkit": {"acc1": 0, "acc2": 0, **{p: 0 for p in PROFILES}}}
    for i in range(args.midi):
        pc, minor = int(rng.integers(0, 12)), bool(rng.integers(0, 2))
        bpm = float(rng.integers(70, 161))
        mid, wav = os.path.join(tmp, f"p{i}.mid"), os.path.join(tmp, f"p{i}.wav")
        midi_piece(mid, pc, minor, bpm, seed=i)
        render_midi(mid, wav, sf2)
        truth_key = (KEYS[pc], "minor" if minor else "major")
        line = f"  piece {i}: {truth_key[0]:2s} {truth_key[1]:5s} {bpm:5.0f} BPM |"
        for who, fn in (("essentia", run_essentia), ("mirkit", run_mirkit)):
            res, _ = fn(wav)
            b = float(np.ravel(res["rhythm.bpm"])[0])
            a1 = abs(b - bpm) <= 0.04 * bpm
            a2 = any(abs(b - f * bpm) <= 0.04 * f * bpm for f in (0.5, 1, 2))
            score[who]["acc1"] += a1
            score[who]["acc2"] += a2
            keys = []
            for p in PROFILES:
                k = (res[f"tonal.key_{p}.key"], res[f"tonal.key_{p}.scale"])
                score[who][p] += k == truth_key
                keys.append(f"{k[0]}{'m' if k[1] == 'minor' else ''}")
            line += f" {who} {b:6.1f} {'/'.join(keys):14s} |"
        print(line)
    n = max(args.midi, 1)
    print(f"  {'':10s} {'bpm acc1':>9s} {'bpm acc2':>9s} " + " ".join(f"{'key ' + p:>14s}" for p in PROFILES))
    for who in ("essentia", "mirkit"):
        s = score[who]
        print(f"  {who:10s} {100 * s['acc1'] / n:8.0f}% {100 * s['acc2'] / n:8.0f}% "
              + " ".join(f"{100 * s[p] / n:13.0f}%" for p in PROFILES))


def _peak_memory_child(wav):
    """Peak RSS (MiB) of a fresh process that imports mirkit and extracts ``wav``: (after
    imports, after extraction)."""
    # VmHWM of /proc/self/status (ru_maxrss survives exec and would include this parent)
    code = (
        "import sys\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1])\n"
        f"sys.path.insert(0, {os.path.join(HERE, '..', 'lib')!r})\n"
        "from mirkit.extractor import pipeline\n"
        "base = hwm()\n"
        f"pipeline.extract_file({wav!r})\n"
        "print(base, hwm())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    if out.returncode:
        print(out.stderr[-500:])
        return None
    return [int(v) / 1024 for v in out.stdout.split()[-2:]]


def _four_minute_wav(audio, dst):
    """A 4-minute stereo WAV made of the track (repeated if shorter)."""
    import soundfile as sf
    n = 240 * 44100
    reps = -(-n // len(audio))
    sf.write(dst, np.clip(np.tile(audio, (reps, 1))[:n], -1, 1), 44100, subtype="PCM_16")


def speed(args, tmp):
    print("== speed (CPU time, one core)")
    tracks = fetch_tracks(args.cache)
    if not tracks:
        print("  no track")
        return
    # the longest track among the first few
    import soundfile as sf
    best = None
    for src in tracks[:6]:
        a = decode(src)
        if best is None or len(a) > len(best[1]):
            best = (src, a)
    src, audio = best
    wav = os.path.join(tmp, "speed.wav")
    write_excerpt(audio, wav, 0, 0)
    dur = len(audio) / 44100
    print(f"  track: {os.path.basename(src)} ({dur:.0f} s)")
    ecpu = sorted(run_essentia(wav)[1] for _ in range(args.runs))
    mcpu = sorted(run_mirkit(wav)[1] for _ in range(args.runs))
    from mirkit.extractor import rhythm, tonal
    x = sf.read(wav, dtype="float32")[0].mean(axis=1).astype(np.float32)
    rt = []
    for _ in range(args.runs):
        t = time.process_time()
        rhythm.compute(x, 44100.0)
        r_cpu = time.process_time() - t
        t = time.process_time()
        tonal.compute(x, 44100.0)
        rt.append((r_cpu, time.process_time() - t))
    med = lambda v: v[len(v) // 2]
    r_med = sorted(a for a, _ in rt)[len(rt) // 2]
    t_med = sorted(b for _, b in rt)[len(rt) // 2]
    print(f"  Essentia MusicExtractor: {med(ecpu):.2f} s   mirkit extract (whole): {med(mcpu):.2f} s "
          f"= {med(mcpu) / med(ecpu):.2f}x   (target <= 0.5x)")
    print(f"  mirkit rhythm: {r_med:.2f} s, tonal: {t_med:.2f} s  ({dur / (r_med + t_med):.0f}x real time)")
    long_wav = os.path.join(tmp, "four-minutes.wav")
    _four_minute_wav(audio, long_wav)
    mem = _peak_memory_child(long_wav)
    if mem:
        print(f"  peak RSS, 4-minute track: {mem[1]:.0f} MiB (after imports: {mem[0]:.0f} MiB)"
              f"   (target <= 300 MiB)")
    import cProfile
    import pstats
    from mirkit.extractor import pipeline
    prof = cProfile.Profile()
    prof.enable()
    pipeline.extract_file(wav)
    prof.disable()
    print("  profile of mirkit extract (top functions by own time):")
    st = pstats.Stats(prof)
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:14]
    for (fname, line, func), (cc, nc, tt, ct, callers) in rows:
        print(f"    {tt:6.2f} s own {ct:6.2f} s cum  {os.path.basename(fname)}:{func}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=45)
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt length (0 = whole track)")
    ap.add_argument("--start", type=float, default=20.0, help="excerpt start (s)")
    ap.add_argument("--midi", type=int, default=8, help="number of synthesised pieces")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/mirkit-bench"))
    ap.add_argument("--skip", default="", help="comma-separated: fidelity,midi,speed")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    try:
        import essentia  # noqa: F401
    except ImportError:
        sys.exit("this benchmark needs the essentia wheel (the test oracle)")
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "fidelity" not in skip:
            fidelity(args, tmp)
        if "midi" not in skip:
            midi_accuracy(args, tmp)
        if "speed" not in skip:
            speed(args, tmp)


if __name__ == "__main__":
    main()
