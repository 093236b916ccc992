"""``python -m ovis_jax``: the same command line as ``python -m ovis_jax.eval``."""

from __future__ import annotations

from ovis_jax._src.cli.eval import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ovis_jax"))
