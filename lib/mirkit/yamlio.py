"""YAML in Gaia's dialect: safe loading with Gaia's scalar rules, and `.sig` writing.

Gaia (point.cpp) reads a quoted scalar as a string and an unquoted one as a number when
it parses as a float, else as a string; map keys are always strings (so the groundtruth id
``00`` stays ``"00"``, where plain YAML 1.1 would read the integer 0). Nothing here can
construct arbitrary objects: the loaders derive from PyYAML's SafeLoader.
"""

import math
import re

import yaml

from .errors import MirkitError

try:  # the libyaml parser/emitter is ~10x faster; fall back to pure Python
    _BaseLoader = yaml.CSafeLoader
    _BaseDumper = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _BaseLoader = yaml.SafeLoader
    _BaseDumper = yaml.SafeDumper

# What QString::toFloat accepts, plus YAML's own .inf/.nan spellings.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:inf|infinity|nan)|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.X | re.I,
)
_FLOAT_TAG = "tag:yaml.org,2002:float"


def parse_gaia_float(text):
    """Parse a plain scalar the way Gaia does; ValueError when it is not a number."""
    if not _FLOAT_RE.match(text):
        raise ValueError(text)
    low = text.lower().lstrip("+")
    if low in (".inf", "inf", "infinity"):
        return math.inf
    if low in ("-.inf", "-inf", "-infinity"):
        return -math.inf
    if low.lstrip("-") in (".nan", "nan"):
        return math.nan
    return float(text)


class GaiaLoader(_BaseLoader):
    """SafeLoader with Gaia's scalar typing: unquoted numbers are floats, everything else str."""


GaiaLoader.yaml_implicit_resolvers = {}
GaiaLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_RE, list("-+0123456789.iInN"))


def _construct_float(loader, node):
    return parse_gaia_float(loader.construct_scalar(node))


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)  # YAML merge keys (<<)
    mapping = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = key_node.value
        else:
            raise yaml.constructor.ConstructorError(
                None, None, "map keys must be scalars", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


def _construct_map_node(loader, node):
    data = {}
    yield data
    data.update(_construct_mapping(loader, node))


GaiaLoader.add_constructor(_FLOAT_TAG, _construct_float)
GaiaLoader.add_constructor("tag:yaml.org,2002:map", _construct_map_node)
GaiaLoader.add_constructor("tag:yaml.org,2002:null", lambda loader, node: None)


def _describe_yaml_error(exc):
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"invalid YAML: {problem}"


def loads(text, source=None, gaia=True):
    """Load one YAML document safely. ``gaia=True``: Gaia's scalar rules (see module doc);
    ``gaia=False``: plain YAML 1.1 types (bool, int, ...) but still string map keys."""
    loader = GaiaLoader if gaia else PlainLoader
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - both loaders derive from SafeLoader
    except yaml.YAMLError as exc:
        raise MirkitError(_describe_yaml_error(exc), source) from None
    except RecursionError:
        raise MirkitError("invalid YAML: nested too deeply", source) from None


def load(path, gaia=True):
    """Load a YAML file safely; MirkitError naming the file on any failure."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise MirkitError(exc.strerror or str(exc), path) from None
    return loads(data, source=path, gaia=gaia)


class PlainLoader(_BaseLoader):
    """SafeLoader whose map keys stay strings as written (project files, .param, .result)."""


PlainLoader.add_constructor("tag:yaml.org,2002:map", _construct_map_node)


class SigDumper(_BaseDumper):
    """Writes YAML that Gaia reads back with the same types: strings double-quoted, keys
    sorted, block style, NaN/Inf spelled as QString::toFloat accepts them."""


def _represent_str(dumper, value):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


def _represent_float(dumper, value):
    if math.isnan(value):
        text = "nan"
    elif math.isinf(value):
        text = "inf" if value > 0 else "-inf"
    else:
        text = repr(float(value))
    return dumper.represent_scalar(_FLOAT_TAG, text)


def _represent_bool(dumper, value):
    return dumper.represent_scalar("tag:yaml.org,2002:int", "1" if value else "0")


def _represent_sig_mapping(dumper, data):
    # keys plain (quoted by the emitter only when YAML would misread them), values quoted
    node = yaml.MappingNode("tag:yaml.org,2002:map", [], flow_style=False)
    for key in sorted(data):
        key_node = dumper.represent_scalar("tag:yaml.org,2002:str", str(key))
        node.value.append((key_node, dumper.represent_data(data[key])))
    return node


SigDumper.add_representer(str, _represent_str)
SigDumper.add_representer(dict, _represent_sig_mapping)
def _represent_sig_float(dumper, value):
    if math.isnan(value) or math.isinf(value):
        # plain nan / inf / -inf as the man page says and as Essentia writes them (PyYAML
        # would add an explicit "!!float" tag, since it spells them .nan/.inf itself)
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="")
    return _represent_float(dumper, value)


SigDumper.add_representer(float, _represent_sig_float)
SigDumper.add_representer(bool, _represent_bool)


def dump_sig(record):
    """Serialise a record as a Gaia `.sig` YAML document (text)."""
    return yaml.dump(record, Dumper=SigDumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=True, width=1 << 30)


class PlainDumper(_BaseDumper):
    """Block-style YAML with keys sorted, as Gaia's scripts write with ``yaml.dump``."""


PlainDumper.add_representer(float, _represent_float)


def dump(obj, sort_keys=True, flow=False):
    """Serialise plain data (groundtruths, filelists, .param, .result) as YAML text."""
    return yaml.dump(obj, Dumper=PlainDumper, sort_keys=sort_keys, default_flow_style=flow,
                     allow_unicode=True, width=1 << 30)
