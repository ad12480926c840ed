"""A local, DigiD-like SAML identity provider for ``make run`` and the login tests (development only).

It behaves towards a Service Provider as DigiD does (Logius, "Koppelvlakspecificatie DigiD SAML
Authenticatie"): a signed AuthnRequest by HTTP-Redirect; the person's answer as an **artifact** sent
back through the browser (HTTP-Artifact, SAML Bindings §3.6); the message itself only over the SOAP
**backchannel with mutual TLS** (ArtifactResolve → signed ArtifactResponse, each artifact usable
once, §3.6.5.2); a signed assertion with NameID ``s00000000:<BSN>`` and the level in
``AuthnContextClassRef``; cancelling gives ``Responder``/``AuthnFailed``.

It is a real separate process (:class:`DigidIdp` starts ``python -m dvza.devtools.digid_idp``) with
two HTTPS listeners: the frontchannel (the login page the browser sees) and the backchannel, which
demands a client certificate from the development CA (``certs/``) naming the Service Provider's host.

For tests and demonstrations the login page can make the IdP misbehave (``allow_faults``): a tampered
assertion (bad signature), another audience, an expired assertion. The person still chooses the BSN
and the DigiD level, so every path of the Service Provider can be shown on one machine.

Never use this for anything but development: it asks no password.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

IDP_HOSTNAME = "digid.localhost"
SP_TLS_HOSTNAME = "dvza.localhost"
CLASS_REFS = {
    "basis": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    "midden": "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "substantieel": "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard",
    "hoog": "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
}
LEVEL_LABELS = {"basis": "DigiD Basis (gebruikersnaam en wachtwoord)", "midden": "DigiD Midden (sms-controle)",
                "substantieel": "DigiD Substantieel (DigiD app)", "hoog": "DigiD Hoog (identiteitsbewijs)"}
FAULTS = {"": "Geen: een goed antwoord", "bad-signature": "Ongeldige handtekening (BSN na ondertekenen vervangen)",
          "wrong-audience": "Assertion voor een andere dienst (Audience)", "expired": "Verlopen assertion"}
#: how long a pending login and an artifact stay usable
PENDING_SECONDS = 900
ARTIFACT_SECONDS = 120


# ----------------------------------------------------------------------------------------- set-up
@dataclass(slots=True)
class DigidIdp:
    """Files and process of the local IdP. :meth:`prepare` writes keys, certificates and metadata in
    ``root``; :meth:`start` runs the IdP; ``idp_metadata`` is what the Service Provider loads."""

    root: Path
    #: the development PKI (``certs.DevPki``) whose CA signs the IdP's TLS certificate
    pki: t.Any
    front_port: int
    back_port: int
    hostname: str = IDP_HOSTNAME
    #: the host name in the Service Provider's TLS client certificate (checked on the backchannel)
    sp_tls_hostname: str = SP_TLS_HOSTNAME
    allow_faults: bool = True
    #: (name, BSN) of test persons shown as buttons
    persons: t.Sequence[t.Mapping[str, str]] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def entity_id(self) -> str:
        return f"https://{self.hostname}:{self.front_port}/saml/idp/metadata"

    @property
    def front_url(self) -> str:
        return f"https://{self.hostname}:{self.front_port}"

    @property
    def back_url(self) -> str:
        # server to server: an address the DVZA's processes resolve without help (the browser-facing
        # name *.localhost needs dvza.pgo.localnames in Python); the TLS certificate names it too
        return f"https://127.0.0.1:{self.back_port}"

    @property
    def idp_metadata(self) -> Path:
        return self.root / "idp-metadata.xml"

    @property
    def sp_metadata(self) -> Path:
        return self.root / "sp-metadata.xml"

    def file(self, name: str) -> Path:
        return self.root / name

    def prepare(self, sp_settings: t.Any) -> None:
        """Keys and certificates (SAML signing: RSA 2048 for both sides, as DigiD uses; TLS: the IdP's
        server certificate from the development CA), the SP's metadata from ``sp_settings``
        (:class:`oauth.login_saml.SamlSettings`) and the IdP's own metadata."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from certs import pki as devpki
        from oauth.login_saml import _sp_config

        self.root.mkdir(parents=True, exist_ok=True)
        ca = devpki.Issued(x509.load_pem_x509_certificate(Path(self.pki.ca_cert).read_bytes()),
                           serialization.load_pem_private_key(Path(self.pki.ca_key).read_bytes(), None))
        for name, issue in (
            ("idp-signing", lambda: devpki.create_client_certificate(ca, self.hostname, key_type="rsa-2048")),
            ("idp-tls", lambda: devpki.create_server_certificate(ca, [self.hostname, "127.0.0.1"])),
        ):
            if not self.file(f"{name}.pem").exists():
                issued = issue()
                devpki.write_key(self.file(f"{name}-key.pem"), issued.key)
                devpki.write_cert(self.file(f"{name}.pem"), issued.certificate)
        self._write_idp_metadata()
        from saml2.metadata import create_metadata_string

        self.sp_metadata.write_bytes(create_metadata_string(None, config=_sp_config(sp_settings), valid=24 * 365))

    def sp_signing_files(self) -> tuple[Path, Path]:
        """A signing certificate and key for the Service Provider (RSA 2048), made on first use."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from certs import pki as devpki

        cert, key = self.file("sp-signing.pem"), self.file("sp-signing-key.pem")
        if not cert.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            ca = devpki.Issued(x509.load_pem_x509_certificate(Path(self.pki.ca_cert).read_bytes()),
                               serialization.load_pem_private_key(Path(self.pki.ca_key).read_bytes(), None))
            issued = devpki.create_client_certificate(ca, self.sp_tls_hostname, key_type="rsa-2048")
            devpki.write_key(key, issued.key)
            devpki.write_cert(cert, issued.certificate)
        return cert, key

    def _write_idp_metadata(self) -> None:
        cert = "".join(line for line in self.file("idp-signing.pem").read_text().splitlines()
                       if "-----" not in line)
        self.idp_metadata.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    entityID="{self.entity_id}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="true"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:ArtifactResolutionService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
        Location="{self.back_url}/saml/idp/resolve_artifact" index="0" isDefault="true"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{self.front_url}/saml/idp/request_authentication"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
""")

    def config(self) -> dict[str, t.Any]:
        return {
            "entity_id": self.entity_id, "hostname": self.hostname, "front_port": self.front_port,
            "back_port": self.back_port, "signing_cert": str(self.file("idp-signing.pem")),
            "signing_key": str(self.file("idp-signing-key.pem")), "tls_cert": str(self.file("idp-tls.pem")),
            "tls_key": str(self.file("idp-tls-key.pem")), "ca": str(self.pki.ca_cert),
            "sp_metadata": str(self.sp_metadata), "sp_tls_hostname": self.sp_tls_hostname,
            "allow_faults": self.allow_faults, "persons": [dict(p) for p in self.persons],
            "metadata": str(self.idp_metadata),
        }

    def start(self, timeout: float = 30.0) -> None:
        config_file = self.file("idp-config.json")
        config_file.write_text(json.dumps(self.config()))
        self.process = subprocess.Popen([sys.executable, "-m", "dvza.devtools.digid_idp", str(config_file)])
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        from .processes import wait_until_answers

        wait_until_answers(f"https://127.0.0.1:{self.front_port}/healthz", self.process, timeout=timeout,
                           verify=str(self.pki.ca_cert))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


