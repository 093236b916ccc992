"""backends: see the README's "Layout"."""
