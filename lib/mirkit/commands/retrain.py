"""retrain: train one SVM configuration on all data with probabilities (Gaia's
retrain_model.py)."""

import os
import sys

from ..cli import Tool
from ..errors import MirkitError


class RetrainTool(Tool):
    name = "retrain"
    description = (
        "Train one configuration on every point of a project's dataset, with probabilities,\n"
        "and write a mirkit model file (Gaia's retrain_model.py):\n"
        "\n"
        "  retrain PROJECT X.param -o MODEL\n"
        "  retrain -p PROJECT --preprocessing P --kernel K --C c --gamma g [--balance] -o MODEL\n"
        "\n"
        "C and gamma are exponents (the SVM gets 2**C and 2**gamma), as in .param files. The\n"
        "preprocessed dataset is taken from the project's datasets directory (written by\n"
        "gridsearch); when it is missing, the descriptors are loaded again from the project's\n"
        "filelist and groundtruth, or from a record stream on stdin (--filelist -, or when\n"
        "the project has no filelist and stdin is not a terminal), matched to the groundtruth\n"
        "ids by record id, as gridsearch reads it:\n"
        "\n"
        "  retrain PROJECT X.param --filelist - -o MODEL < records.msgpack")
    reads_files = False
    writes_records = False
    has_output = False

    def add_arguments(self, parser):
        parser.add_argument("project_file", nargs="?", metavar="PROJECT",
                            help="classification project YAML")
        parser.add_argument("param", nargs="?", metavar="PARAM",
                            help="a .param file (from the project's results directory)")
        parser.add_argument("-p", "--project", metavar="PROJECT",
                            help="the project (instead of the first positional argument)")
        parser.add_argument("--preprocessing", metavar="P", help="preprocessing name")
        parser.add_argument("--kernel", metavar="K", help="poly, RBF, linear or sigmoid")
        parser.add_argument("--C", type=float, dest="C", metavar="c", help="C exponent")
        parser.add_argument("--gamma", type=float, metavar="g", help="gamma exponent")
        parser.add_argument("--balance", action="store_true",
                            help="weight classes by their number of elements (balanceClasses)")
        parser.add_argument("--type", default="C-SVC", help="SVM type (only C-SVC)")
        parser.add_argument("--class-name", metavar="NAME",
                            help="className of the model (default: the project's)")
        parser.add_argument("--groundtruth", metavar="GROUNDTRUTH",
                            help="groundtruth YAML (default: the project's 'groundtruth' key, "
                                 "else the labels stored with the project's dataset)")
        parser.add_argument("--filelist", metavar="FILELIST",
                            help="filelist YAML, used when the project's dataset must be "
                                 "rebuilt; '-' reads records from stdin (default: the "
                                 "project's 'filelist' key, else stdin when it is not a "
                                 "terminal)")
        parser.add_argument("-o", "--output", metavar="MODEL",
                            help="the model file to write (atomically; required)")
        parser.add_argument("--history", action="store_true",
                            help="also write the model as a Gaia .history file beside MODEL "
                                 "(same stem), loadable by Essentia's GaiaTransform")

    def run(self, args):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        from .. import yamlio
        from ..gaia.dataset import Dataset
        from ..gaia.groundtruth import GroundTruth, load_filelist, load_groundtruth
        from ..gaia.project import Project
        from ..svm.gridsearch import (Log, base_dataset, resolve_filelist, restrict_groundtruth,
                                      train_model_file)
        from .gridsearch import GridSearchTool

        project_path = args.project or args.project_file
        param_path = args.param if args.project is None else (args.param or args.project_file)
        if not project_path:
            self.parser.error("give the project file")
        if not args.output or args.output == "-":
            self.parser.error("give the model file with -o MODEL")
        explicit = [args.preprocessing, args.kernel, args.C, args.gamma]
        if param_path and any(v is not None for v in explicit):
            self.parser.error("give either a .param file or --preprocessing/--kernel/--C/--gamma")
        if param_path:
            data = yamlio.load(param_path, gaia=False)
            if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
                raise MirkitError("not a .param file (no 'model' map)", param_path)
            config = dict(data["model"])
            param = {"model": config, "evaluation": data.get("evaluation") or {}}
            if config.get("classifier", "svm") != "svm":
                raise MirkitError(f"classifier {config.get('classifier')!r} is not svm", param_path)
            missing = [k for k in ("preprocessing", "kernel", "C", "gamma") if k not in config]
            if missing:
                raise MirkitError(f".param lacks {', '.join(missing)}", param_path)
        else:
            if any(v is None for v in explicit):
                self.parser.error("give a .param file, or all of --preprocessing, --kernel, "
                                  "--C and --gamma")
            config = {"classifier": "svm", "preprocessing": args.preprocessing,
                      "type": args.type, "kernel": args.kernel,
                      "C": _num(args.C), "gamma": _num(args.gamma),
                      "balanceClasses": bool(args.balance)}
            param = {"model": config}

        project = Project.load(project_path)
        log = Log(self.warn, self.info, fail=self.fail)
        gt_path = args.groundtruth or project.resolve(project.get("groundtruth"))
        fl_path = args.filelist or project.resolve(project.get("filelist"))
        filelist = records = None
        if fl_path and fl_path != "-" and os.path.exists(fl_path):
            filelist = resolve_filelist(load_filelist(fl_path), fl_path)
        if gt_path:
            gt = load_groundtruth(gt_path)
            # records on stdin in place of the filelist, as `gridsearch GT - -d DIR` reads
            # them: with --filelist -, or with no filelist, no dataset to reuse and a pipe
            if fl_path == "-" or (not fl_path and not sys.stdin.isatty()
                                  and not GridSearchTool.cached_dataset(project, gt, None)):
                records = GridSearchTool.read_stream(self, gt)
            base = base_dataset(project, gt, filelist, records, 1, log, reuse=True)
        else:
            cached = os.path.join(project.datasets_dir, f"{project.class_name}.npz")
            if not os.path.exists(cached):
                raise MirkitError("no groundtruth: give --groundtruth (the project has no "
                                  "'groundtruth' key and no dataset yet)", project_path)
            base = Dataset.load(cached)
            if "labels" not in base.meta:
                raise MirkitError("the project's dataset holds no labels; give --groundtruth",
                                  cached)
            gt = GroundTruth(project.class_name, base.meta["labels"])
        gt = restrict_groundtruth(gt, base, log)
        try:
            data = train_model_file(project, gt, base, config, args.output, param=param,
                                    log=log, class_name=args.class_name)
        except MirkitError as exc:
            if exc.source:
                raise
            # e.g. "Normalize: ... Division by zero in ...": say which configuration failed
            raise MirkitError(f"cannot train {config.get('preprocessing')} "
                              f"{config.get('kernel')}: {exc.reason}",
                              param_path or project_path) from None
        self.info(f"model written to {args.output}", 1)
        if args.history:
            self.info(f"Gaia history written to {write_history_beside(args.output, data)}", 1)
        self.successes += 1
        return None  # 0, or 1 when some descriptor files or records could not be read


def history_path(model_path):
    """``X.model`` -> ``X.history`` (any other name gets ``.history`` appended)."""
    stem, ext = os.path.splitext(model_path)
    return (stem if ext.lower() == ".model" else model_path) + ".history"


def write_history_beside(model_path, data=None):
    """Write the Gaia ``.history`` equivalent of a mirkit ``.model`` beside it (atomically);
    returns its path. A chain Gaia cannot express raises MirkitError naming the model."""
    from ..gaia.history_writer import chain_from_model_data, write_history
    from ..svm.modelfile import read_model_data

    if data is None:
        data = read_model_data(model_path)
    path = history_path(model_path)
    try:
        write_history(path, chain_from_model_data(data))
    except MirkitError as exc:
        raise MirkitError(f"cannot write the Gaia history: {exc.reason}", model_path) from None
    return path


def _num(value):
    return int(value) if float(value).is_integer() else float(value)


def main(argv=None):
    RetrainTool.main(argv)
