"""Essentia TensorFlow models: metadata, audio models (extract --model) and heads (classify).

A model is a frozen GraphDef ``<name>.pb`` (or a SavedModel directory) with Essentia's
``<name>.json`` metadata beside it (tensorflow.md §1). The metadata gives the classes (output
column order), the input node, the outputs with their ``output_purpose`` (predictions,
embeddings), the inference sample rate, the Essentia wrapper (``inference.algorithm``, which
selects the front end) and, for classification heads, the embedding model they were trained on.
Without a ``.json`` the options ``input``, ``output``, ``embeddings_output``, ``front_end``,
``classes`` and ``embedding_model`` say the same thing.

* :class:`AudioModel` runs on audio (front end + patching + graph); used by
  :func:`mirkit.tf.extract.run_models`.
* :class:`HeadModel` (from :func:`load_head`) runs on ``embeddings.<embedding model>`` of a
  record; the classify interface of :mod:`mirkit.modelio`.

Every result is ``{"value": top class, "probability": its score, "all": {class: mean score}}``,
the mean being over patches (Essentia returns one row per patch and leaves averaging to you).
"""

import json
import os

import numpy as np

from ..errors import MirkitError, MissingDescriptorsError
from ..records import record_id
from . import frontends as fe
from .graph import Graph

# Essentia wrapper -> (front end, default input, default predictions output, default embeddings)
ALGORITHMS = {
    "TensorflowPredictMusiCNN": ("musicnn", "model/Placeholder", "model/Sigmoid",
                                 "model/dense/BiasAdd"),
    "TensorflowPredictVGGish": ("vggish", "model/Placeholder", "model/Sigmoid",
                                "model/vggish/embeddings"),
    "TensorflowPredictEffnetDiscogs": ("effnet", "serving_default_melspectrogram",
                                       "PartitionedCall:0", "PartitionedCall:1"),
    "TensorflowPredictMAEST": ("maest", "melspectrogram", "Identity",
                               "PartitionedCall/Identity_7"),
    "TensorflowPredictTempoCNN": ("tempocnn", "input", "output", None),
    "TempoCNN": ("tempocnn", "input", "output", None),
    "OpenL3": ("openl3", "melspectrogram", None, "embeddings"),
    "TensorflowPredict2D": ("head", "model/Placeholder", "model/Sigmoid", None),
    "TensorflowPredict": ("head", "model/Placeholder", "model/Sigmoid", None),
}
FRONT_END_ALGORITHM = {
    "musicnn": "TensorflowPredictMusiCNN", "vggish": "TensorflowPredictVGGish",
    "effnet": "TensorflowPredictEffnetDiscogs", "maest": "TensorflowPredictMAEST",
    "tempocnn": "TempoCNN", "openl3": "OpenL3", "head": "TensorflowPredict2D",
}
UNSUPPORTED = {"TensorflowPredictFSDSINet", "PitchCREPE"}


def _env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def default_threads():
    """Intra-op threads per session: $MIRKIT_TF_THREADS, else 1.

    One thread per process is the most CPU- and memory-efficient setting measured
    (benchmarks/bench_tf.py); parallelism comes from extract -j (one process per job).
    0 lets TensorFlow use every core.
    """
    return _env_int("MIRKIT_TF_THREADS", 1)


def default_batch(front_end):
    """Patches per session run: $MIRKIT_TF_BATCH, else 4 for audio models, 256 for heads.

    Larger batches do not speed MusiCNN up on CPU but cost memory (about 30 MiB per patch).
    """
    return _env_int("MIRKIT_TF_BATCH", 256 if front_end == "head" else 4)


def metadata_path(path):
    """The ``.json`` beside a ``.pb`` (or a SavedModel directory), or None."""
    path = os.path.normpath(path)
    base = path[:-3] if path.lower().endswith(".pb") else path
    candidates = [base + ".json"]
    if os.path.isdir(path):
        candidates += [os.path.join(path, n) for n in sorted(os.listdir(path))
                       if n.endswith(".json")]
    for cand in candidates:
        if os.path.isfile(cand):
            return cand
    return None


