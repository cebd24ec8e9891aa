"""Gaia's classification training (train_model.py) as a library: datasets, the grid, CV,
result files, report.tsv, best-model selection and retraining.

Project directory layout (as Gaia's):

* ``datasets/<className>.npz`` the merged base dataset, ``datasets/<className>-<prep>.npz``
  one per preprocessing (numpy arrays + a JSON header with the fitted chain; never pickle);
  reused when present, rebuilt with ``force``;
* ``results/<className><hash>_<i>.param`` / ``.result`` per configuration (Gaia's content),
  ``<hash>`` = the first 16 hex digits of SHA-256 over the configuration as canonical JSON;
  a configuration that fails gets ``.param`` + ``.failed`` (YAML ``{reason: ...}``);
* ``report.tsv``, ``<className>.model``, ``<className>.model.param``,
  ``<className>.model.results.html``.

A run skips configurations whose ``.result`` (or ``.failed``) exists, so an interrupted run
resumes; every file is written atomically.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time

import numpy as np

from .. import yamlio
from ..atomic import write_text
from ..errors import MirkitError
from ..gaia import metrics
from ..gaia.dataset import Dataset, load_dataset
from ..gaia.folds import check_fold_sizes, gaia_folds, group_folds
from ..gaia.preprocess import Chain
from ..parallel import available_memory, default_jobs, ordered_map, worker_count
from .engine import evaluate_fold, fold_memory, makespan, plan_tasks
from .features import FeatureBlock
from .modelfile import save_model
from .train import train_final


def config_hash(config):
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def result_stem(results_dir, class_name, config, index=0):
    return os.path.join(results_dir, f"{class_name}{config_hash(config)}_{index}")


def resolve_filelist(filelist, filelist_path):
    """Relative paths resolve against the filelist file's directory; when nothing exists
    there but the path exists relative to the current directory, that one is used."""
    base = os.path.dirname(os.path.abspath(filelist_path)) if filelist_path else os.getcwd()
    out = {}
    for pid, path in filelist.items():
        if os.path.isabs(path):
            out[pid] = path
            continue
        cand = os.path.normpath(os.path.join(base, path))
        if not os.path.exists(cand) and os.path.exists(path):
            cand = os.path.abspath(path)
        out[pid] = cand
    return out


class Log:
    """Callbacks for messages (the CLI passes its warn/info/progress)."""

    def __init__(self, warn=None, info=None, progress=None, fail=None):
        self.warn = warn or (lambda text: None)
        self.info = info or (lambda text, level=2: None)
        self.progress = progress
        # an input that could not be used (unreadable descriptor file): the CLI counts it
        self.fail = fail or self.warn


# ---------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------

def base_dataset(project, gt, filelist=None, records=None, jobs=1, log=None, reuse=True,
                 scheduler=None):
    """The merged base dataset (cached in datasetsDirectory). ``filelist``: resolved
    ``{id: path}``; ``records``: ``{id: record}`` instead. Returns the Dataset, whose ``meta``
    holds ``rawLayout``, ``removed`` and ``dropped``. ``scheduler``: load the files on that
    Dask cluster (:func:`mirkit.parallel.ordered_map`)."""
    log = log or Log()
    path = os.path.join(project.datasets_dir, f"{project.class_name}.npz")
    wanted = sorted(gt.labels)
    if reuse and os.path.exists(path):
        ds = Dataset.load(path)
        if ds.meta.get("requested") == wanted:
            log.info(f"reusing {path}")
            return ds
    if filelist is None and records is None:
        raise MirkitError("no descriptors: give a filelist (or a record stream), or keep the "
                          "project's datasets directory", project.path)
    ds, report = load_dataset(filelist, project.excluded, project.fail_on_unmatched, jobs,
                              log.warn, records=records, fail=log.fail, scheduler=scheduler)
    ds.meta = {"requested": wanted, "rawLayout": ds.layout(), "labels": dict(gt.labels),
               "className": gt.class_name,
               "removed": {"variableLength": report.variable_length, "cleaner": report.cleaned},
               "excluded": project.excluded, "dropped": report.dropped_points}
    log.info(f"base dataset: {len(ds)} points, {ds.layout_summary()}; removed "
             f"{len(report.variable_length)} variable-length and {len(report.cleaned)} "
             f"constant/NaN/Inf descriptors")
    if jobs != 1:
        log.info(f"loading: {getattr(report, 'load_cpu', 0.0):.1f} s CPU in the workers")
    os.makedirs(project.datasets_dir, exist_ok=True)
    ds.save(path)
    return ds


def preprocessed_dataset(project, base, name, log=None, reuse=True):
    """Dataset for one preprocessing (fitted on all points); meta holds the fitted chain."""
    log = log or Log()
    path = os.path.join(project.datasets_dir, f"{project.class_name}-{name}.npz")
    if reuse and os.path.exists(path):
        ds = Dataset.load(path)
        if ds.ids == base.ids and "chain" in ds.meta:
            return ds
    steps = project.preprocessing.get(name)
    if steps is None:
        raise MirkitError(f"preprocessing {name!r} is not defined in the project", project.path)
    chain = Chain.from_steps(steps, project.path)
    ds = chain.fit_apply(base)
    ds.meta = {"chain": chain.to_data(), "preprocessing": name}
    log.info(f"preprocessing {name}: {ds.layout_summary()}")
    os.makedirs(project.datasets_dir, exist_ok=True)
    ds.save(path)
    return ds


def restrict_groundtruth(gt, ds, log):
    missing = [pid for pid in gt.labels if pid not in set(ds.ids)]
    if missing:
        log.warn(f"{len(missing)} groundtruth id(s) have no usable descriptors and are left "
                 f"out (e.g. {missing[0]!r})")
    return gt.restricted(ds.ids)


# ---------------------------------------------------------------------------------------
# the grid search
# ---------------------------------------------------------------------------------------

def _read_param(path):
    data = yamlio.load(path, gaia=False) or {}
    return data.get("model") or {}, data.get("evaluation") or {}


def run_gridsearch(project, gt, project_dir, filelist=None, records=None, jobs=1, force=False,
                   group_by=None, log=None, train_best=True, scheduler=None):
    """Run the whole grid; returns a dict with ``ranked``, ``failed``, ``best`` (entry or
    None), ``model`` (path or None), ``report`` (path) and ``result_line``. ``scheduler``:
    run the descriptor loading and the fold tasks on that Dask cluster."""
    log = log or Log()
    class_name = project.class_name
    results_dir = project.results_dir
    if force:
        for d in (project.datasets_dir, results_dir):
            if os.path.isdir(d):
                shutil.rmtree(d)
    os.makedirs(results_dir, exist_ok=True)
    _remove_stale_temporaries(results_dir, project.datasets_dir)

    base = base_dataset(project, gt, filelist, records, jobs, log, reuse=not force,
                        scheduler=scheduler)
    n_labelled = len(gt.labels)
    gt = restrict_groundtruth(gt, base, log)
    # the groundtruth itself was checked (commands.gridsearch.check_folds); what fails here
    # is due to the points left out
    dropped = n_labelled - len(gt.labels)
    left_out = (f" once the {dropped} point(s) without usable descriptors are left out"
                if dropped else "")
    if len(set(gt.labels.values())) < 2:
        raise MirkitError("need at least two classes with usable descriptors" + left_out)
    evaluations = project.evaluations()
    configs = project.configurations()
    if not configs:
        raise MirkitError("the project's classifier grid is empty", project.path)
    for ev in evaluations:
        try:
            check_fold_sizes(gt.labels, int(ev.get("nfold", 10)))
        except MirkitError as exc:
            raise MirkitError(exc.reason + left_out, exc.source) from None

    # which configurations still need running
    entries = []  # (eval index, evaluation, config, stem)
    for ei, ev in enumerate(evaluations):
        for cfg in configs:
            entries.append((ei, ev, cfg, result_stem(results_dir, class_name, cfg, ei)))
    pending = [e for e in entries
               if not (os.path.exists(e[3] + ".result") or os.path.exists(e[3] + ".failed"))]
    log.info(f"{len(entries)} configuration(s), {len(entries) - len(pending)} already done")

    classes = sorted(set(gt.labels.values()))
    y = np.array([classes.index(gt.labels[pid]) for pid in base.ids], dtype=np.int32)
    summaries = {}

    if pending:
        preps = {}
        for _, _, cfg, _ in pending:
            name = cfg["preprocessing"]
            if name not in preps:
                try:
                    preps[name] = preprocessed_dataset(project, base, name, log, reuse=not force)
                except MirkitError as exc:
                    preps[name] = exc
        # group pending configurations by (evaluation, feature block)
        groups = {}
        for entry in pending:
            ei, ev, cfg, stem = entry
            key = (ei, cfg["preprocessing"],
                   json.dumps(cfg.get("descriptorNames", "*")), json.dumps(cfg.get("exclude", [])))
            groups.setdefault(key, []).append(entry)
        folds_cache = {}
        folds_work = []
        for key, group in groups.items():
            ei, prep = key[0], key[1]
            ev = evaluations[ei]
            nfold = int(ev.get("nfold", 10))
            if ei not in folds_cache:
                if group_by:
                    if not gt.groups:
                        raise MirkitError("--group-by groups needs a 'groups' map in the "
                                          "groundtruth")
                    folds_cache[ei] = group_folds(gt.labels, gt.groups, nfold, project.seed)
                else:
                    folds_cache[ei] = gaia_folds(gt.labels, nfold, project.seed)
            folds, fold_of = folds_cache[ei]
            pds = preps[prep]
            error = pds if isinstance(pds, MirkitError) else None
            block = None
            if error is None:
                cfg0 = group[0][2]
                try:
                    block = FeatureBlock.from_dataset(pds, cfg0.get("descriptorNames", "*"),
                                                      cfg0.get("exclude", []))
                except MirkitError as exc:
                    error = exc
            if error is not None:
                for _, _, cfg, stem in group:
                    _write_failed(stem, cfg, ev, f"preprocessing {prep}: {error.reason}")
                continue
            fold_arr = np.array([fold_of[pid] for pid in base.ids])
            for f in range(nfold):
                test = np.nonzero(fold_arr == f)[0]
                train = np.nonzero(fold_arr != f)[0]
                folds_work.append((key, f, block, train, test, [e[2] for e in group]))
        workers = worker_count(jobs, scheduler)
        # a local run keeps each worker's kernel matrices (those of a class pair) within its
        # share of the memory, else trains configurations one by one (Dask workers: their
        # own machines, no budget)
        budget = None if scheduler else _memory_budget(workers)
        big = sorted(len(train) for _, _, _, train, test, _ in folds_work if budget and
                     fold_memory(len(train), len(test),
                                 np.bincount(y[train], minlength=len(classes))) > budget)
        if big:
            log.warn(f"folds of {big[0]} training points need more than the "
                     f"{budget / 2 ** 30:.1f} GiB of memory available per worker even one "
                     f"class pair at a time: their configurations are trained one by one "
                     f"(much slower; fewer -j workers leave more memory to each)")
        tasks, meta = _schedule(folds_work, y, len(classes), workers, budget)
        progress = log.progress("grid", len(tasks)) if log.progress else None
        collected = {}
        remaining = {}
        for key, f, test, idx, est in meta:
            remaining[key] = remaining.get(key, 0) + 1
        worker_cpu = 0.0
        prep_cpu = {}
        spans = []
        for (key, f, test, idx, est), (result, cpu, span) in zip(
                meta, ordered_map(_timed_evaluate, tasks, jobs, window=max(1, len(tasks)),
                                  scheduler=scheduler, shared=("block", "y"))):
            worker_cpu += cpu
            spans.append(span)
            prep_cpu[key[1]] = prep_cpu.get(key[1], 0.0) + cpu
            fold_result = collected.setdefault(key, {}).setdefault(f, (test, {}))[1]
            for local, pred in result.items():
                fold_result[idx[local]] = pred
            if progress:
                progress.update()
            remaining[key] -= 1
            if remaining[key] == 0:
                _finish_group(groups[key], collected.pop(key), base, y, classes, fold_of_for(
                    folds_cache[key[0]]), summaries)
        if progress:
            progress.close()
        log.info("grid CPU per preprocessing: " + ", ".join(f"{k} {v:.1f} s"
                                                            for k, v in prep_cpu.items()))
        if jobs != 1:
            log.info(f"grid: {len(tasks)} fold task(s), {worker_cpu:.1f} s CPU in the workers"
                     + _balance_report(spans))

    return finish(project, project_dir, gt, base, entries, summaries, log, train_best)


def _memory_budget(workers):
    """Bytes a grid worker may use: 80 % of the memory available now, shared by the
    workers (None when unknown)."""
    free = available_memory()
    return None if free is None else 0.8 * free / max(1, workers)


def _schedule(folds_work, y, n_classes, jobs, memory_budget=None):
    """Worker tasks for the (group, fold) work items, longest first.

    One task per (group, fold) -- the shared work (scaling, Gram matrix, kernels) done once
    -- unless greedy longest-first scheduling of those would leave workers idle at the end
    (> 10 % over the perfect split, e.g. the slow polynomial solves of ``mfcc``): then
    low-dimensional blocks, whose shared work is cheap, are split into groups of
    solve-sharing configurations (:func:`mirkit.svm.engine.plan_tasks`). The pool hands
    tasks out as workers free up; every task is submitted at once (the queued work items
    share the blocks, nothing is copied until a worker takes one)."""
    workers = jobs if jobs and jobs > 0 else default_jobs()

    def plans(split):
        return [plan_tasks(cfgs, block.matrix.shape[1], len(train), split)
                for _, _, block, train, _, cfgs in folds_work]

    planned = plans(False)
    estimates = [est for plan in planned for _, est in plan]
    if workers > 1 and makespan(estimates, workers) > 1.1 * sum(estimates) / workers:
        planned = plans(True)
    tasks, meta = [], []
    for (key, f, block, train, test, cfgs), plan in zip(folds_work, planned):
        for idx, est in plan:
            tasks.append({"block": block, "y": y, "n_classes": n_classes, "train": train,
                          "test": test, "fold": f, "configs": [cfgs[i] for i in idx],
                          "memory_budget": memory_budget})
            meta.append((key, f, test, idx, est))
    order = sorted(range(len(tasks)), key=lambda t: -meta[t][4])
    return [tasks[t] for t in order], [meta[t] for t in order]


def _remove_stale_temporaries(*directories):
    """Temporary files (``.~name.XXXX``) and write directories (``.~tmp-PID``) left by a run
    that was killed mid-write."""
    for d in directories:
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith(".~"):
                path = os.path.join(d, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)


def _timed_evaluate(task):
    """evaluate_fold plus the CPU time it took (the workers' time is not visible otherwise)
    and (worker pid, wall start, wall end) for the load-balance report."""
    wall0 = time.time()
    start = time.process_time()
    result = evaluate_fold(task)
    # a worker is a process here, a thread of a process of some host on Dask
    worker = (socket.gethostname(), os.getpid(), threading.get_ident())
    return result, time.process_time() - start, (worker, wall0, time.time())


def _balance_report(spans):
    """How long each worker sat idle at the end while another was still busy."""
    if not spans:
        return ""
    last = {}
    for pid, t0, t1 in spans:
        last[pid] = max(last.get(pid, t1), t1)
    end = max(last.values())
    start = min(t0 for _, t0, _ in spans)
    idle = sorted(end - t for t in last.values())
    return (f"; {len(last)} worker(s), grid wall {end - start:.1f} s, idle at the end: "
            + ", ".join(f"{v:.1f} s" for v in idle))


def fold_of_for(folds_entry):
    return folds_entry[1]


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value)
    raise TypeError


def param_text(cfg, ev):
    """The .param YAML (``{evaluation, model}``, keys sorted, as Gaia's ``yaml.dump``)."""
    try:
        lines = []
        for top, mapping in (("evaluation", ev), ("model", cfg)):
            lines.append(f"{top}:")
            lines.extend(f"  {k}: {_scalar(v)}" for k, v in sorted(mapping.items()))
        return "\n".join(lines) + "\n"
    except TypeError:  # lists (descriptorNames...): let PyYAML do it
        return yamlio.dump({"evaluation": dict(ev), "model": dict(cfg)})


def _write_dir(directory):
    """This process's private directory for the temporary files of :func:`_write_file`."""
    return os.path.join(directory, f".~tmp-{os.getpid()}")


def _write_file(path, text):
    """Atomic (temp file + rename: an interrupted run never leaves a partial file) but
    without a per-file fsync -- a grid writes thousands of small files and fsync dominated
    the run time; :func:`_sync` flushes them once per batch. The temporary file is created
    in a private subdirectory (:func:`_write_dir`, removed at the end of the run): creating
    a file in a directory that already holds thousands cost ~0.4 ms of CPU on ext4, 20x
    more than in a small one (2 s for the 3456 files of the default grid), while the rename
    into place stays cheap."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(_write_dir(directory), os.path.basename(path))
    try:
        try:
            fh = open(tmp, "w", encoding="utf-8")
        except FileNotFoundError:
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            fh = open(tmp, "w", encoding="utf-8")
        with fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sync():
    with contextlib.suppress(AttributeError, OSError):
        os.sync()


def _write_param(stem, cfg, ev):
    _write_file(stem + ".param", param_text(cfg, ev))


def _write_failed(stem, cfg, ev, reason):
    _write_param(stem, cfg, ev)
    _write_file(stem + ".failed", yamlio.dump({"reason": reason}))


def _finish_group(group, fold_results, base, y, classes, fold_of, summaries):
    table = ResultTable(fold_results, base.ids, y, classes, fold_of)
    for idx, (ei, ev, cfg, stem) in enumerate(group):
        reason = None
        preds = []
        for f in sorted(fold_results):
            pred = fold_results[f][1].get(idx)
            if isinstance(pred, str):
                reason = pred
                break
            preds.append(np.asarray(pred))
        if reason is not None:
            _write_failed(stem, cfg, ev, reason)
            continue
        text, summary = table.result(np.concatenate(preds) if preds else np.zeros(0, int))
        _write_param(stem, cfg, ev)
        _write_file(stem + ".result", text)
        summaries[stem] = dict(summary, params=(cfg, ev))
    _sync()


class ResultTable:
    """The ``.result`` text and summary of every configuration of one (evaluation, block),
    computed with numpy from the predicted class indices: the very text and numbers of
    ``metrics.ConfusionMatrix.from_predictions(...).to_yaml()`` / ``.summary()`` (same
    id order, same float operations in the same order), without building per-id dicts
    1728 times; the ``fold:`` part, the same for every configuration, is written once.
    ``tests/test_svm_libsvm_io.py`` checks the equality."""

    def __init__(self, fold_results, ids, y, classes, fold_of):
        rows = [np.asarray(fold_results[f][0], dtype=np.intp) for f in sorted(fold_results)]
        rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp)
        pids = [ids[r] for r in rows]
        self.perm = np.array(sorted(range(len(pids)), key=pids.__getitem__), dtype=np.intp)
        sorted_ids = [pids[i] for i in self.perm]
        self.exp = np.asarray(y, dtype=np.intp)[rows][self.perm]
        folds = [fold_of[pid] for pid in sorted_ids]
        self.fold_values = sorted(set(folds))
        fold_index = {f: i for i, f in enumerate(self.fold_values)}
        self.fold = np.array([fold_index[f] for f in folds], dtype=np.intp)
        q = json.dumps
        self.qids = np.array([q(pid) for pid in sorted_ids], dtype=object)
        self.qclass = [q(c) for c in classes]
        self.n_classes = len(classes)
        lines = ["fold:"]
        lines.extend(f"  {qi}: {f}" for qi, f in zip(self.qids, folds))
        if not sorted_ids:
            lines[-1] = "fold: {}"
        self.fold_text = "\n".join(lines)
        # ConfusionMatrix keeps its rows in order of first appearance of the true class
        # among the sorted ids; per-fold recalls are summed in that order
        _, first = np.unique(self.exp, return_index=True)
        self.row_order = [int(self.exp[i]) for i in sorted(first)]
        k = self.n_classes
        nf = len(self.fold_values)
        self.n_fc = np.bincount(self.fold * k + self.exp, minlength=nf * k).reshape(nf, k) \
            if len(self.exp) else np.zeros((nf, k), dtype=np.intp)

    def result(self, pred_in_fold_order):
        """(YAML text, summary) for the predicted class indices of the rows, given in the
        fold order of the table (folds ascending, each fold's test rows in order)."""
        k = self.n_classes
        pred = np.asarray(pred_in_fold_order, dtype=np.intp)[self.perm]
        ok = pred == self.exp
        nf = len(self.fold_values)
        # summary (Python int/float arithmetic, as ConfusionMatrix)
        total = int(len(pred))
        correct = int(ok.sum())
        ok_fc = np.bincount(self.fold[ok] * k + self.exp[ok], minlength=nf * k).reshape(nf, k)
        fold_acc, norm = [], []
        for fi in range(nf):
            n = int(self.n_fc[fi].sum())
            good = int(ok_fc[fi].sum())
            if n:
                fold_acc.append(good * 100.0 / n)
            recalls = [int(ok_fc[fi, c]) * 100.0 / int(self.n_fc[fi, c])
                       for c in self.row_order if self.n_fc[fi, c]]
            if recalls:
                norm.append(sum(recalls) / len(recalls))
        summary = {"accuracy": correct * 100.0 / total if total else 0.0,
                   "std": metrics._pstd(fold_acc),
                   "normalized_accuracy": sum(norm) / len(norm) if norm else 0.0,
                   "normalized_std": metrics._pstd(norm)}
        # text
        lines = [self.fold_text, "matrix:" if total else "matrix: {}"]
        cell = self.exp * k + pred
        order = np.argsort(cell, kind="stable")  # by (true, predicted), ids stay sorted
        cells, starts = np.unique(cell[order], return_index=True)
        ends = list(starts[1:]) + [len(order)]
        last = None
        for c, s, e in zip(cells, starts, ends):
            t, p = divmod(int(c), k)
            if t != last:
                lines.append(f"  {self.qclass[t]}:")
                last = t
            lines.append(f"    {self.qclass[p]}: [{', '.join(self.qids[order[s:e]])}]")
        return "\n".join(lines) + "\n", summary


def collect_results(results_dir, summaries=None):
    """Every ``*.result`` (with its ``.param``) and ``*.failed`` of a results directory,
    as report entries. ``summaries``: ``{stem: summary}`` of the results this run wrote, each
    with ``params``, the (model, evaluation) its .param holds (not read back)."""
    summaries = summaries or {}
    ok, failed = [], []
    if not os.path.isdir(results_dir):
        return ok, failed
    for fname in sorted(os.listdir(results_dir)):
        stem, ext = os.path.splitext(fname)
        path = os.path.join(results_dir, fname)
        if ext not in (".result", ".failed") or not os.path.exists(os.path.join(results_dir, stem + ".param")):
            continue
        summary = summaries.get(os.path.join(results_dir, stem)) if ext == ".result" else None
        if summary is not None:  # written by this run: its .param holds these (keys sorted)
            summary = dict(summary)
            model, evaluation = (dict(sorted(d.items())) for d in summary.pop("params"))
        else:
            model, evaluation = _read_param(os.path.join(results_dir, stem + ".param"))
        entry = {"results_file": path, "param_file": os.path.join(results_dir, stem + ".param"),
                 "model": model, "evaluation": evaluation, "stem": os.path.join(results_dir, stem)}
        if ext == ".failed":
            data = yamlio.load(path, gaia=False) or {}
            entry["reason"] = data.get("reason", "failed")
            failed.append(entry)
            continue
        if summary is None:
            summary = metrics.ConfusionMatrix.load(path).summary()
        entry.update(summary)
        ok.append(entry)
    return ok, failed


def finish(project, project_dir, gt, base, entries, summaries, log, train_best=True):
    with contextlib.suppress(OSError):
        os.rmdir(_write_dir(project.results_dir))
    ok, failed = collect_results(project.results_dir, summaries)
    ranked = metrics.rank(ok)
    report_path = os.path.join(project_dir, "report.tsv")
    write_text(report_path, metrics.report_tsv(ranked, failed))
    out = {"ranked": ranked, "failed": failed, "report": report_path, "best": None,
           "model": None, "result_line": None}
    if failed:
        log.warn(f"{len(failed)} configuration(s) failed (see the reason column of {report_path})")
    if not ranked:
        raise MirkitError("every configuration failed; nothing to select (see " + report_path + ")")
    best = ranked[0]
    out["best"] = best
    out["result_line"] = metrics.result_line(project.path, best, best["results_file"])
    if train_best:
        model_path = os.path.join(project_dir, f"{project.class_name}.model")
        train_model_file(project, gt, base, best["model"], model_path,
                         param={"model": best["model"], "evaluation": best["evaluation"]},
                         log=log)
        shutil.copyfile(best["param_file"], model_path + ".param.tmp")
        os.replace(model_path + ".param.tmp", model_path + ".param")
        cm = metrics.ConfusionMatrix.load(best["results_file"])
        write_text(model_path + ".results.html",
                   metrics.html_report(project.class_name, project.path, cm))
        out["model"] = model_path
    return out


def train_model_file(project, gt, base, config, output, param=None, log=None, class_name=None):
    """Retrain ``config`` on all points and write the model file."""
    log = log or Log()
    prep = config.get("preprocessing")
    if config.get("classifier", "svm") != "svm":
        raise MirkitError(f"unsupported classifier {config.get('classifier')!r}")
    pds = preprocessed_dataset(project, base, prep, log)
    chain = pds.meta["chain"]
    labels = {pid: gt.labels[pid] for pid in pds.ids if pid in gt.labels}
    if len(labels) != len(pds.ids):
        pds = pds.take([i for i, pid in enumerate(pds.ids) if pid in labels])
    data = train_final(pds, labels, config, chain, base.meta.get("rawLayout", {}),
                       class_name or project.class_name, prep,
                       merge_info={"excluded": base.meta.get("excluded", []),
                                   "removed": base.meta.get("removed", {})},
                       param=param)
    save_model(output, data)
    return data
