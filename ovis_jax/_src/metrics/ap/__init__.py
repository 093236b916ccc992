"""metrics.ap: see the README's "Layout"."""
