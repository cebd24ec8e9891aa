"""Cross-validation fold assignment.

:func:`gaia_folds` is Gaia's n-fold split (gaia.md §6.1): stratified per class; for each
class, its ids in groundtruth order are shuffled with the stdlib ``random`` module re-seeded
with the project seed (for every class), then cut into contiguous chunks of
``ceil(n_c / nfold)``; fold ``i`` takes chunk ``i`` of every class (so late folds may be
short or empty). The same seed gives the same folds as Gaia (Python 3).

:func:`group_folds` (beyond Gaia, ``gridsearch --group-by groups``) keeps every item of a
group (artist, album) in one fold, stratifying by class as far as possible.
"""

import random

from ..errors import MirkitError


def gaia_folds(labels, nfold, seed=1):
    """Return ``(folds, fold_of)``: ``folds`` a list of ``nfold`` id lists (classes in
    sorted order inside each fold), ``fold_of`` the map id -> fold index.

    ``labels`` maps id -> class in groundtruth (YAML document) order.
    """
    if nfold < 2:
        raise MirkitError(f"nfold must be at least 2, got {nfold}")
    by_class = {}
    for pid, label in labels.items():
        by_class.setdefault(label, []).append(pid)
    rng = random.Random()
    shuffled = {}
    for label in sorted(by_class):
        ids = list(by_class[label])
        rng.seed(seed)
        rng.shuffle(ids)
        shuffled[label] = ids
    folds = [[] for _ in range(nfold)]
    for label in sorted(shuffled):
        ids = shuffled[label]
        size = (len(ids) - 1) // nfold + 1
        for i in range(nfold):
            folds[i].extend(ids[size * i:size * (i + 1)])
    fold_of = {pid: i for i, fold in enumerate(folds) for pid in fold}
    return folds, fold_of


def check_fold_sizes(labels, nfold):
    """MirkitError when a class has fewer items than folds (some folds would never test it)."""
    counts = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    small = sorted((c, n) for c, n in counts.items() if n < nfold)
    if small:
        desc = ", ".join(f"{c!r} has {n}" for c, n in small)
        raise MirkitError(f"every class needs at least {nfold} items for {nfold}-fold "
                          f"cross-validation: {desc}")


def group_folds(labels, groups, nfold, seed=1):
    """Folds keeping each group whole. Groups are shuffled with ``seed``, then placed largest
    first, each into the fold where it least overshoots the per-class target (ties: the
    fold with fewer items, then the lower index). Ids without a group form their own group.
    Returns ``(folds, fold_of)`` like :func:`gaia_folds`."""
    if nfold < 2:
        raise MirkitError(f"nfold must be at least 2, got {nfold}")
    members = {}
    for pid in labels:
        g = groups.get(pid) if groups else None
        key = ("g", g) if g is not None else ("id", pid)
        members.setdefault(key, []).append(pid)
    if len(members) < nfold:
        raise MirkitError(f"only {len(members)} group(s) for {nfold} folds")
    classes = sorted(set(labels.values()))
    totals = {c: 0 for c in classes}
    for label in labels.values():
        totals[label] += 1
    target = {c: totals[c] / nfold for c in classes}
    keys = sorted(members, key=lambda k: (k[0], str(k[1])))
    rng = random.Random()
    rng.seed(seed)
    rng.shuffle(keys)
    keys.sort(key=lambda k: -len(members[k]))  # stable: ties keep the shuffled order
    counts = [{c: 0 for c in classes} for _ in range(nfold)]
    sizes = [0] * nfold
    assigned = [[] for _ in range(nfold)]
    for key in keys:
        comp = {}
        for pid in members[key]:
            comp[labels[pid]] = comp.get(labels[pid], 0) + 1
        best = None
        for f in range(nfold):
            over = sum(max(0.0, counts[f][c] + n - target[c]) ** 2 for c, n in comp.items())
            score = (over, sizes[f], f)
            if best is None or score < best:
                best = score
        f = best[2]
        for c, n in comp.items():
            counts[f][c] += n
        sizes[f] += len(members[key])
        assigned[f].extend(members[key])
    order = {pid: i for i, pid in enumerate(labels)}
    folds = [sorted(ids, key=lambda p: (labels[p], order[p])) for ids in assigned]
    fold_of = {pid: i for i, fold in enumerate(folds) for pid in fold}
    return folds, fold_of
