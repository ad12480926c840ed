"""Linking people (BSN, from DigiD) to their Patient resource, by keyed hash only; and the encrypted copy
of the BSN that hospital staff may see (:class:`~dvza.models.PatientBsn`)."""

from __future__ import annotations

import hashlib
import hmac
import typing as t

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from oauth.login import is_valid_bsn

from .models import IdentityLink
from .models import PatientBsn

__all__ = ["is_valid_bsn", "bsn_hmac", "link", "patient_for", "BsnCipher", "cipher_from_config", "bsn_for"]


def bsn_hmac(key: str, bsn: str) -> str:
    return hmac.new(key.encode("utf-8"), bsn.strip().encode("ascii"), hashlib.sha256).hexdigest()


class BsnCipher:
    """Fernet encryption of BSNs for staff display. ``keys``: the current key first, older keys after it
    (``MultiFernet``: new values use the first, every key decrypts — key rotation without downtime)."""

    def __init__(self, keys: t.Sequence[str]):
        if not keys:
            raise ValueError("BSN_ENCRYPTION_KEY needs at least one key")
        self._fernet = MultiFernet([Fernet(key.encode("ascii") if isinstance(key, str) else key) for key in keys])

    def encrypt(self, bsn: str) -> str:
        return self._fernet.encrypt(bsn.strip().encode("ascii")).decode("ascii")

    def decrypt(self, token: str) -> str | None:
        """The BSN, or None when no configured key opens it (another host's key, a rotated-out key)."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            return None


def encryption_keys(value: t.Any) -> list[str]:
    """``BSN_ENCRYPTION_KEY``: one Fernet key, or a list (current first) for rotation."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(k, str) for k in value):
        return list(value)
    raise ValueError("BSN_ENCRYPTION_KEY must be a Fernet key or a list of Fernet keys")


def cipher_from_config(config: t.Mapping[str, t.Any]) -> BsnCipher | None:
    value = config.get("BSN_ENCRYPTION_KEY")
    return BsnCipher(encryption_keys(value)) if value else None


def link(session: Session, key: str, bsn: str, patient_id: str, cipher: BsnCipher | None = None) -> None:
    """Record that ``bsn`` is the person of Patient ``patient_id`` (the caller commits). With a
    ``cipher`` the BSN is also kept encrypted for staff (:class:`~dvza.models.PatientBsn`)."""
    digest = bsn_hmac(key, bsn)
    existing = session.get(IdentityLink, digest)
    if existing is None:
        session.add(IdentityLink(bsn_hmac=digest, patient_id=patient_id))
    else:
        existing.patient_id = patient_id
    if cipher is not None:
        stored = session.get(PatientBsn, patient_id)
        if stored is None:
            session.add(PatientBsn(patient_id=patient_id, bsn_encrypted=cipher.encrypt(bsn)))
        elif cipher.decrypt(stored.bsn_encrypted) != bsn.strip():
            stored.bsn_encrypted = cipher.encrypt(bsn)


def patient_for(session: Session, key: str, bsn: str) -> str | None:
    """The Patient logical id of this person, or None when this hospital does not know them."""
    return session.scalar(select(IdentityLink.patient_id).where(IdentityLink.bsn_hmac == bsn_hmac(key, bsn)))


def bsn_for(session: Session, cipher: BsnCipher | None, patient_id: str) -> str | None:
    """The patient's BSN for hospital staff, or None (not known, no key, or the key does not fit)."""
    if cipher is None:
        return None
    stored = session.get(PatientBsn, patient_id)
    return cipher.decrypt(stored.bsn_encrypted) if stored is not None else None
