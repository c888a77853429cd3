"""The legacy app's package, declared as apps for c2cwsgiutils 0.22 did: a setup.py, no dependencies.

The base image brings c2cwsgiutils and everything it needs; ``[app:main] use = egg:...`` in
production.ini finds the app through its ``paste.app_factory`` entry point.
"""

from setuptools import find_packages, setup

setup(
    name="c2cwsgiutils_legacy_app",
    version="0.0",
    description="An app written against the original c2cwsgiutils API, served unchanged",
    packages=find_packages(),
    include_package_data=True,
    zip_safe=False,
    install_requires=[],
    entry_points={"paste.app_factory": ["main = c2cwsgiutils_legacy_app:main"]},
)
