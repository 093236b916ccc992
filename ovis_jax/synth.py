"""``python -m ovis_jax.synth --out DIR [--videos N] [--format ovis|ytvis] [--seed S]``: writes a
synthetic ground truth and results file (see ``--help``)."""

from __future__ import annotations

from ovis_jax._src.cli.synth import synth_main as main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ovis_jax.synth"))
