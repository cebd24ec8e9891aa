"""Gaia classification project files (gaia.md §1.4): reading, the built-in default templates
(2.1-beta5 and 2.1-beta2), template selection from the descriptor files' Essentia version,
and the expansion of the classifier grid into configurations.

The templates are written here from the documented keys and values (they are not copies of
Gaia's template files). They use YAML anchors/aliases for the two shared descriptor lists,
as Gaia's do, so a reader must support them (PyYAML's safe loader does).
"""

import itertools
import os
import time

from .. import yamlio
from ..atomic import write_text
from ..errors import MirkitError

DEFAULT_VERSION = "2.1-beta2"
VERSION_MAP = {"2.1-beta5": "2.1-beta5", "2.1-beta6": "2.1-beta5", "2.1-beta2": "2.1-beta2",
               "2.1-beta1": "2.1-beta2"}

UNUSED_BETA2 = ["metadata.*", "*dmean*", "*dvar*", "*.min", "*.max", "*cov", "tonal.thpcp",
                "lowlevel.spectral_energyband_high.*", "lowlevel.silence_rate*"]
UNUSED_BETA5 = UNUSED_BETA2 + ["rhythm.bpm_histogram", "lowlevel.melbands128.*"]
STRINGS_BETA5 = ["tonal.chords_key", "tonal.chords_scale", "tonal.key_krumhansl.key",
                 "tonal.key_edma.key", "tonal.key_temperley.key", "tonal.key_krumhansl.scale",
                 "tonal.key_edma.scale", "tonal.key_temperley.scale"]
STRINGS_BETA2 = ["tonal.chords_key", "tonal.chords_scale", "tonal.key_key", "tonal.key_scale"]

GRID = {
    "preprocessing": ["basic", "lowlevel", "nobands", "normalized", "gaussianized", "mfcc"],
    "type": ["C-SVC"],
    "kernel": ["poly", "RBF"],
    "C": [-5, -3, -1, 1, 3, 5, 7, 9, 11],
    "gamma": [3, 1, -1, -3, -5, -7, -9, -11],
    "balanceClasses": [False, True],
}
GRID_ORDER = ["preprocessing", "type", "kernel", "C", "gamma", "balanceClasses"]


def _flow(items):
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


def template_text(version, class_name, datasets_dir, results_dir, filelist, groundtruth,
                  seed=1, number_processes=False, cluster_mode=False):
    """The default project YAML for a template version (``2.1-beta5`` or ``2.1-beta2``)."""
    if version not in ("2.1-beta5", "2.1-beta2"):
        raise MirkitError(f"no built-in project template for version {version!r}")
    beta5 = version == "2.1-beta5"
    unused = UNUSED_BETA5 if beta5 else UNUSED_BETA2
    strings = STRINGS_BETA5 if beta5 else STRINGS_BETA2

    def q(value):
        return "null" if value is None else yamlio.dump(value, flow=True).strip().removesuffix("...").strip()

    lines = [
        "# mirkit classification project (Gaia classification_project format, template "
        f"{version})",
        f"templateVersion: {version}",
        f"className: {q(class_name)}",
        f"datasetsDirectory: {q(datasets_dir)}",
        f"resultsDirectory: {q(results_dir)}",
        f"filelist: {q(filelist)}",
        f"groundtruth: {q(groundtruth)}",
        f"seed: {q(seed)}",
    ]
    if beta5:
        lines.append(f"numberProcesses: {q(number_processes)}")
    lines += [
        f"clusterMode: {q(cluster_mode)}",
        "",
        "# descriptors excluded when loading the points (merge time)",
        "excludedDescriptors: [ 'metadata.tags*' ]",
        "failOnUnmatched: False",
        "",
        "preprocessing:",
        "    raw: []",
        "",
        "    basic:",
        f"        - {{ transfo: remove, params: {{ descriptorNames: &unusedDescs {_flow(unused)} }} }}",
        f"        - {{ transfo: enumerate, params: {{ descriptorNames: &stringDescs {_flow(strings)} }} }}",
    ]
    common = [
        "        - { transfo: remove, params: { descriptorNames: *unusedDescs } }",
        "        - { transfo: enumerate, params: { descriptorNames: *stringDescs } }",
    ]
    lines += ["", "    lowlevel:"] + common + [
        "        - { transfo: select, params: { descriptorNames: 'lowlevel*' } }"]
    lines += ["", "    nobands:"] + common + [
        "        - { transfo: remove, params: { descriptorNames: [ 'barkbands*', '*energyband*', "
        "'melbands*', 'erbbands*' ] } }"]
    lines += ["", "    normalized:"] + common + ["        - { transfo: normalize }"]
    lines += ["", "    gaussianized:"] + common + [
        "        - { transfo: normalize }",
        "        - { transfo: gaussianize, params: { descriptorNames: 'lowlevel.*' } }"]
    lines += ["", "    mfcc:"] + common + [
        "        - { transfo: select, params: { descriptorNames: 'lowlevel.mfcc*' } }"]
    lines += [
        "",
        "classifiers:",
        "    svm:",
        "        - preprocessing: [ " + ", ".join(GRID["preprocessing"]) + " ]",
        "          type: [ C-SVC ]",
        "          kernel: [ poly, RBF ]",
        "          C: [ " + ", ".join(map(str, GRID["C"])) + " ]  # will actually be 2**x",
        "          gamma: [ " + ", ".join(map(str, GRID["gamma"])) + " ]  # will actually be 2**x",
        "          balanceClasses: [ False, True ]  # weight classes by their number of elements",
        "          # descriptorNames: [ [ '*.mean', '*.var' ] ]",
        "",
        "evaluations:",
        "    nfoldcrossvalidation:",
        "        - nfold: [ 5 ]",
        "",
    ]
    return "\n".join(lines)


