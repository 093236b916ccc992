"""streaming: see the README's "Layout"."""
