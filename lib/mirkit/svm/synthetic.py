"""Synthetic descriptor records in the Essentia "music 2.0" (2.1-beta5) layout, for the
example pipeline, the tests and the grid-search benchmark.

Every record has the descriptor names the default 2.1-beta5 project template refers to
(so each of its patterns matches), about 880 dims after the ``basic`` preprocessing, class-
dependent means on a subset of dimensions, a variable-length ``rhythm.beats_position``
(dropped by removevl) and string key/scale descriptors (enumerated). Deterministic for a
given seed.
"""

import numpy as np

STATS = ("mean", "var", "stdev", "median", "min", "max", "dmean", "dmean2", "dvar", "dvar2")
SCALAR_LOWLEVEL = (
    "average_loudness_x", "barkbands_crest", "barkbands_flatness_db", "barkbands_kurtosis",
    "barkbands_skewness", "barkbands_spread", "dissonance", "erbbands_crest", "erbbands_flatness_db",
    "erbbands_kurtosis", "erbbands_skewness", "erbbands_spread", "hfc", "melbands_crest",
    "melbands_flatness_db", "melbands_kurtosis", "melbands_skewness", "melbands_spread",
    "pitch_salience", "spectral_centroid", "spectral_complexity", "spectral_decrease",
    "spectral_energy", "spectral_energyband_low", "spectral_energyband_middle_high",
    "spectral_energyband_middle_low", "spectral_energyband_high", "spectral_entropy",
    "spectral_flux", "spectral_kurtosis", "spectral_rms", "spectral_rolloff", "spectral_skewness",
    "spectral_spread", "spectral_strongpeak", "zerocrossingrate", "silence_rate_20dB",
    "silence_rate_30dB", "silence_rate_60dB", "loudness_ebu128_m")
VECTOR_LOWLEVEL = (("barkbands", 27), ("erbbands", 40), ("melbands", 40), ("melbands128", 8),
                   ("spectral_contrast_coeffs", 6), ("spectral_contrast_valleys", 6))
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


class _Gen:
    def __init__(self, rng, n_classes, separation):
        self.rng = rng
        self.n_classes = n_classes
        self.separation = separation
        self.effects = {}

    def values(self, name, label, size):
        eff = self.effects.get(name)
        if eff is None:
            # every descriptor weakly informative, a few strongly (as real audio features)
            scale = self.separation * (self.rng.random() ** 2) * 2
            eff = self.effects[name] = (self.rng.normal(0, 1, (self.n_classes, size)) * scale,
                                        self.rng.uniform(0.5, 3.0, size))
        shift, spread = eff
        return (1.0 + shift[label] + self.rng.normal(0, 1, size)) * spread


