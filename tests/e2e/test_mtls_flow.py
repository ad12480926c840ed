"""Issue 4, end to end: the MedMij flow over real TLS listeners with certificates from ``certs/``.

The backchannel (gunicorn, ``--cert-reqs 2``) requires a client certificate from the development
CA; the token endpoint then checks it against ``client_id``, the OCL and the Whitelist (RFC 8705
§2, medmij-protocol.md §4.3) and binds the token to it (RFC 8705 §3).
"""

from __future__ import annotations

import typing as t

import pytest
import requests

from dvza.pgo.client import PgoError
from dvza.pgo.content import batch_outcome
from dvza.pgo.content import blood_pressure_bundle
from dvza.pgo.frontchannel import authorize_with_dev_login
from tests.e2e.conftest import STRANGER
from tests.e2e.conftest import person

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _code(network: t.Any, diensten: list[str], *, grant: bool = True, bsn: str | None = None) -> dict[str, str]:
    client = network.pgo_client()
    url = client.authorize_url(network.aanbieder(), diensten, state="e2e-state")
    return authorize_with_dev_login(url, bsn=bsn or person(network), grant=grant,
                                    verify=str(network.pki.ca_cert), redirect_prefix=client.redirect_uri)


def test_token_over_mutual_tls_and_bgz_read(network: t.Any) -> None:
    answer = _code(network, ["48"])
    assert answer["state"] == "e2e-state" and "code" in answer
    client, aanbieder = network.pgo_client(), network.aanbieder()
    grant = client.exchange_code(aanbieder, answer["code"])
    assert grant.expires_in == 900
    patients = client.get(aanbieder, grant.access_token, "Patient")
    assert patients["resourceType"] == "Bundle" and patients["total"] == 1
    # documents (51) were not in the consent: 403 with an OperationOutcome
    with pytest.raises(PgoError, match="403"):
        client.get(aanbieder, grant.access_token, "DocumentReference?status=current")
    # the code was used: a second exchange fails
    with pytest.raises(PgoError, match="invalid_grant"):
        client.exchange_code(aanbieder, answer["code"])


def test_backchannel_refuses_a_connection_without_client_certificate(network: t.Any) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(network.aanbieder().token_url, data={"grant_type": "authorization_code"},
                      verify=str(network.pki.ca_cert), timeout=10)


def test_certificate_of_a_client_not_on_the_ocl_is_refused(network: t.Any) -> None:
    answer = _code(network, ["48"])
    stranger = network.pki.clients[STRANGER]
    response = requests.post(network.aanbieder().token_url, verify=str(network.pki.ca_cert), timeout=10,
                             cert=(str(stranger.cert), str(stranger.key)),
                             data={"grant_type": "authorization_code", "code": answer["code"],
                                   "client_id": STRANGER, "redirect_uri": network.pgo_client().redirect_uri})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"  # RFC 6749 §5.2
    # the certificate does not match client_id either way
    response = requests.post(network.aanbieder().token_url, verify=str(network.pki.ca_cert), timeout=10,
                             cert=(str(stranger.cert), str(stranger.key)),
                             data={"grant_type": "authorization_code", "code": answer["code"],
                                   "client_id": network.pgo_hostname,
                                   "redirect_uri": network.pgo_client().redirect_uri})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"  # RFC 6749 §5.2


def test_token_is_bound_to_the_certificate(network: t.Any) -> None:
    grant = network.pgo_client().exchange_code(network.aanbieder(), _code(network, ["48"])["code"])
    stranger = network.pki.clients[STRANGER]
    response = requests.get(f"{network.fhir_base}/Patient", verify=str(network.pki.ca_cert), timeout=10,
                            cert=(str(stranger.cert), str(stranger.key)),
                            headers={"Authorization": f"Bearer {grant.access_token}",
                                     "Accept": "application/fhir+json"})
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"


def test_refused_consent_comes_back_as_access_denied(network: t.Any) -> None:
    answer = _code(network, ["48"], grant=False)
    assert answer["error"] == "access_denied" and answer["state"] == "e2e-state"
    assert "code" not in answer


def test_measurement_sent_lands_in_the_return_queue(network: t.Any) -> None:
    client, aanbieder = network.pgo_client(), network.aanbieder()
    grant = client.exchange_code(aanbieder, _code(network, ["53"])["code"])
    answer = client.post_bundle(aanbieder, grant.access_token, blood_pressure_bundle(131, 84))
    assert answer["type"] == "batch-response"
    assert any(line.startswith("201") for line in batch_outcome(answer)), batch_outcome(answer)
