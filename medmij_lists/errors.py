"""One error hierarchy for everything the MedMij lists can do wrong.

``ListError`` is the base; callers that only want "the list could not be used" catch that.
"""

from __future__ import annotations


class ListError(Exception):
    """Base class of every error raised by :mod:`medmij_lists`."""


class ListValidationError(ListError):
    """A list document is refused: not well-formed, unsafe, schema-invalid or against a MedMij rule.

    ``reason`` is a human sentence naming the rule; ``rule`` a short machine code (``"xsd"``, ``"doctype"``,
    ``"size"``, ``"empty"``, ``"namespace"``, ``"hostname"``, ...); ``line`` the line in the document when known.
    """

    def __init__(self, reason: str, *, rule: str = "invalid", line: int | None = None, kind: str | None = None):
        self.reason = reason
        self.rule = rule
        self.line = line
        self.kind = kind
        where = f" (line {line})" if line else ""
        prefix = f"{kind}: " if kind else ""
        super().__init__(f"{prefix}{reason}{where} [rule: {rule}]")


class ListRollbackError(ListValidationError):
    """A fetched list has a lower Volgnummer than the cached one (§2.2: every republication raises it by one).

    Refusing it protects against a replayed or rolled-back list (protocol doc §2.7, recommendation).
    """

    def __init__(self, reason: str, *, kind: str | None = None):
        super().__init__(reason, rule="rollback", kind=kind)


class ListFetchError(ListError):
    """A list could not be retrieved: network error, HTTP status, content type, size or an unreadable file."""
