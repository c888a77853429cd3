"""The shared fixtures are in tests/fixtures.py and tests/browser.py, loaded here as pytest plugins."""

pytest_plugins = ["tests.fixtures", "tests.browser"]