def model_stem(path):
    base = os.path.basename(os.path.normpath(path))
    return base[:-3] if base.lower().endswith(".pb") else base


def _guess_front_end(stem):
    s = stem.lower()
    for key, fe_name in (("maest", "maest"), ("effnet", "effnet"), ("vggish", "vggish"),
                         ("yamnet", "vggish"), ("musicnn", "musicnn"), ("tempocnn", "tempocnn"),
                         ("deeptemp", "tempocnn"), ("deepsquare", "tempocnn"),
                         ("openl3", "openl3")):
        if key in s:
            return fe_name
    return None


class ModelInfo:
    """What a model's ``.json`` (or the options standing in for it) says."""

    def __init__(self, path, input=None, output=None, embeddings_output=None, front_end=None,
                 classes=None, embedding_model=None, **_ignored):
        self.path = path
        self.stem = model_stem(path)
        self.json_path = metadata_path(path)
        meta = {}
        if self.json_path:
            try:
                with open(self.json_path, encoding="utf-8") as fh:
                    meta = json.load(fh)
            except (OSError, ValueError) as exc:
                raise MirkitError(f"cannot read the model metadata: {exc}", self.json_path) from exc
            if not isinstance(meta, dict):
                raise MirkitError("model metadata is not a JSON object", self.json_path)
        self.meta = meta
        inference = meta.get("inference") if isinstance(meta.get("inference"), dict) else {}
        algorithm = inference.get("algorithm")
        if front_end:
            if front_end not in FRONT_END_ALGORITHM:
                raise MirkitError(f"unknown front end {front_end!r} (one of "
                                  f"{', '.join(sorted(FRONT_END_ALGORITHM))})", path)
            algorithm = FRONT_END_ALGORITHM[front_end]
        if not algorithm:
            guess = _guess_front_end(self.stem)
            emb = inference.get("embedding_model") or embedding_model
            algorithm = FRONT_END_ALGORITHM["head" if emb else (guess or "musicnn")]
            if "openl3" in self.stem.lower():
                algorithm = "OpenL3"
        if algorithm in UNSUPPORTED:
            raise MirkitError(f"models for Essentia's {algorithm} are not supported", path)
        if algorithm not in ALGORITHMS:
            raise MirkitError(f"unknown inference algorithm {algorithm!r} in the metadata",
                              self.json_path or path)
        self.algorithm = algorithm
        self.front_end, def_in, def_out, def_emb = ALGORITHMS[algorithm]

        schema = meta.get("schema") if isinstance(meta.get("schema"), dict) else {}
        inputs = schema.get("inputs") or []
        outputs = [o for o in (schema.get("outputs") or []) if isinstance(o, dict)]
        self.input_name = input or (inputs[0].get("name") if inputs else None) or def_in
        self.input_shape = inputs[0].get("shape") if inputs else None

        def purpose(o):
            if "output_purpose" in o:
                return o.get("output_purpose") or ""
            desc = str(o.get("description", "")).lower()   # 2020 variant: no output_purpose
            if desc == "embeddings":
                return "embeddings"
            if desc == "logits":
                return ""
            return "predictions" if str(o.get("op", "")).lower() in ("sigmoid", "softmax") else ""

        by_purpose = {}
        for o in outputs:
            by_purpose.setdefault(purpose(o), o.get("name"))
        if output:
            self.predictions = output
        elif outputs:
            self.predictions = by_purpose.get("predictions")
        else:
            self.predictions = def_out
        self.embeddings = embeddings_output or by_purpose.get("embeddings")
        if not outputs and not self.predictions and not self.embeddings:
            self.embeddings = def_emb          # embedding-only models (OpenL3) without .json
        self.default_embeddings = def_emb
        self.declared_outputs = [o.get("name") for o in outputs]

        self.classes = list(classes) if classes else [str(c) for c in meta.get("classes") or []]
        self.sample_rate = int(inference.get("sample_rate") or 0) or {
            "musicnn": 16000, "vggish": 16000, "effnet": 16000, "maest": 16000,
            "tempocnn": 11025, "openl3": 48000}.get(self.front_end, 16000)
        emb = inference.get("embedding_model") or {}
        self.embedding_model = embedding_model or (emb.get("model_name") if isinstance(emb, dict)
                                                   else str(emb)) or None

    def where(self):
        return self.json_path or self.path

    def describe(self):
        keep = ("name", "type", "version", "description", "author", "release_date", "framework",
                "framework_version", "dataset", "link")
        return {k: self.meta[k] for k in keep if k in self.meta}


