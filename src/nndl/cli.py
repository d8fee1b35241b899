"""The ``nndl`` command. Thin: it parses arguments and calls the library.

Every failure the user can cause exits with status 1 (2 for usage errors)
and a one-line reason on stderr, never a traceback (``NNDL_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import sys
import textwrap
import warnings
from pathlib import Path

from nndl import __version__
from nndl._memory import LIMIT_ENV, MemoryLimitError  # standard library only: no NumPy


class CommandError(Exception):
    """A failure to report in one line, with exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse with the stumbles taken out, for every command at once (subcommands are
    made of this class too).

    An unknown flag is reported by the (sub)command it was given to, with that command's
    usage line, and with the closest of its own flags ("did you mean --learning-rate?");
    plain argparse reports it at the top level with the top-level usage and suggests no
    flag (Python 3.14's ``suggest_on_error`` covers choices only). A value outside a
    flag's or a command's choices gets the closest choice, on every Python. Unique prefixes
    of flags stay accepted (``allow_abbrev``, e.g. ``--hidden`` for ``--hidden-size``), and
    an ambiguous one is already reported by the subcommand, listing the flags it could
    mean; a suggestion is only ever printed for a word that is no prefix of any flag.
    """

    def __init__(self, *args, **kwargs):
        if sys.version_info >= (3, 14):  # its own suggestions would repeat ours
            kwargs.setdefault("suggest_on_error", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            chosen_command(self, parsed).unrecognized(unknown)
        return parsed

    def unrecognized(self, words):
        """Exit with status 2: this command's usage, ``words`` and what they may mean."""
        self.error(f"unrecognized arguments: {' '.join(words)}"
                   + did_you_mean(words, flags_of(self)))

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)  # for _check_value
        return super().parse_known_args(args, namespace)

    def _check_value(self, action, value):
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            if isinstance(action, argparse._SubParsersAction):
                # `nndl search --trails 8`: the 8 was taken for an ACTION; the flag is
                # what went wrong
                unknown = [word for word in getattr(self, "_given", ())
                           if word.startswith("--") and not self._knows(word)]
                if unknown:
                    self.unrecognized(unknown)
            names = [str(choice) for choice in action.choices or ()]
            close = difflib.get_close_matches(str(value), names, n=1)
            if not close:
                raise
            raise argparse.ArgumentError(action, f"{exc.message}; did you mean "
                                         f"{close[0]!r}?") from None

    def _knows(self, word):
        """Whether ``word`` is one of this parser's flags or a prefix argparse accepts."""
        typed = word.split("=", 1)[0]
        return any(flag == typed or (self.allow_abbrev and flag.startswith(typed))
                   for flag in self._option_string_actions)


