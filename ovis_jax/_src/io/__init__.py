"""io: see the README's "Layout"."""
