"""``python -m ovis_jax``: the same command line as ``python -m ovis_jax.eval``."""

from __future__ import annotations

from typing import NoReturn

from ovis_jax._src.cli.eval import main
from ovis_jax._src.cli.guard import exit_process


def console(prog: str | None = None) -> NoReturn:
    """The console script: :func:`main`, then the process ends with its status."""
    exit_process(main(prog=prog))


if __name__ == "__main__":
    console(prog="python -m ovis_jax")
