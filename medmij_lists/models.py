"""Typed, immutable models of the MedMij lists (protocol doc §2).

Every parsed list carries ``kind``, ``tijdstempel`` (aware :class:`datetime`) and ``volgnummer`` (§2.2) and offers
lookups by the key the afsprakenstelsel makes unique in it (``xs:unique`` constraints, §2.3–§2.6).
Hostname lookups are case-insensitive (DNS names; the lists themselves hold lower case only, §2.2).
"""

from __future__ import annotations

import enum
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime


class ListKind(enum.StrEnum):
    """The lists published by MedMij Registratie on the Stelselnode (§2.1), with their official file names."""

    ZAL = "ZAL"
    OCL = "OCL"
    GNL = "GNL"
    WHL = "WHL"
    ZAKL = "ZAKL"

    @property
    def file_name(self) -> str:
        """The official file name (RFC0050, §2.1); ZAKL has no documented official name, MGO's is used."""
        return _FILE_NAMES[self]

    @property
    def title(self) -> str:
        return _TITLES[self]


_FILE_NAMES = {
    ListKind.ZAL: "MedMij_Zorgaanbiederslijst.xml",
    ListKind.OCL: "MedMij_OAuthclientlist.xml",
    ListKind.GNL: "MedMij_Gegevensdienstnamenlijst.xml",
    ListKind.WHL: "MedMij_Whitelist.xml",
    ListKind.ZAKL: "MedMij_Zorgaanbiederskoppellijst.xml",
}
_TITLES = {
    ListKind.ZAL: "Zorgaanbiederslijst",
    ListKind.OCL: "OAuth Client List",
    ListKind.GNL: "Gegevensdienstnamenlijst",
    ListKind.WHL: "Whitelist",
    ListKind.ZAKL: "Zorgaanbiederskoppellijst",
}


def normalize_hostname(hostname: str) -> str:
    """Lower-case a DNS name and drop one trailing root dot; the lists hold lower-case names only (§2.2)."""
    host = hostname.strip().lower()
    return host[:-1] if host.endswith(".") else host


def aanbieder_key(naam: str) -> str:
    """``umcharderwijk`` and ``umcharderwijk@medmij`` name the same aanbieder (§2.3; the R1 scope drops ``@medmij``)."""
    naam = naam.strip().lower()
    return naam if "@" in naam else f"{naam}@medmij"


def _release_key(release: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in release.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# --------------------------------------------------------------------------------------------------------------
# Common header


@dataclass(frozen=True)
class _ListHeader:
    tijdstempel: datetime
    volgnummer: int


# --------------------------------------------------------------------------------------------------------------
# OAuth Client List (§2.4)


@dataclass(frozen=True)
class OAuthClient:
    """One OCL entry: the PGO node hostname (= OAuth ``client_id``, §0) and its display name for the consent screen."""

    hostname: str
    organisatienaam: str


@dataclass(frozen=True)
class OAuthClientList(_ListHeader):
    """OAuth Client List (OCL, §2.4): the DVZA's source of client_ids and their names for the consent screen."""

    clients: tuple[OAuthClient, ...] = ()
    kind: t.ClassVar[ListKind] = ListKind.OCL
    _by_host: dict[str, OAuthClient] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_host", {c.hostname: c for c in self.clients})

    def __len__(self) -> int:
        return len(self.clients)

    def client(self, hostname: str) -> OAuthClient | None:
        return self._by_host.get(normalize_hostname(hostname))

    def contains(self, hostname: str) -> bool:
        """True if ``hostname`` is a registered OAuth client (client_id check, §3.3)."""
        return normalize_hostname(hostname) in self._by_host

    def organisatienaam(self, hostname: str) -> str | None:
        """The ``OAuthclientOrganisatienaam`` shown in the consent text, or None when the client is not listed."""
        found = self.client(hostname)
        return found.organisatienaam if found else None

    @property
    def hostnames(self) -> tuple[str, ...]:
        return tuple(c.hostname for c in self.clients)


# --------------------------------------------------------------------------------------------------------------
# Gegevensdienstnamenlijst (§2.5)


@dataclass(frozen=True)
class GegevensdienstNaam:
    """One GNL entry: a gegevensdienst id and its display name (Weergavenaam)."""

    id: str
    weergavenaam: str


@dataclass(frozen=True)
class GegevensdienstNamenLijst(_ListHeader):
    """Gegevensdienstnamenlijst (GNL, §2.5): display names of the gegevensdiensten."""

    gegevensdiensten: tuple[GegevensdienstNaam, ...] = ()
    kind: t.ClassVar[ListKind] = ListKind.GNL
    _by_id: dict[str, GegevensdienstNaam] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {g.id: g for g in self.gegevensdiensten})

    def __len__(self) -> int:
        return len(self.gegevensdiensten)

    def weergavenaam(self, gegevensdienst_id: str | int) -> str | None:
        found = self._by_id.get(str(gegevensdienst_id).strip())
        return found.weergavenaam if found else None

    def contains(self, gegevensdienst_id: str | int) -> bool:
        return str(gegevensdienst_id).strip() in self._by_id

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.gegevensdiensten)


