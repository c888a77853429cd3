"""Remove secrets from query strings before they reach a log line."""

import re
from urllib.parse import unquote_plus

# A query parameter whose name contains one of these words carries a secret.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|api[_-]?key|access[_-]?key", re.IGNORECASE)
# A value ends at the next parameter, at whitespace (the text around a URL, such as the protocol
# after the target in a request line) and at a fragment.
_PARAM = re.compile(r"([^&;=\s#]+)=([^&;\s#]*)")
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    """Tell whether a query parameter name, percent-encoded or not, looks like a secret's."""
    if _SECRET_NAME.search(name):
        return True
    # Decode as the app would (`pass%77ord` is `password`), and again for clients that encode twice.
    for _ in range(3):
        decoded = unquote_plus(name)
        if decoded == name:
            return False
        if _SECRET_NAME.search(decoded):
            return True
        name = decoded
    return False


def scrub_query_string(query: str) -> str:
    """Replace the value of every secret-looking parameter (``&`` or ``;`` separated) with ``***``."""
    if "=" not in query:
        return query
    return _PARAM.sub(
        lambda match: f"{match.group(1)}={REDACTED}" if is_secret_name(match.group(1)) else match.group(0),
        query,
    )


def scrub_text(text: str) -> str:
    """Scrub every secret-looking ``name=value`` in free text, such as a log message quoting a URL."""
    return scrub_query_string(text)


def scrub_url(url: str) -> str:
    """Scrub the query string of a URL or request target, leaving the rest alone."""
    path, separator, query = url.partition("?")
    if not separator:
        return url
    fragment_separator = "#" if "#" in query else ""
    query, _, fragment = query.partition("#")
    return f"{path}?{scrub_query_string(query)}{fragment_separator}{fragment}"


def scrub_request_line(request_line: str) -> str:
    """Scrub the target of an HTTP request line (``GET /path?secret=x HTTP/1.1``), keeping the rest."""
    method, separator, rest = request_line.partition(" ")
    target, protocol_separator, protocol = rest.rpartition(" ")
    if not separator or not protocol_separator:
        return scrub_url(request_line)
    return f"{method} {scrub_url(target)} {protocol}"
