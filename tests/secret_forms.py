"""The forms a secret's value takes in the texts of an error report, spelled by the standard encoders."""

import html
import json
import re
from urllib.parse import quote, quote_plus


def _lower_hex(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), text)


def forms(secret: str) -> list[str]:
    """Spell a secret as a report may show it: raw, repr'd, JSON-escaped, percent-encoded, nested.

    Each is the secret's own part only (no quotes around it), so that a prefix of one form is the
    same form of a prefix of the secret, as long as the cut falls between two characters.
    """
    utf8 = secret.encode("utf-8")
    return [
        secret,
        repr(secret)[1:-1],
        repr(repr(secret)[1:-1])[1:-1],
        repr(f'"{secret}')[2:-1],  # in a repr that quotes with "
        repr(utf8)[2:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(json.dumps(secret)[1:-1])[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote(quote(secret, safe=""), safe=""),
        _lower_hex(quote(secret, safe="")),
        quote(repr(secret)[1:-1], safe=""),
        html.escape(secret),
        utf8.decode("latin-1"),  # UTF-8 read as Latin-1, as WSGI reads a header
    ]


def strings(value: object) -> list[str]:
    """Return every text in a JSON-like structure: dictionary keys and values, list items."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [*strings(key), *strings(item)]]
    if isinstance(value, list | tuple):
        return [text for item in value for text in strings(item)]
    return []
