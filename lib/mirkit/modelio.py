"""Finding and loading classifier models of every kind behind one interface.

A model object has:

* ``name`` (str): the output goes to ``highlevel.<name>``; defaults to the file stem;
* ``predict(record) -> {"value": str, "probability": float, "all": {class: score}}``,
  raising :class:`~mirkit.errors.MissingDescriptorsError` (listing every missing name) or
  another MirkitError for a record it cannot use;
* optionally ``predict_many(records) -> list`` of results or MirkitError instances, faster
  for a batch (classify uses it when present);
* ``describe() -> dict``: a JSON-able description (``classify --describe``).

Loaders are imported lazily by file type, so that e.g. TensorFlow is imported only when a
TensorFlow model is actually loaded.
"""

import importlib
import os

from .errors import MirkitError

# suffix -> "module:function"; the function takes (path) and returns a model object
LOADERS = {
    ".model": "mirkit.svm.modelfile:load_model",
    ".history": "mirkit.gaia.history:load_model",
    ".hist": "mirkit.gaia.history:load_model",
    ".pb": "mirkit.tf.models:load_head",
}
SAVEDMODEL_LOADER = "mirkit.tf.models:load_head"

# loader -> the keyword options it understands; load_model forwards only those, so that one
# set of classify options (e.g. --allow-any-op, --history-fresh) can be given for models of
# every kind: an option meant for another kind of model is simply not passed
LOADER_OPTIONS = {
    "mirkit.svm.modelfile:load_model": (),
    "mirkit.gaia.history:load_model": ("fresh", "lenient"),
    "mirkit.tf.models:load_head": ("allow_any_op", "threads", "batch_size", "input", "output",
                                   "classes", "embedding_model"),
}


def search_path():
    """Directories searched for a model given by name (design.md §5)."""
    dirs = [d for d in os.environ.get("MIRKIT_MODELS", "").split(os.pathsep) if d]
    dirs.append(os.path.join(os.path.expanduser("~"), ".local", "share", "mirkit", "models"))
    dirs.append(os.path.join(os.path.dirname(__file__), "..", "..", "models"))
    return dirs


def find_model(spec, suffixes=None):
    """Resolve a model path or name to an existing path; MirkitError when not found."""
    suffixes = suffixes or list(LOADERS)
    if os.path.exists(spec):
        return spec
    if os.sep not in spec:
        for directory in search_path():
            for candidate in [spec] + [spec + s for s in suffixes]:
                path = os.path.join(directory, candidate)
                if os.path.exists(path):
                    return os.path.normpath(path)
    raise MirkitError("no such model file, and no model of that name in the search path "
                      "(MIRKIT_MODELS, ~/.local/share/mirkit/models, models/)", spec)


def _call(target, path, **options):
    accepted = LOADER_OPTIONS.get(target, ())
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)(path, **kwargs)


def load_model(spec, name=None, **options):
    """Load a model by path or name; ``name`` overrides its output name.

    ``options`` may hold options for any kind of model; each loader gets only the ones it
    understands (:data:`LOADER_OPTIONS`), and None values are not passed."""
    path = find_model(spec)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise MirkitError("directory is not a TensorFlow SavedModel (no saved_model.pb)", path)
        model = _call(SAVEDMODEL_LOADER, path, **options)
    else:
        suffix = os.path.splitext(path)[1].lower()
        target = LOADERS.get(suffix)
        if target is None:
            raise MirkitError(f"unknown model type {suffix or '(no suffix)'!r}: expected "
                              f"{', '.join(LOADERS)} or a SavedModel directory", path)
        model = _call(target, path, **options)
    if name:
        model.name = name
    return model
