#!/usr/bin/env python3
"""Speed, memory and fidelity of MusiCNN tagging: mirkit vs essentia-tensorflow.

    PYTHONPATH=lib python benchmarks/bench_tf.py [--tracks 10] [--model models/msd-musicnn-1.pb]

What users do (issue 7): tag N real 3-5 minute tracks in one invocation,
``extract --descriptors none --model msd-musicnn-1 FILES``, against essentia-tensorflow's
``TensorflowPredictMusiCNN`` looping over the same files in one process, each file loaded with
``MonoLoader(sampleRate=16000, resampleQuality=4)`` (tensorflow.md §3.6). Each side runs in a
fresh process; CPU time (user + sys) and peak resident memory (ru_maxrss) are measured for
one track and for N tracks. Targets: mirkit <= 0.7x Essentia's CPU time, peak memory <= 1 GiB.

Fidelity: the per-patch tags and embeddings of both sides on the same files (max |difference|
of the track means and of the embeddings over the common patches).

Audio: the Debian package ``singularity-music`` (Ogg Vorbis, 48 kHz stereo, 3.5-5.8 min,
CC BY-SA), fetched with ``apt-get download`` into the cache directory. The oracle: the
environment's ``essentia`` if it has the TensorFlow algorithms, else ``--oracle-path`` /
$MIRKIT_ORACLE_PATH, else essentia-tensorflow is pip-installed (--no-deps) into the cache.
If ``bin/extract`` does not know ``--model`` yet, a Python driver doing the same work
(soundfile decode + mirkit.tf.extract.run_models) stands in for it.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORACLE_VERSION = "essentia-tensorflow==2.1b6.dev1389"

MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.time()
proc = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "wb"), stderr=subprocess.PIPE)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "wall": time.time() - t0,
                  "cpu": r.ru_utime + r.ru_stime, "maxrss_mib": r.ru_maxrss / 1024,
                  "stderr": proc.stderr.decode(errors="replace")[-3000:]}))
"""

ESSENTIA_DRIVER = r"""
import sys, numpy as np
import essentia
essentia.log.warningActive = False
essentia.log.infoActive = False
import essentia.standard as es
model, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
tagger = es.TensorflowPredictMusiCNN(graphFilename=model)
embedder = None
results = {}
for i, f in enumerate(files):
    x = es.MonoLoader(filename=f, sampleRate=16000, resampleQuality=4)()
    results[f"tags{i}"] = tagger(x)
    if out != "-":
        if embedder is None:
            embedder = es.TensorflowPredictMusiCNN(graphFilename=model, output="model/dense/BiasAdd")
        results[f"emb{i}"] = embedder(x)
if out != "-":
    np.savez(out, **results)
"""

