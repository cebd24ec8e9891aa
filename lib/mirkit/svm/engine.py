"""The fast grid engine: many SVM configurations over shared, precomputed work.

For one feature block (a preprocessing with its classifier descriptor selection) and one CV
fold, everything that configurations have in common is computed once:

* the classifier's cleaner + per-dimension min-max, fitted on the training fold
  (:func:`mirkit.svm.features.fit_scaling`), and the scaled train/test matrices;
* libsvm's one-vs-one decomposition done here: the fold is worked one class pair at a
  time, each pair with the Gram matrix ``X X'`` of its own rows (train x train and test x
  train) and their squared norms -- memory follows the largest pair, not the fold;
* per pair and (kernel, gamma): the kernel matrices, derived from the Gram matrix exactly as
  libsvm computes them (poly: ``(gamma*u'v + coef0)^3``, RBF:
  ``exp(-gamma*(|u|^2+|v|^2-2u'v))``), and one libsvm precomputed-kernel problem (``-t 4``),
  reused for every C and balance setting; the linear kernel does not depend on gamma and is
  trained once per C/balance; test predictions by libsvm's voting, evaluated with numpy on
  the test kernel rows;
* a balanceClasses configuration whose weights are all exactly 1 (classes of equal size in
  the training fold) is the same problem as its unbalanced twin and is trained once;
* polynomial kernels whose gamma is a power of two are exact multiples of the gamma-1
  kernel: their configurations are solved on the gamma-1 problems with C scaled by
  ``gamma**degree`` (:func:`_poly_scale`), so configurations with equal ``C*gamma**3`` share
  one solve;
* the C values of one binary problem share one solve from the point where the upper bound
  no longer matters (libsvm's SMO never clips at it: separable data, large C), recognised
  by two bit-identical solutions (:func:`solve_for_each_c`);
* libsvm's kernel cache (``-m``) is sized to hold a pair's whole kernel matrix (at least
  Gaia's 100 MB): the cache only decides what is recomputed, never a value;
* models are freed as soon as their support vectors, coefficients and rho are copied out.

:func:`plan_tasks` decides how a fold's configurations are cut into worker tasks (one task
per fold, or, for low-dimensional blocks whose cost is a few slow polynomial solves, one
task per group of solve-sharing configurations: all polynomial ones of a degree, the others
per kernel matrix) and :func:`estimate_seconds` gives the
costs used to start the slowest work first.

The solver sees the same kernel values, labels, C and weights as when each configuration is
trained separately on dense vectors (up to the last bit of the kernel arithmetic), so the
predictions are the same; ``tests/test_svm_engine.py`` checks it against independent
per-configuration training.
"""

import re

import numpy as np

from ..errors import MirkitError
from . import libsvm_io
from .features import fit_scaling


def kernel_from_gram(kernel, gamma, G, sq_rows=None, sq_cols=None, degree=3, coef0=0.0):
    code = libsvm_io.kernel_code(kernel)
    if code == 0:
        return G
    if code == 1:
        t = gamma * G + coef0
        out = np.ones_like(t)
        base = t.copy()
        d = int(degree)
        while d > 0:  # libsvm's powi: repeated squaring
            if d % 2 == 1:
                out *= base
            base *= base
            d //= 2
        return out
    if code == 2:
        return np.exp(-gamma * (sq_rows[:, None] + sq_cols[None, :] - 2.0 * G))
    return np.tanh(gamma * G + coef0)


def gram(X):
    """X X' made exactly symmetric (as libsvm's dot(x_i, x_j) == dot(x_j, x_i))."""
    G = X @ X.T
    upper = np.triu_indices(len(G), 1)
    G.T[upper] = G[upper]
    return G


def fold_memory(n_train, n_test, class_sizes):
    """Rough peak bytes of :func:`evaluate_fold` on a fold: for its largest one-vs-one class
    pair (``m`` rows), the float64 Gram, kernel and gamma-1 polynomial matrices with their
    temporaries, and two pair problems (libsvm nodes: 16 bytes per kernel value) with their
    test kernel rows. Checked against measured peaks (tests, README)."""
    sizes = sorted((int(s) for s in class_sizes if s), reverse=True)
    m = sizes[0] + sizes[1] if len(sizes) > 1 else sum(sizes)
    return 7 * 8 * m * (m + n_test) + 2 * (16 * m * (m + 2) + 8 * n_test * m)


