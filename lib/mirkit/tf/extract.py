"""``extract --model``: run Essentia TensorFlow audio models on decoded audio.

:func:`run_models` takes the decoded mono float32 signal at its native rate, resamples it once
per model rate (libsamplerate linear, float32 ratio: Essentia's ``resampleQuality=4``), computes
each front end once per signal (models sharing a front end share the bands), runs each model
(loaded once per process and cached) and returns the record parts to merge::

    {"highlevel":  {name: {"value", "probability", "all"}},   # mean over patches
     "embeddings": {name: [[...], ...]}}                       # patches x dims

``name`` is the model file's stem (``msd-musicnn-1``). Audio shorter than one patch gives,
with the default ``last_patch='discard'``, an explicit empty result: ``value`` and
``probability`` None, ``all`` {} and an empty embeddings list (``'repeat'`` gives one patch).
"""

import os

import numpy as np

from ..errors import MirkitError
from ..modelio import find_model
from . import frontends as fe
from .models import load_audio_model

MODEL_SUFFIXES = [".pb"]


def resolve(spec):
    """Path of a model given by path or by name (MIRKIT_MODELS, ~/.local/share/..., models/)."""
    path = find_model(spec, MODEL_SUFFIXES)
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise MirkitError("directory is not a TensorFlow SavedModel (no saved_model.pb)", path)
    return path


def run_models(audio, sample_rate, models, embeddings=False, last_patch="discard",
               allow_any_op=False, warn=None, **options):
    """Run audio models on one signal; returns {"highlevel": {...}, "embeddings": {...}}.

    ``models``: model names or paths (or already loaded :class:`AudioModel` objects).
    ``embeddings=True`` also writes embeddings for models whose metadata declares no
    embeddings output (their usual embedding layer). ``warn(message)`` is called for
    audio too short for one patch. Other options go to :class:`~mirkit.tf.models.AudioModel`
    (``threads``, ``batch_size``, ``patch_hop``, ``input``, ``output``, ``front_end``...).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:                       # (frames, channels) -> mean of the channels
        audio = audio.mean(axis=1, dtype=np.float32)
    if audio.ndim != 1:
        raise MirkitError("audio must be a mono signal")
    highlevel, embs = {}, {}
    resampled = {int(sample_rate): audio}
    cache = {}
    for spec in models:
        if hasattr(spec, "run") and hasattr(spec, "sample_rate"):
            model = spec
        else:
            model = load_audio_model(resolve(spec), embeddings=embeddings,
                                     last_patch=last_patch, allow_any_op=allow_any_op,
                                     **options)
        rate = int(model.sample_rate)
        if rate not in resampled:
            resampled[rate] = fe.resample(audio, sample_rate, rate)
        pred, emb = model.run(resampled[rate], cache)
        n = len(pred) if pred is not None else len(emb)
        if n == 0 and warn is not None:
            warn(f"model {model.name}: audio shorter than one patch "
                 f"({model.patch_size} frames), no {last_patch!r} result")
        if pred is not None:
            highlevel[model.name] = model.result(pred)
        if emb is not None and model.want_embeddings:
            embs[model.name] = emb.astype(np.float64).tolist()
    out = {"highlevel": highlevel}
    if embs:
        out["embeddings"] = embs
    return out
