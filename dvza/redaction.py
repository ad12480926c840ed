"""Keeping BSNs out of logs, audit records and access logs, whoever sent them.

A PGO may put a BSN in a request (``Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|…``), and a
person may type one where a name was expected. Every text that leaves the process as a log line, an
audit record or an access-log line passes :func:`redact` at that edge:

* the value after the BSN naming system (``…/NamingSystem/bsn|value``, also URL-encoded), whatever it
  is — a client that says it sends a BSN is believed;
* every other run of exactly nine digits that passes the BSN "elfproef" (``oauth.login.is_valid_bsn``),
  standing on its own (not inside a longer word or number).

A BSN split or disguised by FHIR search escapes (``bs\\n|12345\\6782``, search.html#escaping; also URL-encoded,
``%5C``) is found too: when the text without its escapes shows a BSN, the escape-free text is what is kept.

In log lines a BSN becomes ``*********``. Audit records (:meth:`dvza.audit.AuditLog.write`) keep a
reference instead: ``bsn#`` and the first 16 hex digits of its HMAC-SHA256 under ``BSN_HMAC_KEY`` (the
keyed hash the identity links use), so an auditor with the key can still tell which person was
searched for, and nobody without it can.
"""

from __future__ import annotations

import re
import typing as t

from oauth.login import is_valid_bsn

from .identity import bsn_hmac

MASK = "*********"

_DIGIT = re.compile(r"\d")
_SYSTEM_VALUE = re.compile(r"(NamingSystem(?:/|%2F)bsn(?:\||%7C))([^&\s\"'<>,;]+)", re.IGNORECASE)
#: nine digits not inside a longer word or number; a URL escape (``%7C``, ``%3D``) right before counts as a border
_NINE_DIGITS = re.compile(r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))(\d{9})(?![0-9A-Za-z])")


def redact(text: str, replace: t.Callable[[str], str] | None = None) -> str:
    """``text`` with every BSN replaced (by :data:`MASK`, or by ``replace(bsn)``), escaped ones included."""
    if not text or _DIGIT.search(text) is None:
        return text
    substitute = replace or (lambda _bsn: MASK)
    if _ESCAPE.search(text):
        plain = _ESCAPE.sub("", text)
        redacted = _redact(plain, substitute)
        if redacted != plain:
            return redacted
    return _redact(text, substitute)


#: a FHIR search escape character, as typed or URL-encoded
_ESCAPE = re.compile(r"\\|%5[Cc]")


def _redact(text: str, substitute: t.Callable[[str], str]) -> str:
    text = _SYSTEM_VALUE.sub(lambda m: m.group(1) + substitute(m.group(2)), text)
    return _NINE_DIGITS.sub(lambda m: substitute(m.group(1)) if is_valid_bsn(m.group(1)) else m.group(1), text)


def audit_reference(key: str) -> t.Callable[[str], str]:
    """A ``replace`` for :func:`redact` that leaves a keyed reference: ``bsn#<16 hex>``."""

    def reference(bsn: str) -> str:
        return "bsn#" + bsn_hmac(key, bsn)[:16] if bsn.isascii() else MASK

    return reference