def _check_against_graph(info, graph, index, what):
    """The JSON's class list must fit the output width (when the graph declares it)."""
    width = graph.output_width(index)
    if info.classes and width is not None and width != len(info.classes):
        raise MirkitError(f"the metadata does not match the graph: it lists {len(info.classes)} "
                          f"classes but {what} output {graph.output_names[index]!r} has "
                          f"{width} columns", info.where())


def _load_graph(info, outputs, allow_any_op, threads, batch_size):
    try:
        return Graph(info.path, info.input_name, outputs, allow_any_op=allow_any_op,
                     threads=default_threads() if threads is None else threads,
                     batch_size=batch_size or default_batch(info.front_end))
    except MirkitError as exc:
        if info.json_path and "is not in the graph" in exc.reason:
            raise MirkitError(f"the metadata does not match the graph: {exc.reason}",
                              info.json_path) from exc
        raise


def summarise(scores, classes):
    """{value, probability, all} from a [patches, classes] matrix (mean over patches)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(scores) == 0:
        return {"value": None, "probability": None, "all": {}}
    mean = scores.mean(axis=0)
    names = list(classes) if len(classes) == len(mean) else [str(i) for i in range(len(mean))]
    top = int(np.argmax(mean))
    return {"value": names[top], "probability": float(mean[top]),
            "all": {name: float(v) for name, v in zip(names, mean)}}


def tempo_result(scores, classes=None):
    """TempoCNN: local BPM = argmax + 30 per patch, global BPM = majority vote (first wins)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(scores) == 0:
        return {"value": None, "probability": None, "all": {}, "bpm": 0.0, "local_bpm": []}
    arg = scores.argmax(axis=1)
    local = arg + 30
    counts = {}
    best, best_count = None, 0
    for bpm in local.tolist():                 # a vote over patches (tens), not samples
        counts[bpm] = counts.get(bpm, 0) + 1
        if counts[bpm] > best_count:
            best, best_count = bpm, counts[bpm]
    result = summarise(scores, classes if classes and len(classes) == scores.shape[1]
                       else [str(i + 30) for i in range(scores.shape[1])])
    result["value"] = str(best)
    result["probability"] = float(scores[local == best, :].max(axis=1).mean())
    result["bpm"] = float(best)
    result["local_bpm"] = [float(b) for b in local]
    return result