# --------------------------------------------------------------------------------------------------------------
# Whitelist (§2.6, §4.3)


class WhitelistModel(enum.StrEnum):
    """The two content models that share the whitelist ``release2`` namespace (§2.6)."""

    TEXT = "text"  # R1.0: <MedMijNode>host</MedMijNode>
    HOSTNAME = "hostname"  # R1.1+: <MedMijNode><Hostname>host</Hostname></MedMijNode>


@dataclass(frozen=True)
class Whitelist(_ListHeader):
    """Whitelist (WHL, §2.6): the node hostnames allowed on the MedMij backchannel (§4.3)."""

    hostnames: tuple[str, ...] = ()
    model: WhitelistModel = WhitelistModel.HOSTNAME
    kind: t.ClassVar[ListKind] = ListKind.WHL
    _set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_set", frozenset(self.hostnames))

    def __len__(self) -> int:
        return len(self.hostnames)

    def contains(self, hostname: str) -> bool:
        """True if ``hostname`` is on the whitelist (§4.3: backchannel traffic only to/from listed nodes)."""
        return normalize_hostname(hostname) in self._set

    def contains_any(self, names: t.Iterable[str]) -> bool:
        """True if any of ``names`` (a peer certificate's CN and SANs) is listed — the TLS-server check of §4.3."""
        return any(self.contains(n) for n in names)


# --------------------------------------------------------------------------------------------------------------
# Zorgaanbiederslijst (§2.3)


@dataclass(frozen=True)
class Systeemrol:
    """A system role of a gegevensdienst and its FHIR resource endpoint (backchannel, port allowed)."""

    code: str
    resource_endpoint: str


@dataclass(frozen=True)
class Abonneren:
    """The Abonneren extension of a release3 gegevensdienst: maximum duration (days) and subscription endpoint."""

    maximale_duur: int
    subscription_endpoint: str


@dataclass(frozen=True)
class Gegevensdienst:
    """One gegevensdienst of an aanbieder with its OAuth and resource endpoints (§2.3).

    ``interfaceversie`` is None for a release2 ZAL, which has no Interfaceversies level. In release3 the endpoints
    may be absent (documented 0..1), hence the optional types.
    """

    id: str
    authorization_endpoint: str | None
    token_endpoint: str | None
    systeemrollen: tuple[Systeemrol, ...] = ()
    abonneren: Abonneren | None = None
    interfaceversie: str | None = None

    @property
    def resource_endpoints(self) -> tuple[str, ...]:
        """The distinct resource endpoint URIs of all system roles, in list order."""
        return tuple(dict.fromkeys(r.resource_endpoint for r in self.systeemrollen))

    def resource_endpoint(self, systeemrolcode: str) -> str | None:
        for rol in self.systeemrollen:
            if rol.code == systeemrolcode:
                return rol.resource_endpoint
        return None


@dataclass(frozen=True)
class Interfaceversie:
    """Release3: the gegevensdiensten an aanbieder offers for one interface version (afsprakenstelsel release)."""

    id: str
    gegevensdiensten: tuple[Gegevensdienst, ...] = ()


