"""Operations toolkit for Pyramid WSGI services.

``c2cwsgiutils.setup_process()`` sets up a process that serves no requests (a script, a cron job):
see :mod:`c2cwsgiutils.setup_process`. Importing the package imports nothing else: that module
(and Pyramid with it) is imported on first use of the name.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from c2cwsgiutils import setup_process as setup_process
else:

    def __getattr__(name: str) -> Any:
        """Import ``setup_process`` on first access (its import sets the attribute for the next ones)."""
        if name == "setup_process":
            return importlib.import_module(f"{__name__}.setup_process")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
