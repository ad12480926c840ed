"""write_demo_lists: a consistent set of development-network lists (development=True only)."""

from __future__ import annotations

import json

import pytest

from medmij_lists import ListKind
from medmij_lists import ListService
from medmij_lists import ListValidationError
from medmij_lists import parse_file
from medmij_lists import write_demo_lists

DIENSTEN = {"48": "Verzamelen Basisgegevens zorg 3.0", "51": "Verzamelen Documenten 3.0"}


def _write(out, **overrides):
    kwargs = {
        "dvza_hostname": "dvza.localhost",
        "aanbieder_naam": "demoziekenhuis",
        "aanbieder_weergavenaam": "Demo Ziekenhuis",
        "pgo_hostname": "pgo.localhost",
        "pgo_name": "Demo PGO",
        "gegevensdiensten": DIENSTEN,
        "authorize_url": "https://dvza.localhost:8443/oauth/authorize",
        "token_url": "https://dvza.localhost:8444/oauth/token",
        "fhir_base_url": "https://fhir.localhost:8444/fhir",
        "volgnummer": 3,
    }
    kwargs.update(overrides)
    return write_demo_lists(out, **kwargs)


def test_round_trip(tmp_path) -> None:
    paths = _write(tmp_path / "lists")
    assert {k: p.name for k, p in paths.items()} == {
        ListKind.ZAL: "MedMij_Zorgaanbiederslijst.xml",
        ListKind.OCL: "MedMij_OAuthclientlist.xml",
        ListKind.GNL: "MedMij_Gegevensdienstnamenlijst.xml",
        ListKind.WHL: "MedMij_Whitelist.xml",
    }
    parsed = {k: parse_file(p, development=True) for k, p in paths.items()}
    assert {p.volgnummer for p in parsed.values()} == {3}

    ocl = parsed[ListKind.OCL]
    assert ocl.organisatienaam("pgo.localhost") == "Demo PGO"
    gnl = parsed[ListKind.GNL]
    assert gnl.weergavenaam("51") == "Verzamelen Documenten 3.0"
    whl = parsed[ListKind.WHL]
    assert whl.contains("pgo.localhost") and whl.contains("dvza.localhost") and whl.contains("fhir.localhost")
    zal = parsed[ListKind.ZAL]
    assert zal.release == "release3"
    aanbieder = zal.aanbieder("demoziekenhuis")
    assert aanbieder.naam == "demoziekenhuis@medmij" and aanbieder.aanbiedertype == "ZA"
    assert aanbieder.gegevensdienst_ids == ("48", "51")
    dienst = aanbieder.gegevensdienst("48")
    assert dienst.authorization_endpoint == "https://dvza.localhost:8443/oauth/authorize"
    assert dienst.token_endpoint == "https://dvza.localhost:8444/oauth/token"
    assert dienst.resource_endpoints == ("https://fhir.localhost:8444/fhir",)
    assert dienst.systeemrollen[0].code == "MM-2.1-BZB-FHIR"

    network = json.loads((tmp_path / "lists" / "demo-network.json").read_text())
    assert network["development_only"] is True
    assert network["dvza"]["aanbieder_weergavenaam"] == "Demo Ziekenhuis"
    assert network["dvza"]["aanbieder_naam"] == "demoziekenhuis@medmij"
    assert network["pgo"] == {"hostname": "pgo.localhost", "client_id": "pgo.localhost", "name": "Demo PGO"}
    assert network["gegevensdiensten"] == DIENSTEN
    assert not [p for p in (tmp_path / "lists").iterdir() if p.name.endswith(".tmp")]


def test_demo_lists_are_not_medmij_valid(tmp_path) -> None:
    paths = _write(tmp_path)
    for kind in (ListKind.ZAL, ListKind.OCL, ListKind.WHL):  # the GNL holds no hostnames or URLs
        with pytest.raises(ListValidationError):
            parse_file(paths[kind])
    assert parse_file(paths[ListKind.GNL]).volgnummer == 3


def test_demo_lists_with_real_names_are_strictly_valid(tmp_path) -> None:
    paths = _write(
        tmp_path,
        dvza_hostname="dvza.ziekenhuis.nl",
        pgo_hostname="pgo.voorbeeld.nl",
        authorize_url="https://dvza.ziekenhuis.nl/oauth/authorize",
        token_url="https://dvza.ziekenhuis.nl:8444/oauth/token",
        fhir_base_url="https://dvza.ziekenhuis.nl:8444/fhir",
    )
    for kind, path in paths.items():
        assert parse_file(path).kind is kind


def test_demo_lists_feed_a_list_service(tmp_path) -> None:
    paths = _write(tmp_path / "lists")
    service = ListService({k: str(p) for k, p in paths.items()}, cache_dir=tmp_path / "cache", development=True)
    service.refresh()
    assert all(s.last_error is None and s.volgnummer == 3 for s in service.status().values())
    _write(tmp_path / "lists", volgnummer=4, pgo_name="Andere PGO")
    service.refresh()
    assert service.ocl.organisatienaam("pgo.localhost") == "Andere PGO"


def test_bad_input_is_refused_before_writing(tmp_path) -> None:
    with pytest.raises(ListValidationError):
        _write(tmp_path / "a", aanbieder_naam="Demo Ziekenhuis")
    with pytest.raises(ListValidationError):
        _write(tmp_path / "b", pgo_hostname="pgo")  # no dot
    with pytest.raises(ValueError):
        _write(tmp_path / "c", gegevensdiensten={})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
