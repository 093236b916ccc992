"""similarity: track and per-frame IoUs, per implementation family (README "Layout")."""