@dataclass(frozen=True)
class Zorgaanbieder:
    """One aanbieder (``naam@medmij``) of the ZAL.

    ``gegevensdiensten`` lists every gegevensdienst; in release3 it is the concatenation over ``interfaceversies``
    (each entry then carries its ``interfaceversie``).
    """

    naam: str
    gegevensdiensten: tuple[Gegevensdienst, ...] = ()
    aanbiedertype: str | None = None
    vertegenwoordiging: str | None = None
    interfaceversies: tuple[Interfaceversie, ...] = ()

    def gegevensdienst(self, gegevensdienst_id: str | int, interfaceversie: str | None = None) -> Gegevensdienst | None:
        """The gegevensdienst with this id; without ``interfaceversie`` the one of the highest interface version."""
        wanted = str(gegevensdienst_id).strip()
        matches = [
            g
            for g in self.gegevensdiensten
            if g.id == wanted and (interfaceversie is None or g.interfaceversie == interfaceversie)
        ]
        if not matches:
            return None
        return max(matches, key=lambda g: _release_key(g.interfaceversie or "0"))

    @property
    def gegevensdienst_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.id for g in self.gegevensdiensten))


@dataclass(frozen=True)
class Zorgaanbiederslijst(_ListHeader):
    """Zorgaanbiederslijst (ZAL, §2.3), in the ``release2`` (R1.0/R1.1) or ``release3`` (R1.2+/R2.x) shape."""

    zorgaanbieders: tuple[Zorgaanbieder, ...] = ()
    release: str = "release2"
    kind: t.ClassVar[ListKind] = ListKind.ZAL
    _by_name: dict[str, Zorgaanbieder] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {z.naam: z for z in self.zorgaanbieders})

    def __len__(self) -> int:
        return len(self.zorgaanbieders)

    def aanbieder(self, naam: str) -> Zorgaanbieder | None:
        """Look up by ``naam@medmij`` or by the bare name used in the OAuth scope (§3.2)."""
        return self._by_name.get(aanbieder_key(naam))

    def contains(self, naam: str) -> bool:
        return aanbieder_key(naam) in self._by_name

    @property
    def namen(self) -> tuple[str, ...]:
        return tuple(z.naam for z in self.zorgaanbieders)


# --------------------------------------------------------------------------------------------------------------
# Zorgaanbiederskoppellijst (§2.3, optional)


@dataclass(frozen=True)
class KoppelGegevensdienst:
    id: str
    weergavenaam: str
    interfaceversies: tuple[str, ...] = ()


@dataclass(frozen=True)
class KoppelZorgaanbieder:
    """A ZAKL entry: the aanbieder, its identifiers as ``(type, value)`` pairs (AGB, URA, OIN, HRN, KVK)."""

    naam: str
    kenmerken: tuple[tuple[str, str], ...] = ()
    gegevensdiensten: tuple[KoppelGegevensdienst, ...] = ()

    def kenmerk(self, soort: str) -> str | None:
        for key, value in self.kenmerken:
            if key == soort.upper():
                return value
        return None


@dataclass(frozen=True)
class Zorgaanbiederskoppellijst(_ListHeader):
    """Zorgaanbiederskoppellijst (ZAKL, §2.3): ties each aanbieder to identifiers and display names."""

    zorgaanbieders: tuple[KoppelZorgaanbieder, ...] = ()
    kind: t.ClassVar[ListKind] = ListKind.ZAKL
    _by_name: dict[str, KoppelZorgaanbieder] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {z.naam: z for z in self.zorgaanbieders})

    def __len__(self) -> int:
        return len(self.zorgaanbieders)

    def aanbieder(self, naam: str) -> KoppelZorgaanbieder | None:
        return self._by_name.get(aanbieder_key(naam))


MedMijList = Zorgaanbiederslijst | OAuthClientList | GegevensdienstNamenLijst | Whitelist | Zorgaanbiederskoppellijst
"""Any parsed list."""
