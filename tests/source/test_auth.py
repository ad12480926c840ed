"""Who may call the source API: only a configured source system (its pinned client certificate, or in
development an API key). Unauthenticated calls, other certificates (also a PGO's), OAuth tokens (also a real PGO
token) and certificate headers from untrusted addresses are refused, change nothing and are audited."""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dvza.config import ConfigError
from dvza.models import AuditRecord
from dvza.source.auth import hash_key
from tests.oauth.conftest import CERTS as PGO_CERTS
from tests.oauth.conftest import Browser
from tests.oauth.pki import client_certificate_pem
from tests.source.conftest import BASE
from tests.source.conftest import CERTS
from tests.source.conftest import DEV_KEY
from tests.source.conftest import EPD
from tests.source.conftest import PGO
from tests.source.conftest import Source
from tests.source.conftest import audit_records
from tests.source.conftest import patient
from tests.source.conftest import rows
from tests.source.conftest import source_config
from tests.source.conftest import weight
from tests.support import make_app

BSN = "999911120"


def test_unauthenticated_calls_are_refused_change_nothing_and_are_audited(source_app: t.Any) -> None:
    anonymous = Source(source_app, None)
    for method, path, body in (("PUT", "/Patient/a1", patient("a1", BSN)), ("GET", "/Patient/a1", None),
                               ("DELETE", "/Patient/a1", None), ("POST", "/", {"resourceType": "Bundle"}),
                               ("POST", "/$import", "{}")):
        response = anonymous.call(method, path, body)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("DVZA-Source")
        assert response.get_json()["issue"][0]["code"] == "login"
    assert rows(source_app) == []
    refused = audit_records(source_app, AuditRecord.actor == "source:unauthenticated")
    assert len(refused) == 5 and {r.outcome for r in refused} == {"401"}


