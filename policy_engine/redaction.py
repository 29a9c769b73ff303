"""Finding secrets in what is written down: by the name they are kept under,
and by their shape in any text (bearer tokens, cookies, pre-signed URLs' AWS
signatures and credentials, key ids, JWTs, private keys, ...).

The audit log redacts every line with it, and so does every log message that
names an image, since an image's name may be a pre-signed URL."""

from __future__ import annotations

import re

from policy_engine.text import printable

REDACTED = "<redacted>"

# -- redaction by name --------------------------------------------------------------

SECRET_FRAGMENTS = (
    "passw",
    "passphrase",
    "passcode",
    "pwd",
    "secret",
    "token",
    "credential",
    "authoriz",
    "authenticat",
    "apikey",
    "accesskey",
    "privatekey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "cookie",
    "session",
    "bearer",
    "jwt",
    "signature",
    "hmac",
    "csrf",
    "xsrf",
)
"""Parts of a key, lower-cased with separators removed, that name a secret."""

SECRET_WORDS = frozenset({"auth", "authn", "authz", "oauth", "pass", "pw", "sig", "sid", "otp"})
"""Words of a key (split at separators and camelCase) that name a secret; kept as
whole words so that ``author`` or ``signal`` stay readable."""

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def is_secret_key(key: object) -> bool:
    """Whether a context key (or the name half of a pair) names a secret."""
    text = key_text(key)
    squashed = re.sub(r"[^a-z0-9]", "", text.lower())
    if any(fragment in squashed for fragment in SECRET_FRAGMENTS):
        return True
    return any(word.lower() in SECRET_WORDS for word in _WORD.findall(text))


def key_text(key: object) -> str:
    """A mapping key as text (bytes as Latin-1: every byte kept), to match and show."""
    if isinstance(key, bytes | bytearray):
        return bytes(key).decode("latin-1")
    if isinstance(key, str):
        return key
    try:
        return str(key)
    except Exception:
        return f"<{type(key).__name__}>"


# -- redaction by shape -------------------------------------------------------------

_URL_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*://)[^\s/?#@]+@")
_HEADER_LINE = re.compile(
    r"(?im)\b((?:set-)?cookie|(?:proxy-)?authorization|x-api-key|x-auth-token)(\s*[:=]\s*)[^\r\n]+"
)
_AUTH_SCHEME = re.compile(
    r"(?i)\b(bearer|basic|digest|negotiate|ntlm|token|jwt|aws4-hmac-sha256)(\s+)[^\s,;\"'<>]+"
)
_NAME_SEPARATOR = re.compile(
    r"(?<![\w.\-\[\]])(?P<name>[\w.\-\[\]]+)(?P<sep>[\"']?\s*(?:=|:|%3[dD])\s*)"
)
_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|(?:(?!%26)[^\s&;,\"'<>])+")
_TOKEN_SHAPES = re.compile(
    "|".join(
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA|APKA)[A-Z0-9]{12,}",
            r"eyJ[A-Za-z0-9_\-=]{6,}(?:\.[A-Za-z0-9_\-=]*)*",  # a JWT: base64 of '{"'
            r"\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}",
            r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
            r"\bAIza[0-9A-Za-z_\-]{20,}",
            r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{10,}|\bsk-[A-Za-z0-9_\-]{20,}",
            r"\bnpm_[A-Za-z0-9]{30,}",
        )
    ),
    re.DOTALL,
)


def _redact_named_values(text: str) -> str:
    """``name=value``, ``name: value`` and ``"name": "value"`` with a secret name,
    anywhere in ``text`` (a query string, a header, a config line, JSON)."""
    parts: list[str] = []
    position = 0
    for match in _NAME_SEPARATOR.finditer(text):
        if match.start() < position or not is_secret_key(match["name"]):
            continue  # the scan goes on right after the separator, so no pair hides in a value
        value = _VALUE.match(text, match.end())
        if value is None:
            continue
        quote = value[0][0] if value[0][0] in "\"'" else ""
        parts += [text[position : match.end()], f"{quote}{REDACTED}{quote}"]
        position = value.end()
    return "".join(parts) + text[position:] if parts else text


def redact_text(text: str) -> str:
    """``text`` with every secret that has a recognisable shape replaced."""
    if len(text) < 4:
        return text
    # the widest first: a header line, a credential after its scheme, a named value
    text = _HEADER_LINE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _redact_named_values(text)
    text = _URL_USERINFO.sub(lambda m: f"{m[1]}{REDACTED}@", text)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def loggable(text: object) -> str:
    """``text`` fit for a log line: secrets redacted (an image's name may be a
    pre-signed URL), and anything that is not valid Unicode escaped."""
    return printable(redact_text(str(text)))