class AudioModel:
    """An audio model (MusiCNN, VGGish, EffNet, MAEST, TempoCNN, OpenL3) run on a signal."""

    def __init__(self, path, allow_any_op=False, threads=None, batch_size=None,
                 last_patch="discard", patch_hop=None, patch_size=None, embeddings=False,
                 name=None, **options):
        self.info = info = ModelInfo(path, **options)
        if info.front_end == "head":
            emb = info.embedding_model or "its embedding model"
            raise MirkitError(f"this is a classification head (input: embeddings of {emb}); "
                              f"apply it with classify -m {path}", path)
        self.name = name or info.stem
        self.path = path
        rate, bands, size, hop = fe.FRONT_ENDS[info.front_end]
        if info.front_end == "maest":
            size, hop = self._maest_patch(path)
        self.sample_rate = info.sample_rate or rate
        self.patch_size = int(patch_size or size)
        self.patch_hop = int(hop if patch_hop is None else patch_hop)
        self.last_patch = last_patch
        outputs = []
        if info.predictions:
            outputs.append(info.predictions)
        emb = info.embeddings
        self.want_embeddings = bool(emb) or embeddings
        if not emb and embeddings:
            emb = info.default_embeddings
            if not emb:
                raise MirkitError("no embeddings output known for this model: name it in the "
                                  "metadata (output_purpose 'embeddings')", path)
        if emb and emb not in outputs:
            outputs.append(emb)
        if not outputs:
            raise MirkitError("the metadata names no predictions or embeddings output", path)
        self.graph = _load_graph(info, outputs, allow_any_op, threads, batch_size)
        self.pred_index = 0 if info.predictions else None
        self.emb_index = outputs.index(emb) if emb else None
        if self.pred_index is not None:
            _check_against_graph(info, self.graph, self.pred_index, "predictions")

    @staticmethod
    def _maest_patch(path):
        """MAEST patch and hop from the graph path, as TensorflowPredictMAEST sets them: the
        path must contain ``discogs-maest-5s-`` (10s, 20s; case-sensitive, checked against the
        oracle), anything else is a 30 s model (1876, 1875)."""
        for key, value in (("discogs-maest-5s-", (316, 313)), ("discogs-maest-10s-", (626, 625)),
                           ("discogs-maest-20s-", (1256, 1250))):
            if key in str(path):
                return value
        return 1876, 1875

    def patches(self, audio, cache=None):
        """Model input tensor [n, ...] from mono float32 audio at ``self.sample_rate``."""
        key = (self.info.front_end, self.sample_rate)
        if cache is not None and ("bands",) + key in cache:
            bands = cache[("bands",) + key]
        else:
            fn = fe.FRONT_ENDS[self.info.front_end][1]
            bands = fn(audio) if fn is not None else None
            if cache is not None:
                cache[("bands",) + key] = bands
        if self.info.front_end == "tempocnn":
            return fe.tempocnn_patches(bands, self.patch_hop, self.last_patch)
        if self.info.front_end == "openl3":
            return fe.openl3_patches(audio)
        return fe.patch(bands, self.patch_size, self.patch_hop, self.last_patch)

    def run(self, audio, cache=None):
        """(predictions [n, C] or None, embeddings [n, D] or None) for audio at the model rate."""
        x = self.patches(audio, cache)
        outs = self.graph.run(x) if len(x) else [np.zeros((0, self.graph.output_width(i) or 0),
                                                          np.float32)
                                                 for i in range(len(self.graph.output_names))]
        pred = outs[self.pred_index] if self.pred_index is not None else None
        emb = outs[self.emb_index] if self.emb_index is not None else None
        return pred, emb

    def result(self, predictions):
        if self.info.front_end == "tempocnn":
            return tempo_result(predictions, self.info.classes)
        return summarise(predictions, self.info.classes)

    def describe(self):
        return {"type": "tensorflow-audio-model", "name": self.name, "path": self.path,
                "algorithm": self.info.algorithm, "front_end": self.info.front_end,
                "sample_rate": self.sample_rate, "patch_size": self.patch_size,
                "patch_hop": self.patch_hop, "input": self.info.input_name,
                "outputs": self.graph.output_names, "classes": self.info.classes,
                "metadata": self.info.describe()}


class MissingEmbeddingsError(MissingDescriptorsError):
    """A record lacks the embeddings a head needs; says which ``extract --model`` to run."""

    def __init__(self, embedding_model, source=None, model=None):
        super().__init__([f"embeddings.{embedding_model}"], source, model)
        self.reason = (f"{self.reason}; run `extract --model {embedding_model}` on the audio "
                       "to compute them")
        self.args = (self.reason,)


