"""gridsearch: train SVM classifiers on descriptor files as Gaia's train_model.py does."""

import os
import sys

from ..cli import Tool, add_jobs_argument, connect_scheduler
from ..errors import MirkitError
from ..gaia.groundtruth import check_consistent, load_filelist, load_groundtruth
from ..gaia.project import Project, template_version, write_default_project
from ..records import record_id


class GridSearchTool(Tool):
    name = "gridsearch"
    description = (
        "Train SVM classifiers on descriptor files exactly as Gaia's train_model.py does:\n"
        "merge the files (removevl, fixlength, cleaner), apply every preprocessing of the\n"
        "project, evaluate every configuration of the grid with Gaia's n-fold cross-validation,\n"
        "write the .param/.result files and report.tsv, retrain the best configuration on all\n"
        "data with probabilities into PROJECTDIR/<className>.model and print Gaia's RESULT line.\n"
        "\n"
        "Descriptors come from the filelist (id -> descriptor file: Essentia JSON, YAML/.sig or\n"
        "a msgpack/JSON stream, where the record of that id is taken; relative paths resolve\n"
        "against the filelist's directory), or, when FILELIST is '-' or omitted, from a record\n"
        "stream on stdin matched to the groundtruth ids by record id. Without -p a project\n"
        "file is generated into PROJECTDIR/project.yaml from the built-in 2.1-beta5 or\n"
        "2.1-beta2 template (chosen from metadata.version.essentia, as Gaia does; mirkit's\n"
        "own records take 2.1-beta5). A rerun skips configurations already done.")
    reads_files = False
    writes_records = False
    has_output = False

    def add_arguments(self, parser):
        parser.add_argument("groundtruth", nargs="?", metavar="GROUNDTRUTH",
                            help="groundtruth YAML (default: the project's 'groundtruth' key)")
        parser.add_argument("filelist", nargs="?", metavar="FILELIST",
                            help="filelist YAML id -> descriptor file; '-' reads records from "
                                 "stdin (default: the project's 'filelist' key, else stdin)")
        parser.add_argument("-p", "--project", metavar="PROJECT",
                            help="Gaia classification project YAML to use as is")
        parser.add_argument("-d", "--project-dir", metavar="PROJECTDIR",
                            help="where the project, datasets, results, report.tsv and model go "
                                 "(default: the project file's directory; required without -p)")
        parser.add_argument("-s", "--seed", type=float, default=1.0,
                            help="fold shuffling seed written into a generated project "
                                 "(default 1, as train_model.py; 0 means time-based)")
        parser.add_argument("--template", choices=["2.1-beta5", "2.1-beta2"],
                            help="template of a generated project (default: from the "
                                 "descriptors' metadata.version.essentia)")
        parser.add_argument("--force-consistency", action="store_true",
                            help="fail when the descriptor files come from different Essentia "
                                 "versions (instead of using the default template)")
        parser.add_argument("--group-by", choices=["groups"],
                            help="'groups': keep every item of a group (the groundtruth's "
                                 "'groups' map: artist, album...) in a single fold")
        parser.add_argument("--force", action="store_true",
                            help="start over: delete the project's datasets and results first")
        parser.add_argument("--no-model", action="store_true",
                            help="do not retrain the best configuration into a model file")
        parser.add_argument("--history", action="store_true",
                            help="also write the best model as a Gaia .history file beside the "
                                 ".model (PROJECTDIR/<className>.history), loadable by "
                                 "Essentia's GaiaTransform")
        add_jobs_argument(parser, default_help="the project's numberProcesses when it is a "
                                               "number, else all cores")

    def run(self, args):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        from ..svm.gridsearch import Log, resolve_filelist, run_gridsearch

        if not args.project and not args.project_dir:
            self.parser.error("give -d PROJECTDIR (or -p PROJECT)")
        if args.history and args.no_model:
            self.parser.error("--history writes the best model: it cannot go with --no-model")
        scheduler = connect_scheduler(args)  # Dask missing or unreachable: exit 2 at once
        project = Project.load(args.project) if args.project else None
        project_dir = args.project_dir or os.path.dirname(os.path.abspath(args.project))
        try:
            os.makedirs(project_dir, exist_ok=True)
        except OSError as exc:
            raise MirkitError(f"cannot create the project directory: {exc.strerror or exc}",
                              project_dir) from None

        gt_path = args.groundtruth or (project.resolve(project.get("groundtruth")) if project else None)
        if not gt_path:
            self.parser.error("give GROUNDTRUTH (or a project with a 'groundtruth' key)")
        gt = load_groundtruth(gt_path)

        fl_path = args.filelist
        if fl_path is None and project is not None and project.get("filelist"):
            fl_path = project.resolve(project.get("filelist"))
        filelist = records = None
        if fl_path and fl_path != "-":
            raw = load_filelist(fl_path)
            check_consistent(gt, raw, gt_path, fl_path)
            filelist = resolve_filelist(raw, fl_path)
        elif self.cached_dataset(project, gt, project_dir) and sys.stdin.isatty():
            self.info("no filelist: using the project's cached dataset", 1)
        else:
            if sys.stdin.isatty():
                self.parser.error("no FILELIST and standard input is a terminal: give a "
                                  "filelist or pipe records in")
            records = self.read_stream(gt)

        if project is None:
            project_path = os.path.join(project_dir, "project.yaml")
            if os.path.exists(project_path) and not args.force:
                self.info(f"using the existing {project_path}", 1)
            else:
                version = args.template or template_version(
                    self.essentia_versions(filelist, records), args.force_consistency)
                self.info(f"generating {project_path} from the {version} template")
                seed = None if args.seed == 0 else args.seed
                if seed is not None and seed == int(seed):
                    seed = int(seed)
                write_default_project(project_path, version, gt.class_name, project_dir,
                                      fl_path if filelist is not None else None, gt_path,
                                      seed=seed, jobs=False)
            project = Project.load(project_path)
        check_folds(project, gt, gt_path, args.group_by)

        log = Log(self.warn, self.info, self.progress if self.verbosity >= 1 else None,
                  fail=self.fail)
        jobs = args.jobs
        nproc = project.get("numberProcesses")
        if (not jobs and not scheduler and isinstance(nproc, int) and not isinstance(nproc, bool)
                and nproc > 0):
            jobs = nproc  # the project's setting, as Gaia's numberProcesses
        out = run_gridsearch(project, gt, project_dir, filelist=filelist, records=records,
                             jobs=jobs, force=args.force, group_by=args.group_by, log=log,
                             train_best=not args.no_model, scheduler=scheduler)
        self.successes += 1  # results written: unreadable files alone give exit 1, not 2
        if out["model"]:
            self.info(f"best model written to {out['model']}", 1)
            if args.history:
                from .retrain import write_history_beside
                self.info(f"Gaia history written to {write_history_beside(out['model'])}", 1)
        sys.stdout.write(out["result_line"] + "\n")
        sys.stdout.flush()
        return None  # 0, or 1 when some descriptor files could not be read

    @staticmethod
    def cached_dataset(project, gt, project_dir):
        """True when the project's base dataset exists for exactly these groundtruth ids."""
        from ..gaia.dataset import Dataset
        if project is None:
            path = os.path.join(project_dir, "datasets", f"{gt.class_name}.npz")
        else:
            path = os.path.join(project.datasets_dir, f"{project.class_name}.npz")
        if not os.path.exists(path):
            return False
        try:
            return Dataset.load(path).meta.get("requested") == sorted(gt.labels)
        except MirkitError:
            return False

    def read_stream(self, gt):
        records = {}
        for source, record in self.iter_records(["-"]):
            rid = record_id(record)
            if rid is None:
                self.warn(f"{source}: a record without an id (metadata.id / tags) is ignored")
                continue
            if rid not in gt.labels:
                self.info(f"{source}: record {rid!r} is not in the groundtruth; ignored")
                continue
            if rid in records:
                self.warn(f"{source}: duplicate record id {rid!r}; the first one is kept")
                continue
            records[rid] = record
        if not records:
            raise MirkitError("no record on stdin matches a groundtruth id", "-")
        return records

    @staticmethod
    def essentia_versions(filelist, records):
        from ..gaia.dataset import essentia_version
        found = set()
        if records is not None:
            for record in records.values():
                found.add(essentia_version(record))
        else:
            for path in list(filelist.values())[:50]:  # a sample: versions are per extraction run
                try:
                    found.add(essentia_version(path))
                except MirkitError:
                    continue
        return found


def check_folds(project, gt, gt_path, group_by):
    """Fail (exit 2) naming the groundtruth when it cannot give the project's folds: fewer
    than two classes, a class smaller than nfold, --group-by without groups, fewer groups
    than folds. (run_gridsearch checks again once unreadable points are left out.)"""
    from ..gaia.folds import check_fold_sizes, group_folds

    if len(set(gt.labels.values())) < 2:
        raise MirkitError(f"need at least two classes, found {len(set(gt.labels.values()))}",
                          gt_path)
    if group_by and not gt.groups:
        raise MirkitError("--group-by groups needs a 'groups' map in the groundtruth", gt_path)
    for nfold in sorted({int(ev.get("nfold", 10)) for ev in project.evaluations()}):
        if nfold < 2:
            continue  # the project's fault: reported by run_gridsearch, naming the project
        try:
            check_fold_sizes(gt.labels, nfold)
            if group_by:
                group_folds(gt.labels, gt.groups, nfold, 1)
        except MirkitError as exc:
            raise MirkitError(exc.reason, exc.source or gt_path) from None


def main(argv=None):
    GridSearchTool.main(argv)
