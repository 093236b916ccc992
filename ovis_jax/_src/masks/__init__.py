"""masks: see the README's "Layout"."""
