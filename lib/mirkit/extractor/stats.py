"""PoolAggregator statistics (extractor.md §5) and the per-namespace choice of §4.1.

:func:`aggregate` turns one frame-wise descriptor (``(n,)`` scalars or ``(n, D)`` vectors)
into ``{stat: value}``; :func:`stats_for` picks the stats list of a descriptor name by the
extractor's substring rules; :func:`aggregate_pool` does a whole ``{name: frames}`` pool.

Definitions: population variance (``var``), ``stdev = sqrt(var)``, median of the sorted
values (mean of the two middle ones for even n), ``dmean``/``dvar`` on ``|x[i+1]-x[i]|``,
``dmean2``/``dvar2`` on ``|d[i+1]-d[i]|`` (signed first differences ``d``), ``cov``
unbiased (n-1), ``icov`` its inverse (double precision). Also ``skew``, ``kurt``, ``last``.
Computed in float64 from the float32 frame values; results are plain Python floats/lists.
"""

import numpy as np

from ..errors import MirkitError

DEFAULT_STATS = ("mean", "var", "stdev", "median", "min", "max", "dmean", "dmean2", "dvar", "dvar2")
COV_STATS = ("mean", "cov", "icov")
KNOWN_STATS = DEFAULT_STATS + ("cov", "icov", "skew", "kurt", "last", "copy", "value")


def check_stats(stats, what="stats"):
    stats = [stats] if isinstance(stats, str) else list(stats)
    bad = [s for s in stats if s not in KNOWN_STATS]
    if bad:
        raise MirkitError(f"{what}: unknown statistic(s) {', '.join(map(str, bad))} "
                          f"(known: {', '.join(KNOWN_STATS)})")
    return stats


def stats_for(name, options):
    """The stats list of descriptor ``name`` (dotted) under the extractor's options."""
    if "lowlevel.mfcc" in name:
        return options.get("lowlevel.mfccStats", COV_STATS)
    if "lowlevel.gfcc" in name:
        return options.get("lowlevel.gfccStats", COV_STATS)
    if "lowlevel." in name:
        return options.get("lowlevel.stats", DEFAULT_STATS)
    if "rhythm." in name:
        return options.get("rhythm.stats", DEFAULT_STATS)
    if "tonal." in name:
        return options.get("tonal.stats", DEFAULT_STATS)
    return DEFAULT_STATS


def _plain(v):
    v = np.asarray(v, np.float64)
    if v.ndim == 0:
        return float(v)
    return v.tolist()


#: columns of a vector descriptor aggregated at once (bounds the float64 temporaries)
COLUMN_CHUNK = 8


def aggregate(values, stats, name="descriptor"):
    """``{stat: value}`` of frame values (n,) or (n, D). Empty input gives no stats.

    Wide descriptors are processed a few columns at a time (cov/icov on all of them).
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] > COLUMN_CHUNK and len(values) > 2048:
        per_col = [s for s in stats if s not in ("cov", "icov")]
        parts = [_aggregate(values[:, c:c + COLUMN_CHUNK], per_col, name)
                 for c in range(0, values.shape[1], COLUMN_CHUNK)]
        out = {}
        for s in stats:
            if s in ("cov", "icov"):
                out.update(_aggregate(values, [s], name))
            elif s in ("copy", "value"):
                out[s] = _plain(values)
            else:
                out[s] = [v for p in parts for v in p[s]]
        return out
    return _aggregate(values, stats, name)


def _aggregate(values, stats, name):
    x = np.asarray(values, np.float64)
    if x.ndim == 0:
        x = x[None]
    n = x.shape[0]
    out = {}
    if n == 0:
        return out
    # Essentia computes in float32: round the frame values to float32 first (they are)
    need_d = any(s in stats for s in ("dmean", "dvar", "dmean2", "dvar2"))
    if need_d:
        d = np.diff(x, axis=0) if n > 1 else np.zeros((1,) + x.shape[1:])
        ad = np.abs(d)
        d2 = np.abs(np.diff(d, axis=0)) if n > 2 else np.zeros((1,) + x.shape[1:])
    for s in stats:
        if s == "mean":
            out[s] = _plain(x.mean(axis=0))
        elif s == "var":
            out[s] = _plain(x.var(axis=0))
        elif s == "stdev":
            out[s] = _plain(x.std(axis=0))
        elif s == "median":
            out[s] = _plain(np.median(x, axis=0))
        elif s == "min":
            out[s] = _plain(x.min(axis=0))
        elif s == "max":
            out[s] = _plain(x.max(axis=0))
        elif s == "dmean":
            out[s] = _plain(ad.mean(axis=0))
        elif s == "dvar":
            out[s] = _plain(ad.var(axis=0))
        elif s == "dmean2":
            out[s] = _plain(d2.mean(axis=0))
        elif s == "dvar2":
            out[s] = _plain(d2.var(axis=0))
        elif s in ("skew", "kurt"):
            m = x.mean(axis=0)
            c = x - m
            m2 = (c ** 2).mean(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                if s == "skew":
                    v = np.where(m2 > 0, (c ** 3).mean(axis=0) / m2 ** 1.5, 0.0)
                else:
                    v = np.where(m2 > 0, (c ** 4).mean(axis=0) / m2 ** 2 - 3.0, -3.0)
            out[s] = _plain(v)
        elif s == "last":
            out[s] = _plain(x[-1])
        elif s in ("copy", "value"):
            out[s] = _plain(x)
        elif s in ("cov", "icov"):
            if x.ndim != 2:
                raise MirkitError(f"{name}: cov/icov need a vector descriptor")
            cov = np.cov(x, rowvar=False, ddof=1) if n > 1 else np.full((x.shape[1],) * 2, np.nan)
            cov = np.atleast_2d(cov).astype(np.float32).astype(np.float64)
            if s == "cov":
                out[s] = cov.tolist()
            else:
                try:
                    if not np.all(np.isfinite(cov)):
                        raise np.linalg.LinAlgError
                    icov = np.linalg.inv(cov)
                    if not np.all(np.isfinite(icov)):
                        raise np.linalg.LinAlgError
                    out[s] = icov.astype(np.float32).astype(np.float64).tolist()
                except np.linalg.LinAlgError:
                    raise MirkitError(f"{name}: covariance matrix is singular, icov undefined "
                                      "(too few or constant frames)") from None
        else:
            raise MirkitError(f"unknown statistic {s!r}")
    return out


def aggregate_pool(pool, options, prefix=""):
    """Aggregate ``{dotted name: frames}``; returns ``{dotted name: {stat: value}}``.

    A descriptor whose ``icov`` is undefined (singular covariance, e.g. a constant or
    one-frame signal) gets an ``icov`` of zeros of the right shape rather than failing the
    whole file; a list of such names is returned as the second item.
    """
    out = {}
    singular = []
    for name, frames in pool.items():
        full = prefix + name
        stats = stats_for(full, options)
        try:
            out[full] = aggregate(frames, stats, full)
        except MirkitError:
            rest = [s for s in stats if s != "icov"]
            agg = aggregate(frames, rest, full)
            if "icov" in stats:
                D = np.asarray(frames).shape[1]
                agg["icov"] = np.zeros((D, D)).tolist()
                singular.append(full)
            out[full] = {s: agg[s] for s in stats if s in agg}
    return out, singular