# ------------------------------------------------------------------------------------ the IdP
class IdentityProvider:
    """The IdP's behaviour (pysaml2 for parsing, signature checks and signing with xmlsec1)."""

    def __init__(self, config: t.Mapping[str, t.Any]):
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2 import BINDING_SOAP
        from saml2.config import IdPConfig
        from saml2.server import Server

        self.cfg = dict(config)
        idp_config = IdPConfig()
        idp_config.load({
            "entityid": config["entity_id"], "key_file": config["signing_key"], "cert_file": config["signing_cert"],
            "xmlsec_binary": shutil.which("xmlsec1"), "metadata": {"local": [config["sp_metadata"]]},
            "only_use_keys_in_metadata": True, "delete_tmpfiles": True,
            "service": {"idp": {"endpoints": {
                "single_sign_on_service": [(f"https://{config['hostname']}:{config['front_port']}"
                                            "/saml/idp/request_authentication", BINDING_HTTP_REDIRECT)],
                "artifact_resolution_service": [(f"https://{config['hostname']}:{config['back_port']}"
                                                 "/saml/idp/resolve_artifact", BINDING_SOAP)]},
                "want_authn_requests_signed": True}},
        })
        self.server = Server(config=idp_config)
        self.lock = threading.Lock()
        #: pending logins: key -> request data; artifacts: artifact -> (sp entity, message xml, expiry)
        self.pending: dict[str, dict[str, t.Any]] = {}
        self.artifacts: dict[str, tuple[str, str, float]] = {}

    # --------------------------------------------------------------------- AuthnRequest (front)
    def authn_request(self, args: t.Mapping[str, str]) -> dict[str, t.Any]:
        """Check a signed HTTP-Redirect AuthnRequest; returns the pending login (raises ValueError)."""
        from saml2 import BINDING_HTTP_ARTIFACT
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.sigver import verify_redirect_signature

        if not args.get("SAMLRequest") or not args.get("Signature") or not args.get("SigAlg"):
            raise ValueError("Het verzoek is niet ondertekend.")
        # pysaml2 checks the query signature (SAML Bindings §3.4.4.1) against the SP's metadata keys
        parsed = self.server.parse_authn_request(args["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                 relay_state=args.get("RelayState"), sigalg=args["SigAlg"],
                                                 signature=args["Signature"])
        message = parsed.message
        sp = (message.issuer.text or "").strip() if message.issuer is not None else ""
        certs = self.server.metadata.certs(sp, "spsso", "signing") if sp else []
        msg = {k: args[k] for k in ("SAMLRequest", "RelayState", "SigAlg", "Signature") if k in args}
        if not certs or not any(verify_redirect_signature(msg, self.server.sec.sec_backend, cert=cert)
                                for _, cert in certs):
            raise ValueError("De handtekening van het verzoek klopt niet.")
        acs = self.server.metadata.assertion_consumer_service(sp, BINDING_HTTP_ARTIFACT)
        acs_urls = [a["location"] for a in acs]
        if message.assertion_consumer_service_url and message.assertion_consumer_service_url not in acs_urls:
            raise ValueError("Het terugkeeradres staat niet in de metadata van de dienst.")
        if message.protocol_binding and message.protocol_binding != BINDING_HTTP_ARTIFACT:
            raise ValueError("Deze DigiD-nabootsing antwoordt alleen met een artifact.")
        if not acs_urls:
            raise ValueError("De dienst heeft geen artifact-terugkeeradres.")
        minimum = "basis"
        if message.requested_authn_context is not None:
            refs = [r.text for r in message.requested_authn_context.authn_context_class_ref]
            minimum = next((lvl for lvl, ref in CLASS_REFS.items() if ref in refs), "basis")
        pending = {"request_id": message.id, "sp": sp, "acs": message.assertion_consumer_service_url or acs_urls[0],
                   "relay_state": args.get("RelayState", ""), "minimum": minimum,
                   "expires": time.time() + PENDING_SECONDS}
        key = secrets.token_urlsafe(24)
        with self.lock:
            self.pending = {k: v for k, v in self.pending.items() if v["expires"] > time.time()}
            self.pending[key] = pending
        return pending | {"key": key}

    # ------------------------------------------------------------------------ answer (front)
    def answer(self, key: str, *, action: str, bsn: str, level: str, fault: str) -> str:
        """The redirect URL back to the SP with a fresh artifact (raises ValueError)."""
        from urllib.parse import urlencode

        with self.lock:
            pending = self.pending.pop(key, None)
        if pending is None or pending["expires"] < time.time():
            raise ValueError("Deze inlogpoging is verlopen.")
        if fault and not self.cfg.get("allow_faults"):
            raise ValueError("Testscenario's staan uit.")
        if action == "cancel":
            message = self._response(pending, status="cancel")
        else:
            if not re.fullmatch(r"\d{9}", bsn) or level not in CLASS_REFS:
                raise ValueError("Vul een BSN van negen cijfers in en kies een niveau.")
            message = self._response(pending, bsn=bsn, level=level, fault=fault)
        artifact = self._artifact()
        with self.lock:
            self.artifacts = {a: v for a, v in self.artifacts.items() if v[2] > time.time()}
            self.artifacts[artifact] = (pending["sp"], message, time.time() + ARTIFACT_SECONDS)
        query = urlencode({"SAMLart": artifact, "RelayState": pending["relay_state"]})
        return f"{pending['acs']}{'&' if '?' in pending['acs'] else '?'}{query}"

    def _artifact(self) -> str:
        """SAML Bindings §3.6.4: 0x0004, endpoint index 0, SHA-1 of our entity ID, 20 random bytes."""
        import hashlib

        source = hashlib.sha1(self.cfg["entity_id"].encode()).digest()  # noqa: S324 (the binding's rule)
        return base64.b64encode(b"\x00\x04\x00\x00" + source + secrets.token_bytes(20)).decode()

    def _response(self, pending: t.Mapping[str, t.Any], *, status: str = "ok", bsn: str = "", level: str = "",
                  fault: str = "") -> str:
        """A samlp:Response (as XML text) with, on success, a signed assertion."""
        from saml2 import saml
        from saml2 import samlp
        from saml2.s_utils import sid
        from saml2.sigver import pre_signature_part
        from saml2.sigver import signed_instance_factory
        from saml2.xmldsig import DIGEST_SHA256
        from saml2.xmldsig import SIG_RSA_SHA256

        now = dt.datetime.now(dt.UTC)
        if fault == "expired":
            now -= dt.timedelta(minutes=20)

        def stamp(moment: dt.datetime) -> str:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        issuer = saml.Issuer(text=self.cfg["entity_id"], format=saml.NAMEID_FORMAT_ENTITY)
        response = samlp.Response(id=sid(), version="2.0", issue_instant=stamp(now), destination=pending["acs"],
                                  in_response_to=pending["request_id"], issuer=issuer)
        if status == "cancel":
            response.status = samlp.Status(status_code=samlp.StatusCode(
                value=samlp.STATUS_RESPONDER, status_code=samlp.StatusCode(value=samlp.STATUS_AUTHN_FAILED)))
            return str(response)
        response.status = samlp.Status(status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS))
        audience = "https://andere-dienst.example/saml" if fault == "wrong-audience" else pending["sp"]
        until = now + dt.timedelta(minutes=2)
        assertion = saml.Assertion(
            id=sid(), version="2.0", issue_instant=stamp(now),
            issuer=saml.Issuer(text=self.cfg["entity_id"], format=saml.NAMEID_FORMAT_ENTITY),
            subject=saml.Subject(
                name_id=saml.NameID(text=f"s00000000:{bsn}"),
                subject_confirmation=[saml.SubjectConfirmation(
                    method=saml.SCM_BEARER, subject_confirmation_data=saml.SubjectConfirmationData(
                        in_response_to=pending["request_id"], not_on_or_after=stamp(until),
                        recipient=pending["acs"]))]),
            conditions=saml.Conditions(not_before=stamp(now - dt.timedelta(seconds=30)), not_on_or_after=stamp(until),
                                       audience_restriction=[saml.AudienceRestriction(
                                           audience=[saml.Audience(text=audience)])]),
            authn_statement=[saml.AuthnStatement(
                authn_instant=stamp(now), session_index=sid(),
                authn_context=saml.AuthnContext(authn_context_class_ref=saml.AuthnContextClassRef(
                    text=CLASS_REFS[level])))])
        assertion.signature = pre_signature_part(assertion.id, self.server.sec.my_cert, 1,
                                                 digest_alg=DIGEST_SHA256, sign_alg=SIG_RSA_SHA256)
        response.assertion = [assertion]
        signed = signed_instance_factory(response, self.server.sec,
                                         [("urn:oasis:names:tc:SAML:2.0:assertion:Assertion", assertion.id)])
        if fault == "bad-signature":
            # someone swaps the BSN after DigiD signed: the digest no longer matches
            other = "999911120" if bsn != "999911120" else "999910796"
            signed = signed.replace(f"s00000000:{bsn}", f"s00000000:{other}")
        return re.sub(r"^<\?xml[^>]*\?>\s*", "", signed)

    # ------------------------------------------------------------------- ArtifactResolve (back)
    def resolve(self, soap: bytes, peer_hostnames: t.Sequence[str]) -> str:
        """The SOAP answer to an ArtifactResolve (raises ValueError for a request we refuse)."""
        from saml2 import saml
        from saml2 import samlp
        from saml2.s_utils import sid
        from saml2.sigver import pre_signature_part
        from saml2.soap import parse_soap_enveloped_saml_artifact_resolve
        from saml2.xmldsig import DIGEST_SHA256
        from saml2.xmldsig import SIG_RSA_SHA256

        if self.cfg["sp_tls_hostname"] not in peer_hostnames:
            raise ValueError("client certificate of an unknown service")
        xml = parse_soap_enveloped_saml_artifact_resolve(soap.decode())
        resolve = self.server.sec.correctly_signed_message(xml, "artifact_resolve", must=True)
        sp = (resolve.issuer.text or "").strip() if resolve.issuer is not None else ""
        with self.lock:
            stored = self.artifacts.pop(resolve.artifact.text.strip(), None) if resolve.artifact else None
        message = ""
        if stored is not None and stored[0] == sp and stored[2] > time.time():
            message = stored[1]
        answer = samlp.ArtifactResponse(
            id=sid(), version="2.0", in_response_to=resolve.id,
            issue_instant=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            issuer=saml.Issuer(text=self.cfg["entity_id"], format=saml.NAMEID_FORMAT_ENTITY),
            status=samlp.Status(status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS)))
        answer.signature = pre_signature_part(answer.id, self.server.sec.my_cert, 2, digest_alg=DIGEST_SHA256,
                                              sign_alg=SIG_RSA_SHA256)
        text = re.sub(r"^<\?xml[^>]*\?>\s*", "", str(answer))
        if message:  # the message goes after Status (SAML Core §3.5.2)
            closing = re.search(r"</(\w+:)?Status>", text)
            assert closing is not None
            text = text[:closing.end()] + message + text[closing.end():]
        signed = self.server.sec.sign_statement(text, "urn:oasis:names:tc:SAML:2.0:protocol:ArtifactResponse",
                                                node_id=answer.id)
        body = re.sub(r"^<\?xml[^>]*\?>\s*", "", signed)
        return ('<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>'
                f"{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>")


