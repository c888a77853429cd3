"""gunicorn's logger with secrets scrubbed from access logs; named in the gunicorn settings."""

from typing import Any

from gunicorn import glogging

from c2cwsgiutils.scrub import scrub_query_string, scrub_url


class ScrubbingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with secrets removed from the request line and referrer of access logs."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """Return gunicorn's access log atoms, scrubbed."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f", "{referer}i"):
            value = atoms.get(key)
            if isinstance(value, str) and "=" in value:
                atoms[key] = scrub_query_string(value) if key == "q" else scrub_url(value)
        return atoms