def make_records(n, n_classes=3, seed=0, separation=0.6, class_names=None):
    """``n`` synthetic records with ids ``track0000``...; returns ``(records, labels)`` where
    ``labels`` maps id -> class name (classes balanced round-robin)."""
    gen = _Gen(np.random.default_rng(seed + 1), n_classes, separation)
    class_names = class_names or [f"class{c}" for c in range(n_classes)]
    records, labels = [], {}
    for i in range(n):
        label = i % n_classes
        pid = f"track{i:04d}"
        labels[pid] = class_names[label]
        gen.rng = np.random.default_rng([seed, i])
        low = {}
        for name in SCALAR_LOWLEVEL:
            low[name] = {s: float(v) for s, v in zip(STATS, gen.values(name, label, len(STATS)))}
        for name, size in VECTOR_LOWLEVEL:
            low[name] = {s: gen.values(f"{name}.{s}", label, size).tolist() for s in STATS}
        low["mfcc"] = {"mean": gen.values("mfcc", label, 13).tolist(),
                       "cov": gen.values("mfcc.cov", label, 9).reshape(3, 3).tolist(),
                       "icov": gen.values("mfcc.icov", label, 9).reshape(3, 3).tolist()}
        low["gfcc"] = {"mean": gen.values("gfcc", label, 13).tolist(),
                       "cov": gen.values("gfcc.cov", label, 4).reshape(2, 2).tolist()}
        low["average_loudness"] = float(gen.values("average_loudness", label, 1)[0])
        rhythm = {
            "bpm": float(gen.values("bpm", label, 1)[0] * 40 + 60),
            "danceability": float(gen.values("danceability", label, 1)[0]),
            "onset_rate": float(gen.values("onset_rate", label, 1)[0]),
            "beats_count": float(int(gen.rng.integers(50, 400))),
            "beats_loudness": {s: float(v) for s, v in
                               zip(STATS, gen.values("beats_loudness", label, len(STATS)))},
            "beats_loudness_band_ratio": {s: gen.values(f"blbr.{s}", label, 6).tolist()
                                          for s in STATS},
            "bpm_histogram": gen.values("bpm_histogram", label, 20).tolist(),
            "bpm_histogram_first_peak_bpm": float(gen.values("fpb", label, 1)[0]),
            "beats_position": np.sort(gen.rng.uniform(0, 200, int(gen.rng.integers(5, 12)))).tolist(),
        }
        key = lambda name: KEYS[int((label * 5 + gen.rng.integers(0, 4)) % 12)]  # noqa: E731
        scale = lambda name: "major" if gen.rng.random() < 0.3 + 0.4 * (label % 2) else "minor"  # noqa: E731
        tonal = {
            "hpcp": {s: gen.values(f"hpcp.{s}", label, 36).tolist() for s in STATS},
            "thpcp": gen.values("thpcp", label, 36).tolist(),
            "chords_histogram": gen.values("chords_histogram", label, 24).tolist(),
            "chords_changes_rate": float(gen.values("ccr", label, 1)[0]),
            "chords_strength": {s: float(v) for s, v in
                                zip(STATS, gen.values("chords_strength", label, len(STATS)))},
            "chords_key": key("chords"), "chords_scale": scale("chords"),
            "tuning_frequency": float(gen.values("tuning", label, 1)[0] + 440),
        }
        for profile in ("edma", "krumhansl", "temperley"):
            tonal[f"key_{profile}"] = {"key": key(profile), "scale": scale(profile),
                                       "strength": float(gen.values(f"ks.{profile}", label, 1)[0])}
        record = {
            "metadata": {
                "version": {"essentia": "2.1-beta5-dev", "extractor": "music 2.0"},
                "audio_properties": {"length": float(gen.rng.uniform(100, 300)),
                                     "sample_rate": 44100.0, "codec": "synthetic"},
                "tags": {"file_name": f"{pid}.wav", "artist": [f"artist{i % max(1, n // 4)}"]},
            },
            "lowlevel": low, "rhythm": rhythm, "tonal": tonal,
        }
        records.append(record)
    return records, labels


def write_dataset(directory, n, n_classes=3, seed=0, separation=0.6, fmt="json"):
    """Write ``n`` records as files (``json`` or ``sig``) plus ``groundtruth.yaml`` and
    ``filelist.yaml`` into ``directory``. Returns ``(groundtruth path, filelist path)``."""
    import json
    import os

    from .. import yamlio
    from ..gaia.groundtruth import GroundTruth, save_filelist, save_groundtruth
    os.makedirs(os.path.join(directory, "descriptors"), exist_ok=True)
    records, labels = make_records(n, n_classes, seed, separation)
    filelist = {}
    for pid, record in zip(labels, records):
        rel = os.path.join("descriptors", f"{pid}.{fmt}")
        path = os.path.join(directory, rel)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record) if fmt == "json" else yamlio.dump_sig(record))
        filelist[pid] = rel
    gt = GroundTruth("synthetic", labels,
                     {pid: rec["metadata"]["tags"]["artist"][0] for pid, rec in zip(labels, records)})
    gt_path = os.path.join(directory, "groundtruth.yaml")
    fl_path = os.path.join(directory, "filelist.yaml")
    save_groundtruth(gt_path, gt)
    with open(fl_path, "w", encoding="utf-8") as fh:
        fh.write(save_filelist(filelist))
    return gt_path, fl_path
