"""A consistent set of the four MedMij lists for the local development network.

The lists written here are **not MedMij-valid, for the development network only**: they typically carry
``.localhost`` hostnames and a port in the AuthorizationEndpointuri, so they parse with ``development=True`` only
(see :mod:`medmij_lists.parser`). Every list is checked with the parser before anything is written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from medmij_lists.models import ListKind
from medmij_lists.models import aanbieder_key
from medmij_lists.parser import NS_GNL_RELEASE1
from medmij_lists.parser import NS_OCL_RELEASE2
from medmij_lists.parser import NS_WHL_RELEASE2
from medmij_lists.parser import NS_ZAL_RELEASE3
from medmij_lists.parser import parse_list

#: Written next to the lists: facts the lists cannot carry (e.g. the aanbieder's display name).
DEMO_NETWORK_FILE = "demo-network.json"

#: Systeemrolcode per gegevensdienst where the protocol doc names one (§6); other ids get ``DEMO-<id>-FHIR``.
KNOWN_SYSTEEMROLCODES = {"48": "MM-2.1-BZB-FHIR"}


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{etree.QName(parent).namespace}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _root(namespace: str, tag: str, tijdstempel: str, volgnummer: int) -> etree._Element:
    root = etree.Element(f"{{{namespace}}}{tag}", nsmap={None: namespace})
    _sub(root, "Tijdstempel", tijdstempel)
    _sub(root, "Volgnummer", str(volgnummer))
    return root


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _host(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise ValueError(f"no hostname in {url!r}")
    return host


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_demo_lists(
    *,
    dvza_hostname: str,
    aanbieder_naam: str,
    pgo_hostname: str,
    pgo_name: str,
    gegevensdiensten: Mapping[str, str],
    authorize_url: str,
    token_url: str,
    fhir_base_url: str,
    volgnummer: int = 1,
    interfaceversie: str = "1.4.0",
    tijdstempel: datetime | None = None,
    systeemrolcodes: Mapping[str, str] | None = None,
    extra_whitelist: Iterable[str] = (),
) -> dict[ListKind, bytes]:
    """The four list documents as bytes (ZAL in the release3 shape, §2.3), validated with ``development=True``."""
    if not gegevensdiensten:
        raise ValueError("at least one gegevensdienst is needed")
    naam = aanbieder_key(aanbieder_naam)
    stamp = (tijdstempel or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    codes = {**KNOWN_SYSTEEMROLCODES, **(systeemrolcodes or {})}
    ids = [str(i).strip() for i in gegevensdiensten]

    zal = _root(NS_ZAL_RELEASE3, "Zorgaanbiederslijst", stamp, volgnummer)
    aanbieder = _sub(_sub(zal, "Zorgaanbieders"), "Zorgaanbieder")
    _sub(aanbieder, "Zorgaanbiedernaam", naam)
    _sub(aanbieder, "Aanbiedertype", "ZA")
    versie = _sub(_sub(aanbieder, "Interfaceversies"), "Interfaceversie")
    _sub(versie, "InterfaceversieId", interfaceversie)
    diensten = _sub(versie, "Gegevensdiensten")
    for dienst_id in ids:
        dienst = _sub(diensten, "Gegevensdienst")
        _sub(dienst, "GegevensdienstId", dienst_id)
        _sub(_sub(dienst, "AuthorizationEndpoint"), "AuthorizationEndpointuri", authorize_url)
        _sub(_sub(dienst, "TokenEndpoint"), "TokenEndpointuri", token_url)
        rol = _sub(_sub(dienst, "Systeemrollen"), "Systeemrol")
        _sub(rol, "Systeemrolcode", codes.get(dienst_id, f"DEMO-{dienst_id}-FHIR"))
        _sub(_sub(rol, "ResourceEndpoint"), "ResourceEndpointuri", fhir_base_url)

    ocl = _root(NS_OCL_RELEASE2, "OAuthclientlist", stamp, volgnummer)
    client = _sub(_sub(ocl, "OAuthclients"), "OAuthclient")
    _sub(client, "Hostname", pgo_hostname)
    _sub(client, "OAuthclientOrganisatienaam", pgo_name)

    gnl = _root(NS_GNL_RELEASE1, "Gegevensdienstnamenlijst", stamp, volgnummer)
    gnl_diensten = _sub(gnl, "Gegevensdiensten")
    for dienst_id, weergavenaam in gegevensdiensten.items():
        entry = _sub(gnl_diensten, "Gegevensdienst")
        _sub(entry, "GegevensdienstId", str(dienst_id).strip())
        _sub(entry, "Weergavenaam", weergavenaam)

    # Backchannel peers (§4.3): the PGO node, the DVZA node and the hosts of its backchannel endpoints.
    hosts = dict.fromkeys([pgo_hostname, dvza_hostname, _host(token_url), _host(fhir_base_url), *extra_whitelist])
    whl = _root(NS_WHL_RELEASE2, "Whitelist", stamp, volgnummer)
    nodes = _sub(whl, "MedMijNodes")
    for host in hosts:
        _sub(_sub(nodes, "MedMijNode"), "Hostname", host)

    documents = {ListKind.ZAL: zal, ListKind.OCL: ocl, ListKind.GNL: gnl, ListKind.WHL: whl}
    result = {kind: _serialize(root) for kind, root in documents.items()}
    for kind, data in result.items():
        parse_list(data, development=True, expected_kind=kind)  # raises ListValidationError with the reason
    return result


def write_demo_lists(
    out_dir: str | os.PathLike[str],
    *,
    dvza_hostname: str,
    aanbieder_naam: str,
    aanbieder_weergavenaam: str,
    pgo_hostname: str,
    pgo_name: str,
    gegevensdiensten: Mapping[str, str],
    authorize_url: str,
    token_url: str,
    fhir_base_url: str,
    volgnummer: int = 1,
    interfaceversie: str = "1.4.0",
    tijdstempel: datetime | None = None,
    systeemrolcodes: Mapping[str, str] | None = None,
    extra_whitelist: Iterable[str] = (),
) -> dict[ListKind, Path]:
    """Write MedMij_Zorgaanbiederslijst.xml, MedMij_OAuthclientlist.xml, MedMij_Gegevensdienstnamenlijst.xml and
    MedMij_Whitelist.xml (official file names, §2.1) plus ``demo-network.json`` into ``out_dir``.

    Not MedMij-valid, for the development network only: the lists parse with ``development=True``. The OCL lists the
    PGO (client_id = ``pgo_hostname``); the Whitelist holds the PGO and DVZA hostnames (and the token/FHIR hosts);
    the ZAL (release3) offers every gegevensdienst of ``gegevensdiensten`` (id → GNL Weergavenaam) at the given
    endpoints. Raise the ``volgnummer`` when rewriting lists that a running ListService already has (§2.2).
    """
    documents = build_demo_lists(
        dvza_hostname=dvza_hostname,
        aanbieder_naam=aanbieder_naam,
        pgo_hostname=pgo_hostname,
        pgo_name=pgo_name,
        gegevensdiensten=gegevensdiensten,
        authorize_url=authorize_url,
        token_url=token_url,
        fhir_base_url=fhir_base_url,
        volgnummer=volgnummer,
        interfaceversie=interfaceversie,
        tijdstempel=tijdstempel,
        systeemrolcodes=systeemrolcodes,
        extra_whitelist=extra_whitelist,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[ListKind, Path] = {}
    for kind, data in documents.items():
        paths[kind] = out / kind.file_name
        _write_atomic(paths[kind], data)
    network = {
        "development_only": True,
        "volgnummer": volgnummer,
        "dvza": {
            "hostname": dvza_hostname,
            "aanbieder_naam": aanbieder_key(aanbieder_naam),
            "aanbieder_weergavenaam": aanbieder_weergavenaam,
            "authorize_url": authorize_url,
            "token_url": token_url,
            "fhir_base_url": fhir_base_url,
            "interfaceversie": interfaceversie,
        },
        "pgo": {"hostname": pgo_hostname, "client_id": pgo_hostname, "name": pgo_name},
        "gegevensdiensten": {str(k).strip(): v for k, v in gegevensdiensten.items()},
        "lists": {kind.value: path.name for kind, path in paths.items()},
    }
    _write_atomic(out / DEMO_NETWORK_FILE, (json.dumps(network, indent=2, ensure_ascii=False) + "\n").encode())
    return paths