def chosen_command(parser, args):
    """The innermost subcommand parser ``args`` went through (e.g. ``nndl search
    status``'s), or ``parser`` itself when no subcommand was chosen."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(getattr(args, action.dest, None) or "")
            if sub is not None:
                return chosen_command(sub, args)
    return parser


def flags_of(parser):
    """The long flags a user may type to ``parser`` (hidden ones left out)."""
    return [flag for action in parser._actions if action.help != argparse.SUPPRESS
            for flag in action.option_strings if flag.startswith("--")]


def did_you_mean(words, flags):
    """``"; did you mean --learning-rate?"`` for the unknown flags among ``words``, or ``""``.

    A flag matches by its initials (``--lr``: ``--learning-rate``, ``--bs``:
    ``--batch-size``) or by spelling (difflib, underscores read as dashes:
    ``--num_iters``, ``--stroage``); at most two per unknown flag.
    """
    from nndl._validation import closest_names

    names = {flag[2:]: flag for flag in flags}
    hints = []
    for word in words:
        if not word.startswith("--") or word == "--":
            continue
        close = closest_names(word.split("=", 1)[0].lstrip("-"), list(names))
        if close:
            hints.append((word.split("=", 1)[0], " or ".join(names[n] for n in close)))
    if not hints:
        return ""
    if len(hints) == 1:
        return f"; did you mean {hints[0][1]}?"
    return "; did you mean " + ", ".join(f"{hint} (for {word})" for word, hint in hints) + "?"


def cmd_gradcheck(args):
    from nndl.checks import format_table, run_toy_checks
    from nndl.layer_checks import MEASURES, run_course_checks

    results = run_toy_checks() + run_course_checks()
    print(format_table(results))
    print(f"\n{textwrap.fill(MEASURES, 92)}\n")
    failed = [r.check for r in results if not r.passed]
    if failed:
        raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
    print(f"all {len(results)} checks passed")


def cmd_check(args):
    from nndl.grading.command import run_check

    return run_check(args, args.check_parser.error)


def add_check_command(sub):
    from nndl.grading.command import DESCRIPTION, add_arguments

    p = sub.add_parser("check", help="grade a student's TwoLayerNet part by part, safely",
                       description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=cmd_check, check_parser=p)


def cmd_data_download(args):
    from nndl.data.catalog import DATASETS
    from nndl.data.datasets import download_dataset

    folder = download_dataset(args.dataset, args.root, url=args.url, md5=args.md5,
                              progress=not args.quiet)
    print(f"{DATASETS[args.dataset].description.split(':')[0]} is in {folder}")


def cmd_data_info(args):
    from nndl.data.info import describe, format_lines

    print(format_lines(describe(args.dataset, args.root, labels=args.labels,
                                image_size=args.image_size,
                                skip_unreadable=args.skip_unreadable)))


def add_data_commands(sub):
    from nndl._validation import parse_image_size
    from nndl.data.catalog import DATASETS

    def image_size(text):  # argparse names the type in its message
        return parse_image_size(text)

    table = "; ".join(f"{name} ({spec.size})" for name, spec in DATASETS.items())
    data = sub.add_parser("data", help="download and inspect data sets",
                          description="Download a named data set, or describe any data set.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = data_sub.add_parser(
        "download", help="download a named data set (md5-checked, resumable)",
        description="Download the official files of a named data set, check their md5 "
        "sums (before extracting a tarball), and put them in ROOT/<folder> (e.g. "
        "ROOT/cifar-10-batches-py, ROOT/mnist), which appears only once complete. An "
        "interrupted download resumes when run again. ROOT defaults to $NNDL_DATA, else "
        f"the user cache. Data sets: {table}; digits comes with scikit-learn.")
    p.add_argument("dataset", choices=list(DATASETS), help="the data set")
    p.add_argument("--root", help="data root folder (default: $NNDL_DATA, else the user cache)")
    p.add_argument("--url", help="a mirror: the URL of a folder holding the official file "
                   "names, or of the tarball itself for cifar10/cifar100 (also "
                   "$NNDL_MIRROR_<NAME>, e.g. NNDL_MIRROR_FASHION_MNIST)")
    p.add_argument("--md5", help="expected md5 of the tarball of cifar10/cifar100 (default: "
                   "the official one)")
    p.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true",
                   help="no progress bar")
    p.set_defaults(func=cmd_data_download)
    p = data_sub.add_parser(
        "info", help="describe a data set: format, splits, shapes, classes, checksums",
        description="Describe a named data set (where it is, or its official files when "
        "not downloaded) or what a path holds: a CIFAR-10 copy (python or binary folder, "
        "tarball, or a data root holding one), an .npz with X and y, or an image folder "
        "(PATH/<class>/*.png|jpg, or PATH/train/<class>/... and PATH/test/<class>/...).")
    p.add_argument("dataset", metavar="NAME_OR_PATH",
                   help=f"a named data set ({', '.join(DATASETS)}) or a file or folder")
    p.add_argument("--root", help="data root folder of the named data sets (default: "
                   "$NNDL_DATA, else the user cache)")
    p.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                   help="cifar100: the 100 fine classes or the 20 superclasses")
    p.add_argument("--image-size", type=image_size, metavar="WxH",
                   help="image folders: resize every image to WxH (without it, a folder of "
                   "images of different sizes is described from their headers: the sizes "
                   "and their counts)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="image folders: leave out unreadable images instead of failing")
    p.set_defaults(func=cmd_data_info)


def cmd_reproduce(args):
    from nndl.reproduce import ReproducePlan, reproduce

    plan = (ReproducePlan.quick if args.quick else ReproducePlan.full)(args.data, args.seed)
    folder = reproduce(plan, out=args.out, progress=not args.no_progress)
    _print_summary(folder)


def _print_summary(folder):
    import json

    metrics = json.loads((folder / "metrics.json").read_text())
    print(f"\nrun folder: {folder}")
    for name, net in metrics.get("networks", {}).items():
        print(f"  {name:<8} validation {100 * net['val_accuracy']:.1f}%   test "
              f"{100 * net['test_accuracy']:.1f}% ({net['test_size']} images)")
    print(f"  report:  {folder / 'report.html'}")


def cmd_train(args):
    from nndl.flags import config_from_args
    from nndl.workflow import run_train

    recipe = None
    if args.recipe:
        from nndl.recipes import get_recipe

        recipe = get_recipe(args.recipe)
    cfg = config_from_args(args, recipe.config if recipe else None)
    folder, metrics = run_train(cfg, out=args.out, progress=not args.no_progress,
                                recipe=recipe)
    print(f"validation accuracy {100 * metrics['val_accuracy']:.2f}%, test accuracy "
          f"{100 * metrics['test_accuracy']:.2f}% ({metrics['test_size']} images), "
          f"{metrics['train_seconds']:.1f} s of training")
    print(f"run folder: {folder}")
    print(f"  model:   {folder / 'model.npz'}")
    print(f"  report:  {folder / 'report.html'}")


def cmd_evaluate(args):
    from nndl.evaluation import evaluate_model_file
    from nndl.vis_utils import ANNOTATED_CLASSES

    result = evaluate_model_file(args.model, dataset=args.dataset, data=args.data,
                                 num_test=args.num_test, split=args.split, out=args.out,
                                 tta=args.tta, full_test=args.full_test)
    classes = len(result["per_class_accuracy"])
    text = result["text"].split("\n\n")[0] if classes > ANNOTATED_CLASSES else result["text"]
    print(text)
    folder = result["folder"]
    print(f"run folder: {folder}")
    print(f"  confusion matrix: {folder / 'confusion_matrix.png'}, "
          f"{folder / 'confusion_matrix.txt'}" + (f" ({classes} classes)" if classes >
                                                 ANNOTATED_CLASSES else ""))
    print(f"  report:  {result['report']}")


def cmd_visualize(args):
    from nndl._atomic import atomic_path, check_output_file
    from nndl.model_io import load_model
    from nndl.vis_utils import plot_weight_grids

    model = load_model(args.model)
    out = args.out or Path(args.model).with_name(Path(args.model).stem + "_weights.png")
    check_output_file(out, ".png", {args.model: "the model file visualize reads"}, args.force)
    with atomic_path(out, overwrite=args.force) as tmp:
        plot_weight_grids([("W1", model.net.params["W1"])], tmp, model.image_shape)
    print(f"wrote {out}")


def cmd_predict(args):
    import numpy as np

    from nndl._memory import check_fits
    from nndl.data.catalog import warn_unless_flips_keep_class
    from nndl.data.formats import read_image
    from nndl.model_io import load_model, prediction_memory

    model = load_model(args.model)
    trained_on = model.hyperparameters.get("dataset")  # runs from before datasets: CIFAR-10
    if trained_on is None and "num_training" in model.hyperparameters:
        trained_on = "cifar10"
    warn_unless_flips_keep_class(trained_on or "an unknown dataset", args.tta)
    height, width, channels = model.image_shape
    needs = prediction_memory(model, len(args.images), args.tta).add(
        "images", len(args.images) * height * width * channels)
    count = len(args.images)
    check_fits(needs, f"predicting {count:,} image{'s' * (count > 1)}",
               "pass fewer images at once")
    mode = "L" if channels == 1 else "RGB"  # a grayscale model reads images as grayscale
    images = np.stack([read_image(p, size=(width, height), mode=mode) for p in args.images])
    images = images.reshape(len(images), height, width, channels)
    probs = model.predict_proba_images(images, args.tta)
    for path, row in zip(args.images, probs):
        top = np.argsort(row)[::-1][: args.top]
        ranked = ", ".join(f"{model.class_names[i]} {row[i]:.3f}" for i in top)
        print(f"{path}: {ranked}")


def _positive_int(text):
    """An argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def _add_tta_argument(parser):
    from nndl.model_io import TTA

    parser.add_argument("--tta", choices=[t for t in TTA if t], default=None,
                        help="test-time augmentation: average the probabilities of each image "
                        "and its left-right mirror (two passes of the network; default: one "
                        "pass). Warns on data whose mirror images may change class (digits, "
                        "MNIST, Fashion-MNIST, folders, .npz files)")


