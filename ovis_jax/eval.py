"""``python -m ovis_jax.eval --gt GT.json --results RESULTS.json``: see :mod:`~eval`."""

from __future__ import annotations

from ovis_jax._src.cli.eval import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ovis_jax.eval"))
