"""MedMij "Logging interface" events (R2, medmij-protocol.md §5): one JSON line per event with
``session_id`` = X-Correlation-ID and ``trace_id`` = MedMij-Request-ID of the flow.

Event names from the afsprakenstelsel: receive_authorization_request, show_landing_page,
authorization_request_error, show_authorization_request_error_page, send_authorization_request_error,
send_authentication_request, receive_authentication_response, receive_authentication_error,
receive_authorization_cancellation, send_authorization_cancellation. The names for the later steps are
not in the available text; these follow the same pattern (marked in the docs as unverified):
show_consent_page, receive_consent, receive_consent_refusal, send_authorization_response,
receive_token_request, send_token_response, send_token_error, receive_token_replay.
"""

from __future__ import annotations

import logging
import typing as t
from datetime import datetime
from zoneinfo import ZoneInfo

logger = logging.getLogger("oauth.medmij_events")
_ZONE = ZoneInfo("Europe/Amsterdam")


def emit(event_type: str, *, location: str, session_id: str | None, trace_id: str | None,
         **sections: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    line: dict[str, t.Any] = {
        "event": {
            "type": event_type,
            "location": location,
            "datetime": datetime.now(_ZONE).isoformat(timespec="seconds"),
            "session_id": session_id,
            "trace_id": trace_id,
        }
    }
    for name, values in sections.items():
        line[name] = {k: v for k, v in values.items() if v is not None}
    logger.info(event_type, extra={"medmij": line})
    return line
