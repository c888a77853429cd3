"""This repository's own test support, shared by tests/ and acceptance_tests/: fixtures, the browser."""
