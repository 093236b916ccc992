"""The command line: ``python -m ovis_jax.eval --gt GT.json --results RESULTS.json``.

Prints the official summary (18 numbers for OVIS, 12 for YouTube-VIS), AP / AR by track length
and a per-category table on stdout, warnings on stderr (``warning: ...``), and optionally writes
everything as JSON (``--json``), per-result matches (``--matches``), the full arrays
(``--arrays``), pictures (``--plots``) and a TIVE-style error analysis (``--errors``).
Without arguments (or with ``--demo``) it evaluates a small demo sample shipped with the package.

A malformed or unreadable input is reported as one line ``error: <message>`` on stderr with exit
status 2, never a traceback. This is the only module that configures :mod:`logging` and the only
one that prints: library modules log (``-v`` shows their progress messages).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

from ovis_jax._src.backends.cpu import precompile
from ovis_jax._src.backends.cpu.cached import kernels_cached
from ovis_jax._src.backends.cpu.startup import start_numba
from ovis_jax._src.backends.jax.cache import default_cache_dir, enable_compilation_cache
from ovis_jax._src.cli.guard import (
    EXIT_ERROR,
    CliError,
    printable_streams,
    run_guarded,
    version_text,
)
from ovis_jax._src.cli.outputs import OutputPlan
from ovis_jax._src.errors import FormatError
from ovis_jax._src.evaluation import BACKENDS, evaluate, resolve_backend
from ovis_jax._src.io.read import parse_untyped, read_bytes
from ovis_jax._src.io.vis import load_ground_truth, load_results
from ovis_jax._src.metrics.ap.summary import (
    format_groups,
    format_length,
    format_metrics,
    format_per_category,
    format_subsets,
    format_summary,
)

__all__ = ["main"]

logger = logging.getLogger(__name__)

DEMO_GT = "demo_gt.json"
DEMO_RESULTS = "demo_results.json"


def _build_parser(prog: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Evaluate video instance segmentation results with the official OVIS / YouTube-VIS "
            "video mask AP (18 numbers for OVIS ground truth, 12 for YouTube-VIS). Without "
            "arguments, evaluates a small demo sample shipped with the package."
        ),
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument(
        "--gt",
        metavar="GT.json",
        help="ground-truth annotations (JSON object; .json, .json.gz or .zip)",
    )
    parser.add_argument(
        "--results",
        metavar="RESULTS.json",
        help="results to evaluate: a JSON list of tracks, as .json, .json.gz or .zip (a zip "
        "holding one JSON file, as the evaluation servers take)",
    )
    parser.add_argument(
        "--subset",
        metavar="NAME=FILE",
        action="append",
        default=[],
        help="also evaluate the videos of FILE (a ground-truth file, or a JSON list of video "
        "ids) on their own, as the YouTube-VIS 2022 script does; repeatable. With subsets "
        "named short and long, the YouTube-VIS 2022 mAP is printed too",
    )
    parser.add_argument(
        "--group",
        metavar="NAME=FILE",
        action="append",
        default=[],
        help="also report the numbers restricted to the categories of FILE (a JSON list of "
        "category ids); repeatable. LV-VIS base / novel groups are added automatically",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="evaluate the demo sample shipped with the package (the default without --gt)",
    )
    parser.add_argument(
        "--json",
        metavar="OUT.json",
        dest="json_out",
        help="also write the numbers, per-category numbers and warnings to this JSON file",
    )
    parser.add_argument(
        "--errors",
        action="store_true",
        help="also run a TIVE-style error analysis: what each error type costs in AP50 "
        "(printed as a table, in --json under 'errors', errors.png with --plots)",
    )
    parser.add_argument(
        "--metrics",
        metavar="LIST",
        type=_metric_list,
        default=("ap",),
        help="comma-separated metrics: ap (always computed), hota, clear, identity (the "
        "tracking metrics as TrackEval computes them for YouTube-VIS, in one pass; a table "
        "each, in --json under 'tracking', tracking.png with --plots), errors (as --errors). "
        "Default: ap",
    )
    parser.add_argument(
        "--score-threshold",
        metavar="T",
        type=float,
        default=None,
        help="drop results with a score below T before the tracking metrics (never for the "
        "AP); TrackEval has no such option and keeps every result",
    )
    parser.add_argument(
        "--matches",
        metavar="FILE.jsonl",
        help="write one JSON object per result (results-file order): the ground truth it is "
        "matched to at IoU 0.5, its IoU, and whether it is matched at each IoU threshold",
    )
    parser.add_argument(
        "--arrays",
        metavar="FILE.npz",
        help="write the full precision [T,R,K,A,O,M], recall [T,K,A,O,M] and scores arrays, "
        "the track-length arrays and the parameters (numpy.load reads them)",
    )
    parser.add_argument(
        "--plots",
        metavar="DIR",
        help="draw pr_curve.png, per_category.png (and errors.png with --errors) into DIR "
        "(needs matplotlib: pip install 'ovis_jax[plots]')",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="'auto' (default: 'jax' when an accelerator is present and the data is large, "
        "else 'cpu'), 'cpu' (compiled numba kernels), 'jax' (JAX kernels on the default "
        "device) or 'reference' (NumPy + pycocotools oracle); all give the same numbers",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="persistent XLA compilation cache of the jax backend, so that a later run does not "
        "compile again (default: $OVIS_JAX_CACHE or ~/.cache/ovis_jax/xla; an unwritable "
        "folder falls back to a temporary one, or to no cache)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing on stdout (warnings and errors still go to stderr)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress and timings on stderr"
    )
    return parser


# --------------------------------------------------------------------------------------------
# Inputs and outputs


@contextlib.contextmanager
def _demo_paths() -> Iterator[tuple[str, str]]:
    data = importlib.resources.files("ovis_jax") / "data"
    gt, results = data / DEMO_GT, data / DEMO_RESULTS
    for f in (gt, results):
        if not f.is_file():
            raise CliError(
                f"the demo sample {f} is missing from the installed package (reinstall ovis_jax)"
            )
    with importlib.resources.as_file(gt) as gt_path, importlib.resources.as_file(results) as rp:
        yield os.fspath(gt_path), os.fspath(rp)


def _run(args: argparse.Namespace, plan: OutputPlan, gt_path: str, results_path: str) -> None:
    t0 = time.perf_counter()
    gt = load_ground_truth(gt_path)
    t1 = time.perf_counter()
    logger.info(
        "ground truth %s: %s format, %d videos, %d tracks, %d categories (%.2f s)",
        gt_path,
        gt.format,
        len(gt.videos),
        gt.ann_id.shape[0],
        gt.category_ids.shape[0],
        t1 - t0,
    )
    subsets = {name: _video_ids(path, name) for name, path in _named(args.subset, "--subset")}
    groups = {name: _category_ids(path, name) for name, path in _named(args.group, "--group")}
    results = load_results(results_path, gt)
    t2 = time.perf_counter()
    logger.info(
        "results %s: %d tracks, %d of other categories not evaluated (%.2f s)",
        results_path,
        results.score.shape[0] + results.num_unknown_category,
        results.num_unknown_category,
        t2 - t1,
    )
    backend = resolve_backend(args.backend, gt, results)
    if backend == "jax" and not args.no_cache:
        enable_compilation_cache(args.cache_dir or default_cache_dir())
    try:
        result = evaluate(
            gt,
            results,
            backend=backend,
            subsets=subsets,
            groups=groups,
            matches=args.matches is not None,
            errors=_wants_errors(args),
            arrays=args.arrays is not None,
            metrics=args.metrics,
            metric_options={m: {"score_threshold": args.score_threshold} for m in TRACKING},
        )
    except ValueError as e:
        if isinstance(e, FormatError):
            raise
        raise CliError(str(e)) from None
    logger.info(
        "evaluated with the %r backend (%.2f s): %s",
        backend,
        time.perf_counter() - t2,
        ", ".join(f"{k} {v:.3f} s" for k, v in result.timings.items()),
    )
    _write_outputs(args, plan, result)
    plan.commit()
    if not args.quiet:
        print(format_summary(result))
        if result.length_stats:
            print()
            print(format_length(result))
        print()
        print(format_per_category(result))
        for text in (format_groups(result), format_subsets(result)):
            if text:
                print()
                print(text)
        if result.metrics:
            print()
            print(format_metrics(result))
        sys.stdout.flush()
    for w in result.warnings:  # the one channel for warnings (the library only logs progress)
        print(f"warning: {w}", file=sys.stderr)


def _named(specs: Sequence[str], flag: str) -> list[tuple[str, str]]:
    """``NAME=FILE`` arguments as (name, path) pairs; a name given twice is an error."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CliError(f"{flag} expects NAME=FILE, got {spec!r}")
        if name in out:
            raise CliError(f"{flag} {name!r} is given twice")
        out[name] = path
    return list(out.items())


