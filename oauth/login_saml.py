"""DigiD over SAML 2.0: the authorization server as SAML Service Provider (MedMij R1: "de Authorization
Server, als SAML Service Provider, … DigiD"; medmij-protocol.md §3.1 steps 4–7, §3.4).

Follows Logius' "Koppelvlakspecificatie DigiD SAML Authenticatie" (v3.x):

1. **AuthnRequest** by the HTTP-Redirect binding, signed (``SigAlg`` rsa-sha256 over the query, SAML
   Bindings §3.4.4.1), asking for the response by the **HTTP-Artifact** binding at our assertion
   consumer service (``/oauth/login/finish``) with ``RequestedAuthnContext`` ``minimum`` = the
   configured minimum level. ``RelayState`` is a random handle of :class:`~oauth.login_state.LoginStates`
   (server-side, single use, bound to the browser's session).
2. The browser comes back with ``SAMLart`` + ``RelayState``. The artifact (type 0x0004, SAML Bindings
   §3.6.4) must come from DigiD: its SourceID is SHA-1 of DigiD's entity ID.
3. **ArtifactResolve** — signed — over the SOAP backchannel with **mutual TLS** (our client
   certificate; DigiD's server certificate checked against ``SAML_TLS_CA``) to the
   ArtifactResolutionService of DigiD's metadata (SAML Bindings §3.6.5.1, SAML Core §3.5).
4. The **ArtifactResponse** must be signed by DigiD (metadata keys only), answer our ArtifactResolve
   (``InResponseTo``) and carry a Response that pysaml2 checks: the assertion's signature,
   ``InResponseTo`` = our AuthnRequest ID (taken once: a replayed artifact or assertion finds no
   outstanding request), ``Destination``/``Recipient`` = our ACS, ``Audience`` = our entity ID,
   ``NotBefore``/``NotOnOrAfter`` with ``SAML_CLOCK_SKEW``.
5. The BSN comes from the NameID ``s00000000:<BSN>`` (sector code s00000000 = BSN), checked with the
   elfproef; the level from ``AuthnContextClassRef`` (:mod:`oauth.assurance`), refused below
   ``SAML_MIN_LEVEL``. Status ``Responder``/``AuthnFailed`` means the person cancelled at DigiD →
   :class:`~oauth.login.LoginCancelled` (MedMij cancellation path).

Our SP metadata is published at ``/oauth/saml/metadata`` (what Logius registers for the connection).

Privacy: SAML messages carry the BSN. pysaml2 logs whole messages (at debug, and inside error texts),
so its loggers are silenced here, exception texts from it are never shown or logged, and the BSN
leaves this module only in the returned :class:`~oauth.login.Person`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from flask import Blueprint
from flask import Request
from flask import Response
from flask import redirect
from lxml import etree

from .assurance import DIGID_CLASS_REFS
from .assurance import LEVEL_OF_CLASS_REF
from .assurance import meets
from .assurance import too_low_message
from .login import LoginCancelled
from .login import LoginFailed
from .login import LoginUnavailable
from .login import Person
from .login import is_valid_bsn

if t.TYPE_CHECKING:
    from .login_state import LoginStates

# pysaml2 logs complete SAML messages (with the BSN in the NameID) at debug level and inside the
# texts of its errors: none of that may reach a log (no BSN in any log).
logging.getLogger("saml2").setLevel(logging.CRITICAL + 1)
logging.getLogger("saml2").propagate = False

NAME = "digid-saml"
#: SAML Bindings §3.6.4: the only artifact type
ARTIFACT_TYPE = b"\x00\x04"
#: DigiD's sector code for a BSN in the NameID (``s00000000:<BSN>``)
BSN_SECTOR = "s00000000"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
#: the longest SOAP answer we read (an ArtifactResponse is a few kB)
MAX_SOAP_BYTES = 256 * 1024

TRY_AGAIN = "Begin opnieuw vanuit je persoonlijke gezondheidsomgeving (PGO)."
NOT_CONFIRMED = "DigiD heeft niet bevestigd wie je bent. " + TRY_AGAIN


@dataclass(frozen=True, slots=True)
class SamlSettings:
    """``SAML_*`` configuration (validated by ``dvza.config``)."""

    #: our entity ID as registered at Logius
    sp_entity_id: str
    #: the public frontchannel base URL; ACS = ``<base>/oauth/login/finish``
    sp_base_url: str
    #: signing key and certificate of our SAML messages (PEM, RSA)
    sp_key: str
    sp_cert: str
    #: DigiD's metadata (XML file)
    idp_metadata: str
    #: TLS client certificate and key for the SOAP backchannel, and the CA bundle for DigiD's server
    tls_cert: str
    tls_key: str
    tls_ca: str | None = None
    min_level: str = "substantieel"
    timeout: float = 10.0
    clock_skew: int = 60

    @property
    def acs_url(self) -> str:
        return self.sp_base_url.rstrip("/") + "/oauth/login/finish"

    @property
    def metadata_url(self) -> str:
        return self.sp_base_url.rstrip("/") + "/oauth/saml/metadata"


def _sp_config(settings: SamlSettings) -> t.Any:
    from saml2 import BINDING_HTTP_ARTIFACT
    from saml2.config import SPConfig
    from saml2.saml import NAMEID_FORMAT_UNSPECIFIED
    from saml2.xmldsig import DIGEST_SHA256
    from saml2.xmldsig import SIG_RSA_SHA256

    config = SPConfig()
    config.load({
        "entityid": settings.sp_entity_id,
        "key_file": settings.sp_key,
        "cert_file": settings.sp_cert,
        "xmlsec_binary": shutil.which("xmlsec1"),
        "metadata": {"local": [settings.idp_metadata]},
        "accepted_time_diff": settings.clock_skew,
        "only_use_keys_in_metadata": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "delete_tmpfiles": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(settings.acs_url, BINDING_HTTP_ARTIFACT)]},
            "authn_requests_signed": True,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "allow_unsolicited": False,
            "name_id_format": [NAMEID_FORMAT_UNSPECIFIED],
        }},
    })
    return config


class DigidSamlLogin:
    """The :class:`~oauth.login.LoginAdapter` for DigiD (SAML 2.0, artifact binding)."""

    name = NAME

    def __init__(self, settings: SamlSettings, states: LoginStates):
        from saml2.client import Saml2Client

        self.settings = settings
        self.states = states
        self.config = _sp_config(settings)
        self.client = Saml2Client(config=self.config)
        idps = list(self.client.metadata.identity_providers())
        if len(idps) != 1:
            raise ValueError(f"SAML_IDP_METADATA must describe exactly one identity provider, found {len(idps)}")
        self.idp_entity_id: str = idps[0]
        self.blueprint = Blueprint("oauth_saml", __name__, url_prefix="/oauth/saml")
        self.blueprint.add_url_rule("/metadata", "metadata", self.metadata)

    # ------------------------------------------------------------------------------ metadata
    def metadata(self) -> Response:
        """Our SP metadata (SAML Metadata §2.4.4): entity ID, signing certificate, the ACS (artifact)."""
        from saml2.metadata import create_metadata_string

        xml = create_metadata_string(None, config=self.config, valid=24 * 7)
        return Response(xml, mimetype="application/samlmetadata+xml")

    # --------------------------------------------------------------------------------- start
    def start(self, *, csrf_token: str, finish_url: str) -> Response:
        """Send the browser to DigiD with a signed AuthnRequest (HTTP-Redirect binding)."""
        from saml2 import BINDING_HTTP_ARTIFACT
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.saml import AuthnContextClassRef
        from saml2.samlp import RequestedAuthnContext
        from saml2.xmldsig import SIG_RSA_SHA256

        requested = RequestedAuthnContext(
            authn_context_class_ref=[AuthnContextClassRef(text=DIGID_CLASS_REFS[self.settings.min_level])],
            comparison="minimum")
        destination = self.client._sso_location(self.idp_entity_id, BINDING_HTTP_REDIRECT)
        request_id, request = self.client.create_authn_request(
            destination=destination, binding=BINDING_HTTP_ARTIFACT, sign=False,
            requested_authn_context=requested, force_authn="true")
        relay_state = self.states.begin({"request_id": request_id})
        info = self.client.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination, relay_state,
                                         sign=True, sigalg=SIG_RSA_SHA256)
        location = dict(info["headers"])["Location"]
        return redirect(location, code=303)

    # -------------------------------------------------------------------------------- finish
    def finish(self, request: Request) -> Person:
        artifact = request.args.get("SAMLart", "")
        state = self.states.take(request.args.get("RelayState"))
        if state is None:
            raise LoginFailed("Deze inlogpoging is verlopen of al gebruikt. " + TRY_AGAIN)
        if not artifact or len(artifact) > 200:
            raise LoginFailed(NOT_CONFIRMED)
        location = self._artifact_location(artifact)
        resolve_id, envelope = self._resolve(artifact, location)
        return self._person(envelope, resolve_id=resolve_id, request_id=state["request_id"])

    def _artifact_location(self, artifact: str) -> str:
        """SAML Bindings §3.6.4: type 0x0004, endpoint index, SourceID = SHA-1(issuer entity ID)."""
        try:
            raw = base64.b64decode(artifact, validate=True)
        except ValueError:
            raise LoginFailed(NOT_CONFIRMED) from None
        if len(raw) != 44 or raw[:2] != ARTIFACT_TYPE:
            raise LoginFailed(NOT_CONFIRMED)
        if raw[4:24] != hashlib.sha1(self.idp_entity_id.encode()).digest():  # noqa: S324 (the binding's rule)
            raise LoginFailed(NOT_CONFIRMED)
        index = str(int.from_bytes(raw[2:4], "big"))
        from saml2 import BINDING_SOAP

        services = self.client.metadata.artifact_resolution_service(self.idp_entity_id, BINDING_SOAP,
                                                                    "idpsso")
        for service in services:
            if str(service.get("index")) == index:
                return str(service["location"])
        if services:
            return str(services[0]["location"])
        raise LoginFailed(NOT_CONFIRMED)

    def _resolve(self, artifact: str, location: str) -> tuple[str, bytes]:
        """ArtifactResolve over SOAP with mutual TLS; returns its ID and the SOAP answer."""
        from saml2.s_utils import sid
        from saml2.xmldsig import DIGEST_SHA256
        from saml2.xmldsig import SIG_RSA_SHA256

        if urlsplit(location).scheme != "https":
            raise LoginFailed(NOT_CONFIRMED)
        resolve_id, message = self.client.create_artifact_resolve(artifact, location, sid(), sign=True,
                                                                   sign_alg=SIG_RSA_SHA256,
                                                                   digest_alg=DIGEST_SHA256)
        body = re.sub(r"^<\?xml[^>]*\?>\s*", "", str(message))
        envelope = (f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_NS}"><SOAP-ENV:Body>{body}'
                    "</SOAP-ENV:Body></SOAP-ENV:Envelope>")
        try:
            answer = requests.post(location, data=envelope.encode(), timeout=self.settings.timeout,
                                   cert=(self.settings.tls_cert, self.settings.tls_key),
                                   verify=self.settings.tls_ca or True, stream=True,
                                   headers={"Content-Type": "text/xml; charset=utf-8",
                                            "SOAPAction": "http://www.oasis-open.org/committees/security"})
            content = answer.raw.read(MAX_SOAP_BYTES + 1, decode_content=True)
        except requests.RequestException:
            raise LoginUnavailable("DigiD is op dit moment niet bereikbaar.") from None
        if answer.status_code >= 500:
            raise LoginUnavailable("DigiD is op dit moment niet bereikbaar.")
        if answer.status_code != 200 or len(content) > MAX_SOAP_BYTES:
            raise LoginFailed(NOT_CONFIRMED)
        return resolve_id, t.cast(bytes, content)

    def _person(self, envelope: bytes, *, resolve_id: str, request_id: str) -> Person:
        from saml2 import BINDING_HTTP_ARTIFACT
        from saml2.response import AuthnResponse
        from saml2.response import StatusAuthnFailed
        from saml2.response import StatusError

        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
        try:
            root = etree.fromstring(envelope, parser=parser)
        except etree.XMLSyntaxError:
            raise LoginFailed(NOT_CONFIRMED) from None
        found = root.findall(f"{{{SOAP_NS}}}Body/{{{SAMLP_NS}}}ArtifactResponse")
        if root.tag != f"{{{SOAP_NS}}}Envelope" or len(found) != 1:
            raise LoginFailed(NOT_CONFIRMED)
        artifact_response = found[0]
        try:
            # the envelope must be DigiD's, signed with a key from DigiD's metadata
            checked = self.client.sec.correctly_signed_artifact_response(
                etree.tostring(artifact_response).decode(), must=True)
        except Exception:  # pysaml2 raises many types; their texts hold the message: never shown or logged
            raise LoginFailed(NOT_CONFIRMED) from None
        issuer = (checked.issuer.text or "").strip() if checked.issuer is not None else ""
        status = checked.status.status_code.value if checked.status is not None else None
        if issuer != self.idp_entity_id or checked.in_response_to != resolve_id or status != STATUS_SUCCESS:
            raise LoginFailed(NOT_CONFIRMED)
        inner = artifact_response.findall(f"{{{SAMLP_NS}}}Response")
        if len(inner) != 1:  # an artifact already resolved comes back without a message
            raise LoginFailed(NOT_CONFIRMED)
        response_b64 = base64.b64encode(etree.tostring(inner[0]))
        try:
            # pysaml2 checks signature, InResponseTo, Destination/Recipient, Audience, NotOnOrAfter
            # (not parse_authn_request_response: that keeps the person's data in a memory cache)
            response = self.client._parse_response(
                response_b64, AuthnResponse, "assertion_consumer_service", BINDING_HTTP_ARTIFACT,
                outstanding_queries={request_id: "authorize"}, allow_unsolicited=False,
                want_assertions_signed=True, want_assertions_or_response_signed=True, want_response_signed=False,
                return_addrs=[self.settings.acs_url], entity_id=self.settings.sp_entity_id,
                attribute_converters=self.config.attribute_converters, allow_unknown_attributes=True,
                conv_info=None)
        except StatusAuthnFailed:
            raise LoginCancelled() from None
        except StatusError:
            raise LoginFailed(NOT_CONFIRMED) from None
        except Exception:
            raise LoginFailed(NOT_CONFIRMED) from None
        if response is None or response.assertion is None or response.in_response_to != request_id:
            raise LoginFailed(NOT_CONFIRMED)
        if (response.issuer() or "").strip() != self.idp_entity_id:
            raise LoginFailed(NOT_CONFIRMED)
        assertion = response.assertion
        assertion_issuer = (assertion.issuer.text or "").strip() if assertion.issuer is not None else ""
        if assertion_issuer != self.idp_entity_id:
            raise LoginFailed(NOT_CONFIRMED)
        level = self._level(response)
        if not meets(level, self.settings.min_level):
            raise LoginFailed(too_low_message(level, self.settings.min_level))
        name_id = assertion.subject.name_id.text if assertion.subject and assertion.subject.name_id else ""
        sector, _, bsn = (name_id or "").strip().partition(":")
        if sector != BSN_SECTOR or not is_valid_bsn(bsn):
            raise LoginFailed(NOT_CONFIRMED)
        return Person(bsn)

    @staticmethod
    def _level(response: t.Any) -> str | None:
        """The level of the (single) AuthnStatement's AuthnContextClassRef."""
        refs = [ref for ref, *_ in response.authn_info()]
        if len(refs) != 1:
            return None
        return LEVEL_OF_CLASS_REF.get(refs[0])