# ------------------------------------------------------------------------------- web app
PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Inloggen met DigiD (testomgeving)</title>
<style>body{{font:1.05rem/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#111}}
.let{{border:3px solid #b35900;padding:.5rem 1rem;background:#fff4e5}}
label{{display:block;margin-top:1rem;font-weight:600}}
input,select,button{{font:inherit;padding:.5rem;margin-top:.25rem}}button{{margin:1rem .5rem 0 0}}
button:focus,input:focus,select:focus{{outline:3px solid #1d4ed8}}</style></head>
<body><main>
<h1>Inloggen met DigiD (testomgeving)</h1>
<p class="let"><strong>Let op:</strong> dit is een nagebootste DigiD op deze computer, voor ontwikkelaars.
Het is niet de echte DigiD en er wordt geen wachtwoord gevraagd.</p>
{body}
</main></body></html>"""


def _escape(value: t.Any) -> str:
    from markupsafe import escape

    return str(escape(value))


def login_form(pending: t.Mapping[str, t.Any], persons: t.Sequence[t.Mapping[str, str]], allow_faults: bool) -> str:
    levels = "".join(f'<option value="{k}"{" selected" if k == pending["minimum"] else ""}>{_escape(v)}</option>'
                     for k, v in LEVEL_LABELS.items())
    people = "".join(f'<button type="submit" name="bsn" value="{_escape(p["bsn"])}">{_escape(p["name"])}</button>'
                     for p in persons)
    faults = ""
    if allow_faults:
        options = "".join(f'<option value="{k}">{_escape(v)}</option>' for k, v in FAULTS.items())
        faults = f'<label for="fault">Testscenario</label><select id="fault" name="fault">{options}</select>'
    return PAGE.format(body=f"""
<form method="post" action="/saml/idp/login">
<input type="hidden" name="key" value="{_escape(pending['key'])}">
<label for="bsn">Burgerservicenummer (BSN)</label>
<input id="bsn" name="bsn" inputmode="numeric" autocomplete="off" maxlength="9">
<label for="level">Betrouwbaarheidsniveau</label><select id="level" name="level">{levels}</select>
{faults}
<div><button type="submit" name="action" value="login">Inloggen</button>
<button type="submit" name="action" value="cancel">Annuleren</button></div>
{('<h2>Testpersonen</h2><p>Of kies een testpersoon:</p>' + people) if people else ''}
</form>""")


def create_idp_app(config: t.Mapping[str, t.Any]) -> t.Any:
    from flask import Flask
    from flask import Response
    from flask import redirect
    from flask import request

    idp = IdentityProvider(config)
    app = Flask("digid_idp")

    def page(body: str, status: int = 200) -> Response:
        response = Response(PAGE.format(body=body), status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.get("/saml/idp/metadata")
    def metadata() -> Response:
        return Response(Path(config["metadata"]).read_bytes(), mimetype="application/samlmetadata+xml")

    @app.get("/saml/idp/request_authentication")
    def request_authentication() -> Response:
        if request.environ.get("digid.listener") != "front":
            return page("<p>Niet hier.</p>", 404)
        try:
            pending = idp.authn_request(request.args.to_dict())
        except Exception as exc:  # noqa: BLE001 (any bad request gets the same page)
            message = str(exc) if isinstance(exc, ValueError) else "Het verzoek is ongeldig."
            return page(f"<p>DigiD kan dit verzoek niet verwerken. {_escape(message)}</p>", 400)
        response = Response(login_form(pending, config.get("persons") or [], bool(config.get("allow_faults"))),
                            mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/saml/idp/login")
    def login() -> t.Any:
        if request.environ.get("digid.listener") != "front":
            return page("<p>Niet hier.</p>", 404)
        bsn = next((b for b in request.form.getlist("bsn") if b.strip()), "").replace(" ", "")
        action = "login" if request.form.get("action") != "cancel" else "cancel"
        try:
            location = idp.answer(request.form.get("key", ""), action=action, bsn=bsn,
                                  level=request.form.get("level", ""), fault=request.form.get("fault", ""))
        except ValueError as exc:
            return page(f"<p>{_escape(str(exc))}</p>", 400)
        return redirect(location, code=303)

    @app.post("/saml/idp/resolve_artifact")
    def resolve_artifact() -> Response:
        if request.environ.get("digid.listener") != "back":
            return Response("mutual TLS required", 403)
        peer = request.environ.get("SSL_CLIENT_CERT")
        names: list[str] = []
        if peer:
            from cryptography import x509

            from certs.pki import subject_alt_names

            names = subject_alt_names(x509.load_pem_x509_certificate(peer.encode()))
        try:
            answer = idp.resolve(request.get_data(cache=False)[:256 * 1024], names)
        except Exception:  # noqa: BLE001 (a SOAP fault for anything we refuse)
            return Response('<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
                            "<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode>"
                            "<faultstring>refused</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>",
                            500, mimetype="text/xml")
        return Response(answer, mimetype="text/xml")

    return app


def serve(config: t.Mapping[str, t.Any]) -> None:
    """Both listeners in one process (they share the pending logins and artifacts)."""
    from werkzeug.serving import make_server

    app = create_idp_app(config)

    def tagged(listener: str) -> t.Any:
        def wsgi(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
            environ["digid.listener"] = listener
            return app(environ, start_response)
        return wsgi

    front = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    front.load_cert_chain(config["tls_cert"], config["tls_key"])
    back = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    back.load_cert_chain(config["tls_cert"], config["tls_key"])
    back.load_verify_locations(config["ca"])
    back.verify_mode = ssl.CERT_REQUIRED
    servers = [make_server("127.0.0.1", int(config["front_port"]), tagged("front"), threaded=True, ssl_context=front),
               make_server("127.0.0.1", int(config["back_port"]), tagged("back"), threaded=True, ssl_context=back)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local DigiD-like SAML IdP (development only)")
    parser.add_argument("config", help="JSON file written by DigidIdp.start")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(json.loads(Path(args.config).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