def _json_file(path: str, what: str):
    raw, label = read_bytes(path, what)
    return parse_untyped(raw, label), label


def _video_ids(path: str, name: str) -> list[int]:
    """A subset's video ids: from a ground-truth file's ``videos``, or a JSON list of ids."""
    data, label = _json_file(path, f"subset {name!r}")
    if isinstance(data, dict) and isinstance(data.get("videos"), list):
        data = [v.get("id") if isinstance(v, dict) else v for v in data["videos"]]
    return _int_list(data, label, "video ids (or a ground-truth file)")


def _category_ids(path: str, name: str) -> list[int]:
    """A group's category ids: a JSON list of ids (or a file's ``categories``)."""
    data, label = _json_file(path, f"group {name!r}")
    if isinstance(data, dict) and isinstance(data.get("categories"), list):
        data = [c.get("id") if isinstance(c, dict) else c for c in data["categories"]]
    return _int_list(data, label, "category ids")


def _int_list(data, label: str, what: str) -> list[int]:
    if not isinstance(data, list):
        raise CliError(f"{label}: expected a JSON list of {what}, got {type(data).__name__}")
    for i, x in enumerate(data):
        if not isinstance(x, int) or isinstance(x, bool):
            raise CliError(f"{label}: entry [{i}] is {x!r}, expected an integer id")
    return data


