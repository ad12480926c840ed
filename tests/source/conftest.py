"""An app with the source API switched on: two sources by client certificate (``epd``, ``lab``), one by
development API key (``dev``), a PGO on the MedMij lists, and helpers to write through the source API."""

from __future__ import annotations

import json
import typing as t

import pytest

from dvza.source.auth import fingerprint
from dvza.source.auth import hash_key
from oauth.directory import StaticDirectory
from oauth.mtls import load_certificate
from tests.oauth.conftest import PGO
from tests.oauth.pki import client_certificate_pem
from tests.support import make_app

EPD, LAB = "epd.ziekenhuis.example", "lab.ziekenhuis.example"
CERTS = {host: client_certificate_pem(host) for host in (EPD, LAB)}
DEV_KEY = "dev-source-key-for-tests-only"
BASE = "/source/fhir"
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
PROFILE = {"Patient": "http://fhir.nl/fhir/StructureDefinition/nl-core-patient",
           "Observation": "http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight",
           "Condition": "http://nictiz.nl/fhir/StructureDefinition/zib-Problem"}


def source_config(**extra: t.Any) -> dict[str, t.Any]:
    def print_of(host: str) -> str:
        certificate = load_certificate(CERTS[host])
        assert certificate is not None
        return fingerprint(certificate)

    return {"SOURCE_CERTIFICATES": {"epd": print_of(EPD), "lab": print_of(LAB)},
            "SOURCE_API_KEYS": {"dev": hash_key(DEV_KEY)}, "SOURCE_API_KEYS_ALLOWED": True,
            "QUALIFICATION_MODE": False, "FRONTCHANNEL_SECURE_COOKIES": False, **extra}


def with_pgo_directory(app: t.Any) -> t.Any:
    app.extensions["oauth"].directory = StaticDirectory(
        clients={PGO: "Test-PGO"}, whitelist={PGO},
        diensten={"48": "Basisgegevens zorg", "51": "Documenten", "52": "Meetwaarden vitale functies"})
    return app


@pytest.fixture()
def source_app(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = with_pgo_directory(make_app(databases, tmp_path_factory, **source_config()))
    yield app
    app.extensions["dvza.db"].dispose()


class Source:
    """One source system calling the source API (by its certificate, or by the development key)."""

    def __init__(self, app: t.Any, host: str | None = EPD, *, key: str | None = None):
        self.app = app
        self.client = app.test_client()
        self.environ = {"SSL_CLIENT_CERT": CERTS[host]} if host else {}
        self.headers = {"X-Api-Key": key} if key else {}

    def call(self, method: str, path: str, body: t.Any = None, *, content_type: str = "application/fhir+json",
             **headers: str) -> t.Any:
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        return self.client.open(f"{BASE}{path}", method=method, data=data, environ_overrides=self.environ,
                                headers={"Content-Type": content_type, "Accept": "application/fhir+json",
                                         **self.headers, **headers})

    def put(self, resource: dict[str, t.Any], **headers: str) -> t.Any:
        return self.call("PUT", f"/{resource['resourceType']}/{resource['id']}", resource, **headers)


@pytest.fixture()
def epd(source_app: t.Any) -> Source:
    return Source(source_app, EPD)


@pytest.fixture()
def lab(source_app: t.Any) -> Source:
    return Source(source_app, LAB)


# ------------------------------------------------------------------------------------------ resources
def patient(pid: str, bsn: str | None = None, family: str = "Jansen", **extra: t.Any) -> dict[str, t.Any]:
    resource: dict[str, t.Any] = {"resourceType": "Patient", "id": pid, "meta": {"profile": [PROFILE["Patient"]]},
                                  "name": [{"family": family, "given": ["Anna"]}], **extra}
    if bsn:
        resource["identifier"] = [{"system": BSN_SYSTEM, "value": bsn}]
    return resource


def weight(oid: str, pid: str, value: float = 72.5, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "resourceType": "Observation", "id": oid, "meta": {"profile": [PROFILE["Observation"]]}, "status": "final",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2024-05-01T10:00:00+02:00",
        "valueQuantity": {"value": value, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}, **extra,
    }


def condition(cid: str, pid: str, text: str = "Hypertensie") -> dict[str, t.Any]:
    return {
        "resourceType": "Condition", "id": cid, "meta": {"profile": [PROFILE["Condition"]]},
        "clinicalStatus": "active", "verificationStatus": "confirmed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": text}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def rows(app: t.Any, *where: t.Any) -> list[t.Any]:
    from sqlalchemy import select

    from fhir_api.models import ResourceRow

    with app.extensions["dvza.db"].sessionmaker() as session:
        return list(session.scalars(select(ResourceRow).where(*where).order_by(ResourceRow.pk)))


def audit_records(app: t.Any, *where: t.Any) -> list[t.Any]:
    from sqlalchemy import select

    from dvza.models import AuditRecord

    with app.extensions["dvza.db"].sessionmaker() as session:
        return list(session.scalars(select(AuditRecord).where(*where).order_by(AuditRecord.id)))
