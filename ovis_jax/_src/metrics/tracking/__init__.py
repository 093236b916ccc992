"""Tracking metrics (HOTA, CLEAR, Identity) as TrackEval 1.3.0 computes them for YouTube-VIS."""