TRACKING = ("hota", "clear", "identity")


def _metric_list(text: str) -> tuple[str, ...]:
    """``--metrics``: known names, order kept, duplicates dropped."""
    from ovis_jax._src.metrics.base import metric_names

    names = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    known = metric_names()
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown metric {unknown[0]!r}, expected a comma-separated list of {', '.join(known)}"
            if unknown
            else f"expected a comma-separated list of {', '.join(known)}"
        )
    return names


def _wants_errors(args: argparse.Namespace) -> bool:
    return args.errors or "errors" in args.metrics


def _wants_tracking(args: argparse.Namespace) -> bool:
    return any(m in TRACKING for m in args.metrics)


def _plot_names(args: argparse.Namespace) -> tuple[str, ...]:
    return (
        "pr_curve.png",
        "per_category.png",
        *(("errors.png",) if _wants_errors(args) else ()),
        *(("tracking.png",) if _wants_tracking(args) else ()),
    )


def _declare(args: argparse.Namespace, plan: OutputPlan, gt_path: str, results_path: str) -> None:
    """Every input and every file the run will write, before any work."""
    plan.input("--gt", gt_path)
    plan.input("--results", results_path)
    for flag, specs in (("--subset", args.subset), ("--group", args.group)):
        for name, path in _named(specs, flag):
            plan.input(f"{flag} {name}", path)
    plan.output("--json", args.json_out)
    plan.output("--matches", args.matches)
    plan.output("--arrays", args.arrays)
    if args.plots is not None:
        plan.make_folder("--plots", args.plots)
        for name in _plot_names(args):
            plan.output("--plots", os.path.join(args.plots, name))