def _add_run_folder_argument(parser, command):
    parser.add_argument("--out", help="run folder to create: a new folder (its missing parent "
                        "folders are made) or an empty one; never a file or a folder with "
                        f"files in it (default: runs/{command}-<time>)")


def _add_max_memory_argument(parser):
    from nndl._memory import parse_size

    def size(text):  # argparse names the type in its message
        return parse_size(text)

    parser.add_argument("--max-memory", type=size, metavar="SIZE",
                        help="memory this command may use, e.g. 8G or 512M (default: what "
                        "the cgroup limit and the system leave free; also $NNDL_MAX_MEMORY). "
                        "A run whose estimated needs exceed it is refused before it starts")


def add_workflow_commands(sub):
    from nndl.flags import add_config_arguments

    p = sub.add_parser(
        "reproduce", help="run the whole assignment and write a report",
        description="Run the assignment end to end on CIFAR-10: toy and gradient checks, the "
        "default network, a hyperparameter search at hidden size 50 (target: 50% validation "
        "accuracy), first-layer weights, test accuracy. Writes a run folder with "
        "metrics.json, plots, models and report.html. Ctrl-C leaves a partial folder marked "
        "'interrupted'.")
    _add_run_folder_argument(p, "reproduce")
    p.add_argument("--data", help="CIFAR-10 location (default: $NNDL_DATA, else the user "
                   "cache; downloaded if absent)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--quick", action="store_true",
                   help="a seconds-long smoke run on 800 images (not the assignment's numbers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_max_memory_argument(p)
    p.set_defaults(func=cmd_reproduce, needs=("matplotlib",))

    p = sub.add_parser(
        "train", help="train one network and write a run folder",
        description="Train a two-layer network on CIFAR-10 and write a run folder (model.npz, "
        "metrics.json, loss/accuracy/weight plots, report.html). Every option is a flag or a "
        "key of a TOML file given with --config; flags win.")
    add_config_arguments(p)
    from nndl.recipes import RECIPES

    p.add_argument("--recipe", choices=sorted(RECIPES),
                   help="start from a named recipe (see the README); flags override it")
    _add_run_folder_argument(p, "train")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_max_memory_argument(p)
    p.set_defaults(func=cmd_train, needs=("matplotlib",))

    p = sub.add_parser(
        "evaluate", help="accuracy, per-class accuracy and confusion matrix of a model",
        description="Evaluate a model file (its saved preprocessing applied) and write a run "
        "folder: metrics.json, report.html, the confusion matrix as text and PNG. By default "
        "it scores the test images of the run that trained the model (the model file "
        "records the run's dataset, split sizes and seed); it says which images it scored "
        "and why. A model file that records no run (nndl.sklearn.save_model) needs "
        "--dataset.")
    p.add_argument("model", help="model file (.npz written by nndl)")
    p.add_argument("--dataset", help="dataset name or path (default: the one the model was "
                   "trained on; needed for model files of nndl.sklearn.save_model)")
    p.add_argument("--data", help="data root of named datasets (default: the training run's, "
                   "while it exists; else $NNDL_DATA, else the user cache)")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="the test images, or the validation images of the run that trained "
                   "the model (cifar10 by default: training images 49,000..49,999) (default: "
                   "test)")
    tests = p.add_mutually_exclusive_group()
    tests.add_argument("--num-test", type=int, default=None, metavar="N",
                       help="the first N of the dataset's official test images (without "
                       "an official test set: of the run's own test images) (default: the "
                       "run's own test images)")
    tests.add_argument("--full-test", action="store_true",
                       help="all of the dataset's official test images (cifar10: 10,000)")
    _add_run_folder_argument(p, "evaluate")
    _add_tta_argument(p)
    _add_max_memory_argument(p)
    p.set_defaults(func=cmd_evaluate, needs=("matplotlib",))

    p = sub.add_parser("visualize", help="draw a model's first-layer weights as an image grid",
                       description="Draw the first-layer weights of a model as an image grid.")
    p.add_argument("model", help="model file")
    p.add_argument("--out", help="PNG to write, a new .png file in an existing folder "
                   "(default: <model>_weights.png beside the model); never the model itself")
    p.add_argument("--force", action="store_true",
                   help="replace --out if it exists (never the model file)")
    p.set_defaults(func=cmd_visualize, needs=("matplotlib",))

    p = sub.add_parser("predict", help="classify PNG/JPEG images with a model",
                       description="Classify image files of any size (resized to the model's "
                       "input size) and print the most probable classes.")
    p.add_argument("model", help="model file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--top", type=_positive_int, default=3,
                   help="classes to show per image, at least 1 (default: 3)")
    _add_tta_argument(p)
    _add_max_memory_argument(p)
    p.set_defaults(func=cmd_predict, needs=("PIL",))


