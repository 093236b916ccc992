"""A ``flax.nnx.Metric`` for the official video mask AP: the public names of
:mod:`ovis_jax._src.online.flax_metric`.

Importing this module imports flax (``pip install 'ovis_jax[flax]'``) and JAX.
"""

from __future__ import annotations

from ovis_jax._src.online.flax_metric import VideoAPMetric

__all__ = ["VideoAPMetric"]