def evaluate_fold(task):
    """Worker entry point. ``task``: dict with ``block`` (FeatureBlock), ``y`` (class index
    per row), ``n_classes``, ``train``/``test`` (row indices), ``fold``, ``configs`` (list of
    model dicts: kernel, C and gamma exponents, balanceClasses, type), and optionally
    ``memory_budget`` (bytes): when a fold's class pair would need more (:func:`fold_memory`),
    each configuration is trained on its own, on dense vectors with libsvm's kernel cache,
    as Gaia does (much slower, little memory).

    The fold is worked one one-vs-one class pair at a time, each pair with the Gram and
    kernel matrices of its own rows (memory ~ the largest pair, not the whole fold; as fast,
    the full matrices were mostly sliced into pairs anyway).

    Returns ``{config index: predicted class indices for the test rows}`` or, for a failed
    configuration, ``{index: MirkitError-message string}``."""
    block, y = task["block"], task["y"]
    train, test = task["train"], task["test"]
    configs = task["configs"]
    fold = task["fold"]
    budget = task.get("memory_budget")
    if budget and fold_memory(len(train), len(test),
                              np.bincount(y[train], minlength=task["n_classes"])) > budget:
        return _evaluate_each(task)
    out = {}
    try:
        scaling = fit_scaling(block, train)
    except MirkitError as exc:
        return {i: f"fold {fold}: {exc.reason}" for i in range(len(configs))}
    Xtr = scaling.apply(block.matrix[train])
    Xte = scaling.apply(block.matrix[test])
    ytr = y[train]
    weights = libsvm_io.class_weights(ytr, task["n_classes"])
    # classes of equal size in the training fold: every weight is exactly 1, so a
    # balanceClasses configuration is the very same problem as its unbalanced twin
    unit_weights = all(w == 1.0 for w in weights.values())

    # group configurations by kernel matrix
    by_kernel = {}
    for i, cfg in enumerate(configs):
        try:
            libsvm_io.svm_type_code(cfg.get("type", "C-SVC"))
            kernel = str(cfg["kernel"]).lower()
            code = libsvm_io.kernel_code(kernel)
        except MirkitError as exc:
            out[i] = f"fold {fold}: {exc.reason}"
            continue
        gamma = 0.0 if code == 0 else 2.0 ** float(cfg["gamma"])
        key = (code, gamma, int(cfg.get("degree", 3)))
        by_kernel.setdefault(key, []).append(i)

    # libsvm's one-vs-one decomposition, done here: classes in order of first appearance
    # in the training rows; pair (a, b) trains on class-a rows then class-b rows (training
    # order), labels +1/-1, Cp = C*W_a, Cn = C*W_b -- exactly the binary problems libsvm's
    # multi-class svm_train builds, but each with its own small precomputed kernel matrix
    # (much better memory locality than one big matrix: ~2.5x faster per fit)
    _, first = np.unique(ytr, return_index=True)
    order = [int(ytr[i]) for i in sorted(first)]
    pairs = []
    for ia in range(len(order)):
        for ib in range(ia + 1, len(order)):
            ra = np.nonzero(ytr == order[ia])[0]
            rb = np.nonzero(ytr == order[ib])[0]
            idx = np.concatenate([ra, rb])
            yy = np.concatenate([np.ones(len(ra)), -np.ones(len(rb))])
            pairs.append((ia, ib, idx, yy))
    if len(order) == 1:
        for idxs in by_kernel.values():
            out.update({i: np.full(len(test), order[0], dtype=np.int32) for i in idxs})
        return out

    votes = {}
    work = Fold(Xtr, Xte, by_kernel, configs, weights, unit_weights, order, fold)
    for ia, ib, idx, yy in pairs:
        _add_votes(votes, work.pair_votes(ia, ib, idx, yy))
    labels = np.asarray(order, dtype=np.int32)
    for i, v in votes.items():
        out[i] = v if isinstance(v, str) else labels[np.argmax(v, axis=1)]
    return out


def _add_votes(total, part):
    """Sum per-configuration votes; a message (a failure in any pair) wins."""
    for i, v in part.items():
        if isinstance(total.get(i), str):
            continue
        total[i] = v if isinstance(v, str) or i not in total else total[i] + v