def cmd_search(args):
    action = getattr(args, "search_command", None) or "run"
    if action == "status":
        return cmd_search_status(args)
    if action == "worker":
        from nndl.search import run_worker

        return run_worker(args.storage, args.study, args.out or ".", args.worker_index,
                          storage_wait=args.storage_wait)
    from nndl.config import RunConfig, read_toml
    from nndl.flags import config_from_args
    from nndl.search import SearchSettings, default_space, load_space, run_search

    space = load_space(args.space) if args.space else default_space()
    base = config_from_args(args, RunConfig(dtype="float32"))
    given = {k for k, v in vars(args).items() if v is not None}
    fixed = {k for k in base.to_dict() if k in given}
    space = {k: v for k, v in space.items() if k not in fixed}  # a given flag fixes its option
    settings = SearchSettings(**{field: _or_default(args, flag) for field, flag in
                                 SEARCH_SETTING_FLAGS.items()}, study=args.study)
    if args.config:  # its options count as given: a resume compares them with the study's
        fixed |= set(read_toml(args.config))
    chosen = fixed | {f for f, flag in SEARCH_SETTING_FLAGS.items() if flag in given}
    if not args.resume:  # missing or bad data, or too little memory, fail before the folder
        _check_search_memory(space, base, settings, args.workers)
    folder = run_search(space, base, settings, out=args.out, storage_url=args.storage,
                        workers=args.workers, resume=args.resume,
                        progress=not args.no_progress,
                        given=chosen | ({"space"} if args.space else set()),
                        storage_wait=args.storage_wait)
    _print_search_summary(folder)


