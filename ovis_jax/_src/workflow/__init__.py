"""workflow: see the README's "Layout"."""
