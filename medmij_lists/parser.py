"""Defused, schema-validating parsing of the MedMij lists (protocol doc §2).

Every list is validated against this project's own XSDs (``medmij_lists/schemas``, written from the structure in
§2.2–§2.6) before a model is built: "PGO Nodes en ZA Nodes valideren elke nieuw verkregen Whitelist tegen het
XML-schema" (R1.0, §2.7), and likewise the OCL for the DVZA. On top of the XSD the parser enforces:

* no DOCTYPE at all (so no entities, no external DTD), no network, no huge trees, a size limit;
* a list must not be empty (MGO refuses an empty whitelist, §2.6; a DVZA cannot work with an empty OCL either);
* in strict mode, hostnames under the special-use names of RFC 6761/6762 (``.localhost``, ``.test``,
  ``.example``, ``.invalid``, ``.local``) are refused: they are never MedMij nodes.

``development=True`` is **not MedMij-valid and is meant for the local development network only**. It relaxes
exactly two things: a port in a Frontchanneluri (``AuthorizationEndpointuri``; §2.3 forbids it) and the
special-use hostnames above. Hostnames must still contain a dot (``dvza.localhost``, not ``localhost``).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from datetime import UTC
from datetime import datetime
from importlib import resources

from lxml import etree

from medmij_lists.errors import ListValidationError
from medmij_lists.models import Abonneren
from medmij_lists.models import Gegevensdienst
from medmij_lists.models import GegevensdienstNaam
from medmij_lists.models import GegevensdienstNamenLijst
from medmij_lists.models import Interfaceversie
from medmij_lists.models import KoppelGegevensdienst
from medmij_lists.models import KoppelZorgaanbieder
from medmij_lists.models import ListKind
from medmij_lists.models import MedMijList
from medmij_lists.models import OAuthClient
from medmij_lists.models import OAuthClientList
from medmij_lists.models import Systeemrol
from medmij_lists.models import Whitelist
from medmij_lists.models import WhitelistModel
from medmij_lists.models import Zorgaanbieder
from medmij_lists.models import Zorgaanbiederskoppellijst
from medmij_lists.models import Zorgaanbiederslijst

#: Default upper bound on a list document. The real lists are a few hundred kB at most.
MAX_LIST_BYTES = 20 * 1024 * 1024

_BASE = "xmlns://afsprakenstelsel.medmij.nl/"
NS_ZAL_RELEASE2 = _BASE + "zorgaanbiederslijst/release2/"
NS_ZAL_RELEASE3 = _BASE + "zorgaanbiederslijst/release3/"
NS_OCL_RELEASE2 = _BASE + "oauthclientlist/release2/"
NS_GNL_RELEASE1 = _BASE + "gegevensdienstnamenlijst/release1/"
NS_WHL_RELEASE2 = _BASE + "whitelist/release2/"
NS_ZAKL_RELEASE1 = _BASE + "Zorgaanbiederskoppellijst/release1/"

#: (namespace, root element) -> (kind, schema variant). The namespace suffix ``/releaseN/`` versions a list (§2.1).
_ROOTS: dict[tuple[str, str], tuple[ListKind, str]] = {
    (NS_ZAL_RELEASE2, "Zorgaanbiederslijst"): (ListKind.ZAL, "zal-release2"),
    (NS_ZAL_RELEASE3, "Zorgaanbiederslijst"): (ListKind.ZAL, "zal-release3"),
    (NS_OCL_RELEASE2, "OAuthclientlist"): (ListKind.OCL, "ocl-release2"),
    (NS_GNL_RELEASE1, "Gegevensdienstnamenlijst"): (ListKind.GNL, "gnl-release1"),
    (NS_WHL_RELEASE2, "Whitelist"): (ListKind.WHL, "whl-release2"),
    (NS_ZAKL_RELEASE1, "Zorgaanbiederskoppellijst"): (ListKind.ZAKL, "zakl-release1"),
}
_KNOWN_ROOT_NAMES = {name: kind for (_, name), (kind, _) in _ROOTS.items()}

#: RFC 6761 / RFC 6762 special-use top-level names: fine on a development network, never on the MedMij network.
SPECIAL_USE_TLDS = frozenset({"localhost", "test", "example", "invalid", "local"})

_XSD_NS = "http://www.w3.org/2001/XMLSchema"
_DOCTYPE = re.compile(rb"<!\s*DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------------------
# Schemas


@functools.cache
def _schema_document(variant: str) -> bytes:
    return resources.files("medmij_lists").joinpath("schemas", f"{variant}.xsd").read_bytes()


def _schema_tree(variant: str, development: bool) -> etree._ElementTree:
    tree = etree.ElementTree(etree.fromstring(_schema_document(variant), _safe_parser()))
    if development:
        # Development network only (not MedMij-valid): give FrontchannelUri the pattern of BackchannelUri, which is
        # identical except that it allows ":port" (§2.3). Nothing else is relaxed.
        ns = {"xsd": _XSD_NS}
        front = tree.xpath("//xsd:simpleType[@name='FrontchannelUri']//xsd:pattern", namespaces=ns)
        back = tree.xpath("//xsd:simpleType[@name='BackchannelUri']//xsd:pattern", namespaces=ns)
        if front and back:
            front[0].set("value", back[0].get("value"))
    return tree


_local = threading.local()


def schema_for(variant: str, *, development: bool = False) -> etree.XMLSchema:
    """The compiled XMLSchema of a variant (``zal-release2``, ``ocl-release2``, ``whl-release2-hostname``, ...).

    Cached per thread: lxml schema objects are not shared across threads.
    """
    cache: dict[tuple[str, bool], etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    key = (variant, development)
    if key not in cache:
        cache[key] = etree.XMLSchema(_schema_tree(variant, development))
    return cache[key]


def _safe_parser(schema: etree.XMLSchema | None = None) -> etree.XMLParser:
    """A defused lxml parser: no entity expansion, no DTD loading, no network, no huge trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        schema=schema,
    )