def template_version(essentia_versions, force_consistency=False):
    """Gaia's template choice from the set of ``metadata.version.essentia`` strings found in
    the descriptor files: ``2.1-beta5-dev`` -> ``2.1-beta5``; beta6 uses the beta5 template;
    anything unknown, missing, or more than one version -> the default (2.1-beta2), or an
    error with ``force_consistency``."""
    found = set()
    for v in essentia_versions:
        if not v:
            continue
        parts = str(v).split("-")
        if len(parts) > 1 and parts[1].startswith("beta"):
            found.add(parts[0] + "-" + parts[1])
        else:
            found.add(parts[0])
    if len(found) > 1:
        if force_consistency:
            raise MirkitError("descriptor files come from different Essentia versions: "
                              + ", ".join(sorted(found)))
        return DEFAULT_VERSION
    if not found:
        return DEFAULT_VERSION
    return VERSION_MAP.get(found.pop(), DEFAULT_VERSION)


def write_default_project(path, version, class_name, project_dir, filelist, groundtruth,
                          seed=1, jobs=False):
    text = template_text(version, class_name,
                         os.path.abspath(os.path.join(project_dir, "datasets")),
                         os.path.abspath(os.path.join(project_dir, "results")),
                         os.path.abspath(filelist) if filelist else None,
                         os.path.abspath(groundtruth) if groundtruth else None,
                         seed=time.time() if seed is None else seed,
                         number_processes=jobs or False)
    write_text(path, text)
    return text


class Project:
    """A loaded project file. Paths in it are resolved against the file's directory."""

    def __init__(self, data, path=None):
        self.path = path
        self.base_dir = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
        if not isinstance(data, dict):
            raise MirkitError("project file must be a YAML map", path)
        self.data = data
        for key in ("className",):
            if key not in data:
                raise MirkitError(f"project file lacks the {key!r} key", path)

    @classmethod
    def load(cls, path):
        return cls(yamlio.load(path, gaia=False), str(path))

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def class_name(self):
        return str(self.data["className"])

    def resolve(self, value):
        if value is None:
            return None
        value = str(value)
        return value if os.path.isabs(value) else os.path.normpath(os.path.join(self.base_dir, value))

    @property
    def datasets_dir(self):
        return self.resolve(self.data.get("datasetsDirectory") or "datasets")

    @property
    def results_dir(self):
        return self.resolve(self.data.get("resultsDirectory") or "results")

    @property
    def seed(self):
        seed = self.data.get("seed", 1)
        if seed is None:
            return time.time()
        return seed

    @property
    def excluded(self):
        value = self.data.get("excludedDescriptors") or []
        return [value] if isinstance(value, str) else list(value)

    @property
    def fail_on_unmatched(self):
        return bool(self.data.get("failOnUnmatched", False))

    @property
    def preprocessing(self):
        pre = self.data.get("preprocessing")
        if pre is None:
            return {"default": []}  # Gaia's fallback: fixlength, removeVL, cleaner (done at merge)
        if not isinstance(pre, dict):
            raise MirkitError("'preprocessing' must be a map of name -> list of steps", self.path)
        return pre

    def evaluations(self):
        """List of evaluation dicts, e.g. ``[{'nfold': 5, 'type': 'nfoldcrossvalidation'}]``."""
        ev = self.data.get("evaluations") or {"nfoldcrossvalidation": [{"nfold": [10]}]}
        out = []
        for etype, grids in ev.items():
            if etype != "nfoldcrossvalidation":
                raise MirkitError(f"unsupported evaluation type {etype!r}", self.path)
            for grid in grids or [{}]:
                for combo in _expand(grid):
                    combo = dict(combo)
                    combo["type"] = etype
                    out.append(combo)
        return out

    def configurations(self):
        """Every classifier configuration of the grid, in a stable order (``model`` dicts as
        in Gaia's .param: C/gamma exponents, preprocessing, ...)."""
        classifiers = self.data.get("classifiers") or {}
        out = []
        for cname, grids in classifiers.items():
            if cname != "svm":
                raise MirkitError(f"unsupported classifier {cname!r} (only svm)", self.path)
            for grid in grids or []:
                grid = dict(grid)
                pre = grid.get("preprocessing")
                if pre is None or pre == "*" or pre == ["*"]:
                    grid["preprocessing"] = list(self.preprocessing)
                for combo in _expand(grid):
                    combo = dict(combo)
                    combo["classifier"] = cname
                    if combo["preprocessing"] not in self.preprocessing:
                        raise MirkitError(f"classifier grid names preprocessing "
                                          f"{combo['preprocessing']!r}, which is not defined",
                                          self.path)
                    out.append(combo)
        return out


def _expand(grid):
    """Cartesian product of a ``{key: [values]}`` grid (a scalar counts as one value)."""
    keys = [k for k in GRID_ORDER if k in grid] + sorted(k for k in grid if k not in GRID_ORDER)
    values = []
    for k in keys:
        v = grid[k]
        values.append(v if isinstance(v, list) else [v])
    for combo in itertools.product(*values):
        yield dict(zip(keys, combo))
