"""``python -m ovis_jax.synth --out DIR``: writes a synthetic ground truth and results file.

The data comes from :func:`ovis_jax.testing.ovis_like` (moving, occluding blobs at full
resolution, a noisy tracker's results): ``DIR/gt.json`` and ``DIR/results.json``, ready for
``python -m ovis_jax.eval --gt DIR/gt.json --results DIR/results.json``. Existing files are
kept unless ``--force``; both files are written or neither (see
:class:`~ovis_jax._src.cli.outputs.OutputPlan`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from ovis_jax._src.cli.guard import CliError, printable_streams, run_guarded, version_text
from ovis_jax._src.cli.outputs import OutputPlan

__all__ = ["FILES", "synth_main"]

#: The files written into ``--out``.
FILES = ("gt.json", "results.json")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def _parser(prog: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a synthetic ground truth (DIR/gt.json) and results file "
        "(DIR/results.json): realistic moving, occluding instances and a noisy tracker's "
        "results. The same seed gives the same files.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--out", required=True, metavar="DIR", help="folder (created if needed)")
    parser.add_argument("--videos", type=_positive, default=10, help="videos (default 10)")
    parser.add_argument(
        "--format",
        choices=("ovis", "ytvis"),
        default="ovis",
        help="'ovis' (with occlusion labels, 18 numbers) or 'ytvis' (YouTube-VIS, 12 numbers)",
    )
    parser.add_argument("--seed", type=_non_negative, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("-q", "--quiet", action="store_true", help="no 'wrote' lines")
    return parser


def synth_main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Runs ``python -m ovis_jax.synth``; returns the exit status (0, or 2 with one
    ``error:`` line)."""
    args = _parser(prog).parse_args(argv)
    printable_streams()

    def body() -> None:
        from ovis_jax.testing.synthetic import ovis_like

        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise CliError(f"cannot write {args.out!r} (--out: it is a file, expected a folder)")
        paths = [os.path.join(args.out, name) for name in FILES]
        existing = [p for p in paths if os.path.lexists(p)]
        if existing and not args.force:
            raise CliError(
                f"{existing[0]} exists: refusing to overwrite it (give --force, or another --out)"
            )
        plan = OutputPlan(quiet=args.quiet)
        plan.make_folder("--out", args.out)
        for path in paths:
            plan.output("--out", path)
        with plan:
            gt, results = ovis_like(
                seed=args.seed, num_videos=args.videos, occlusion=args.format == "ovis"
            )
            for path, obj in zip(paths, (gt, results), strict=True):
                text = json.dumps(obj, separators=(",", ":"))
                plan.write(path, lambda tmp, text=text: _write(tmp, text))
            plan.commit()

    return run_guarded(body, verbose=False, quiet=args.quiet)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
