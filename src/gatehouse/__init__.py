"""Gatehouse: a self-hosted service that owns a product's users."""

__version__ = "0.1.0"