class HeadModel:
    """A classification head (TensorflowPredict2D) applied to a record's embeddings."""

    def __init__(self, path, allow_any_op=False, threads=None, batch_size=None, name=None,
                 **options):
        self.info = info = ModelInfo(path, **options)
        if info.front_end != "head":
            raise MirkitError(f"this is an audio model ({info.algorithm}), not a classification "
                              f"head on embeddings: run it with extract --model {info.stem}, "
                              "then apply heads trained on its embeddings", path)
        if not info.embedding_model:
            raise MirkitError("the metadata names no embedding model (inference.embedding_model)"
                              "; give embedding_model= to say which embeddings.<name> to use",
                              info.where())
        if not info.predictions:
            raise MirkitError("the metadata names no predictions output", info.where())
        self.path = path
        self.name = name or info.stem
        self.embedding_model = info.embedding_model
        self.graph = _load_graph(info, [info.predictions], allow_any_op, threads, batch_size)
        _check_against_graph(info, self.graph, 0, "predictions")
        dims = self.graph.input_dims
        self.input_width = dims[-1] if dims and dims[-1] and dims[-1] > 0 else None

    def _embeddings(self, record):
        source = record_id(record) if isinstance(record, dict) else None
        emb = record.get("embeddings") if isinstance(record, dict) else None
        value = emb.get(self.embedding_model) if isinstance(emb, dict) else None
        if value is None:
            raise MissingEmbeddingsError(self.embedding_model, source, self.name)
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise MirkitError(f"embeddings.{self.embedding_model} is not a numeric matrix",
                              source) from exc
        if arr.ndim == 1 and arr.size:
            arr = arr[None, :]
        if arr.size == 0:
            # audio shorter than one patch: extract wrote an explicit empty result; so do we
            return np.zeros((0, self.input_width or 0), dtype=np.float32)
        if arr.ndim != 2:
            raise MirkitError(f"embeddings.{self.embedding_model} is not a patches x dims "
                              "matrix", source)
        if self.input_width and arr.shape[1] != self.input_width:
            raise MirkitError(f"embeddings.{self.embedding_model} have {arr.shape[1]} dims, "
                              f"model {self.name} expects {self.input_width}", source)
        return arr

    def predict(self, record):
        arr = self._embeddings(record)
        if not len(arr):
            return summarise(arr, self.info.classes)  # {value: None, probability: None, all: {}}
        return summarise(self.graph.run(arr)[0], self.info.classes)

    def predict_many(self, records):
        arrays, results = [], []
        for rec in records:
            try:
                arrays.append(self._embeddings(rec))
                results.append(None)
            except MirkitError as exc:
                arrays.append(None)
                results.append(exc)
        good = [a for a in arrays if a is not None and len(a)]
        scores = self.graph.run(np.concatenate(good))[0] if good else None
        pos = 0
        for i, arr in enumerate(arrays):
            if arr is not None:  # an empty matrix gives the explicit empty result
                results[i] = summarise(scores[pos:pos + len(arr)] if len(arr) else arr,
                                       self.info.classes)
                pos += len(arr)
        return results

    def describe(self):
        return {"type": "tensorflow-head", "name": self.name, "path": self.path,
                "algorithm": self.info.algorithm, "input": self.info.input_name,
                "output": self.info.predictions, "embedding_model": self.embedding_model,
                "input_width": self.input_width, "classes": self.info.classes,
                "metadata": self.info.describe()}


_CACHE = {}


def _cached(cls, path, options):
    key = (cls.__name__, os.path.realpath(path),
           tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _CACHE:
        _CACHE[key] = cls(path, **options)
    return _CACHE[key]


def load_head(path, **options):
    """A classification head for classify (cached per process).

    Options: ``allow_any_op``, ``threads``, ``batch_size``, ``name``, and, for a model without
    a ``.json``: ``input``, ``output``, ``classes``, ``embedding_model``.
    """
    name = options.pop("name", None)
    model = _cached(HeadModel, path, options)
    if name:
        model.name = name
    return model


def describe_model(path, **options):
    """``classify --describe`` for any TensorFlow model: a head or an audio model."""
    info = ModelInfo(path, **options)
    cls = HeadModel if info.front_end == "head" else AudioModel
    return _cached(cls, path, {k: v for k, v in options.items() if k != "name"}).describe()


def load_audio_model(path, **options):
    """An audio model for extract --model (cached per process: loaded once, reused)."""
    return _cached(AudioModel, path, options)
