"""``python -m ovis_jax.pack``: pack results for the evaluation server (see ``--help``)."""

from __future__ import annotations

from ovis_jax._src.cli.commands import pack_main as main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ovis_jax.pack"))
