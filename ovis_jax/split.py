"""``python -m ovis_jax.split``: split a ground truth into local train / valid halves."""

from __future__ import annotations

from ovis_jax._src.cli.commands import split_main as main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ovis_jax.split"))
