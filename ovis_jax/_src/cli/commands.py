"""The workflow commands beside ``eval``: ``python -m ovis_jax.check``, ``.pack`` and ``.split``.

Each prints what it did on stdout and reports a problem as one ``error:`` line on stderr with
exit status 2 (through :func:`ovis_jax._src.cli.eval.run_guarded`); ``check`` also exits 2 when the
file has problems, after listing them.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from ovis_jax._src.cli.eval import (
    EXIT_ERROR,
    _CliError,
    _printable_streams,
    _start_numba,
    run_guarded,
)
from ovis_jax._src.io.loading import load_ground_truth, parse_untyped, read_bytes
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
    parser.add_argument("--gt", required=True, metavar="GT.json")
    parser.add_argument("--results", required=True, metavar="R.json", help=".json, .gz or .zip")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    _printable_streams()
    _start_numba()
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
    parser.add_argument("--results", required=True, metavar="R.json", help=".json, .gz or .zip")
    parser.add_argument("--out", required=True, metavar="submission.zip")
    parser.add_argument("--gt", metavar="GT.json", help="check against this ground truth first")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    _printable_streams()

    def body() -> None:
        if os.path.abspath(args.out) == os.path.abspath(args.results):
            raise _CliError("--out would overwrite --results")
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
            raise _CliError(f"cannot write {args.out!r}: its folder does not exist")
        if args.gt is not None:
            _start_numba()
            if not _check(args.gt, args.results):
                raise _CliError(f"{args.results} has problems (listed above): nothing written")
        size = pack_results(args.results, args.out)
        print(f"wrote {args.out}: {MEMBER} at the root, {_size(size)}")

    return run_guarded(body, verbose=args.verbose, quiet=args.quiet)


def split_main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``python -m ovis_jax.split --gt train.json --fraction 0.2 --seed 0 --out DIR``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Split a ground truth into DIR/train_sub.json and DIR/valid_sub.json: "
        "disjoint videos, annotations following their videos, every category with at least "
        "4 videos in both halves; the same seed gives byte-identical files.",
    )
    parser.add_argument("--gt", required=True, metavar="train.json")
    parser.add_argument("--fraction", type=float, default=0.2, help="valid share (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    _printable_streams()

    def body() -> None:
        _start_numba()
        raw, label = read_bytes(args.gt, "ground truth")
        data = parse_untyped(raw, label)
        load_ground_truth(data)  # validates
        try:
            halves = split_ground_truth(data, fraction=args.fraction, seed=args.seed)
        except ValueError as e:
            raise _CliError(str(e)) from None
        os.makedirs(args.out, exist_ok=True)
        for name, half in zip(("train_sub.json", "valid_sub.json"), halves, strict=True):
            path = os.path.join(args.out, name)
            _write_atomic(path, json.dumps(half, separators=(",", ":"), ensure_ascii=False))
            n_ann = len(half.get("annotations") or ())
            print(f"wrote {path}: {len(half['videos'])} videos, {n_ann} annotations")

    return run_guarded(body, verbose=args.verbose, quiet=args.quiet)


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise _CliError(f"cannot write {path!r} ({e.strerror or e})") from e
