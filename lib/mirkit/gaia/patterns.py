"""Gaia's descriptor-name pattern semantics (gaia.md §2).

Descriptor names are handled here *without* the leading dot Gaia writes
(``lowlevel.mfcc.mean`` for Gaia's ``.lowlevel.mfcc.mean``); the dot is added internally so
that the matching rules are exactly Gaia's:

1. a pattern starting with ``.`` or ``*`` is matched against the whole (dotted) name;
2. any other pattern ``p`` is searched as ``'.' + p``: the leftmost position where it matches
   up to the end of the name is taken, and the part before it is the *prefix*; when the
   matches have more than one distinct prefix the pattern is ambiguous (an error);
3. a pattern that matches nothing is an error (unless ``fail_on_unmatched`` is false, and
   never for ``'*'``).

Wildcards are QRegExp's: ``*`` any run (dots included), ``?`` one character, ``[...]`` a set.
"""

import fnmatch
import re

from ..errors import MirkitError


def _as_list(patterns):
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    return [str(p) for p in patterns]


_REGEX_CACHE = {}


def _regex(pattern):
    rx = _REGEX_CACHE.get(pattern)
    if rx is None:
        rx = _REGEX_CACHE[pattern] = re.compile(fnmatch.translate(pattern))
    return rx


def match_pattern(names, pattern, fail_on_unmatched=True, source=None):
    """The names (in the given order) matched by one pattern; MirkitError when ambiguous or
    (with ``fail_on_unmatched``) when nothing matches."""
    matched = []
    if pattern.startswith(".") or pattern.startswith("*"):
        rx = _regex(pattern)
        matched = [n for n in names if rx.match("." + n)]
    else:
        rx = _regex("." + pattern)
        prefixes = set()
        for name in names:
            dotted = "." + name
            # candidate starts: every dot (the translated pattern starts with a literal dot)
            pos = dotted.find(".")
            while pos >= 0:
                if rx.match(dotted, pos):
                    prefixes.add(dotted[:pos])
                    matched.append(name)
                    break
                pos = dotted.find(".", pos + 1)
        if len(prefixes) > 1:
            raise MirkitError(f'pattern "{pattern}" is ambiguous (it matches under '
                              f'{", ".join(sorted(p or "." for p in prefixes))})', source)
    if not matched and fail_on_unmatched and pattern != "*":
        raise MirkitError(f'PointLayout: pattern "{pattern}" didn\'t match any descriptor', source)
    return matched


def select_names(names, patterns, exclude=None, fail_on_unmatched=True, source=None):
    """Names matched by any of ``patterns`` minus those matched by ``exclude``, in the order
    of ``names`` (gaia.md §2 items 1-5)."""
    names = list(names)
    chosen = set()
    for pattern in _as_list(patterns):
        chosen.update(match_pattern(names, pattern, fail_on_unmatched, source))
    dropped = set()
    for pattern in _as_list(exclude):
        dropped.update(match_pattern(names, pattern, fail_on_unmatched, source))
    return [n for n in names if n in chosen and n not in dropped]
