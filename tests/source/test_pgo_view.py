"""What the source writes is what the PGO reads: a BgZ read through the PGO-facing API, over the real login,
consent and token, right after each change. And the PGO-facing API takes no BSN, ever."""

from __future__ import annotations

import json
import typing as t

from fhir_api import fhirxml
from tests.oauth.conftest import CERTS as PGO_CERTS
from tests.oauth.conftest import PGO
from tests.source.conftest import Source
from tests.source.conftest import condition
from tests.source.conftest import patient
from tests.source.conftest import weight
from tests.source.test_identity import login_token
from tests.source.test_identity import pgo

BSN = "999911120"
SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"


def entries(response: t.Any) -> dict[str, dict[str, t.Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    return {e["resource"]["id"]: e["resource"] for e in response.get_json().get("entry", [])}


def test_a_bgz_read_shows_what_the_source_just_wrote(source_app: t.Any, epd: Source) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in (patient("pt-1", BSN, family="Bakker"), condition("c-1", "pt-1"),
                  weight("w-1", "pt-1", 70, effectiveDateTime="2024-01-01T10:00:00+01:00"),
                  weight("w-2", "pt-1", 71, effectiveDateTime="2024-03-01T10:00:00+01:00"))]}
    assert epd.call("POST", "/", bundle).status_code == 200
    token = login_token(source_app, BSN)  # the person logs in with DigiD's BSN: the record the source registered

    [me] = entries(pgo(source_app, "Patient", token)).values()
    assert me["id"] == "pt-1" and me["name"][0]["family"] == "Bakker"
    assert me["identifier"][0]["_value"]["extension"][0]["valueCode"] == "masked" and BSN not in json.dumps(me)
    assert set(entries(pgo(source_app, "Condition", token))) == {"c-1"}
    lastn = "Observation/$lastn?code=http://loinc.org|29463-7"
    latest = entries(pgo(source_app, lastn, token))
    assert list(latest) == ["w-2"] and str(latest["w-2"]["valueQuantity"]["value"]) == "71"

    assert epd.put(weight("w-3", "pt-1", 69, effectiveDateTime="2024-06-01T10:00:00+02:00")).status_code == 201
    assert list(entries(pgo(source_app, lastn, token))) == ["w-3"]
    assert epd.put(weight("w-3", "pt-1", 68, effectiveDateTime="2024-06-01T10:00:00+02:00")).status_code == 200
    assert str(entries(pgo(source_app, lastn, token))["w-3"]["valueQuantity"]["value"]) == "68"
    assert epd.call("DELETE", "/Condition/c-1").status_code == 204
    assert entries(pgo(source_app, "Condition", token)) == {}
    as_xml = source_app.test_client().get(
        "/fhir/Observation/w-3", environ_overrides={"SSL_CLIENT_CERT": PGO_CERTS[PGO]},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+xml"})
    assert as_xml.status_code == 200 and fhirxml.parse_xml(as_xml.data)["meta"]["versionId"] == "2"


def test_the_pgo_facing_api_never_takes_a_bsn(source_app: t.Any, epd: Source) -> None:
    """The BSN the source registered is never usable from the PGO side: searching by it is refused (also with
    handling=lenient), and the stored record shows it only masked."""
    assert epd.put(patient("pt-1", BSN)).status_code == 201
    token = login_token(source_app, BSN)
    for query in (f"Patient?identifier={SYSTEM}|{BSN}", f"Patient?identifier={SYSTEM}|{BSN},x|y",
                  f"Observation?identifier={SYSTEM}|{BSN}"):
        refused = pgo(source_app, query, token)
        assert refused.status_code == 400, query
        assert "BSN" in refused.get_json()["issue"][0]["diagnostics"]
    assert pgo(source_app, f"Patient?identifier={SYSTEM}|", token).status_code == 200  # no value: no BSN
