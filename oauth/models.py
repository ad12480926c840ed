"""Storage of the authorization server: codes, tokens, consents. Secrets are stored hashed.

design-references.md §1.7: own the storage; store ``sha256(code)``/``sha256(token)`` only (RFC 6819
§4.3.2/§5.1.4.1.3 — a database leak must not yield usable tokens); codes are consumed atomically
(``used_at``); tokens remember the code they came from (``code_id``) so a replayed code can revoke
them (RFC 6749 §4.1.2, §10.5), and the certificate they are bound to (RFC 8705 §3, ``x5t#S256``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column


class OAuthBase(DeclarativeBase):
    """Declarative base of the authorization server's tables."""


class Token(OAuthBase):
    """An access or refresh token (or a pre-issued qualification token). Only its hash is kept."""

    __tablename__ = "oauth_token"
    __table_args__ = (
        Index("ix_oauth_token_code", "code_id"),
        Index("ix_oauth_token_consent", "consent_id"),
        Index("ix_oauth_token_patient", "patient_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``access`` | ``refresh`` | ``qualification``
    kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(255))
    patient_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="")
    #: space-separated GegevensdienstIds the token covers
    gegevensdiensten: Mapped[str] = mapped_column(String(255), default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    code_id: Mapped[str | None] = mapped_column(String(36))
    consent_id: Mapped[str | None] = mapped_column(String(36))
    #: RFC 8705 §3.1 confirmation: base64url SHA-256 of the client certificate (DER)
    cnf_x5t_s256: Mapped[str | None] = mapped_column(String(64))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthorizationFlow(OAuthBase):
    """One authorization request as the person's browser goes through it: landing page, login,
    availability check, consent. The browser only holds the flow id in a signed session cookie; the
    BSN is never stored, only the patient it maps to (``patient_id``)."""

    __tablename__ = "oauth_flow"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    #: ``verzamelen`` (PGO collects) or ``delen`` (PGO sends)
    usecase: Mapped[str] = mapped_column(String(16))
    #: space-separated GegevensdienstIds asked for (after scope interpretation)
    requested: Mapped[str] = mapped_column(String(255))
    #: space-separated ids with data for this patient (beschikbaarheidstoets), after login
    available: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    csrf_hash: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    #: started → authenticated → consented | refused | failed
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthorizationCode(OAuthBase):
    """An authorization code (UUIDv4, stored hashed), valid 900 s, consumed at most once."""

    __tablename__ = "oauth_code"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    flow_id: Mapped[str] = mapped_column(String(36))
    consent_id: Mapped[str] = mapped_column(String(36))
    client_id: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    patient_id: Mapped[str] = mapped_column(String(64))
    gegevensdiensten: Mapped[str] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Consent(OAuthBase):
    """A person's consent ("toestemming") for one PGO and a set of gegevensdiensten.

    Short consents live as long as their 900 s tokens; a "langdurige toestemming" (R2) keeps a
    refresh token and lapses after six months without use. The person sees and revokes consents on
    "Mijn toestemmingen"; revoking revokes every token issued under it.
    """

    __tablename__ = "oauth_consent"
    __table_args__ = (Index("ix_oauth_consent_patient", "patient_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(255))
    client_name: Mapped[str] = mapped_column(String(255))
    usecase: Mapped[str] = mapped_column(String(16))
    gegevensdiensten: Mapped[str] = mapped_column(String(255))
    long_term: Mapped[bool] = mapped_column(default=False)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginState(OAuthBase):
    """What a login adapter must remember between sending the person to the identity provider and
    the browser coming back (SAML: the AuthnRequest ID; OIDC: nonce and PKCE verifier).

    Kept server-side, keyed by the SHA-256 of a random handle that travels as ``RelayState``/``state``
    and is also held in the signed session cookie; taken at most once, so a replayed response finds
    nothing (SAML Bindings §3.4.3, §3.6.5.2; OpenID Connect Core §3.1.2.1 ``state``/``nonce``).
    Never holds a BSN."""

    __tablename__ = "oauth_login_state"

    handle_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the adapter that wrote it (``digid-saml``, ``oidc``): one adapter never takes another's state
    adapter: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