# --------------------------------------------------------------------------------------------------------------
# Public API


def parse_list(
    data: bytes,
    *,
    development: bool = False,
    expected_kind: ListKind | None = None,
    allow_empty: bool = False,
    max_bytes: int = MAX_LIST_BYTES,
) -> MedMijList:
    """Parse and validate one MedMij list document; the kind is detected from root element + namespace (§2.1).

    Raises :class:`ListValidationError` with the rule that failed. ``development=True`` is *not MedMij-valid, for
    the development network only*: it allows a port in the AuthorizationEndpointuri and ``.localhost``/``.test``
    style hostnames (see module docstring). ``expected_kind`` refuses a valid list of another kind (e.g. a ZAL
    served at the OCL URL). ``allow_empty`` accepts a list without entries (the XSDs allow it; by default it is
    refused, §2.6/§2.7).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_list expects bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise ListValidationError(f"document is {len(data)} bytes, more than the limit of {max_bytes}", rule="size")
    if not data.strip():
        raise ListValidationError("document is empty", rule="not-xml")
    # Refuse any DOCTYPE before parsing (covers internal entities, external DTDs, entity expansion bombs).
    if _DOCTYPE.search(data) or _ENTITY.search(data):
        raise ListValidationError("a DOCTYPE or ENTITY declaration is not allowed in a MedMij list", rule="doctype")

    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ListValidationError(f"not well-formed XML: {exc.msg}", rule="not-xml", line=exc.lineno) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ListValidationError("a DOCTYPE declaration is not allowed in a MedMij list", rule="doctype")

    qname = etree.QName(root)
    found = _ROOTS.get((qname.namespace or "", qname.localname))
    if found is None:
        if qname.localname in _KNOWN_ROOT_NAMES:
            raise ListValidationError(
                f"root element {qname.localname} has namespace {qname.namespace!r}, which is not a known "
                f"MedMij namespace for that list (§2.1)",
                rule="namespace",
                line=root.sourceline,
                kind=_KNOWN_ROOT_NAMES[qname.localname].value,
            )
        raise ListValidationError(
            f"root element {{{qname.namespace}}}{qname.localname} is not a MedMij list (§2.1)",
            rule="namespace",
            line=root.sourceline,
        )
    kind, variant = found
    if expected_kind is not None and kind is not expected_kind:
        raise ListValidationError(f"expected a {expected_kind.value} but got a {kind.value}", rule="kind")
    if kind is ListKind.WHL:
        variant = _whitelist_variant(root)

    # Validate the parsed tree before any model is built (tree validation keeps line numbers in the error log).
    schema = schema_for(variant, development=development)
    if not schema.validate(tree):
        raise _xsd_error(schema.error_log, kind)

    builder = _BUILDERS[kind]
    parsed = builder(root, variant)
    _check_semantics(parsed, development=development, allow_empty=allow_empty)
    return parsed


def parse_file(
    path: str | os.PathLike[str],
    *,
    development: bool = False,
    expected_kind: ListKind | None = None,
    allow_empty: bool = False,
    max_bytes: int = MAX_LIST_BYTES,
) -> MedMijList:
    """Read a file (refusing it when larger than ``max_bytes``) and :func:`parse_list` it.

    ``development=True`` is not MedMij-valid, for the development network only.
    """
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    return parse_list(
        data, development=development, expected_kind=expected_kind, allow_empty=allow_empty, max_bytes=max_bytes
    )


def detect_kind(data: bytes) -> ListKind | None:
    """The list kind of a document by its root element and namespace, or None; does not validate."""
    try:
        if _DOCTYPE.search(data):
            return None
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError:
        return None
    qname = etree.QName(root)
    found = _ROOTS.get((qname.namespace or "", qname.localname))
    return found[0] if found else None


# --------------------------------------------------------------------------------------------------------------
# Helpers


def _xsd_error(error_log: etree._ListErrorLog, kind: ListKind) -> ListValidationError:
    entries = [e for e in error_log if e.level >= etree.ErrorLevels.ERROR] or list(error_log)
    message = entries[0].message if entries else "schema validation failed"
    line = entries[0].line if entries else None
    rule = "duplicate" if "Duplicate key-sequence" in message else "xsd"
    more = f" (and {len(entries) - 1} more)" if len(entries) > 1 else ""
    return ListValidationError(
        f"not valid against the {kind.title} schema: {message}{more}", rule=rule, line=line or None, kind=kind.value
    )


def _whitelist_variant(root: etree._Element) -> str:
    """Pick the whitelist content model by structure, not namespace (§2.6: both models share one namespace)."""
    for node in root.iter(f"{{{NS_WHL_RELEASE2}}}MedMijNode"):
        if len(node):
            return "whl-release2-hostname"
        if (node.text or "").strip():
            return "whl-release2-text"
    return "whl-release2-hostname"


def _ns(el: etree._Element) -> str:
    return etree.QName(el).namespace or ""


def _child(el: etree._Element, name: str) -> etree._Element | None:
    return el.find(f"{{{_ns(el)}}}{name}")


def _children(el: etree._Element, path: str) -> list[etree._Element]:
    ns = _ns(el)
    xpath = "/".join(f"{{{ns}}}{part}" for part in path.split("/"))
    return el.findall(xpath)


def _text(el: etree._Element, path: str) -> str | None:
    ns = _ns(el)
    found = el.find("/".join(f"{{{ns}}}{part}" for part in path.split("/")))
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _header(root: etree._Element) -> tuple[datetime, int]:
    raw = _text(root, "Tijdstempel") or ""
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        raise ListValidationError(f"Tijdstempel {raw!r} is not a date-time", rule="tijdstempel") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)  # xs:dateTime without zone: taken as UTC
    return stamp, int(_text(root, "Volgnummer") or "0")


def _build_ocl(root: etree._Element, _variant: str) -> OAuthClientList:
    stamp, number = _header(root)
    clients = tuple(
        OAuthClient(hostname=_text(c, "Hostname") or "", organisatienaam=_text(c, "OAuthclientOrganisatienaam") or "")
        for c in _children(root, "OAuthclients/OAuthclient")
    )
    return OAuthClientList(tijdstempel=stamp, volgnummer=number, clients=clients)


def _build_gnl(root: etree._Element, _variant: str) -> GegevensdienstNamenLijst:
    stamp, number = _header(root)
    diensten = tuple(
        GegevensdienstNaam(id=_text(g, "GegevensdienstId") or "", weergavenaam=_text(g, "Weergavenaam") or "")
        for g in _children(root, "Gegevensdiensten/Gegevensdienst")
    )
    return GegevensdienstNamenLijst(tijdstempel=stamp, volgnummer=number, gegevensdiensten=diensten)


def _build_whl(root: etree._Element, variant: str) -> Whitelist:
    stamp, number = _header(root)
    if variant == "whl-release2-text":
        hosts = tuple((n.text or "").strip() for n in _children(root, "MedMijNodes/MedMijNode"))
        model = WhitelistModel.TEXT
    else:
        hosts = tuple((n.text or "").strip() for n in _children(root, "MedMijNodes/MedMijNode/Hostname"))
        model = WhitelistModel.HOSTNAME
    return Whitelist(tijdstempel=stamp, volgnummer=number, hostnames=hosts, model=model)


def _build_dienst(g: etree._Element, interfaceversie: str | None) -> Gegevensdienst:
    abonneren = None
    abo = _child(g, "Abonneren")
    if abo is not None:
        abonneren = Abonneren(
            maximale_duur=int(_text(abo, "MaximaleDuur") or "0"),
            subscription_endpoint=_text(abo, "SubscriptionEndpointuri") or "",
        )
    rollen = tuple(
        Systeemrol(
            code=_text(r, "Systeemrolcode") or "",
            resource_endpoint=_text(r, "ResourceEndpoint/ResourceEndpointuri") or "",
        )
        for r in _children(g, "Systeemrollen/Systeemrol")
    )
    return Gegevensdienst(
        id=_text(g, "GegevensdienstId") or "",
        authorization_endpoint=_text(g, "AuthorizationEndpoint/AuthorizationEndpointuri"),
        token_endpoint=_text(g, "TokenEndpoint/TokenEndpointuri"),
        systeemrollen=rollen,
        abonneren=abonneren,
        interfaceversie=interfaceversie,
    )


def _build_zal(root: etree._Element, variant: str) -> Zorgaanbiederslijst:
    stamp, number = _header(root)
    aanbieders = []
    for z in _children(root, "Zorgaanbieders/Zorgaanbieder"):
        naam = _text(z, "Zorgaanbiedernaam") or ""
        if variant == "zal-release3":
            versies = []
            for iv in _children(z, "Interfaceversies/Interfaceversie"):
                iv_id = _text(iv, "InterfaceversieId") or ""
                diensten = tuple(_build_dienst(g, iv_id) for g in _children(iv, "Gegevensdiensten/Gegevensdienst"))
                versies.append(Interfaceversie(id=iv_id, gegevensdiensten=diensten))
            aanbieders.append(
                Zorgaanbieder(
                    naam=naam,
                    gegevensdiensten=tuple(g for v in versies for g in v.gegevensdiensten),
                    aanbiedertype=_text(z, "Aanbiedertype"),
                    vertegenwoordiging=_text(z, "Vertegenwoordiging"),
                    interfaceversies=tuple(versies),
                )
            )
        else:
            diensten = tuple(_build_dienst(g, None) for g in _children(z, "Gegevensdiensten/Gegevensdienst"))
            aanbieders.append(Zorgaanbieder(naam=naam, gegevensdiensten=diensten))
    release = "release3" if variant == "zal-release3" else "release2"
    return Zorgaanbiederslijst(tijdstempel=stamp, volgnummer=number, zorgaanbieders=tuple(aanbieders), release=release)


def _build_zakl(root: etree._Element, _variant: str) -> Zorgaanbiederskoppellijst:
    stamp, number = _header(root)
    aanbieders = []
    for z in _children(root, "Zorgaanbieders/Zorgaanbieder"):
        kenmerken = tuple(
            (etree.QName(k).localname, (k.text or "").strip())
            for km in _children(z, "IdentificerendeKenmerken/IdentificerendKenmerk")
            for k in km
            if isinstance(k.tag, str)
        )
        diensten = tuple(
            KoppelGegevensdienst(
                id=_text(g, "GegevensdienstId") or "",
                weergavenaam=_text(g, "Weergavenaam") or "",
                interfaceversies=tuple(
                    (_text(iv, "InterfaceversieId") or "") for iv in _children(g, "Interfaceversies/Interfaceversie")
                ),
            )
            for g in _children(z, "Gegevensdiensten/Gegevensdienst")
        )
        aanbieders.append(
            KoppelZorgaanbieder(
                naam=_text(z, "Zorgaanbiedernaam") or "", kenmerken=kenmerken, gegevensdiensten=diensten
            )
        )
    return Zorgaanbiederskoppellijst(tijdstempel=stamp, volgnummer=number, zorgaanbieders=tuple(aanbieders))


_BUILDERS = {
    ListKind.ZAL: _build_zal,
    ListKind.OCL: _build_ocl,
    ListKind.GNL: _build_gnl,
    ListKind.WHL: _build_whl,
    ListKind.ZAKL: _build_zakl,
}


def _url_host(url: str | None) -> str | None:
    if not url:
        return None
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0]


def _hostnames(parsed: MedMijList) -> list[tuple[str, str]]:
    """(where, hostname) of every hostname in a list, for the special-use check."""
    if isinstance(parsed, OAuthClientList):
        return [("OAuthclient/Hostname", c.hostname) for c in parsed.clients]
    if isinstance(parsed, Whitelist):
        return [("MedMijNode", h) for h in parsed.hostnames]
    if isinstance(parsed, Zorgaanbiederslijst):
        found = []
        for z in parsed.zorgaanbieders:
            for g in z.gegevensdiensten:
                urls = [g.authorization_endpoint, g.token_endpoint, *g.resource_endpoints]
                if g.abonneren:
                    urls.append(g.abonneren.subscription_endpoint)
                found.extend((f"{z.naam} gegevensdienst {g.id}", h) for h in map(_url_host, urls) if h)
        return found
    return []


def is_special_use_hostname(hostname: str) -> bool:
    """True for names under ``.localhost``, ``.test``, ``.example``, ``.invalid``, ``.local`` (RFC 6761/6762)."""
    return hostname.rstrip(".").rsplit(".", 1)[-1].lower() in SPECIAL_USE_TLDS


def _check_semantics(parsed: MedMijList, *, development: bool, allow_empty: bool) -> None:
    kind = parsed.kind.value
    if not allow_empty and len(parsed) == 0:
        raise ListValidationError(
            f"the {parsed.kind.title} has no entries; an empty list is refused (§2.6, §2.7)", rule="empty", kind=kind
        )
    if not development:
        for where, host in _hostnames(parsed):
            if is_special_use_hostname(host):
                raise ListValidationError(
                    f"hostname {host!r} ({where}) is a special-use name (RFC 6761) and never a MedMij node; "
                    "such names are only accepted with development=True",
                    rule="hostname",
                    kind=kind,
                )
