"""The MedMij tracing headers on backchannel requests: ``MedMij-Request-ID`` (a unique id per request,
core.rscint.201) and ``X-Correlation-ID`` (the id of the whole flow, medmij-protocol.md §logging).

Both are identifiers, not free text: at most 64 visible ASCII characters (a UUID is 36). Anything
else is refused with the protocol's own error before it reaches a log, an audit record or a table.
"""

from __future__ import annotations

import typing as t

TRACE_HEADERS = ("MedMij-Request-ID", "X-Correlation-ID")
MAX_LENGTH = 64


def valid_trace_id(value: str) -> bool:
    return 0 < len(value) <= MAX_LENGTH and all("!" <= ch <= "~" for ch in value)


def header_problem(headers: t.Mapping[str, str]) -> str | None:
    """Why the tracing headers of a request are unacceptable, or None when they are fine (or absent)."""
    for name in TRACE_HEADERS:
        value = headers.get(name)
        if value is not None and not valid_trace_id(value):
            return f"{name} must be at most {MAX_LENGTH} visible ASCII characters"
    return None
