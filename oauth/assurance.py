"""DigiD assurance levels ("betrouwbaarheidsniveaus") and how identity providers name them.

DigiD has four levels, from low to high: Basis, Midden, Substantieel, Hoog. In SAML DigiD states the
level in ``AuthnContextClassRef`` (Logius, "Koppelvlakspecificatie DigiD SAML Authenticatie"):

* ``urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport`` — DigiD Basis
* ``urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract`` — DigiD Midden
* ``urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard`` — DigiD Substantieel
* ``urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI`` — DigiD Hoog

OIDC brokers in front of DigiD put a level in the ID token's ``acr`` claim (OpenID Connect Core §2);
which values they use differs per broker, so the OIDC adapter maps them by configuration and accepts
these DigiD URNs by default. MedMij does not state the required level (medmij-protocol.md §3.4): the
minimum is configuration, Substantieel by default (the Dutch rule for health data).
"""

from __future__ import annotations

import typing as t

#: the levels, lowest first
LEVELS: tuple[str, ...] = ("basis", "midden", "substantieel", "hoog")

#: what a person reads (Dutch)
LEVEL_NAMES: dict[str, str] = {"basis": "DigiD Basis", "midden": "DigiD Midden",
                               "substantieel": "DigiD Substantieel", "hoog": "DigiD Hoog"}

#: DigiD's AuthnContextClassRef values per level
DIGID_CLASS_REFS: dict[str, str] = {
    "basis": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    "midden": "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "substantieel": "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard",
    "hoog": "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
}
LEVEL_OF_CLASS_REF: dict[str, str] = {ref: level for level, ref in DIGID_CLASS_REFS.items()}


def is_level(value: t.Any) -> bool:
    return isinstance(value, str) and value in LEVELS


def meets(level: str | None, minimum: str) -> bool:
    """Whether ``level`` is at least ``minimum``; an unknown level never is."""
    if level not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(minimum)


def too_low_message(level: str | None, minimum: str) -> str:
    """The Dutch explanation for a person who logged in below the required level."""
    used = LEVEL_NAMES.get(level or "", "een onbekend niveau")
    return (f"Je bent ingelogd met {used}. Voor je gezondheidsgegevens is minimaal {LEVEL_NAMES[minimum]} nodig. "
            "Log opnieuw in met de DigiD app of met je identiteitsbewijs.")
