"""Helpers for testing apps built on c2cwsgiutils, from pytest or any other runner."""
