"""The shared fixtures are in tests/fixtures.py, loaded here as a pytest plugin."""

pytest_plugins = ["tests.fixtures"]
