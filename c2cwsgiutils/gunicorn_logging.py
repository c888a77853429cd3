"""gunicorn's logger: secrets scrubbed, the app's logging configuration, structured access records.

Named in the gunicorn settings. Besides scrubbing, it applies the app's logging configuration in
the master too (the workers apply it when they load the app), so that with ``LOG_TYPE=json``
gunicorn's own records are JSON as well; and each access record carries its fields (``method``,
``path``, ``status``, ``bytes``, ``duration``, ``request_id``...) for the JSON handlers.
"""

from typing import Any

from gunicorn import glogging

from c2cwsgiutils import loader, request_tracking, wsgi_app
from c2cwsgiutils.scrub import scrub_query_string, scrub_request_line, scrub_text, scrub_url


def _scrub_message(msg: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return the message formatted, then scrubbed, to be logged without arguments."""
    if args:
        try:
            msg = str(msg) % args
        except (TypeError, ValueError, KeyError):
            return (scrub_text(str(msg)), *(scrub_text(arg) if isinstance(arg, str) else arg for arg in args))
    return (scrub_text(str(msg)),)


class ScrubbingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with secrets removed from access logs and from its own warnings and errors.

    gunicorn quotes the request line when it rejects one (``Invalid HTTP request line: ...``) or
    when the app fails outside of its error views (``Error handling request GET /path?...``).
    """

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then apply the app's logging configuration over them."""
        super().setup(cfg)
        path = wsgi_app.config_file()
        try:
            loader.setup_logging(path)
        except Exception as error:
            self.warning("cannot apply the logging configuration of %s in the master: %s", path, error)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Log the access record with its fields, for the JSON handlers."""
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        query = environ.get("QUERY_STRING", "")
        fields = {
            "method": atoms.get("m"),
            "path": scrub_url(
                environ.get("RAW_URI") or (atoms.get("U", "") + (f"?{query}" if query else ""))
            ),
            "status": resp.status_code,
            "bytes": getattr(resp, "sent", None),
            "duration": request_time.total_seconds(),
            "request_id": request_tracking.current_request_id.get() or _response_request_id(resp),
            "client_addr": atoms.get("h"),
            "user_agent": atoms.get("a"),
        }
        try:
            self.access_log.info(self.cfg.access_log_format, self.atoms_wrapper_class(atoms), extra=fields)
        except Exception:
            self.exception("cannot write an access record")

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """Return gunicorn's access log atoms, scrubbed."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key, scrub in (
            ("r", scrub_request_line),  # "GET /path?query HTTP/1.1": only the target is scrubbed
            ("q", scrub_query_string),
            ("f", scrub_url),
            ("{referer}i", scrub_url),
        ):
            value = atoms.get(key)
            if isinstance(value, str) and "=" in value:
                atoms[key] = scrub(value)
        return atoms

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at CRITICAL, scrubbed."""
        super().critical(*_scrub_message(msg, args), **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR, scrubbed."""
        super().error(*_scrub_message(msg, args), **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at WARNING, scrubbed."""
        super().warning(*_scrub_message(msg, args), **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR with the traceback, scrubbed."""
        super().exception(*_scrub_message(msg, args), **kwargs)


def _response_request_id(resp: Any) -> str | None:
    for name, value in getattr(resp, "headers", ()):
        if name.lower() == "x-request-id":
            return str(value)
    return None
