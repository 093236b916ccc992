"""``python -m ovis_jax.check``: check a results file against a ground truth (see ``--help``)."""

from __future__ import annotations

from ovis_jax._src.cli.commands import check_main as main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ovis_jax.check"))
