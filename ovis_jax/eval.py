"""``python -m ovis_jax.eval --gt GT.json --results RESULTS.json``: see :mod:`~eval`."""

from __future__ import annotations

from typing import NoReturn

from ovis_jax._src.cli.eval import main
from ovis_jax._src.cli.guard import exit_process

__all__ = ["console", "main"]


def console(prog: str | None = None) -> NoReturn:
    """The console script: :func:`main`, then the process ends with its status."""
    exit_process(main(prog=prog))


if __name__ == "__main__":
    console(prog="python -m ovis_jax.eval")
