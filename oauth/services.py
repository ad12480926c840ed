"""Configuration and collaborators of the authorization server, injected by the app (``dvza``).

``oauth`` knows no FHIR and no hospital database: who a BSN is (``patient_for_bsn``), which
gegevensdiensten have data for a patient (``available_diensten``, the beschikbaarheidstoets) and the
audit log are functions the app provides.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta

from .branding import Branding
from .directory import Directory
from .login import LoginAdapter

if t.TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(slots=True)
class OAuthSettings:
    #: this DVA's aanbieder: ZAL ``Zorgaanbiedernaam`` (``umcdemo@medmij``) and its display name
    aanbieder: str
    aanbieder_weergavenaam: str
    #: Technische storing page: "neem contact op met <Naam DVA>, <telefoonnummer DVA>"
    dva_naam: str
    dva_telefoon: str
    verzamelen: frozenset[str]
    delen: frozenset[str]
    scope_dialect: str = "both"
    #: token response ``scope``: ``ids`` ("48 51", R2) or ``request`` (echo of the request scope, R1)
    token_scope_format: str = "ids"
    code_lifetime: timedelta = timedelta(seconds=900)
    token_lifetime: timedelta = timedelta(seconds=900)
    flow_lifetime: timedelta = timedelta(minutes=30)
    #: R2 "langdurige toestemming": refresh tokens, lapsing after this much inactivity
    long_term_consent: bool = False
    long_term_inactivity: timedelta = timedelta(days=183)
    #: host name written in MedMij log events (``event.location``)
    location: str = "localhost"
    #: the TLS client certificate: trusted proxy addresses and the header they put it in
    trusted_proxies: tuple[str, ...] = ()
    client_cert_header: str = "X-SSL-Client-Cert"
    #: the token endpoint refuses clients whose certificate host is not on the Whitelist
    require_whitelist: bool = True
    #: the time zone of every time a person sees (IANA name)
    timezone: str = "Europe/Amsterdam"
    #: a short Dutch description per gegevensdienst id, shown under its name on the consent page
    dienst_descriptions: t.Mapping[str, str] = field(default_factory=dict)
    #: house style of the pages; None: just the aanbieder's display name
    branding: Branding | None = None

    def house_style(self) -> Branding:
        return self.branding or Branding(name=self.aanbieder_weergavenaam)


@dataclass(slots=True)
class OAuthServices:
    settings: OAuthSettings
    session: t.Callable[[], Session]
    directory: Directory
    login: LoginAdapter
    patient_for_bsn: t.Callable[[str], str | None]
    available_diensten: t.Callable[[str, frozenset[str]], frozenset[str]]
    audit: t.Callable[..., None] = field(default=lambda **_: None)
    #: the name of the patient (for "Je bent ingelogd als …"), None when unknown
    patient_name: t.Callable[[str], str | None] = field(default=lambda _: None)
