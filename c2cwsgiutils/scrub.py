"""Remove secrets from query strings before they reach a log line."""

import re

# A query parameter whose name contains one of these words carries a secret.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|api[_-]?key|access[_-]?key", re.IGNORECASE)
_PARAM = re.compile(r"([^&;=]+)=([^&;]*)")
REDACTED = "***"


def scrub_query_string(query: str) -> str:
    """Replace the value of every secret-looking parameter (``&`` or ``;`` separated) with ``***``."""
    if "=" not in query:
        return query
    return _PARAM.sub(
        lambda match: (
            f"{match.group(1)}={REDACTED}" if _SECRET_NAME.search(match.group(1)) else match.group(0)
        ),
        query,
    )


def scrub_url(url: str) -> str:
    """Scrub the query string of a URL or request target, leaving the rest alone."""
    path, separator, query = url.partition("?")
    if not separator:
        return url
    fragment_separator = "#" if "#" in query else ""
    query, _, fragment = query.partition("#")
    return f"{path}?{scrub_query_string(query)}{fragment_separator}{fragment}"
