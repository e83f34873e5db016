"""Figures every benchmark reports the same way (the project's one percentile lives in hallq.shared)."""

from hallq.shared.figures import percentile

__all__ = ["percentile"]
