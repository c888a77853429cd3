"""Remove secrets from texts before they leave the process: query strings, headers, secret values."""

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

# A query parameter whose name contains one of these words carries a secret; so does one named
# exactly `code`, OAuth 2's authorization code (the GitHub sign-in's callback), not `postcode`.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|api[_-]?key|access[_-]?key|^code$", re.IGNORECASE)
# A value ends at the next parameter, at whitespace (the text around a URL, such as the protocol
# after the target in a request line) and at a fragment.
_PARAM = re.compile(r"([^&;=\s#]+)=([^&;\s#]*)")
REDACTED = "***"
# The password of a URL's user information: `//user:password@host`.
_USERINFO = re.compile(r"(//[^/\s:@]*):[^/\s@]*@")
# A whole URL in free text, up to a space, a quote or an angle bracket.
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://[^\s'\"<>]+")


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


def mask_url_passwords(text: str) -> str:
    """Replace the password of every URL in ``text`` (``//user:password@``) with ``***``."""
    return _USERINFO.sub(rf"\1:{REDACTED}@", text)


def mask_urls(text: str) -> str:
    """Replace every URL in ``text`` but its scheme with ``***`` (it names hosts, users, databases)."""
    return _URL.sub(lambda match: f"{match.group(1)}://{REDACTED}", text)


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


# Credential headers: one rule for every place that shows headers (the debug view, Sentry events).
# Any name containing one of these words, in any case: vendors name their keys freely
# (Ocp-Apim-Subscription-Key, X-Functions-Key, X-Goog-Iap-Jwt-Assertion...).
SECRET_HEADER_WORDS = (
    "key",
    "token",
    "secret",
    "auth",
    "session",
    "password",
    "passwd",
    "signature",
    "jwt",
    "credential",
    "cookie",
)
_SECRET_HEADER = re.compile("|".join(SECRET_HEADER_WORDS), re.IGNORECASE)
_ENVIRON_HEADER = "HTTP_"


def is_secret_header(name: str) -> bool:
    """Tell whether a header carries a credential, by its name (``X-Auth-Key`` or ``HTTP_X_AUTH_KEY``)."""
    return _SECRET_HEADER.search(name) is not None


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers with the values of credentials and cookies replaced by ``***``."""
    return {name: REDACTED if is_secret_header(name) else value for name, value in headers.items()}


def is_secret_environ_key(key: str) -> bool:
    """Tell whether a WSGI environ key is a credential header's (``HTTP_AUTHORIZATION``...)."""
    return key.startswith(_ENVIRON_HEADER) and is_secret_header(key)


# A secret's value in every form it can take in a text: raw, in a repr (str or bytes), JSON-escaped,
# percent-encoded (once or more, either hex case), as an HTML character reference, and nested
# (the repr of a JSON text...). Built per character: each is matched in any of its forms.
_BACKSLASH = r"(?:\\|%(?:25)*5[cC])"  # raw, or percent-encoded
_NAMED_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}
_HTML_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "(?:apos|#39)"}
# How long one character's form may be, at most, when looking for a secret's start at a cut.
_MAX_FORM_LENGTH = 40


def _hex(value: int, digits: int) -> str:
    return f"(?i:{value:0{digits}x})"


def _char_forms(char: str) -> str:
    """Return a pattern matching one character of a secret in any of its escaped forms.

    The longer forms come first: a regular expression takes the first alternative that matches,
    and ``%25`` must not be taken as ``%`` followed by ``25``.
    """
    code = ord(char)
    utf8 = char.encode("utf-8", "surrogatepass")
    percent = "".join(f"%(?:25)*{_hex(byte, 2)}" for byte in utf8)
    if char.isascii() and char.isalnum():
        return f"(?:{char}|{percent})"  # no repr, JSON or HTML escapes a letter or a digit
    forms = []
    if char in _NAMED_ESCAPES:
        forms.append(f"{_BACKSLASH}+{_NAMED_ESCAPES[char]}")
    if code > 0x7F:
        forms.append("".join(rf"{_BACKSLASH}+x{_hex(byte, 2)}" for byte in utf8))  # a bytes' repr
    if code < 0x100:
        forms.append(rf"{_BACKSLASH}+x{_hex(code, 2)}")
    if code < 0x10000:
        forms.append(rf"{_BACKSLASH}+u{_hex(code, 4)}")
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(rf"{_BACKSLASH}+u{_hex(high, 4)}{_BACKSLASH}+u{_hex(low, 4)}")  # JSON's pair
        forms.append(rf"{_BACKSLASH}+U{_hex(code, 8)}")
    if char in _HTML_NAMES:
        forms.append(f"&{_HTML_NAMES[char]};")
    forms.append(f"&#(?:0*{code}|[xX]0*{_hex(code, 1)});")
    if char == " ":
        forms.append(r"\+")  # a form's encoding
    # Percent-encoded or raw, possibly after backslashes (an escaped quote or backslash in a repr,
    # JSON, a regex; percent-encoded too when the escaped text was).
    forms.append(f"{_BACKSLASH}*(?:{percent}|{re.escape(char)})")
    return "(?:" + "|".join(forms) + ")"


def _spellings(secret: str) -> list[str]:
    """Return the texts a secret may arrive as: itself, and its UTF-8 read as Latin-1 (a header's)."""
    spellings = [secret]
    misread = secret.encode("utf-8", "surrogatepass").decode("latin-1")
    if misread != secret:
        spellings.append(misread)
    return spellings


class SecretValues:
    """Mask given secret values in texts, in every form they can take (:func:`_char_forms`).

    Meant for texts that leave the process rarely (error reports): a pattern per secret, not cheap.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
        spellings = [
            [_char_forms(char) for char in spelling]
            for secret in self.secrets
            for spelling in _spellings(secret)
        ]
        self._whole = re.compile("|".join("".join(chars) for chars in spellings)) if spellings else None
        # A text cut short and ended with "..." (sentry-sdk's max_value_length) may end with a
        # secret's start: any non-empty prefix of one, before the ellipsis.
        self._cut = (
            re.compile("(?:" + "|".join(_nested_prefixes(chars) for chars in spellings) + r")\.\.\.\Z")
            if spellings
            else None
        )
        self._cut_window = _MAX_FORM_LENGTH * max((len(secret) for secret in self.secrets), default=0) + 3

    def mask(self, text: str) -> str:
        """Replace every form of every secret in ``text`` with ``***``."""
        if self._whole is None:
            return text
        return self._whole.sub(REDACTED, text)

    def mask_cut(self, text: str) -> str:
        """Like :meth:`mask`, and mask a secret's start that ends a text cut short with ``...``."""
        text = self.mask(text)
        if self._cut is None or not text.endswith("..."):
            return text
        # Only the end can hold it: look at as much as the longest secret's most escaped form.
        start = max(0, len(text) - self._cut_window)
        return text[:start] + self._cut.sub(REDACTED + "...", text[start:])


def _nested_prefixes(chars: list[str]) -> str:
    """Return a pattern matching any non-empty prefix of a sequence of character patterns."""
    pattern = ""
    for char in reversed(chars):
        pattern = f"{char}(?:{pattern})?" if pattern else char
    return pattern