MIRKIT_DRIVER = r"""
import sys, numpy as np, soundfile as sf
sys.path.insert(0, sys.argv[1])
from mirkit.tf.extract import run_models
model, out, files = sys.argv[2], sys.argv[3], sys.argv[4:]
results = {}
name = None
for i, f in enumerate(files):
    x, sr = sf.read(f, dtype="float32", always_2d=True)
    x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    r = run_models(x, sr, [model])
    name = name or next(iter(r["highlevel"]))
    results[f"mean{i}"] = np.array(list(r["highlevel"][name]["all"].values()))
    results[f"emb{i}"] = np.array(r["embeddings"][name])
if out != "-":
    np.savez(out, **results)
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fetch_audio(cache, n):
    music = os.path.join(cache, "x", "usr", "share", "games", "singularity", "music")
    if not glob.glob(os.path.join(music, "*.ogg")):
        os.makedirs(cache, exist_ok=True)
        log("fetching the Debian package singularity-music (52 MB)...")
        subprocess.run(["apt-get", "download", "singularity-music"], cwd=cache, check=True)
        deb = sorted(glob.glob(os.path.join(cache, "singularity-music_*.deb")))[-1]
        subprocess.run(["dpkg-deb", "-x", deb, os.path.join(cache, "x")], check=True)
    import soundfile as sf
    files = sorted(glob.glob(os.path.join(music, "*.ogg")), key=lambda f: sf.info(f).duration)
    return files[:n], [sf.info(f).duration for f in files[:n]]


def oracle_env(args, cache):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    probe = [sys.executable, "-c",
             "import essentia.standard as es; assert hasattr(es, 'TensorflowPredictMusiCNN')"]
    local = os.path.join(ROOT, ".oracle-tf")
    path = (args.oracle_path or os.environ.get("MIRKIT_ORACLE_PATH")
            or (local if os.path.isdir(local) else None))
    if not path and subprocess.run(probe, env=env, capture_output=True).returncode == 0:
        return env
    if not path:
        path = os.path.join(cache, "essentia-tf")
        if not os.path.isdir(os.path.join(path, "essentia")):
            log(f"installing {ORACLE_VERSION} (--no-deps) into {path} ...")
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--target", path, ORACLE_VERSION], check=True)
    env["PYTHONPATH"] = path
    if subprocess.run(probe, env=env, capture_output=True).returncode != 0:
        sys.exit(f"bench_tf: no essentia with TensorflowPredictMusiCNN in {path}")
    return env


def measure(cmd, env, stdout_path=os.devnull):
    proc = subprocess.run([sys.executable, "-c", MEASURE, stdout_path] + cmd, env=env,
                          capture_output=True, text=True)
    res = json.loads(proc.stdout)
    if res["rc"] != 0:
        sys.exit(f"bench_tf: {' '.join(cmd[:3])}... failed:\n{res['stderr']}")
    return res


def extract_supports_model(env):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "extract"), "--help"],
                          env=env, capture_output=True, text=True)
    return proc.returncode == 0 and "--model" in proc.stdout and "--descriptors" in proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=10)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "msd-musicnn-1.pb"))
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache",
                                                        "mirkit-bench"))
    parser.add_argument("--oracle-path", help="directory holding essentia-tensorflow")
    parser.add_argument("--skip-essentia", action="store_true")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="extract -j (default 1: CPU time and memory are measured for "
                             "the process tree of one run, and -j workers are not children "
                             "that getrusage can see)")
    parser.add_argument("--single", action="store_true", help="only the one-track case")
    parser.add_argument("--driver", action="store_true",
                        help="time the Python driver even when bin/extract has --model")
    args = parser.parse_args()
    if not os.path.exists(args.model):
        sys.exit(f"bench_tf: {args.model}: not found (run make models)")
    files, durations = fetch_audio(args.cache, args.tracks)
    log(f"{len(files)} tracks, {sum(durations):.0f} s of audio "
        f"({min(durations):.0f}-{max(durations):.0f} s each)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "lib")
    use_cli = extract_supports_model(env) and not args.driver
    tmp = tempfile.mkdtemp(prefix="bench_tf")
    ess_env = None if args.skip_essentia else oracle_env(args, args.cache)

    def ours(fs, out="-"):
        if use_cli:
            return measure([sys.executable, os.path.join(ROOT, "bin", "extract"),
                            "-j", str(args.jobs), "--descriptors", "none",
                            "--model", args.model, "-f", "json"] + fs, env)
        return measure([sys.executable, "-c", MIRKIT_DRIVER, os.path.join(ROOT, "lib"),
                        args.model, out] + fs, env)

    def essentia(fs, out="-"):
        return measure([sys.executable, "-c", ESSENTIA_DRIVER, args.model, out] + fs, ess_env)

    rows = []
    cases = [("1 track", files[:1])]
    if not args.single and len(files) > 1:
        cases.append((f"{len(files)} tracks", files))
    for label, fs in cases:
        m = ours(fs)
        row = {"case": label, "mirkit_cpu": m["cpu"], "mirkit_wall": m["wall"],
               "mirkit_rss": m["maxrss_mib"]}
        if ess_env:
            e = essentia(fs)
            row.update(essentia_cpu=e["cpu"], essentia_wall=e["wall"],
                       essentia_rss=e["maxrss_mib"], ratio=m["cpu"] / e["cpu"])
        rows.append(row)
        log(json.dumps(row))
    print(f"\nMusiCNN tagging ({'bin/extract' if use_cli else 'Python driver'}; "
          f"audio: singularity-music, {sum(durations):.0f} s in {len(files)} tracks)")
    print(f"{'case':<10} {'mirkit CPU s':>12} {'peak MiB':>9} {'essentia CPU s':>15} "
          f"{'peak MiB':>9} {'CPU ratio':>9}")
    for r in rows:
        print(f"{r['case']:<10} {r['mirkit_cpu']:>12.1f} {r['mirkit_rss']:>9.0f} "
              f"{r.get('essentia_cpu', float('nan')):>15.1f} "
              f"{r.get('essentia_rss', float('nan')):>9.0f} {r.get('ratio', float('nan')):>9.2f}")
    print("targets: CPU ratio <= 0.70, mirkit peak <= 1024 MiB")

    if ess_env and not args.single:   # fidelity on the first three tracks
        fs = files[:3]
        ours_out, ess_out = os.path.join(tmp, "ours.npz"), os.path.join(tmp, "ess.npz")
        measure([sys.executable, "-c", MIRKIT_DRIVER, os.path.join(ROOT, "lib"), args.model,
                 ours_out] + fs, env)
        essentia(fs, ess_out)
        a, b = np.load(ours_out), np.load(ess_out)
        dt, de = 0.0, 0.0
        for i in range(len(fs)):
            # Essentia's Vorbis decoder may keep a few extra samples at the end: compare the
            # embeddings over the common patches (the patch counts are reported)
            n = min(len(a[f"emb{i}"]), len(b[f"emb{i}"]))
            if len(a[f"emb{i}"]) != len(b[f"emb{i}"]):
                log(f"track {i}: {len(a[f'emb{i}'])} vs {len(b[f'emb{i}'])} patches")
            dt = max(dt, float(np.abs(a[f"mean{i}"] - b[f"tags{i}"].mean(axis=0)).max()))
            de = max(de, float(np.abs(a[f"emb{i}"][:n] - b[f"emb{i}"][:n]).max()))
        print(f"fidelity on {len(fs)} tracks: mean tags max |diff| {dt:.2e} (target 1e-4), "
              f"embeddings max |diff| {de:.2e} (target 1e-3)")


if __name__ == "__main__":
    main()
