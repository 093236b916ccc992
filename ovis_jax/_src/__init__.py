"""Implementation modules of :mod:`ovis_jax`; import the public API from ``ovis_jax``."""
