"""Offline analyzer for Docker's on-disk storage."""
__version__ = "0.1.0"
