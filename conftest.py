"""Load the shared fixtures (testing/fixtures.py, testing/browser.py) and the markers by need."""

pytest_plugins = ["testing.fixtures", "testing.browser", "testing.markers"]
