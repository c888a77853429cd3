"""Optional dependencies: each feature that needs a library names the extra that installs it."""

import importlib
import importlib.util
from types import ModuleType


class MissingExtraError(ImportError):
    """A feature is used whose optional library is not installed; the message says what to install."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or say which extra of c2cwsgiutils installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is None or module.split(".", maxsplit=1)[0] != error.name.split(".")[0]:
            raise  # the library is there but broken: its own error says more
        raise MissingExtraError(
            f"{feature} needs {error.name}, which is not installed: pip install 'c2cwsgiutils[{extra}]'"
        ) from None


def installed(*modules: str) -> bool:
    """Say whether every one of these modules can be imported, without importing them."""
    try:
        return all(importlib.util.find_spec(module) is not None for module in modules)
    except ImportError:  # a finder that refuses the name, a parent package that is missing
        return False
