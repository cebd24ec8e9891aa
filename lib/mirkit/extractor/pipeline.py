"""The extractor pipeline: one audio file in, one Essentia "music 2.0" record out.

:func:`extract_file` (extractor.md §1):

1. read the audio properties and tags (``metadata.*``);
2. decode with soundfile block by block, resample every channel to 44100 Hz (one stateful
   libsamplerate ``sinc_medium`` converter, Essentia's float32 ratio and output length),
   trim to ``[startTime, endTime)`` (``int(t*44100)``); the mono mix goes to a signal store
   (memory, or a temporary file for long inputs: a one-hour file stays under 400 MiB);
3. ``lowlevel.loudness_ebu128.*`` on those channels (no replay gain, no downmix);
4. mono downmix (``downmix`` option, default ``mix`` = 0.5*(L+R)), replay gain on its
   equal-loudness copy (retried with ``left`` when it fails or exceeds 40 dB);
5. **S0** = ``clip(mono * 10**((replay_gain + 6)/20), -1, 1)``: float32, 1-D, 44100 Hz,
   *not* equal-loudness filtered. All lowlevel, rhythm and tonal descriptors read S0
   (the equal-loudness copy for some lowlevel ones is made inside ``lowlevel``);
6. ``lowlevel.*`` frame descriptors, ``average_loudness``, ``dynamic_complexity``;
7. ``rhythm`` and ``tonal`` (issue 6): if ``mirkit.extractor.rhythm`` / ``.tonal`` exist and
   define ``compute``, the pipeline calls ``compute(S0, 44100.0, options)`` with S0 as
   above and ``options`` the flat dict of :mod:`mirkit.extractor.profile` (keys
   ``rhythm.method``, ``rhythm.minTempo``, ``rhythm.maxTempo``, ``rhythm.stats``,
   ``tonal.frameSize``, ``tonal.hopSize``, ``tonal.zeroPadding``, ``tonal.windowType``,
   ``tonal.silentFrames``, ``tonal.stats``, ``outputFrames``, ...). ``compute`` returns the
   namespace's nested, already aggregated sub-record (``{"bpm": 120.0, "beats_loudness":
   {"mean": ...}, ...}``), or, only when ``options["outputFrames"]`` is true, optionally a
   pair ``(sub_record, frames_sub_record)`` whose second item holds the raw frame values
   (lists) for ``--frames``. Until then the record simply has no such namespace. For long
   inputs (the signal spilled to a temporary file) ``compute`` receives the signal store
   (``len()``, ``read(a, b)``) instead of an array, and reads it block by block;
8. statistics (PoolAggregator, :mod:`mirkit.extractor.stats`).

Models (issue 7): ``options["models"]`` (names/paths) makes the pipeline call
``mirkit.tf.extract.run_models(audio, sample_rate, models, embeddings=...)`` with the
decoded audio *before* any gain: a float32 ``(n, channels)`` array at the file's own
sample rate, trimmed to ``[startTime, endTime)``; its ``{highlevel:..., embeddings:...}``
result is merged into the record.
"""

import importlib
import os
import sys
import time

import numpy as np

from .. import __version__
from ..errors import MirkitError
from ..records import set_path
from . import audio as audio_mod
from . import loudness, lowlevel, profile, signal, stats, stream, tags as tags_mod

ANALYSIS_RATE = 44100.0
NAMESPACES = ("lowlevel", "rhythm", "tonal")


def _base_record(props, analysis, file_tags, shown):
    """The record's ``metadata``: version, audio properties (+ ``analysis``), tags, id."""
    ap = dict(props)
    ap["analysis"] = analysis
    tags = dict(file_tags)
    tags["file_name"] = os.path.basename(shown)
    return {"metadata": {"version": {"mirkit": __version__, "extractor": "music 2.0"},
                         "audio_properties": ap, "tags": tags, "id": shown}}


def _frames_plain(value):
    a = np.asarray(value, np.float64)
    return a.tolist()