def _check_search_memory(space, base, settings, workers):
    """Load the data (memory-mapped) and refuse a search whose largest population (its
    largest configuration, ``population`` trials at once, in each of ``workers``
    processes) would not fit."""
    from nndl.search.space import largest_config
    from nndl.workflow import check_memory

    members, processes = min(settings.group_size, settings.trials), max(1, workers)
    what = (f"this search ({members} trial{'s' * (members > 1)} at once"
            + (f" in each of {processes} workers)" if processes > 1 else ")"))
    check_memory(largest_config(space, base), None, members=members, processes=processes,
                 what=what)


#: SearchSettings field -> the flag (argparse dest) that sets it; their argparse defaults
#: are None (not given), these are the defaults a new search takes.
SEARCH_SETTING_FLAGS = {"sampler": "sampler", "pruner": "pruner", "trials": "trials",
                        "population": "population", "seed": "seed_search"}
SEARCH_DEFAULTS = {"sampler": "tpe", "pruner": "auto", "trials": 32, "population": None,
                   "seed_search": 0}


def _or_default(args, flag):
    value = getattr(args, flag)
    return SEARCH_DEFAULTS[flag] if value is None else value


def _print_search_summary(folder):
    """The best trial's accuracies and the parameters its study searched (its own space,
    also on --resume), and where everything is."""
    import json

    metrics = json.loads((folder / "metrics.json").read_text())
    best, space = metrics.get("best") or {}, metrics["config"]["space"]
    print(f"run folder: {folder}")
    if best:
        chosen = ", ".join(f"{k}={_short(best['config'][k])}" for k in space
                           if k in best.get("config", {}))
        print(f"  best:    trial {best['trial']}, validation "
              f"{100 * best['val_accuracy']:.1f}%, test {100 * best['test_accuracy']:.1f}% "
              f"({best['test_size']} images)")
        print(f"           {chosen}")
        print(f"  model:   {folder / 'best' / 'model.npz'}")
    print(f"  trials:  {folder / 'trials.csv'}")
    print(f"  report:  {folder / 'report.html'}")