class Fold:
    """The scaled matrices of one fold and its configurations, ready to be solved one
    one-vs-one class pair at a time (:meth:`pair_votes`)."""

    def __init__(self, Xtr, Xte, by_kernel, configs, weights, unit_weights, order, fold):
        self.Xtr, self.Xte = Xtr, Xte
        self.by_kernel, self.configs = by_kernel, configs
        self.weights, self.unit_weights = weights, unit_weights
        self.order, self.fold = order, fold

    def pair_votes(self, ia, ib, idx, yy):
        """``{config index: votes (test rows x classes) or message}`` of the pair of classes
        ``ia``/``ib`` trained on the fold's rows ``idx`` (class a, then class b) with labels
        ``yy``: the Gram and kernel matrices of those rows only."""
        Xtr = self.Xtr[idx]
        pairs = [(ia, ib, np.arange(len(idx)), yy)]  # indices local to Xtr
        Xte, configs, fold = self.Xte, self.configs, self.fold
        G = gram(Xtr)
        Gte = Xte @ Xtr.T
        sq_tr = np.diag(G).copy()  # libsvm's x_square = dot(x, x): K(x, x) = exp(0) = 1
        sq_te = np.einsum("ij,ij->i", Xte, Xte)
        out = {}
        # configurations whose binary problems share one kernel matrix are solved
        # together; the polynomial ones of every gamma with an exact scaling share the
        # gamma-1 problems (see _poly_scale), their C multiplied by gamma**degree, last
        canonical = {}  # degree -> shared gamma-1 polynomial problems
        canonical_requests = {}  # degree -> [(config index, C, balance)]
        for (code, gamma, degree), idxs in self.by_kernel.items():
            kname = {0: "linear", 1: "poly", 2: "rbf", 3: "sigmoid"}[code]
            Ktr = kernel_from_gram(kname, gamma, G, sq_tr, sq_tr, degree)
            Kte = kernel_from_gram(kname, gamma, Gte, sq_te, sq_tr, degree)
            if not (np.isfinite(Ktr).all() and np.isfinite(Kte).all()):
                for i in idxs:
                    out[i] = (f"fold {fold}: kernel values overflow (kernel {kname}, "
                              f"gamma {gamma})")
                continue
            scale = None
            if code == 1:
                if degree not in canonical:
                    canonical[degree] = _canonical_poly(G, Gte, degree, pairs)
                scale = 1.0 if gamma == 1.0 else _poly_scale(canonical[degree], gamma,
                                                             degree, Ktr, Kte)
            requests = [(i, 2.0 ** float(configs[i]["C"]) * (scale or 1.0),
                         bool(configs[i].get("balanceClasses", False))
                         and not self.unit_weights)
                        for i in idxs]
            if scale is not None:
                canonical_requests.setdefault(degree, []).extend(requests)
                continue
            problems = [(ia, ib, libsvm_io.kernel_problem(
                np.ascontiguousarray(Ktr[np.ix_(idx, idx)]), yy), Kte[:, idx])
                for ia, ib, idx, yy in pairs]
            out.update(self._solve(problems, requests))
        for degree, requests in canonical_requests.items():
            out.update(self._solve(canonical[degree]["problems"], requests))
        return out

    def _solve(self, problems, requests):
        """Votes for ``requests`` ``[(config index, C, balance)]`` on one set of pair
        problems."""
        out = {}
        for balance in (False, True):
            cs = [c for _, c, b in requests if b == balance]
            if not cs:
                continue
            votes = _vote_pairs(problems, self.order, cs,
                                self.weights if balance else None, self.Xte.shape[0],
                                self.fold)
            out.update({i: votes[c] for i, c, b in requests if b == balance})
        return out


def _evaluate_each(task):
    """Every configuration of the task trained on its own (:func:`evaluate_config_direct`)."""
    out = {}
    for i, cfg in enumerate(task["configs"]):
        try:
            libsvm_io.svm_type_code(cfg.get("type", "C-SVC"))
            out[i] = evaluate_config_direct(task["block"], task["y"], task["n_classes"],
                                            task["train"], task["test"], cfg)
        except MirkitError as exc:
            out[i] = f"fold {task['fold']}: {exc.reason}"
    return out


