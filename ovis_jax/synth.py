"""``python -m ovis_jax.synth --out DIR [--videos N] [--format ovis|ytvis] [--seed S]``: writes a
synthetic ground truth and results file (see ``--help``)."""

from __future__ import annotations

from typing import NoReturn

from ovis_jax._src.cli.guard import exit_process
from ovis_jax._src.cli.synth import synth_main as main

__all__ = ["console", "main"]


def console(prog: str | None = None) -> NoReturn:
    """The console script: :func:`main`, then the process ends with its status."""
    exit_process(main(prog=prog))


if __name__ == "__main__":
    console(prog="python -m ovis_jax.synth")
