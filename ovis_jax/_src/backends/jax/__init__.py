"""backends.jax: see the README's "Layout"."""
