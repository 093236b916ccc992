"""The workflow commands beside ``eval``: ``python -m ovis_jax.check``, ``.pack`` and ``.split``.

Each prints what it did on stdout and reports a problem as one ``error:`` line on stderr with
exit status 2 (through :func:`ovis_jax._src.cli.guard.run_guarded`); ``check`` also exits 2 when
the file has problems, after listing them. ``pack`` and ``split`` write through an
:class:`~ovis_jax._src.cli.outputs.OutputPlan`: never over an input, all files or none.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from ovis_jax._src.backends.cpu.startup import start_numba
from ovis_jax._src.cli.guard import (
    EXIT_ERROR,
    CliError,
    printable_streams,
    run_guarded,
    version_text,
)
from ovis_jax._src.cli.outputs import OutputPlan
from ovis_jax._src.io.read import parse_untyped, read_bytes
from ovis_jax._src.io.vis import load_ground_truth
from ovis_jax._src.workflow.check import check_results
from ovis_jax._src.workflow.pack import MEMBER, pack_results
from ovis_jax._src.workflow.split import split_ground_truth

__all__ = ["check_main", "pack_main", "split_main"]

#: ``check`` lists at most this many problems, then how many more there are.
MAX_LISTED = 50


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _check(gt_path: str, results_path: str) -> bool:
    """Prints the check's problems (capped) or its one-line summary; True when clean."""
    gt = load_ground_truth(gt_path, require_annotations=False)
    report = check_results(gt, results_path)
    for line in report.problems[:MAX_LISTED]:
        print(line)
    if len(report.problems) > MAX_LISTED:
        print(f"... and {len(report.problems) - MAX_LISTED} more problem(s)")
    size = f", {_size(report.file_bytes)}" if report.file_bytes is not None else ""
    verdict = f"{len(report.problems)} problem(s)" if report.problems else "ok"
    print(
        f"{results_path}: {verdict}: {report.num_results} results for "
        f"{report.videos_with_results} of {report.num_videos} videos{size}"
    )
    return report.ok


def check_main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``python -m ovis_jax.check --gt GT.json --results R.json``: lists every problem of a
    results file (exit 2 if any), or prints a one-line summary (exit 0)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check a results file against a ground truth (annotations not needed: "
        "a validation split's videos and categories are enough). Lists every problem.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--gt", required=True, metavar="GT.json")
    parser.add_argument("--results", required=True, metavar="R.json", help=".json, .gz or .zip")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    printable_streams()
    start_numba()
    clean = []
    status = run_guarded(
        lambda: clean.append(_check(args.gt, args.results)),
        verbose=args.verbose,
        quiet=args.quiet,
    )
    return status if status or all(clean) else EXIT_ERROR


def pack_main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``python -m ovis_jax.pack --results R.json --out submission.zip [--gt GT.json]``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Pack results for the evaluation server: a zip whose only member is "
        f"{MEMBER} at its root. With --gt, the results are checked first and nothing is "
        "written if there is a problem.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--results", required=True, metavar="R.json", help=".json, .gz or .zip")
    parser.add_argument("--out", required=True, metavar="submission.zip")
    parser.add_argument("--gt", metavar="GT.json", help="check against this ground truth first")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    printable_streams()

    def body() -> None:
        plan = OutputPlan(quiet=args.quiet)
        plan.input("--results", args.results)
        plan.input("--gt", args.gt)
        plan.output("--out", args.out)
        with plan:  # checked before any work: never over an input, folder writable
            if args.gt is not None:
                start_numba()
                if not _check(args.gt, args.results):
                    raise CliError(f"{args.results} has problems (listed above): nothing written")
            sizes = []
            plan.write(args.out, lambda tmp: sizes.append(pack_results(args.results, tmp)))
            plan.commit()
        print(f"{args.out}: {MEMBER} at the root, {_size(sizes[0])}")

    return run_guarded(body, verbose=args.verbose, quiet=args.quiet)


def split_main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``python -m ovis_jax.split --gt train.json --fraction 0.2 --seed 0 --out DIR``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Split a ground truth into DIR/train_sub.json and DIR/valid_sub.json: "
        "disjoint videos, annotations following their videos, every category with at least "
        "4 videos in both halves; the same seed gives byte-identical files.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--gt", required=True, metavar="train.json")
    parser.add_argument("--fraction", type=float, default=0.2, help="valid share (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    printable_streams()

    def body() -> None:
        if args.seed < 0:
            raise CliError(f"--seed must be a non-negative integer, got {args.seed}")
        if not 0 < args.fraction < 1:
            raise CliError(f"--fraction must be in (0, 1), got {args.fraction}")
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise CliError(f"cannot write {args.out!r} (--out: it is a file, expected a folder)")
        plan = OutputPlan(quiet=args.quiet)
        plan.input("--gt", args.gt)
        plan.make_folder("--out", args.out)
        paths = [os.path.join(args.out, name) for name in ("train_sub.json", "valid_sub.json")]
        for path in paths:
            plan.output("--out", path)
        with plan:  # both files or neither
            start_numba()
            raw, label = read_bytes(args.gt, "ground truth")
            data = parse_untyped(raw, label)
            load_ground_truth(data)  # validates
            try:
                halves = split_ground_truth(data, fraction=args.fraction, seed=args.seed)
            except ValueError as e:
                raise CliError(str(e)) from None
            for path, half in zip(paths, halves, strict=True):
                text = json.dumps(half, separators=(",", ":"), ensure_ascii=False)
                plan.write(path, lambda tmp, text=text: _write_text(tmp, text))
            plan.commit()
        for path, half in zip(paths, halves, strict=True):
            n_ann = len(half.get("annotations") or ())
            print(f"{path}: {len(half['videos'])} videos, {n_ann} annotations")

    return run_guarded(body, verbose=args.verbose, quiet=args.quiet)


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