def _optional_module(name):
    try:
        mod = importlib.import_module(f"mirkit.extractor.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"mirkit.extractor.{name}":
            return None
        raise
    return mod if callable(getattr(mod, "compute", None)) else None


def _decode_pass(path, shown, opts, mode, with_ebu, info):
    """Decode, resample and trim the file once: returns (mono store, EBU accumulator or
    None, number of decoded input frames, channels, peak of |mono|)."""
    ch = info["channels"]
    expected = int(info["frames"] * ANALYSIS_RATE / max(info["samplerate"], 1)) + 16
    t0, t1 = float(opts["startTime"]), float(opts["endTime"])
    span = int((min(t1, 1e9) - t0) * ANALYSIS_RATE)
    store = stream.SignalStore(max(0, min(expected, span)))
    ebu = loudness.EBUR128(ch, ANALYSIS_RATE) if with_ebu else None
    gen = stream.decode_blocks(path, shown, ANALYSIS_RATE, t0, t1)
    decoded = 0
    peak = 0.0
    while True:
        try:
            block = next(gen)
        except StopIteration as stop:
            decoded = stop.value or 0
            break
        if ebu is not None:
            ebu.add(block)
        mono = signal.downmix(block, mode)
        if len(mono):
            peak = max(peak, float(np.abs(mono).max()))
        store.append(mono)
    return store, ebu, decoded, ch, peak


def _replay_gain_pass(store, keep_eq):
    """Replay gain of ``clip(mono)`` streamed from the store: (gain or None, eq store or None)."""
    fir = stream.StreamingFIR(signal.equal_loudness_fir())
    rg = signal.ReplayGain(ANALYSIS_RATE)
    eq_store = stream.SignalStore(len(store)) if keep_eq else None
    for _, block in stream.iter_store_blocks(store):
        eq = fir(np.clip(block, -1.0, 1.0)).astype(np.float32)
        rg.add(eq)
        if eq_store is not None:
            eq_store.append(eq)
    try:
        gain = rg.result()
    except MirkitError:
        return None, eq_store
    return (gain if gain <= 40.0 else None), eq_store


_ALLOCATOR_TUNED = False


def tune_allocator():
    """Keep freed memory for reuse instead of returning it to the system at once (glibc).

    The pipeline allocates and frees arrays of a few MiB per block; glibc's default (dynamic)
    mmap threshold serves many of them with fresh ``mmap`` pages, and the page faults of
    touching them cost 15-20 % of the CPU time of one file. A fixed 64 MiB mmap threshold and
    a 256 MiB trim threshold make them reuse the heap. Peak memory is unchanged (it is set
    by the live arrays); a no-op on other C libraries.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt          # the process's C library (glibc)
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    except (OSError, AttributeError, TypeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 64 << 20)
    mallopt(M_TRIM_THRESHOLD, 256 << 20)


class _Clock:
    """Process CPU time per pipeline stage, accumulated into ``timings`` (if given)."""

    def __init__(self, timings):
        self.timings = timings
        self.t = time.process_time()

    def lap(self, stage):
        if self.timings is None:
            return
        now = time.process_time()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self.t)
        self.t = now


def extract_file(path, options=None, source=None, timings=None):
    """Describe one audio file; returns the statistics record (a nested dict).

    With ``options["outputFrames"]`` true, returns ``(record, frames_record)``.
    ``source`` is the name used in messages and ``metadata.id`` (default: the path).
    ``timings``: an optional dict that receives the process CPU time (s) of each stage
    (``decode``, ``replay_gain``, ``lowlevel.frames``, ``lowlevel.loudness``, ``stats``,
    ``rhythm``, ``tonal``, ...), for the benchmarks.
    Raises MirkitError (naming the file) for every expected failure.

    Memory stays bounded for long files: the file is decoded in blocks and the mono
    signal kept in a :class:`~mirkit.extractor.stream.SignalStore`; rhythm/tonal receive
    one array for ordinary tracks and the store itself for spilled (long) ones; models
    receive the decoded audio as one array.
    """
    clock = _Clock(timings)
    opts = profile.default_options()
    if options:
        opts.update(options)
    shown = source if source is not None else audio_mod.display_name(path)
    descriptors = opts.get("descriptors", ("lowlevel", "rhythm", "tonal"))
    if descriptors:
        # not for model-only runs: there it saved no CPU and kept ~50 MiB more resident
        tune_allocator()
    want_frames = bool(opts.get("outputFrames"))

    info = audio_mod.open_info(path, shown)
    props = audio_mod.probe(path, info)
    file_tags = tags_mod.read_tags(path, info["format"])
    clock.lap("metadata")
    if opts.get("requireMbid") and "musicbrainz_trackid" not in file_tags:
        raise MirkitError("no musicbrainz_trackid tag (requireMbid is set)", shown)

    sr = ANALYSIS_RATE
    t0, t1 = float(opts["startTime"]), float(opts["endTime"])

    models = opts.get("models") or []
    tf_result = None
    if models:
        try:
            tf_extract = importlib.import_module("mirkit.tf.extract")
            run_models = tf_extract.run_models
        except (ModuleNotFoundError, AttributeError):
            raise MirkitError("TensorFlow models are not available in this installation "
                              "(mirkit.tf.extract.run_models is missing)", shown) from None
        sr_in = int(info["samplerate"])
        a0 = int(t0 * sr_in)
        # the models' own mono mix, decoded block by block (never the multichannel signal)
        audio, sr_in, decoded_models = audio_mod.read_mono(path, a0, int(min(t1, 1e9) * sr_in))
        a1 = a0 + len(audio)
        tf_result = run_models(audio, float(sr_in), list(models),
                               embeddings=bool(opts.get("embeddings")),
                               allow_any_op=bool(opts.get("allow_any_op")),
                               **(opts.get("model_options") or {}))
        del audio
        clock.lap("models")
        if not descriptors and not want_frames:
            # models only: the metadata comes from this decode; no second decode and no
            # replay-gain pass (so no audio_properties.replay_gain in the record)
            if decoded_models == 0:
                raise MirkitError("no audio samples in the file (zero-length audio)", shown)
            props["length"] = decoded_models / float(sr_in)
            analysis = {"downmix": opts.get("downmix", "mix"), "equal_loudness": 0.0,
                        "length": max(0, a1 - a0) / float(sr_in), "sample_rate": float(sr_in),
                        "start_time": t0}
            record = _base_record(props, analysis, file_tags, shown)
            for ns, sub in tf_result.items():
                if isinstance(sub, dict):
                    record.setdefault(ns, {}).update(sub)
            return record

    want_ll = "lowlevel" in descriptors
    mode = opts.get("downmix", "mix")
    store, ebu, decoded, channels, peak = _decode_pass(path, shown, opts, mode, want_ll, info)
    if decoded == 0:
        raise MirkitError("no audio samples in the file (zero-length audio)", shown)
    clock.lap("decode+ebu128")
    props["length"] = decoded / float(info["samplerate"])
    n = len(store)
    if n == 0:
        raise MirkitError("empty input signal (nothing between the start and end times)", shown)

    record = _base_record(props, {"downmix": mode, "equal_loudness": 0.0, "length": n / sr,
                                  "sample_rate": sr, "start_time": t0}, file_tags, shown)
    md = record["metadata"]
    ap = md["audio_properties"]

    frames_out = {}
    singles = {}
    pool = {}

    if ebu is not None:
        r = ebu.result()
        singles["lowlevel.loudness_ebu128.integrated"] = r["integrated"]
        singles["lowlevel.loudness_ebu128.loudness_range"] = r["loudness_range"]
        pool["lowlevel.loudness_ebu128.momentary"] = r["momentary"]
        pool["lowlevel.loudness_ebu128.short_term"] = r["short_term"]

    rg, eq_store = _replay_gain_pass(store, want_ll)
    if rg is None and channels > 1 and mode == "mix":
        store.close()
        if eq_store is not None:
            eq_store.close()
        store, _, _, _, peak = _decode_pass(path, shown, opts, "left", False, info)
        rg, eq_store = _replay_gain_pass(store, want_ll)
    if rg is None:
        raise MirkitError("file looks like a completely silent file (replay gain undefined)", shown)
    clock.lap("replay_gain")
    ap["replay_gain"] = float(rg)
    factor = signal.db2amp(rg + 6.0)
    s0 = stream.ScaledStore(store, factor)
    # The filter is linear: without clipping, EQ(S0) = gain * EQ(mono) (saves a pass).
    eq_s0 = None
    if eq_store is not None and peak <= 1.0 and peak * np.float32(factor) <= 1.0:
        eq_s0 = stream.ScaledStore(eq_store, factor, clip=False)

    if want_ll:
        ll = lowlevel.compute_frames(
            s0, sr, opts["lowlevel.frameSize"], opts["lowlevel.hopSize"],
            opts["lowlevel.zeroPadding"], opts["lowlevel.windowType"],
            opts["lowlevel.silentFrames"], eq_signal=eq_s0)
        for name, value in ll.items():
            if len(value):
                pool["lowlevel." + name] = value
        del ll          # the frames live in ``pool`` only (freed before rhythm/tonal)
        clock.lap("lowlevel.frames")
        levels = loudness.loudness_frames(s0, opts["average_loudness.frameSize"],
                                          opts["average_loudness.hopSize"])
        avg = loudness.average_loudness(levels)
        if avg is None:
            raise MirkitError("file is too short for loudness estimation", shown)
        singles["lowlevel.average_loudness"] = avg
        singles["lowlevel.dynamic_complexity"] = loudness.dynamic_complexity(s0, sr)
        clock.lap("lowlevel.loudness")
    if eq_store is not None:
        eq_store.close()

    aggregated, _singular = stats.aggregate_pool(pool, opts)
    for name, value in singles.items():
        set_path(record, name, float(value))
    for name, value in aggregated.items():
        set_path(record, name, value)
    if want_frames:
        for name, value in singles.items():
            frames_out[name] = float(value)
        for name, value in pool.items():
            frames_out[name] = _frames_plain(value)

    if not want_frames:
        pool.clear()
    clock.lap("lowlevel.stats")
    frames_record = None
    if want_frames:
        frames_record = {"metadata": {k: v for k, v in md.items()}}
        for name, value in frames_out.items():
            set_path(frames_record, name, value)

    for ns in ("rhythm", "tonal"):
        if ns not in descriptors:
            continue
        mod = _optional_module(ns)
        if mod is None:
            continue
        if not isinstance(s0, np.ndarray) and not getattr(s0, "spilled", False):
            s0 = s0.array()     # an ordinary track: rhythm/tonal get one array
        # a long (spilled) signal stays a store: rhythm and tonal read it block by block
        result = mod.compute(s0, sr, opts)
        sub_frames = None
        if isinstance(result, tuple):
            result, sub_frames = result
        if result:
            record[ns] = result
        if frames_record is not None and sub_frames:
            frames_record[ns] = sub_frames
        clock.lap(ns)

    for key, value in (opts.get("mergeValues") or {}).items():
        set_path(record, key, str(value))

    store.close()
    if tf_result:
        for ns, sub in tf_result.items():
            if isinstance(sub, dict):
                record.setdefault(ns, {}).update(sub)
    if want_frames:
        return record, frames_record
    return record
