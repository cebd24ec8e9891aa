"""SVM feature construction (gaia.md §5.2-§5.4).

A :class:`FeatureBlock` holds the descriptors a classifier uses, in Gaia's order
(alphabetical by full dotted name, each expanded into its dimensions), as one float32 matrix
(points x dims) plus, per column, its descriptor and whether it is an Enum code.

On every training set (a CV training fold, or all data for the final model) the classifier
refits:

1. ``cleaner``: drop Real descriptors with NaN/Inf or all dims constant (< 1e-7);
2. ``normalize {independent: true}``: per-dim min-max, ``a = 1/(max-min)``, ``b = -min*a``
   in float32, applied unclipped; a dimension with ``max == min`` inside a descriptor that
   the cleaner kept makes the configuration fail, as in Gaia ("Division by zero").

Enum codes enter the SVM unscaled (raw integers).
"""

import numpy as np

from ..errors import MirkitError
from ..gaia.dataset import ENUM, MIN_RANGE, REAL, STRING
from ..gaia.patterns import select_names


class FeatureBlock:
    def __init__(self, names, kinds, dims, matrix):
        self.names = list(names)          # sorted descriptor names
        self.kinds = list(kinds)          # REAL | ENUM per descriptor
        self.dims = list(dims)            # dims per descriptor
        self.matrix = matrix              # float32 (points x total dims)
        self.offsets = np.concatenate([[0], np.cumsum(self.dims)]).astype(np.intp)
        self.is_enum = np.zeros(self.matrix.shape[1], dtype=bool)
        for i, kind in enumerate(self.kinds):
            if kind == ENUM:
                self.is_enum[self.offsets[i]:self.offsets[i + 1]] = True

    @classmethod
    def from_dataset(cls, ds, descriptor_names="*", exclude=(), class_field=None):
        """Select the classifier's descriptors (default ``'*'``) and stack them."""
        names = select_names(ds.names, descriptor_names, exclude or [], fail_on_unmatched=True,
                             source="classifier descriptorNames")
        if class_field:
            names = [n for n in names if n != class_field]
        strings = [n for n in names if ds.kinds[n] == STRING]
        if strings:
            raise MirkitError("SVMTrain: if you want to use string descriptors for training your "
                              "SVM, you first need to enumerate them (found: "
                              + ", ".join(strings[:5]) + (" ..." if len(strings) > 5 else "") + ")")
        if not names:
            raise MirkitError("SVMTrain: no descriptor left to train on")
        cols = [ds.data[n].astype(np.float32, copy=False) for n in names]
        matrix = np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)
        return cls(names, [ds.kinds[n] for n in names], [c.shape[1] for c in cols], matrix)

    def feature_names(self, keep=None):
        """Per-column names ``desc`` (one dim) or ``desc[i]``."""
        out = []
        for i, name in enumerate(self.names):
            if keep is not None and name not in keep:
                continue
            d = self.dims[i]
            out.extend([name] if d == 1 else [f"{name}[{j}]" for j in range(d)])
        return out


class Scaling:
    """The fitted per-training-set cleaner + min-max: kept descriptors, kept columns,
    a and b per kept column (enum columns: a=1, b=0, flagged)."""

    def __init__(self, kept_names, columns, a, b, is_enum, cleaned):
        self.kept_names = kept_names
        self.columns = columns
        self.a = a
        self.b = b
        self.is_enum = is_enum
        self.cleaned = cleaned

    def apply(self, matrix):
        """Scaled float64 features of the rows of ``matrix`` (all columns of the block)."""
        x = matrix[:, self.columns]
        y = x * self.a + self.b  # float32 arithmetic, as Gaia
        y = np.where(self.is_enum, x, y).astype(np.float32)
        return y.astype(np.float64)


def fit_scaling(block, rows):
    """Fit the classifier's cleaner and independent min-max on ``rows`` of ``block``;
    MirkitError (the configuration fails) on a constant dimension of a kept descriptor."""
    train = block.matrix[rows]
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(train).all(axis=0)
        mins = train.min(axis=0)
        maxs = train.max(axis=0)
    rng = (maxs - mins).astype(np.float32)
    kept, cleaned, columns = [], [], []
    for i, name in enumerate(block.names):
        lo, hi = block.offsets[i], block.offsets[i + 1]
        if block.kinds[i] == REAL:
            if not finite[lo:hi].all() or np.all(rng[lo:hi] < MIN_RANGE):
                cleaned.append(name)
                continue
        kept.append(name)
        columns.extend(range(lo, hi))
    if not columns:
        raise MirkitError("SVMTrain: the cleaner removed every descriptor of the training set")
    columns = np.asarray(columns, dtype=np.intp)
    is_enum = block.is_enum[columns]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        a = (np.float32(1.0) / rng[columns]).astype(np.float32)
        b = (-mins[columns] * a).astype(np.float32)
    bad = ~is_enum & ~(np.isfinite(a) & np.isfinite(b))
    if bad.any():
        col = columns[np.argmax(bad)]
        desc = block.names[int(np.searchsorted(block.offsets, col, side="right") - 1)]
        raise MirkitError(f'Normalize: Apply "cleaner" transformation before normalization. '
                          f'Division by zero in .{desc}')
    a = np.where(is_enum, np.float32(1), a).astype(np.float32)
    b = np.where(is_enum, np.float32(0), b).astype(np.float32)
    return Scaling(kept, columns, a, b, is_enum, cleaned)
