"""Tools to test your own code against ``ovis_jax``: data generators and result assertions.

* :func:`random_dataset`: tiny random OVIS / YouTube-VIS files that hit the evaluation's corner
  cases (score and IoU ties, crowds, ``None`` frames, > 100 results per video, ...).
* :func:`ovis_like`: realistic OVIS-like files (moving, occluding blobs at full resolution).
* :func:`encode_mask`, :func:`to_json`: a dense mask to a compressed RLE dict; write a file.
* :func:`assert_results_equal`: two :class:`~ovis_jax.EvalResult` agree to a tolerance.

Example::

    from ovis_jax.testing import random_dataset
    import ovis_jax
    gt, results = random_dataset(seed=0)
    print(ovis_jax.evaluate(gt, results).stats["AP"])
"""

from __future__ import annotations

from ovis_jax.testing.asserts import assert_results_equal
from ovis_jax.testing.synthetic import encode_mask, ovis_like, random_dataset, to_json

__all__ = ["assert_results_equal", "encode_mask", "ovis_like", "random_dataset", "to_json"]