def _write_json(path: str, document: dict) -> None:
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _write_outputs(args: argparse.Namespace, plan: OutputPlan, result) -> None:
    """The files asked for (--json, --matches, --arrays, --plots), each to its temporary file;
    :meth:`OutputPlan.commit` then puts them in place together."""
    if args.json_out is not None:
        document = result.to_json()
        plan.write(args.json_out, lambda tmp: _write_json(tmp, document))
    if args.matches is not None:
        from ovis_jax._src.metrics.matches import write_matches

        plan.write(args.matches, lambda tmp: write_matches(result.matches, tmp))
    if args.arrays is not None:
        from ovis_jax._src.io.export import write_arrays

        plan.write(args.arrays, lambda tmp: write_arrays(result, tmp))
    if args.plots is not None:
        _write_plots(args, plan, result)


def _write_plots(args: argparse.Namespace, plan: OutputPlan, result) -> None:
    """Draws the pictures into a temporary folder inside --plots, then moves each onto its
    planned temporary file."""
    from ovis_jax._src.metrics.plots import plot_results

    def draw(_tmp: str) -> None:
        with tempfile.TemporaryDirectory(dir=args.plots, prefix=".plots-") as folder:
            plot_results(result, folder)
            for name in _plot_names(args):
                os.replace(os.path.join(folder, name), plan.temp(os.path.join(args.plots, name)))

    plan.write(os.path.join(args.plots, _plot_names(args)[0]), draw)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Runs the command line.

    Args:
        argv: the arguments (without the program name); ``sys.argv[1:]`` by default.
        prog: the program name shown in usage messages.

    Returns:
        The exit status: 0 on success, 2 on a malformed, missing or unreadable input (reported
        as one ``error:`` line on stderr), an output that cannot be written (nothing is
        written then), memory exhausted or a usage error; 130 when interrupted, 143 when
        terminated, 141 when stdout was closed early.
    """
    parser = _build_parser(prog)
    args = parser.parse_args(argv)  # usage errors: SystemExit(2), as argparse does
    if args.demo and (args.gt is not None or args.results is not None):
        parser.error("--demo takes no --gt / --results")
    if (args.gt is None) != (args.results is None):
        parser.error("--gt and --results go together (or give neither, for the demo)")
    if args.score_threshold is not None and not math.isfinite(args.score_threshold):
        parser.error(f"--score-threshold expects a finite number, got {args.score_threshold}")
    if args.score_threshold is not None and not _wants_tracking(args):
        parser.error("--score-threshold applies to the tracking metrics: add hota, clear or "
                     "identity to --metrics")  # fmt: skip
    if args.plots is not None:
        from ovis_jax._src.metrics.plots import MATPLOTLIB_HINT, have_matplotlib

        if not have_matplotlib():
            print(f"error: --plots needs matplotlib: {MATPLOTLIB_HINT}", file=sys.stderr)
            return EXIT_ERROR
    printable_streams()
    start_numba()
    if args.backend != "jax" and not kernels_cached():
        precompile.start()  # two of the kernels compile in a helper process meanwhile
        if sys.stderr.isatty():
            print(
                "note: first run after an install: compiling the CPU kernels (a few seconds, "
                "once; numba caches them for later runs)",
                file=sys.stderr,
            )

    def run(gt_path: str, results_path: str) -> None:
        plan = OutputPlan(quiet=args.quiet)
        _declare(args, plan, gt_path, results_path)
        with plan:  # outputs checked (and reserved) before any work
            _run(args, plan, gt_path, results_path)

    def body() -> None:
        if args.gt is None:
            with _demo_paths() as (gt_path, results_path):
                logger.info("evaluating the demo sample")
                run(gt_path, results_path)
        else:
            run(args.gt, args.results)

    try:
        return run_guarded(body, verbose=args.verbose, quiet=args.quiet)
    finally:
        precompile.stop()
