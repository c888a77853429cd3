"""Optional dependencies: each feature that needs a library names the extra that installs it."""

import importlib
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