def test_a_wrong_certificate_is_refused(source_app: t.Any) -> None:
    """The same name as a source but another certificate, or a PGO's certificate: not a source (pinned by
    fingerprint, not trusted for a name or an issuer)."""
    impostor = client_certificate_pem(EPD)
    for pem in (impostor, PGO_CERTS[PGO]):
        response = source_app.test_client().put(f"{BASE}/Patient/a1", json=patient("a1", BSN),
                                                environ_overrides={"SSL_CLIENT_CERT": pem},
                                                headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 403
        assert "not one of the configured source systems" in response.get_json()["issue"][0]["diagnostics"]
    assert rows(source_app) == []


def test_an_expired_source_certificate_is_refused(databases: t.Any, tmp_path_factory: t.Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, EPD)])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    expired = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(past)
               .not_valid_after(past + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = expired.public_bytes(serialization.Encoding.PEM).decode()
    from dvza.source.auth import fingerprint

    app = make_app(databases, tmp_path_factory, **source_config(SOURCE_CERTIFICATES={"epd": fingerprint(expired)}))
    response = app.test_client().get(f"{BASE}/Patient/a1", environ_overrides={"SSL_CLIENT_CERT": pem})
    assert response.status_code == 403 and "not valid now" in response.get_json()["issue"][0]["diagnostics"]


def test_the_certificate_header_counts_only_from_trusted_proxies(databases: t.Any, tmp_path_factory: t.Any) -> None:
    app = make_app(databases, tmp_path_factory, **source_config(TRUSTED_PROXIES=["10.0.0.0/8"]))
    header = {"X-SSL-Client-Cert": quote(CERTS[EPD]), "Content-Type": "application/fhir+json"}
    client = app.test_client()
    spoofed = client.put(f"{BASE}/Patient/a1", json=patient("a1"), headers=header,
                         environ_overrides={"REMOTE_ADDR": "192.0.2.7"})
    assert spoofed.status_code == 401
    via_proxy = client.put(f"{BASE}/Patient/a1", json=patient("a1"), headers=header,
                           environ_overrides={"REMOTE_ADDR": "10.1.2.3"})
    assert via_proxy.status_code == 201


def test_a_pgo_token_never_reaches_the_source_api(source_app: t.Any, epd: Source) -> None:
    """A real access token (login, consent, token over mutual TLS) for a patient the source registered: it
    reads that patient's data on the FHIR API, and is refused on the source API — with the PGO's certificate,
    alone, or even next to a source's certificate. Source credentials, the other way round, are no token."""
    assert epd.put(patient("pt-1", BSN)).status_code == 201
    assert epd.put(weight("w-1", "pt-1")).status_code == 201
    browser = Browser(source_app)
    issued = browser.token(browser.code_for(BSN, scope="umcdemo"))
    assert issued.status_code == 200, issued.get_data(as_text=True)
    token = issued.get_json()["access_token"]
    assert browser.fhir("Observation", token).get_json()["total"] == 1
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    for environ in ({"SSL_CLIENT_CERT": PGO_CERTS[PGO]}, {}, {"SSL_CLIENT_CERT": CERTS[EPD]}):
        for method, path in (("GET", "/Observation/w-1"), ("PUT", "/Observation/w-1"), ("DELETE", "/Patient/pt-1")):
            response = source_app.test_client().open(f"{BASE}{path}", method=method, headers=bearer,
                                                     json=weight("w-1", "pt-1", 99), environ_overrides=environ)
            assert response.status_code == 403, (environ.keys(), method, path)
            assert "OAuth access tokens" in response.get_json()["issue"][0]["diagnostics"]
    assert [r.version_id for r in rows(source_app)] == [1, 1]
    fhir = source_app.test_client()
    assert fhir.get("/fhir/Observation", environ_overrides={"SSL_CLIENT_CERT": CERTS[EPD]}).status_code == 401
    assert fhir.get("/fhir/Observation", headers={"Authorization": f"Bearer {DEV_KEY}"}).status_code == 401


def test_api_keys_are_development_only_and_switched_on_explicitly(databases: t.Any,
                                                                  tmp_path_factory: t.Any) -> None:
    with pytest.raises(ConfigError, match="SOURCE_API_KEYS_ALLOWED"):
        make_app(databases, tmp_path_factory, **source_config(SOURCE_API_KEYS_ALLOWED=False))
    with pytest.raises(ConfigError, match="SHA-256"):
        make_app(databases, tmp_path_factory, **source_config(SOURCE_API_KEYS={"dev": DEV_KEY}))
    with pytest.raises(ConfigError, match="source name"):
        make_app(databases, tmp_path_factory, **source_config(SOURCE_API_KEYS={"dvza:testdata": hash_key("x")}))
    app = make_app(databases, tmp_path_factory, **source_config())
    assert Source(app, None, key=DEV_KEY).put(patient("k1")).status_code == 201
    assert Source(app, None, key="guessed").put(patient("k2")).status_code == 401
    [record] = audit_records(app, AuditRecord.event_type == "source.update", AuditRecord.outcome == "201")
    assert record.actor == "source:dev" and record.client_id == "dev (api-key)"


def test_without_a_configured_source_there_is_no_source_api(databases: t.Any, tmp_path_factory: t.Any) -> None:
    app = make_app(databases, tmp_path_factory)
    response = app.test_client().put(f"{BASE}/Patient/a1", json=patient("a1", BSN),
                                     environ_overrides={"SSL_CLIENT_CERT": CERTS[EPD]})
    assert response.status_code == 404
    assert rows(app) == []


def test_every_call_is_audited_with_the_source_name(source_app: t.Any, epd: Source) -> None:
    assert epd.put(patient("pt-1", BSN)).status_code == 201
    assert epd.call("GET", "/Patient/pt-1").status_code == 200
    assert epd.call("GET", "/Patient/nobody").status_code == 404
    calls = audit_records(source_app, AuditRecord.actor == "source:epd")
    assert [(r.event_type, r.outcome) for r in calls] == [
        ("source.update", "success"), ("source.update", "201"), ("source.read", "200"), ("source.read", "404")]
    change = calls[0]
    assert change.patient_id == "pt-1" and change.resource_ids == "c:Patient/pt-1"
    assert calls[1].client_id == "epd (mtls)" and calls[1].patient_id == "pt-1"
    everything = " ".join(f"{r.resource_ids} {r.detail} {r.query}" for r in audit_records(source_app))
    assert BSN not in everything

