"""Ending every access to one patient record at once: its tokens, consents, unused codes and logins in progress.

Needed when the person behind a patient record changes or the record stops existing — the hospital's own
system merged it into another record, unlinked the BSN that leads to it, corrected that BSN, or deleted
the record (``dvza.source``). Whoever held access through the old link must lose it at once:

* every token (access, refresh, qualification) issued for the patient is revoked (RFC 7009 §2.2: a revoked
  token is invalid from then on; the resource server's :func:`oauth.tokens.introspect` refuses it);
* every consent is revoked, so a refresh token of a *langdurige toestemming* yields nothing either;
* every unused authorization code is spent (``used_at``), so it cannot be exchanged later (RFC 6749 §4.1.2);
* every authorization flow that is past the login but not finished ends as ``failed``, so a consent page
  already on screen cannot grant anything for the old record.

The caller commits (in the transaction of the change that made the access wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from .models import AuthorizationCode
from .models import AuthorizationFlow
from .models import Consent
from .models import Token
from .tokens import revoke_tokens


@dataclass(frozen=True, slots=True)
class Revoked:
    tokens: int
    consents: int
    codes: int
    flows: int

    def __str__(self) -> str:
        return (f"{self.tokens} token(s), {self.consents} consent(s), {self.codes} code(s) and {self.flows} login(s) "
                "in progress ended")


def revoke_patient(session: Session, patient_id: str, *, reason: str, now: datetime) -> Revoked:
    """End every access to ``patient_id`` (see the module docstring); returns what was ended."""
    reason = reason[:64]
    tokens = revoke_tokens(session, Token.patient_id == patient_id, now=now, reason=reason)
    consents = session.execute(
        update(Consent).where(Consent.patient_id == patient_id, Consent.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)).rowcount
    codes = session.execute(
        update(AuthorizationCode).where(AuthorizationCode.patient_id == patient_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    flows = session.execute(
        update(AuthorizationFlow).where(AuthorizationFlow.patient_id == patient_id,
                                        AuthorizationFlow.status.in_(("started", "authenticated")))
        .values(status="failed").execution_options(synchronize_session=False)).rowcount
    return Revoked(tokens or 0, consents or 0, codes or 0, flows or 0)
