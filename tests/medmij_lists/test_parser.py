"""Parsing and validation of the MedMij lists (protocol doc §2): official examples parse, broken lists are refused."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from medmij_lists import GegevensdienstNamenLijst
from medmij_lists import ListKind
from medmij_lists import ListValidationError
from medmij_lists import OAuthClientList
from medmij_lists import Whitelist
from medmij_lists import WhitelistModel
from medmij_lists import Zorgaanbiederskoppellijst
from medmij_lists import Zorgaanbiederslijst
from medmij_lists import detect_kind
from medmij_lists import parse_file
from medmij_lists import parse_list
from tests.medmij_lists.samples import LISTS
from tests.medmij_lists.samples import OCL_NS
from tests.medmij_lists.samples import gnl_xml
from tests.medmij_lists.samples import needs_lists
from tests.medmij_lists.samples import ocl_xml
from tests.medmij_lists.samples import whl_xml
from tests.medmij_lists.samples import zal_xml

EXAMPLES = sorted(LISTS.glob("*/examples/*.xml")) if LISTS.is_dir() else []


# ------------------------------------------------------------------------------------------------------------------
# Official examples (reference data in the shared dir, never copied into the repo)


def test_shared_examples_are_found() -> None:
    needs_lists()
    assert len(EXAMPLES) >= 10, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_official_example_parses_strictly(path) -> None:
    parsed = parse_file(path)
    assert parsed.volgnummer > 0
    assert parsed.tijdstempel.tzinfo is not None
    assert len(parsed) > 0
    assert detect_kind(path.read_bytes()) is parsed.kind


@pytest.mark.parametrize("release", ["release1.0", "release1.1"])
def test_ocl_example_lookups(release: str) -> None:
    ocl = parse_file(needs_lists() / release / "examples" / "MedMij_OAuthclientlist_example.xml")
    assert isinstance(ocl, OAuthClientList)
    assert ocl.kind is ListKind.OCL
    assert ocl.volgnummer == 522
    assert ocl.tijdstempel == dt.datetime(2018, 4, 16, 11, 41, 59, tzinfo=dt.UTC)
    assert ocl.organisatienaam("medmij.deenigeechtepgo.nl") == "De Enige Echte PGO"
    assert ocl.organisatienaam("MEDMIJ.DeEnigeEchtePGO.nl.") == "De Enige Echte PGO"
    assert ocl.contains("pgocluster68.personalhealthprovider.net")
    assert ocl.organisatienaam("evil.example.nl") is None
    assert not ocl.contains("evil.example.nl")


def test_gnl_example_lookups() -> None:
    gnl = parse_file(needs_lists() / "release1.1" / "examples" / "MedMij_Gegevensdienstnamenlijst_example.xml")
    assert isinstance(gnl, GegevensdienstNamenLijst)
    assert gnl.volgnummer == 28800
    assert gnl.weergavenaam("4") == "Laboratoriumresultaten"
    assert gnl.weergavenaam(7) == "Afspraken"
    assert gnl.weergavenaam("48") is None
    assert gnl.ids == ("1", "2", "3", "4", "5", "6", "7")


@pytest.mark.parametrize(
    ("relpath", "model", "count"),
    [
        ("release1.0/examples/MedMij_Whitelist_example.xml", WhitelistModel.TEXT, 8),
        ("release1.1/examples/MedMij_Whitelist_example.xml", WhitelistModel.HOSTNAME, 7),
        ("release2-current/examples/whitelist_stub_mgo.xml", WhitelistModel.HOSTNAME, 7),
    ],
)
def test_both_whitelist_content_models(relpath: str, model: WhitelistModel, count: int) -> None:
    whl = parse_file(needs_lists() / relpath)
    assert isinstance(whl, Whitelist)
    assert whl.model is model
    assert len(whl.hostnames) == count
    assert whl.contains("78834.umcharderwijk.nl")
    assert whl.contains("RCF-RSO.NL")
    assert not whl.contains("umcharderwijk.nl")
    assert whl.contains_any(["nope.example.nl", "medmij.xisbridge.net"])
    assert not whl.contains_any(["nope.example.nl"])


@pytest.mark.parametrize("release", ["release1.0", "release1.1"])
def test_zal_release2_lookups(release: str) -> None:
    zal = parse_file(needs_lists() / release / "examples" / "MedMij_Zorgaanbiederslijst_example.xml")
    assert isinstance(zal, Zorgaanbiederslijst)
    assert zal.release == "release2"
    assert zal.volgnummer == 6
    aanbieder = zal.aanbieder("umcharderwijk@medmij")
    assert aanbieder is not None
    assert zal.aanbieder("umcharderwijk") is aanbieder  # the R1 scope drops @medmij (§3.2)
    dienst = aanbieder.gegevensdienst("6")
    assert dienst is not None
    assert dienst.interfaceversie is None
    assert dienst.authorization_endpoint == "https://78834.umcharderwijk.nl/oauth/authorize"
    assert dienst.token_endpoint == "https://78834.umcharderwijk.nl:8099/oauth/token"
    assert dienst.resource_endpoints == ("https://78834.umcharderwijk.nl:9100/pdfa",)  # two roles, one URI
    assert [r.code for r in dienst.systeemrollen] == ["MM-1.0.0-PLB-FHIR", "MM-1.0.0-PDB-FHIR"]
    assert dienst.resource_endpoint("MM-1.0.0-PDB-FHIR") == "https://78834.umcharderwijk.nl:9100/pdfa"
    assert aanbieder.gegevensdienst("99") is None
    assert zal.aanbieder("onbekend@medmij") is None


def test_zal_release3_lookups() -> None:
    zal = parse_file(needs_lists() / "release2-current" / "examples" / "MedMij_Zorgaanbiederslijst_example.9.3.xml")
    assert isinstance(zal, Zorgaanbiederslijst)
    assert zal.release == "release3"
    assert zal.volgnummer == 9
    assert zal.tijdstempel == dt.datetime(2021, 5, 4, 17, 13, 51, tzinfo=dt.UTC)
    aanbieder = zal.aanbieder("radiologencentraalflevoland")
    assert aanbieder is not None
    assert aanbieder.aanbiedertype == "ZA"
    assert [v.id for v in aanbieder.interfaceversies] == ["1.4.0"]
    dienst = aanbieder.gegevensdienst("1")
    assert dienst is not None
    assert dienst.interfaceversie == "1.4.0"
    assert dienst.authorization_endpoint == "https://medmij.za983.xisbridge.net/oauth/authorize"
    assert dienst.token_endpoint == "https://medmij.xisbridge.net/oauth/token"
    assert dienst.resource_endpoints == ("https://rcf-rso.nl/rcf/fhir-stu3",)
    assert dienst.abonneren is not None
    assert dienst.abonneren.maximale_duur == 90
    assert dienst.abonneren.subscription_endpoint == "https://medmij.xisbridge.net/subscription"
    assert aanbieder.gegevensdienst("1", interfaceversie="1.3.0") is None


def test_zakl_example() -> None:
    zakl = parse_file(
        needs_lists() / "release2-current" / "examples" / "MedMij_Zorgaanbiederskoppellijst_example.5.1.xml"
    )
    assert isinstance(zakl, Zorgaanbiederskoppellijst)
    assert zakl.kind is ListKind.ZAKL
    entry = zakl.aanbieder("radiologencentraalflevoland")
    assert entry is not None
    assert entry.kenmerk("URA") == "12345678"
    assert entry.kenmerk("oin") == "23885731954438865098"
    assert entry.kenmerk("AGB") is None
    assert entry.gegevensdiensten[0].interfaceversies == ("1.3.0", "1.4.0")


# ------------------------------------------------------------------------------------------------------------------
# Our own samples


def test_sample_lists_parse() -> None:
    assert parse_list(ocl_xml()).organisatienaam("pgo.example.nl") == "Voorbeeld PGO"
    assert parse_list(gnl_xml()).weergavenaam("48") == "Basisgegevens zorg"
    assert parse_list(whl_xml()).contains("dvza.example.nl")
    zal = parse_list(zal_xml())
    dienst = zal.aanbieder("voorbeeldziekenhuis").gegevensdienst(48)
    assert dienst.token_endpoint == "https://dvza.example.nl:8444/oauth/token"


def test_models_are_frozen() -> None:
    ocl = parse_list(ocl_xml())
    with pytest.raises(AttributeError):
        ocl.volgnummer = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ocl.clients[0].hostname = "x.nl"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------------------------
# Refused lists: each with a clear reason and rule


def _refused(data: bytes, rule: str, *fragments: str, **kwargs) -> ListValidationError:
    with pytest.raises(ListValidationError) as info:
        parse_list(data, **kwargs)
    error = info.value
    assert error.rule == rule, str(error)
    for fragment in fragments:
        assert fragment in str(error), str(error)
    return error


def test_wrong_namespace() -> None:
    data = ocl_xml().replace(b"oauthclientlist/release2/", b"oauthclientlist/1_0/schema/")
    error = _refused(data, "namespace", "OAuthclientlist", "1_0/schema")
    assert error.kind == "OCL"


def test_no_namespace_and_unknown_root() -> None:
    _refused(ocl_xml().replace(f' xmlns="{OCL_NS}"'.encode(), b""), "namespace")
    _refused(b"<html><body/></html>", "namespace", "not a MedMij list")


def test_missing_element_reports_line() -> None:
    data = ocl_xml().replace(b"<Volgnummer>1</Volgnummer>\n", b"")
    error = _refused(data, "xsd", "OAuthclients", "Volgnummer")
    assert error.line == 4  # the unexpected OAuthclients element


def test_hostname_without_dot() -> None:
    _refused(ocl_xml(clients=[("localhost", "Lokale PGO")]), "xsd", "localhost", "pattern")
    _refused(whl_xml(hosts=["pgonode"]), "xsd", "pgonode")


def test_hostname_without_dot_is_refused_in_development_too() -> None:
    _refused(ocl_xml(clients=[("localhost", "Lokale PGO")]), "xsd", development=True)


def test_upper_case_or_port_in_hostname() -> None:
    _refused(ocl_xml(clients=[("PGO.example.nl", "Voorbeeld PGO")]), "xsd")
    _refused(whl_xml(hosts=["pgo.example.nl:443"]), "xsd")


def test_port_in_frontchannel_is_refused_strictly_and_allowed_in_development() -> None:
    data = zal_xml(authorize="https://dvza.example.nl:8443/oauth/authorize")
    _refused(data, "xsd", "AuthorizationEndpointuri", "8443")
    zal = parse_list(data, development=True)
    dienst = zal.aanbieder("voorbeeldziekenhuis").gegevensdienst("48")
    assert dienst.authorization_endpoint == "https://dvza.example.nl:8443/oauth/authorize"


def test_development_relaxes_nothing_else_in_frontchannel() -> None:
    for uri in (
        "http://dvza.example.nl/oauth/authorize",
        "https://dvza.example.nl/oauth/authorize?x=1",
        "https://dvza.example.nl/oauth/authorize#f",
        "https://localhost:8443/oauth/authorize",
    ):
        _refused(zal_xml(authorize=uri), "xsd", development=True)


def test_port_in_backchannel_is_fine() -> None:
    parse_list(zal_xml(token="https://dvza.example.nl:9443/token", resource="https://dvza.example.nl:9443/fhir"))


def test_special_use_hostnames_only_in_development() -> None:
    for data in (
        ocl_xml(clients=[("pgo.localhost", "Demo PGO")]),
        whl_xml(hosts=["dvza.test"]),
        zal_xml(authorize="https://dvza.localhost/oauth/authorize"),
        zal_xml(resource="https://fhir.example:8444/fhir"),
    ):
        _refused(data, "hostname", "special-use", "development=True")
        assert parse_list(data, development=True).volgnummer == 1


def test_doctype_and_entities_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
        + ocl_xml().split(b"\n", 1)[1].replace(b"Voorbeeld PGO", b"&lol2;")
    )
    _refused(bomb, "doctype", "DOCTYPE")
    external = (
        b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">\n' + ocl_xml().split(b"\n", 1)[1]
    )
    _refused(external, "doctype")
    lower = ocl_xml().replace(b"?>\n", b"?>\n<!doctype OAuthclientlist>\n", 1)
    _refused(lower, "doctype")


def test_oversize_is_refused_before_parsing() -> None:
    data = ocl_xml()
    _refused(data, "size", str(len(data)), max_bytes=len(data) - 1)
    assert parse_list(data, max_bytes=len(data)).volgnummer == 1


def test_oversize_file(tmp_path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(ocl_xml() + b"<!--" + b"x" * 1000 + b"-->")
    with pytest.raises(ListValidationError) as info:
        parse_file(path, max_bytes=500)
    assert info.value.rule == "size"


@pytest.mark.parametrize(
    "data",
    [ocl_xml(clients=[]), gnl_xml(diensten=[]), whl_xml(hosts=[])],
    ids=["ocl", "gnl", "whl"],
)
def test_empty_list_is_refused(data: bytes) -> None:
    _refused(data, "empty", "no entries")
    assert len(parse_list(data, allow_empty=True)) == 0


def test_duplicates_are_refused() -> None:
    _refused(ocl_xml(clients=[("pgo.example.nl", "Een"), ("pgo.example.nl", "Twee")]), "duplicate", "pgo.example.nl")
    _refused(gnl_xml(diensten=[("48", "Een"), ("48", "Twee")]), "duplicate")
    _refused(whl_xml(hosts=["a.example.nl", "a.example.nl"]), "duplicate")
    _refused(zal_xml(ids=["48", "48"]), "duplicate")


def test_duplicate_in_text_model_whitelist() -> None:
    data = whl_xml().replace(
        b"<MedMijNodes><MedMijNode><Hostname>pgo.example.nl</Hostname></MedMijNode>"
        b"<MedMijNode><Hostname>dvza.example.nl</Hostname></MedMijNode></MedMijNodes>",
        b"<MedMijNodes><MedMijNode>a.example.nl</MedMijNode><MedMijNode>a.example.nl</MedMijNode></MedMijNodes>",
    )
    _refused(data, "duplicate")


def test_header_rules() -> None:
    _refused(ocl_xml(volgnummer=0), "xsd", "Volgnummer")
    _refused(ocl_xml().replace(b"2026-01-02T03:04:05Z", b"2026-01-02T03:04Z"), "xsd", "Tijdstempel")
    _refused(ocl_xml().replace(b"2026-01-02T03:04:05Z", b"gisteren"), "xsd")


def test_zal_name_rule() -> None:
    _refused(zal_xml(naam="Ziekenhuis@medmij"), "xsd")
    _refused(zal_xml(naam="ziekenhuis"), "xsd")


def test_not_xml() -> None:
    _refused(b"", "not-xml")
    _refused(b"<OAuthclientlist", "not-xml", "well-formed")
    _refused(b"\x00\x01garbage", "not-xml")


def test_expected_kind() -> None:
    _refused(gnl_xml(), "kind", "expected a OCL", expected_kind=ListKind.OCL)


def test_lxml_parser_is_not_asked_to_resolve_anything() -> None:
    # An XInclude / external reference stays inert: the parser has no network and loads no DTD.
    data = ocl_xml().replace(
        b"<Volgnummer>", b'<x:include xmlns:x="http://www.w3.org/2001/XInclude" href="/etc/passwd"/><Volgnummer>'
    )
    error = _refused(data, "xsd")
    assert "root:" not in str(error)


def test_error_message_is_readable() -> None:
    error = _refused(ocl_xml(clients=[("localhost", "Lokale PGO")]), "xsd")
    text = str(error)
    assert text.startswith("OCL: not valid against the OAuth Client List schema")
    assert "[rule: xsd]" in text
    assert error.reason in text


def test_our_schema_agrees_with_the_official_one_on_broken_release11_lists() -> None:
    """Where the rule is an XSD rule, the official R1.1 XSD refuses what ours refuses (and accepts what it accepts)."""
    xsd_path = needs_lists() / "release1.1" / "xsd" / "MedMij_OAuthclientlist.xsd"
    official = etree.XMLSchema(etree.parse(str(xsd_path)))
    cases = {
        ocl_xml(): True,
        ocl_xml(clients=[("localhost", "Lokale PGO")]): False,
        ocl_xml(clients=[("a.example.nl", "X")]): False,
        ocl_xml(clients=[("a.example.nl", "Een"), ("a.example.nl", "Twee")]): False,
        ocl_xml(volgnummer=0): False,
        ocl_xml(clients=[("a-b.example.nl", "Goed")]): True,
    }
    for data, ok in cases.items():
        assert official.validate(etree.fromstring(data)) is ok
        if ok:
            parse_list(data)
        else:
            with pytest.raises(ListValidationError):
                parse_list(data)
