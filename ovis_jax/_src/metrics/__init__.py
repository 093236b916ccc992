"""metrics: see the README's "Layout"."""
