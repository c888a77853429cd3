"""Helpers for testing apps built on c2cwsgiutils, from pytest or any other runner."""

from c2cwsgiutils.acceptance.retrying import retry

__all__ = ["retry"]
