"""Linking people (BSN, from DigiD) to their Patient resource, by keyed hash only."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from oauth.login import is_valid_bsn

from .models import IdentityLink

__all__ = ["is_valid_bsn", "bsn_hmac", "link", "patient_for"]


def bsn_hmac(key: str, bsn: str) -> str:
    return hmac.new(key.encode("utf-8"), bsn.strip().encode("ascii"), hashlib.sha256).hexdigest()


def link(session: Session, key: str, bsn: str, patient_id: str) -> None:
    """Record that ``bsn`` is the person of Patient ``patient_id`` (the caller commits)."""
    digest = bsn_hmac(key, bsn)
    existing = session.get(IdentityLink, digest)
    if existing is None:
        session.add(IdentityLink(bsn_hmac=digest, patient_id=patient_id))
    else:
        existing.patient_id = patient_id


def patient_for(session: Session, key: str, bsn: str) -> str | None:
    """The Patient logical id of this person, or None when this hospital does not know them."""
    return session.scalar(select(IdentityLink.patient_id).where(IdentityLink.bsn_hmac == bsn_hmac(key, bsn)))
