"""Generates the demo sample shipped inside the package.

Writes ``ovis_jax/data/demo_gt.json`` and ``ovis_jax/data/demo_results.json``
(a small synthetic OVIS-like dataset and a matching noisy result file) from
:func:`ovis_jax.testing.synthetic.ovis_like` with a fixed seed.

Usage::

    python tools/make_demo.py [--out-dir ovis_jax/data]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load_synthetic():
    """Imports ``ovis_jax/testing/synthetic.py`` by path (works without installing)."""
    path = REPO / "ovis_jax" / "testing" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("_ovis_jax_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    """Writes the demo ground-truth and result files.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "ovis_jax" / "data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    synthetic = _load_synthetic()
    gt, results = synthetic.ovis_like(
        seed=0,
        num_videos=4,
        num_categories=5,
        frames=12,
        sizes=((90, 160), (120, 200)),
        predictions_per_video=8,
    )
    gt_path = args.out_dir / "demo_gt.json"
    res_path = args.out_dir / "demo_results.json"
    synthetic.to_json(gt, gt_path)
    synthetic.to_json(results, res_path)
    logging.info(
        "wrote %s (%d videos, %d tracks, %d bytes) and %s (%d results, %d bytes)",
        gt_path,
        len(gt["videos"]),
        len(gt["annotations"]),
        gt_path.stat().st_size,
        res_path,
        len(results),
        res_path.stat().st_size,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