def _vote_pairs(problems, order, cs, weights, n_test, fold):
    """Train every one-vs-one pair problem for every C in ``cs`` and count the votes of the
    test rows (libsvm's rules: a positive decision value votes for the first class of the
    pair). Returns ``{C: votes (test rows x classes)}`` or, where libsvm refused the
    parameters, ``{C: message}``."""
    cs = sorted(set(cs))
    votes = {c: np.zeros((n_test, len(order)), dtype=np.int64) for c in cs}
    failed = {}
    for ia, ib, problem, kte in problems:
        w = {1: weights[order[ia]], -1: weights[order[ib]]} if weights else None
        decisions = {}  # id(solution) -> decision values: shared solutions vote once
        for c, sol in solve_for_each_c(problem, cs, w).items():
            if isinstance(sol, str):
                failed.setdefault(c, f"fold {fold}: {sol}")
                continue
            if id(sol) not in decisions:
                decisions[id(sol)] = kte[:, sol.sv_idx] @ sol.coef - sol.rho > 0
            pos = decisions[id(sol)]
            votes[c][:, ia] += pos
            votes[c][:, ib] += ~pos
    return {c: failed.get(c, votes[c]) for c in cs}


class Solution:
    """A binary model's support vectors (0-based row indices), coefficients and rho, and
    the solver's iteration count; two solutions are the same when all four are equal, the
    numbers bit for bit."""

    __slots__ = ("sv_idx", "coef", "rho", "key")

    def __init__(self, sv_idx, coef, rho, iterations):
        self.sv_idx, self.coef, self.rho = sv_idx, coef, rho
        self.key = (sv_idx.tobytes(), coef.tobytes(), float(rho).hex(), iterations)


_ITERATIONS = re.compile(r"#iter = (\d+)")


def _solve(problem, c, weights):
    output = []
    model = libsvm_io.train(problem, libsvm_io.make_parameter(
        4, c, 0.0, weights=weights, cache_size=libsvm_io.cache_mb(problem.l)), output)
    labels, _, sv_idx, coef, rho = libsvm_io.model_arrays(model)
    libsvm_io.free_model(model)  # everything needed is copied out
    if labels[0] != 1:  # cannot happen (the +1 rows come first); kept for safety
        coef, rho = -coef, -rho
    found = _ITERATIONS.search("".join(output))
    return Solution(sv_idx, coef[0], rho[0], int(found.group(1)) if found else None)


def solve_for_each_c(problem, cs, weights=None):
    """libsvm's solution of one binary problem for every upper bound ``C`` in ``cs``
    (class weights ``{+1: w, -1: w}`` or None), each as separate training would give it,
    but with one solve shared by all the C at which the bound no longer matters.

    Why this is exact: libsvm's SMO starts from alpha = 0 and reads C only where it clips a
    two-variable update at the upper bound and where it marks a variable as at the bound
    (alpha >= C). A run in which neither ever happens performs the very same floating-point
    operations for every larger C (the same steps, the same shrinking, the same rho) and
    ends in the same state. Such a run is recognised by its result: solved at the largest
    C, then at the smallest C whose bound exceeds every final alpha of that solution, the
    two solutions are identical (the same number of iterations; support vectors,
    coefficients and rho bit for bit) only if the smaller C never clipped -- a clip changes
    the path, and two different SMO paths do not end in the same doubles after the same
    number of steps -- and then every C between them shares the solution.
    Otherwise the next C up is tried; every C below is solved on its own. On separable
    data (high-dimensional blocks, large C) most of a grid's C values share one solve.

    Returns ``{C: Solution}``, equal C values sharing one object, or ``{C: message}``
    where libsvm refused the parameters."""
    cs = sorted(set(cs))
    out = {}

    def solve(c):
        try:
            out[c] = _solve(problem, c, weights)
        except MirkitError as exc:
            out[c] = exc.reason
        return out[c]

    top = solve(cs[-1])
    if not isinstance(top, str) and len(cs) > 1:
        wmin = min(weights.values()) if weights else 1.0
        amax = float(np.abs(top.coef).max()) if len(top.coef) else 0.0
        k = next((j for j, c in enumerate(cs) if c * wmin > amax), len(cs) - 1)
        for j in range(k, len(cs) - 1):
            sol = solve(cs[j])
            if not isinstance(sol, str) and sol.key == top.key:
                for c in cs[j:-1]:
                    out[c] = top
                break
    for c in cs:
        if c not in out:
            solve(c)
    return out