def _short(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def cmd_search_status(args):
    import optuna

    from nndl.search.processes import run_state
    from nndl.search.results import format_trials
    from nndl.search.storage import open_storage

    storage = open_storage(args.storage, args.out, create=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        raise CommandError(f"no study {args.study!r} in that storage") from None
    print(format_trials(study, width=_terminal_width()))
    state, how = run_state(args.out) if args.out else (None, "")
    if how:
        print(f"the search in {args.out} {how}" + (
            f"; nndl search --resume --out {args.out} continues it"
            if state in ("killed", "stopped", "failed") else ""))


def _terminal_width():
    """The terminal's columns, or None when the output goes to a file or a pipe (then
    nothing is cut)."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def add_search_command(sub):
    p = sub.add_parser(
        "search", help="hyperparameter search (Optuna), population training, workers",
        description="Search hyperparameters by validation accuracy ('nndl search' is 'nndl "
        "search run'). Trials that share a batch size and iterations train together as one "
        "population (one big matrix product). The space defaults to the assignment's "
        "(learning rate, reg, batch size, decay, init std at hidden size 50 and 3,000 "
        "iterations); "
        "--space TOML replaces it, and any training flag given here (e.g. --num-iters 490) "
        "fixes that option for every trial. Writes a run folder with trials.csv, "
        "best/model.npz, plots, metrics.json and report.html.")
    _add_search_run_arguments(p)
    actions = p.add_subparsers(dest="search_command", metavar="ACTION")
    run = actions.add_parser("run", help="run a search (the default)",
                             description="Run a search (see 'nndl search --help').")
    _add_search_run_arguments(run)
    status = actions.add_parser("status", help="print a study's trials",
                                description="Print the trials of a study: number, state, "
                                "parameters, validation accuracy, seconds and the reason a "
                                "trial was pruned, diverged or failed (cut to the terminal's "
                                "width; whole when the output is a file or a pipe).")
    _add_study_arguments(status)
    worker = actions.add_parser("worker", help="join a study from another process or machine",
                                description="Join a running study (its definition is stored "
                                "in it) and run trials until it has enough.")
    _add_study_arguments(worker)
    _add_storage_wait_argument(worker)
    worker.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    for q in (p, run, status, worker):
        q.set_defaults(func=cmd_search, needs=("optuna", "matplotlib"))


def _add_study_arguments(p):
    p.add_argument("--storage", help="study storage URL, e.g. postgresql://user@host/db "
                   "(default: the journal file of the run folder --out)")
    p.add_argument("--study", default="nndl", help="study name (default: nndl)")
    p.add_argument("--out", help="run folder (default: runs/search-<time>)")


def _add_storage_wait_argument(p):
    def seconds(text):  # argparse names the type in its message
        value = float(text)
        if not 0 <= value < float("inf"):
            raise ValueError(text)
        return value

    p.add_argument("--storage-wait", type=seconds, default=None, metavar="SECONDS",
                   help="how long to wait out a database (--storage) that stops answering, "
                   "retrying with backoff, before giving up in one line (default: 60)")


def _add_search_run_arguments(p):
    from nndl.config import RunConfig
    from nndl.flags import add_config_arguments
    from nndl.search.settings import HALVING_FROM_TRIALS, PRUNERS, SAMPLERS

    p.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: tpe")
    p.add_argument("--pruner", choices=PRUNERS, default=None,
                   help="prunes hopeless trials from per-epoch validation accuracy "
                   "(default: auto = successive halving from "
                   f"{HALVING_FROM_TRIALS} trials on, none below)")
    p.add_argument("--trials", type=int, default=None,
                   help="trials to finish (default: 32; with --resume: the study's new total)")
    p.add_argument("--population", type=int, default=None,
                   help="trials trained together (1 = one by one; default: up to 32)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default: 1)")
    _add_study_arguments(p)
    _add_storage_wait_argument(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the study of --out (or --storage/--study) where it stopped, "
                   "with its own space, sampler and training options: of the flags given, "
                   "--trials (the new total), --population and --workers apply, and any other "
                   "must equal the study's value or the resume is refused")
    p.add_argument("--space", metavar="TOML", help="search space file (see the docs)")
    p.add_argument("--seed-search", type=int, default=None, metavar="N",
                   help="seed of the sampler and of the trials' initializations (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_max_memory_argument(p)
    add_config_arguments(p, RunConfig(dtype="float32"))  # what a search trains with


def cmd_completion(args):
    import argcomplete

    print(argcomplete.shellcode(["nndl"], shell=args.shell))


def add_completion_command(sub):
    p = sub.add_parser(
        "completion", help="print a shell completion script (bash, zsh, fish)",
        description="Print the script that makes your shell complete nndl's commands, flags "
        "and choices. bash: add 'eval \"$(nndl completion bash)\"' to ~/.bashrc; zsh: the "
        "same line with zsh in ~/.zshrc; fish: 'nndl completion fish | source' in "
        "~/.config/fish/config.fish.")
    p.add_argument("shell", choices=["bash", "zsh", "fish"])
    p.set_defaults(func=cmd_completion, needs=("argcomplete",))


def build_parser():
    parser = Parser(
        prog="nndl",
        description="The classic two-layer network assignment as a toolkit: train, search, "
        "evaluate and reproduce it on CIFAR-10.",
    )
    parser.add_argument("--version", action="version", version=f"nndl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("gradcheck", help="run both assignments' toy-model, layer and gradient "
                       "checks",
                       description="Run the first assignment's toy-model checks (scores, loss, "
                       "numerical gradients, a 100-iteration training run) and the second's "
                       "(each layer, sandwich layer and loss against the course's values or "
                       "numerical gradients, four of the five update rules (all but plain "
                       "SGD) against the course's values, the modular TwoLayerNet, and "
                       "FullyConnectedNet at two depths with and without batch normalization "
                       "and once with dropout) and print them as one table. "
                       "Exits non-zero when any check fails.")
    p.set_defaults(func=cmd_gradcheck)
    add_check_command(sub)
    add_workflow_commands(sub)
    add_search_command(sub)
    add_data_commands(sub)
    add_completion_command(sub)
    return parser


def require(*modules):
    """Fail before any work when an optional dependency of the command is missing (the
    core needs only NumPy; plots, images and search come with ``nndl[all]``)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise CommandError(f"this command needs {' and '.join(missing)}, an optional "
                           "dependency: install nndl's extras: pip install 'nndl[all]'")


# Errors that are the user's to fix (bad input, missing files, no GPU, a diverging run):
# their message is the whole story. Anything else is reported as a probable nndl bug.
EXPECTED_ERRORS = (CommandError, ValueError, TypeError, OSError, RuntimeError, ImportError,
                   ArithmeticError, MemoryError)


def error_line(exc):
    """One line for ``exc``: its message (with a hint for missing extras and where a run's
    partial results are), or its type for an unexpected error."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ModuleNotFoundError):
        message += " (install nndl's extras: pip install 'nndl[all]')"
    elif isinstance(exc, MemoryError) and not isinstance(exc, MemoryLimitError):
        # one the estimate before the run did not foresee (nndl._memory)
        message = (f"out of memory ({message}); lower the sizes (e.g. --hidden-size, "
                   "--batch-size, --num-training) or free memory")
    elif not isinstance(exc, EXPECTED_ERRORS):
        message = (f"{type(exc).__name__}: {message} (probably a bug in nndl: rerun with "
                   "NNDL_DEBUG=1 for the traceback and report it)")
    return message + _where(exc)


def _where(exc):
    """``"; what the run reached is in FOLDER"`` for an exception from a run, else ``""``
    (with the note that its status could not be written, when it could not)."""
    folder = getattr(exc, "run_folder", None)
    if folder is None:
        return ""
    status_error = getattr(exc, "status_error", None)
    return f"; what the run reached is in {folder}" + (f" ({status_error})"
                                                       if status_error else "")


def main(argv=None):
    """Run the command line; returns the exit status: 0 done, 1 failed (one line on
    stderr; ``NNDL_DEBUG=1`` re-raises for the traceback), 2 usage, 130 Ctrl-C, 143
    SIGTERM, 129 SIGHUP (both handled as Ctrl-C is: :mod:`nndl._stops`)."""
    from nndl._stops import stop_signals_like_ctrl_c

    parser, args = build_parser(), None
    _complete_if_asked(parser)
    shown, limit = warnings.showwarning, os.environ.get(LIMIT_ENV)
    try:
        with stop_signals_like_ctrl_c():
            args = parser.parse_args(argv)
            _set_memory_limit(args)
            if not os.environ.get("NNDL_DEBUG"):
                warnings.showwarning = _one_line_warning(_prefix(args))
            require(*getattr(args, "needs", ()))
            result = args.func(args)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP
        print(f"{_prefix(args)}: {str(exc) or 'interrupted'}{_where(exc)}", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    except BrokenPipeError:  # the reader went away (`nndl search status | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 1
    except Exception as exc:  # the one error boundary: every failure is one line
        if os.environ.get("NNDL_DEBUG"):
            raise
        print(f"{_prefix(args)}: error: {error_line(exc)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
        _set_memory_limit(None, limit)
    return int(result or 0)


def _set_memory_limit(args, previous=None):
    """``--max-memory`` as ``$NNDL_MAX_MEMORY`` (which the library and a search's worker
    processes read) for this command; ``args`` None puts back ``previous``."""
    given = getattr(args, "max_memory", None)
    if given is not None:
        os.environ[LIMIT_ENV] = str(given)
    elif args is None and previous is None:
        os.environ.pop(LIMIT_ENV, None)
    elif args is None:
        os.environ[LIMIT_ENV] = previous


def _one_line_warning(prefix):
    """``warnings.showwarning`` for the command line: ``nndl evaluate: warning: ...`` on
    one line, without the source line Python shows (``NNDL_DEBUG=1`` keeps Python's)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prefix}: warning: {message}", file=sys.stderr if file is None else file)
    return show


def _complete_if_asked(parser):
    """Answer the shell's completion request (``_ARGCOMPLETE`` set) and exit; a no-op
    otherwise, or without argcomplete."""
    if "_ARGCOMPLETE" in os.environ:
        try:
            import argcomplete
        except ImportError:
            return
        argcomplete.autocomplete(parser)


def _prefix(args):
    return f"nndl {args.command}" if args is not None else "nndl"


if __name__ == "__main__":
    sys.exit(main())
