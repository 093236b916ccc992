"""backends.cpu: see the README's "Layout"."""
