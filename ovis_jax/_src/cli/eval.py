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
import importlib.abc
import importlib.resources
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from ovis_jax._src.errors import FormatError
from ovis_jax._src.evaluation import BACKENDS, evaluate, resolve_backend
from ovis_jax._src.io.loading import load_ground_truth, load_results, parse_untyped, read_bytes
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

#: Exit statuses.
EXIT_OK = 0
EXIT_ERROR = 2  # malformed / unreadable input or output; also argparse's usage errors
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a process killed by it

DEMO_GT = "demo_gt.json"
DEMO_RESULTS = "demo_results.json"


class _CliError(Exception):
    """An error the CLI reports as one ``error:`` line (exit status 2)."""


def _build_parser(prog: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Evaluate video instance segmentation results with the official OVIS / YouTube-VIS "
            "video mask AP (18 numbers for OVIS ground truth, 12 for YouTube-VIS). Without "
            "arguments, evaluates a small demo sample shipped with the package."
        ),
    )
    parser.add_argument("--gt", metavar="GT.json", help="ground-truth annotations (JSON object)")
    parser.add_argument(
        "--results", metavar="RESULTS.json", help="results to evaluate (JSON list of tracks)"
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
        default=os.environ.get(
            "OVIS_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ovis_jax", "xla")
        ),
        help="persistent XLA compilation cache of the jax backend, so that a later run does not "
        "compile again (default: $OVIS_JAX_CACHE or ~/.cache/ovis_jax/xla)",
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
# Logging


