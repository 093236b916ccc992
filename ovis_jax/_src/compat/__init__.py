"""The official ``YTVOS`` / ``YTVOSeval`` / ``OVIS`` / ``OVISeval`` classes as a facade over the
fast path (public in :mod:`ovis_jax.compat`)."""
