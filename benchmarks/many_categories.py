"""Writes a ground truth with very many categories (and results for it) to measure memory.

    python benchmarks/many_categories.py --out /tmp/many --categories 100000

A few small videos from :func:`ovis_jax.testing.synthetic.random_dataset` (YouTube-VIS
format) whose category list is extended to ``--categories`` entries: the ground truth is
mostly its category list (about 12 MB for 100,000 categories), as a large-vocabulary file with
few annotated videos is. Writes ``gt.json`` and ``results.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ovis_jax.testing import synthetic


def many_categories(num_categories: int, *, seed: int = 3, num_videos: int = 6):
    """``(gt, results)``: a small random dataset with ``num_categories`` categories."""
    gt, results = synthetic.random_dataset(
        seed=seed, num_videos=num_videos, num_categories=8, occlusion=False
    )
    used = {c["id"] for c in gt["categories"]}
    extra = [i for i in range(1, num_categories + len(used) + 1) if i not in used]
    gt["categories"] = list(gt["categories"]) + [
        {"id": i, "name": f"category_{i:06d}", "supercategory": "object"}
        for i in extra[: num_categories - len(used)]
    ]
    return gt, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--categories", type=int, default=100_000)
    args = parser.parse_args()
    gt, results = many_categories(args.categories)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gt.json").write_text(json.dumps(gt))
    (args.out / "results.json").write_text(json.dumps(results))
    print(f"wrote {args.out}/gt.json ({len(gt['categories'])} categories) and results.json")


if __name__ == "__main__":
    main()