class _Formatter(logging.Formatter):
    """``<level>: <message>`` in lower case, like the CLI's own ``warning:`` / ``error:`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _ProgressBar(logging.Handler):
    """Draws the package's progress records (see :mod:`ovis_jax._src.progress`) as one updating line
    on stderr, when stderr is a terminal; other records pass to the normal handler."""

    def __init__(self, stream) -> None:
        super().__init__(level=logging.INFO)
        self.stream = stream
        self.active = False

    def emit(self, record: logging.LogRecord) -> None:
        done, total, what = record.progress
        width = 30
        filled = width * done // max(total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
        self.stream.write("\r" + line.ljust(72))  # padded: no tail of a longer line is left
        self.active = done < total
        if not self.active:
            self.stream.write("\n")
        self.stream.flush()


class _IsProgress(logging.Filter):
    def __init__(self, wanted: bool) -> None:
        super().__init__()
        self.wanted = wanted

    def filter(self, record: logging.LogRecord) -> bool:
        return hasattr(record, "progress") == self.wanted


@contextlib.contextmanager
def _logging_configured(verbose: bool, quiet: bool) -> Iterator[None]:
    """Logs to stderr for the duration of one ``main`` call, then restores the previous setup
    (``main`` is called repeatedly in-process by tests). Progress records become a progress bar
    when stderr is a terminal (and not ``--quiet``); with ``-v`` they are plain lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    bar = None
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if tty and not quiet and not verbose:
        bar = _ProgressBar(sys.stderr)
        bar.addFilter(_IsProgress(True))
        handler.addFilter(_IsProgress(False))
    root = logging.getLogger()
    package = logging.getLogger("ovis_jax")
    saved = (root.level, package.level)
    root.addHandler(handler)
    if bar is not None:
        package.addHandler(bar)
    root.setLevel(logging.WARNING)
    # INFO only for this package: JAX's own INFO chatter (backend probing) stays hidden.
    package.setLevel(logging.INFO if verbose or bar is not None else logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        if bar is not None:
            package.removeHandler(bar)
        root.setLevel(saved[0])
        package.setLevel(saved[1])


# --------------------------------------------------------------------------------------------
# Inputs and outputs


@contextlib.contextmanager
def _demo_paths() -> Iterator[tuple[str, str]]:
    data = importlib.resources.files("ovis_jax") / "data"
    gt, results = data / DEMO_GT, data / DEMO_RESULTS
    for f in (gt, results):
        if not f.is_file():
            raise _CliError(
                f"the demo sample {f} is missing from the installed package (reinstall ovis_jax)"
            )
    with importlib.resources.as_file(gt) as gt_path, importlib.resources.as_file(results) as rp:
        yield os.fspath(gt_path), os.fspath(rp)


def _write_json(path: str, document: dict) -> None:
    """Writes the JSON document atomically: a temporary file beside ``path``, then a rename, so
    that an interrupted run never leaves a truncated result file."""
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise _CliError(f"cannot write {path!r} ({e.strerror or e})") from e


def _printable_streams() -> None:
    """Escapes what stdout / stderr cannot encode (e.g. a lone surrogate in a category name)
    instead of failing with UnicodeEncodeError in the middle of the output."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _run(args: argparse.Namespace, gt_path: str, results_path: str) -> None:
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
        _enable_compilation_cache(args.cache_dir)
    try:
        result = evaluate(
            gt,
            results,
            backend=backend,
            subsets=subsets,
            groups=groups,
            matches=args.matches is not None,
            errors=args.errors,
            arrays=args.arrays is not None,
        )
    except ValueError as e:
        if isinstance(e, FormatError):
            raise
        raise _CliError(str(e)) from None
    logger.info(
        "evaluated with the %r backend (%.2f s): %s",
        backend,
        time.perf_counter() - t2,
        ", ".join(f"{k} {v:.3f} s" for k, v in result.timings.items()),
    )
    _write_outputs(args, result)
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
            raise _CliError(f"{flag} expects NAME=FILE, got {spec!r}")
        if name in out:
            raise _CliError(f"{flag} {name!r} is given twice")
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
        raise _CliError(f"{label}: expected a JSON list of {what}, got {type(data).__name__}")
    for i, x in enumerate(data):
        if not isinstance(x, int) or isinstance(x, bool):
            raise _CliError(f"{label}: entry [{i}] is {x!r}, expected an integer id")
    return data


def _write_outputs(args: argparse.Namespace, result) -> None:
    """The files asked for: --json, --matches, --arrays, --plots."""
    if args.json_out is not None:
        document = result.to_json()
        _write_json(args.json_out, document)
        logger.info("wrote %s", args.json_out)
    if args.matches is not None:
        from ovis_jax._src.metrics.matches import write_matches

        _writing(args.matches, lambda: write_matches(result.matches, args.matches))
    if args.arrays is not None:
        from ovis_jax._src.io.export import save_arrays

        _writing(args.arrays, lambda: save_arrays(result, args.arrays))
    if args.plots is not None:
        from ovis_jax._src.metrics.plots import plot_results

        paths = _writing(args.plots, lambda: plot_results(result, args.plots))
        logger.info("plots: %s", ", ".join(paths))


def _writing(path: str, write):
    """Runs ``write()``; an OSError becomes one ``error:`` line naming ``path``."""
    try:
        out = write()
    except OSError as e:
        raise _CliError(f"cannot write {path!r} ({e.strerror or e})") from e
    logger.info("wrote %s", path)
    return out


def _enable_compilation_cache(cache_dir: str) -> None:
    """Turns on JAX's persistent compilation cache (the CLI owns its process; the library never
    changes JAX's configuration). A cache that cannot be created is skipped with a log line."""
    import jax

    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        logger.info("no compilation cache (%s)", e)
        return
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


class _NoScipyLinalg(importlib.abc.MetaPathFinder):
    """Refuses ``scipy.linalg`` imports (see :func:`_start_numba`)."""

    def find_spec(self, name, path=None, target=None):
        if name == "scipy.linalg" or name.startswith("scipy.linalg."):
            raise ImportError("not needed by ovis_jax's kernels")
        return None


def _start_numba() -> None:
    """Initialises numba without its BLAS probe.

    On first use numba imports ``numba.np.arraymath``, which imports ``scipy.linalg`` only to
    learn whether ``np.dot`` / ``np.linalg`` can be compiled; that import is 0.15-0.35 s of a
    CLI run here (measured) and none of ovis_jax's kernels uses linear algebra. The CLI owns
    its process, so it lets numba find no BLAS (only numba's own ``np.linalg`` support is off
    in this process; ``scipy.linalg`` itself imports normally afterwards).
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    finder = _NoScipyLinalg()
    sys.meta_path.insert(0, finder)
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        sys.meta_path.remove(finder)


def _kernels_cached() -> bool:
    """Whether numba's disk cache holds the CPU kernels for the current sources (best effort,
    through numba's cache objects; True when it cannot tell)."""
    try:
        from ovis_jax._src.backends.cpu import kernels as cpu_kernels
        from ovis_jax._src.io import segjson
        from ovis_jax._src.masks import scan

        kernels = (
            segjson._walk_all,
            scan.scan_strings,
            cpu_kernels.group_intersections,
            cpu_kernels.match_groups,
            cpu_kernels.accumulate,
        )
        return all(k._cache._cache_file._load_index() for k in kernels)
    except Exception:  # private numba API: never let it break the CLI
        return True


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Runs the command line.

    Args:
        argv: the arguments (without the program name); ``sys.argv[1:]`` by default.
        prog: the program name shown in usage messages.

    Returns:
        The exit status: 0 on success, 2 on a malformed, missing or unreadable input (reported
        as one ``error:`` line on stderr) or a usage error, 130 when interrupted, 141 when
        stdout was closed early.
    """
    parser = _build_parser(prog)
    args = parser.parse_args(argv)  # usage errors: SystemExit(2), as argparse does
    if args.demo and (args.gt is not None or args.results is not None):
        parser.error("--demo takes no --gt / --results")
    if (args.gt is None) != (args.results is None):
        parser.error("--gt and --results go together (or give neither, for the demo)")
    if args.plots is not None:
        from ovis_jax._src.metrics.plots import MATPLOTLIB_HINT, have_matplotlib

        if not have_matplotlib():
            print(f"error: --plots needs matplotlib: {MATPLOTLIB_HINT}", file=sys.stderr)
            return EXIT_ERROR
    _printable_streams()
    _start_numba()
    if args.backend != "jax" and sys.stderr.isatty() and not _kernels_cached():
        print(
            "note: first run after an install: compiling the CPU kernels (about 10 s, once; "
            "numba caches them for later runs)",
            file=sys.stderr,
        )

    def body() -> None:
        if args.gt is None:
            with _demo_paths() as (gt_path, results_path):
                logger.info("evaluating the demo sample")
                _run(args, gt_path, results_path)
        else:
            _run(args, args.gt, args.results)

    return run_guarded(body, verbose=args.verbose, quiet=args.quiet)


def run_guarded(body: Callable[[], None], *, verbose: bool, quiet: bool) -> int:
    """Runs a command's body with logging configured, and turns its failures into exit
    statuses with one ``error:`` line (the shared tail of every ``python -m ovis_jax.*``).

    Returns:
        0, or 2 on a malformed / unreadable input or a usage problem found late, 130 when
        interrupted, 141 when stdout was closed early.
    """
    with _logging_configured(verbose, quiet):
        try:
            body()
        except (FormatError, _CliError) as e:
            print(f"error: {_one_line(str(e))}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # stdout closed early (e.g. piped into `head`): stop quietly, as other tools do.
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        except OSError as e:  # an input that cannot be read
            print(f"error: cannot read {e.filename!r} ({e.strerror or e})", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def _silence_stdout() -> None:
    """Points stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip()) or repr(message)