def _canonical_poly(G, Gte, degree, pairs):
    """The gamma = 1 polynomial kernel of a fold, its pair problems, and whether libsvm's
    solver is exactly scale-equivariant on them (every second-order coefficient
    K_ii + K_jj - 2 K_ij of distinct points positive: libsvm replaces a non-positive one by
    a constant, which would break the equivalence)."""
    K1 = kernel_from_gram("poly", 1.0, G, None, None, degree)
    K1te = kernel_from_gram("poly", 1.0, Gte, None, None, degree)
    ok = bool(np.isfinite(K1).all() and np.isfinite(K1te).all())
    problems = []
    for ia, ib, idx, yy in pairs:
        kp = np.ascontiguousarray(K1[np.ix_(idx, idx)])
        if ok:
            d = np.diag(kp)
            quad = (d[:, None] + d[None, :]) - 2.0 * kp.astype(np.float32).astype(np.float64)
            np.fill_diagonal(quad, np.inf)
            ok = bool((quad > 0).all())
        problems.append((ia, ib, libsvm_io.kernel_problem(kp, yy), K1te[:, idx]))
    return {"K": K1, "Kte": K1te, "ok": ok, "problems": problems, "done": {}}


def _poly_scale(canon, gamma, degree, Ktr, Kte):
    """``s = gamma**degree`` when the polynomial kernel with this gamma is exactly ``s`` times
    the gamma-1 kernel, in double and in libsvm's float32 cache (gamma a power of two, no
    overflow, underflow or subnormal). Then libsvm's SMO on (s*K, C) performs exactly the
    steps of (K, s*C) scaled by 1/s -- every operation is a multiplication by a power of two,
    exact in IEEE arithmetic -- so both give the same decision values bit for bit, and
    configurations with equal C * gamma**degree share one solve. None when not exact."""
    if not canon["ok"]:
        return None
    mantissa, _ = np.frexp(gamma)
    if mantissa != 0.5:  # not a power of two
        return None
    s = float(gamma) ** degree
    s32 = np.float32(s)
    if not np.isfinite(s32) or s32 == 0 or float(s32) != s:
        return None
    if not (np.array_equal(Ktr, s * canon["K"]) and np.array_equal(Kte, s * canon["Kte"])):
        return None
    with np.errstate(over="ignore", under="ignore"):
        f32 = Ktr.astype(np.float32)
        ref = canon["K"].astype(np.float32) * s32
    tiny = np.finfo(np.float32).tiny
    if not np.array_equal(f32, ref) or np.any((f32 != 0) & (np.abs(f32) < tiny)) or \
            np.any((ref != 0) & (np.abs(ref) < tiny)):
        return None
    return s


# --------------------------------------------------------------------------------------
# work planning: how the configurations of one (feature block, fold) are split into tasks
# --------------------------------------------------------------------------------------

SMALL_BLOCK_DIMS = 64      # below this, per-task shared work (scaling, Gram) is negligible
PACK_SECONDS = 1.0         # small solve groups are packed into tasks of about this cost


def solve_key(cfg):
    """Configurations with the same key share solves inside one task: the polynomial ones of
    one degree (every gamma maps onto the gamma-1 problems, :func:`_poly_scale`, and the C
    values of one problem share saturated solves, :func:`solve_for_each_c`), every other one
    by kernel matrix (kernel, gamma). Balance settings always share a key."""
    try:
        kernel = libsvm_io.kernel_code(cfg["kernel"])
        degree = int(cfg.get("degree", 3))
        g = float(cfg.get("gamma", 0))
    except (MirkitError, KeyError, TypeError, ValueError):
        return ("bad",)
    if kernel == 1:
        return ("poly", degree)
    return ("kernel", kernel, 0.0 if kernel == 0 else g)


