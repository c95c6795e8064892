"""Utilities: ``tapegrad.utils.data`` (datasets and the DataLoader)."""

from tapegrad.utils import data

__all__ = ["data"]