def estimate_seconds(key, cfgs, dims, n_train):
    """Rough CPU cost of the solve group ``key`` with configurations ``cfgs``, for
    scheduling only. Polynomial solves on low-dimensional blocks get slow as the effective
    C (``2**(C + degree*gamma)``, the C of the gamma-1 kernel) grows, up to the point where
    the bound stops mattering and one solve serves every larger C. Calibrated on the
    benchmark's 1000 x 865 and 1000 x 13 blocks (4 classes, 800 training rows)."""
    scale = (n_train / 800.0) ** 2
    if dims <= SMALL_BLOCK_DIMS and key[0] == "poly":
        effs = set()
        for cfg in cfgs:
            try:
                effs.add(float(cfg["C"]) + key[1] * float(cfg.get("gamma", 0)))
            except (KeyError, TypeError, ValueError):
                continue
        below = [e for e in effs if e <= 12.0]
        cost = sum(2.0 ** ((min(e, 10.0) - 10.0) / 2.0) for e in below)
        return 1.4 * scale * (cost + (len(effs) > len(below)))  # ~1.4 s per fold at 2**10
    return 0.0019 * len(cfgs) * scale


TASK_SECONDS = 0.05  # per-task shared work (scaling, Gram, kernels) on a small block


def plan_tasks(configs, dims, n_train, split=True):
    """Split the configurations of one (feature block, fold) into tasks for the worker pool:
    ``[(config indices, estimated seconds)]``.

    High-dimensional blocks, or ``split=False``: one task (one Gram matrix, kernels per
    gamma, all solves). Low-dimensional blocks (where expensive polynomial solves dominate,
    e.g. ``mfcc``): one task per expensive solve group, cheap groups packed together, so
    that the slowest solves can start first and the workers do not idle at the end. Every
    configuration sharing a solve stays in the same task, so the results are those of one
    task per fold."""
    groups = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(solve_key(cfg), []).append(i)
    items = sorted(((estimate_seconds(k, [configs[i] for i in v], dims, n_train), v)
                    for k, v in groups.items()),
                   key=lambda t: -t[0])
    if dims > SMALL_BLOCK_DIMS or not split:
        return [(list(range(len(configs))), TASK_SECONDS + sum(e for e, _ in items))]
    tasks, pack, pack_cost = [], [], 0.0
    for est, idx in items:
        if est >= PACK_SECONDS:
            tasks.append((list(idx), TASK_SECONDS + est))
            continue
        pack.extend(idx)
        pack_cost += est
        if pack_cost >= PACK_SECONDS:
            tasks.append((sorted(pack), TASK_SECONDS + pack_cost))
            pack, pack_cost = [], 0.0
    if pack:
        if tasks and pack_cost < PACK_SECONDS / 2:  # a small remainder joins the last pack
            idx, est = tasks.pop()
            tasks.append((sorted(idx + pack), est + pack_cost))
        else:
            tasks.append((sorted(pack), TASK_SECONDS + pack_cost))
    return tasks


def makespan(estimates, jobs):
    """Finishing time of greedy longest-first list scheduling on ``jobs`` workers."""
    loads = [0.0] * max(1, int(jobs))
    for est in sorted(estimates, reverse=True):
        i = loads.index(min(loads))
        loads[i] += est
    return max(loads)


def evaluate_config_direct(block, y, n_classes, train, test, cfg):
    """Reference path: train one configuration on dense vectors with libsvm's own kernel and
    predict with ``svm_predict`` (what Gaia does per configuration). Used by the tests and
    the benchmark to check the fast engine."""
    scaling = fit_scaling(block, train)
    Xtr = scaling.apply(block.matrix[train])
    Xte = scaling.apply(block.matrix[test])
    ytr = y[train].astype(np.float64)
    code = libsvm_io.kernel_code(cfg["kernel"])
    gamma = 2.0 ** float(cfg["gamma"])
    weights = libsvm_io.class_weights(y[train], n_classes) if cfg.get("balanceClasses") else None
    param = libsvm_io.make_parameter(code, 2.0 ** float(cfg["C"]), gamma,
                                     int(cfg.get("degree", 3)), weights=weights)
    problem = libsvm_io.dense_problem(Xtr, ytr)
    model = libsvm_io.train(problem, param)
    pred, _ = libsvm_io.predict_nodes(model, libsvm_io.dense_nodes(Xte))
    return pred.astype(np.int32)
