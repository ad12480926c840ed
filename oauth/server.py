"""The MedMij authorization server (OAuth 2.0 authorization code grant, RFC 6749 §4.1).

Frontchannel (the person's browser):

1. ``GET /oauth/authorize`` — validate the request (medmij-protocol.md §3.2/§3.3). An unknown
   ``client_id`` or a ``redirect_uri`` not on that client's OCL hostname gets a Dutch error page and
   never a redirect (RFC 6749 §4.1.2.1; R2 show_authorization_request_error_page). Other problems go
   back to the PGO as an error redirect with ``state``. A valid request shows the landing page.
2. Login through the :class:`~oauth.login.LoginAdapter` (DigiD); the BSN is mapped to the patient.
3. Beschikbaarheidstoets: no data for the requested gegevensdiensten → ``access_denied`` "No such
   resources.".
4. Consent page ("Toestemming geven"): grant → a code (UUIDv4, 900 s) → 302 to ``redirect_uri``;
   refuse → ``access_denied`` "Authorization denied.". Both are logged (R1: "logt dit als
   toestemming" / "logt de afwijzing").

Backchannel: ``POST /oauth/token`` — client authentication by mutual TLS (RFC 8705 §2,
``tls_client_auth``): the certificate's CN/SAN must equal ``client_id``, which must be on the OCL
and the Whitelist. Codes are consumed atomically; a replay revokes the tokens of the first use.
Tokens are UUIDv4, 900 s, stored hashed and bound to the certificate (``x5t#S256``).

"Mijn toestemmingen" (``/oauth/toestemmingen``): the person lists and revokes consents (R2
"Beheren toestemmingen"); identical consents (same PGO, gegevensdiensten and kind) are one line and
are revoked together. Every page links to it.

The pages carry the aanbieder's house style (:mod:`oauth.branding`: ``/oauth/huisstijl.css``,
``/oauth/huisstijl/logo``) and show times in the configured zone, in Dutch (:mod:`oauth.presentation`).

Every answer is ``Cache-Control: no-store`` (RFC 6749 §5.1 for the token endpoint; the redirects carry
codes and the pages personal data). After a person authenticates, the browser session gets a new id
when the app's session interface can do that (``regenerate``, OWASP session fixation); logging out of
*Mijn toestemmingen* ends the whole session.
"""

from __future__ import annotations

import hmac
import secrets
import typing as t
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import send_file
from flask import session as browser
from flask import url_for
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from . import codes
from . import events
from . import mtls
from . import presentation
from .errors import AccessDeniedError
from .errors import InvalidClientError
from .errors import InvalidGrantError
from .errors import InvalidRequestError
from .errors import OAuth2Error
from .errors import UnauthorizedClientError
from .errors import UnsupportedGrantTypeError
from .errors import UnsupportedResponseTypeError
from .headers import header_problem
from .login import DevelopmentLogin
from .login import LoginCancelled
from .login import LoginFailed
from .login import LoginUnavailable
from .models import AuthorizationFlow
from .models import Consent
from .models import Token
from .scope import parse_scope
from .services import OAuthServices
from .tokens import ACCESS
from .tokens import REFRESH
from .tokens import aware
from .tokens import hash_secret
from .tokens import new_secret
from .tokens import revoke_tokens
from .tokens import store_token
from .tokens import token_ref
from .tokens import utcnow

EXTENSION_KEY = "oauth"
NO_SUCH_RESOURCES = "No such resources."
AUTHORIZATION_DENIED = "Authorization denied."
AUTHORIZATION_FAILED = "Authorization failed."
AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "MedMij-Request-ID",
                    "X-Correlation-ID")

bp = Blueprint("oauth", __name__, url_prefix="/oauth", template_folder="templates", static_folder="static",
               static_url_path="/static")


def services() -> OAuthServices:
    return t.cast(OAuthServices, current_app.extensions[EXTENSION_KEY])


def init_app(app: Flask, oauth_services: OAuthServices) -> None:
    app.extensions[EXTENSION_KEY] = oauth_services
    app.register_blueprint(bp)
    presentation.register(app, lambda: services().settings.timezone)

    @app.context_processor
    def _house_style() -> dict[str, t.Any]:
        """Every page of the app (the hospital pages and the Dutch error pages too) knows the house style."""
        settings = services().settings
        return {"branding": settings.house_style(), "aanbieder": settings.aanbieder_weergavenaam}
    # an identity-provider adapter may publish its own endpoints (SAML SP metadata)
    adapter_routes = getattr(oauth_services.login, "blueprint", None)
    if adapter_routes is not None:
        app.register_blueprint(adapter_routes)

    @app.context_processor
    def _development_login() -> dict[str, t.Any]:
        """Every page of the app says so when the person's login is the development stand-in."""
        return {"development_login": isinstance(oauth_services.login, DevelopmentLogin)}

    @app.after_request
    def _no_store(response: Response) -> Response:
        """No answer under ``/oauth`` is cached (its own 404s included), only the stylesheet may be.
        Its pages post forms that end in a redirect to the PGO or to the identity provider (RFC 6749
        §4.1.2; CSP3 ``form-action`` also governs the redirects after a submission), so their policy
        allows HTTPS targets — pages an adapter renders (the login choice) included."""
        if request.path.startswith(bp.url_prefix + "/") and request.endpoint != "oauth.static":
            response.headers["Cache-Control"] = "no-store"
            response.headers.setdefault("Content-Security-Policy", FRONTCHANNEL_CSP)
        return response


def _renew_session_id() -> None:
    """A new session id after authentication (OWASP Session Management: renew the id on any privilege
    change). The app's session interface does it if it can; Flask's signed-cookie sessions have no id."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(browser)


class RequestPageError(Exception):
    """A request that may not be redirected back: show the Dutch error page."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.message = message
        self.detail = detail


# ------------------------------------------------------------------------------------- helpers
def _event(event_type: str, flow: AuthorizationFlow | None = None, **sections: t.Any) -> None:
    events.emit(event_type, location=services().settings.location,
                session_id=flow.correlation_id if flow else request.args.get("X-Correlation-ID"),
                trace_id=flow.request_id if flow else request.args.get("MedMij-Request-ID"), **sections)


def _error_uri(flow: AuthorizationFlow, error: OAuth2Error) -> str:
    """RFC 6749 §4.1.2.1 error response to the (validated) redirect URI, with ``state``."""
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if flow.state is not None:
        params.append(("state", flow.state))
    _event("send_authorization_request_error", flow, error={"code": error.error, "description": error.description})
    return add_params_to_uri(flow.redirect_uri, params)


def _redirect_error(flow: AuthorizationFlow, error: OAuth2Error) -> Response:
    return redirect(_error_uri(flow, error), code=302)


def _flow(*statuses: str) -> AuthorizationFlow:
    flow_id = browser.get("oauth_flow")
    if not flow_id:
        raise RequestPageError("Er is geen toestemmingsverzoek bezig.",
                               "Ga terug naar je persoonlijke gezondheidsomgeving (PGO) en begin opnieuw.")
    flow = services().session().get(AuthorizationFlow, flow_id)
    if flow is None or aware(flow.expires_at) <= utcnow():
        raise RequestPageError("Je sessie is verlopen.",
                               "Ga terug naar je persoonlijke gezondheidsomgeving (PGO) en begin opnieuw.")
    g.oauth_flow = flow
    if statuses and flow.status not in statuses:
        raise RequestPageError("Deze stap is al gedaan.",
                               "Ga terug naar je persoonlijke gezondheidsomgeving (PGO) en begin zo nodig opnieuw.")
    return flow


def _check_csrf(expected_hash: str) -> None:
    token = request.form.get("csrf_token", "")
    if not token or not hmac.compare_digest(hash_secret(token), expected_hash):
        raise RequestPageError("Dit formulier is verlopen of ongeldig.",
                               "Ga terug naar je persoonlijke gezondheidsomgeving (PGO) en begin opnieuw.")


def _new_csrf(flow: AuthorizationFlow) -> str:
    token = secrets.token_urlsafe(32)
    flow.csrf_hash = hash_secret(token)
    return token


def _ordered(diensten: t.Iterable[str]) -> list[str]:
    return sorted(set(diensten), key=lambda x: (0, int(x), x) if x.isdigit() else (1, 0, x))


def _names(diensten: t.Iterable[str]) -> list[str]:
    directory = services().directory
    return [directory.dienst_name(d) or f"Gegevensdienst {d}" for d in _ordered(diensten)]


@dataclass(frozen=True, slots=True)
class DienstText:
    """A gegevensdienst as the consent page shows it: GNL name and the configured description."""

    name: str
    description: str


def _described(diensten: t.Iterable[str]) -> list[DienstText]:
    descriptions = services().settings.dienst_descriptions
    return [DienstText(name, descriptions.get(d, "")) for d, name in zip(_ordered(diensten), _names(diensten),
                                                                        strict=True)]


FRONTCHANNEL_CSP = ("default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; "
                    "form-action 'self' https:")


def _client_name(client_id: str) -> str:
    return services().directory.client_name(client_id) or client_id


def _page(template: str, status: int = 200, **context: t.Any) -> Response:
    settings = services().settings
    response = Response(render_template(template, aanbieder=settings.aanbieder_weergavenaam, **context), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = FRONTCHANNEL_CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# ------------------------------------------------------------------------------- authorization
@bp.get("/authorize")
def authorize() -> Response:
    params = request.args
    for name in AUTHORIZE_PARAMS:
        if len(params.getlist(name)) > 1:
            if name in ("client_id", "redirect_uri"):
                return _request_error_page(f"De parameter {name} komt meer dan eens voor.")
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    _event("receive_authorization_request", request={
        "id": params.get("MedMij-Request-ID"), "method": "GET", "client_id": client_id, "uri": request.base_url,
        "scope": params.get("scope")})
    client_name = services().directory.client_name(client_id) if client_id else None
    if client_name is None:
        return _request_error_page("De PGO die dit verzoek stuurt, is niet bekend in het MedMij-netwerk.",
                                   log=f"client_id {client_id!r} is not on the OAuth Client List")
    problem = _redirect_uri_problem(redirect_uri, client_id)
    if problem:
        return _request_error_page("Het adres om naar je PGO terug te gaan klopt niet.", log=problem)
    trace_problem = header_problem(params)
    flow = AuthorizationFlow(
        id=str(uuid.uuid4()), client_id=client_id, redirect_uri=redirect_uri, scope=params.get("scope", ""),
        state=params.get("state"), usecase="verzamelen", requested="",
        correlation_id=None if trace_problem else params.get("X-Correlation-ID"),
        request_id=None if trace_problem else params.get("MedMij-Request-ID"), csrf_hash="", status="started",
        created_at=utcnow(), expires_at=utcnow() + services().settings.flow_lifetime,
    )
    duplicated = [n for n in AUTHORIZE_PARAMS if len(params.getlist(n)) > 1]
    try:
        if duplicated:
            raise InvalidRequestError(f"Parameter {duplicated[0]} is repeated")
        if trace_problem:
            raise InvalidRequestError(trace_problem)
        if not params.get("response_type"):
            raise InvalidRequestError("response_type is missing")
        if params.get("response_type") != "code":
            raise UnsupportedResponseTypeError("Only response_type=code is supported")
        settings = services().settings
        requested = parse_scope(params.get("scope"), aanbieder=settings.aanbieder, verzamelen=settings.verzamelen,
                                delen=settings.delen, dialect=settings.scope_dialect)
    except OAuth2Error as error:
        return _redirect_error(flow, error)
    flow.usecase = requested.usecase
    flow.requested = " ".join(sorted(requested.diensten))
    csrf = _new_csrf(flow)
    session = services().session()
    session.add(flow)
    session.commit()
    _forget_flow_state()
    browser["oauth_flow"] = flow.id
    _event("show_landing_page", flow)
    return _page("oauth/landing.html", flow=flow, client_name=client_name, csrf_token=csrf,
                 diensten=_names(requested.diensten))


def _forget_flow_state() -> None:
    """A new authorization request starts clean: drop what an earlier flow left in the cookie
    (only this blueprint's keys; other parts of the app may share the session)."""
    for key in ("oauth_flow", "oauth_login_purpose"):
        browser.pop(key, None)


def _redirect_uri_problem(redirect_uri: str, client_id: str) -> str | None:
    """MedMij: a full HTTPS URI whose hostname is the client's OCL hostname; no fragment
    (RFC 6749 §3.1.2). ``None`` when acceptable."""
    if not redirect_uri:
        return "redirect_uri is missing"
    try:
        parts = urlsplit(redirect_uri)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "redirect_uri is not a valid URI"
    if parts.scheme != "https":
        return "redirect_uri must use https"
    if parts.fragment or "#" in redirect_uri:
        return "redirect_uri may not contain a fragment"
    if parts.username or parts.password:
        return "redirect_uri may not contain user information"
    if host != client_id.lower():
        return f"redirect_uri host {host!r} is not the client's OCL hostname {client_id!r}"
    return None


def _request_error_page(message: str, *, log: str = "") -> Response:
    _event("authorization_request_error", error={"code": "invalid_request", "description": log or message})
    _event("show_authorization_request_error_page")
    services().audit(event_type="oauth.authorization-request-error", outcome="failure", actor="person",
                     client_id=request.args.get("client_id"), detail=log or message)
    return _page("oauth/request_error.html", 400, message=message)


@bp.post("/cancel")
def cancel() -> Response:
    flow = _flow("started", "authenticated")
    _check_csrf(flow.csrf_hash)
    flow.status = "refused"
    services().session().commit()
    browser.pop("oauth_flow", None)
    _event("send_authorization_cancellation", flow)
    services().audit(event_type="oauth.cancelled", outcome="failure", actor="person", client_id=flow.client_id,
                     patient_id=flow.patient_id, correlation_id=flow.correlation_id)
    return _redirect_error(flow, AccessDeniedError(AUTHORIZATION_DENIED))


# ---------------------------------------------------------------------------------------- login
@bp.post("/login")
def login() -> Response:
    flow = _flow("started")
    _check_csrf(flow.csrf_hash)
    csrf = _new_csrf(flow)
    services().session().commit()
    browser["oauth_login_purpose"] = "authorize"
    _event("send_authentication_request", flow)
    try:
        return services().login.start(csrf_token=csrf, finish_url=url_for("oauth.login_finish"))
    except LoginFailed as exc:  # e.g. the identity provider cannot be reached before the person leaves
        return _login_failed(flow, exc)


@bp.route("/login/finish", methods=["GET", "POST"])
def login_finish() -> Response:
    if browser.get("oauth_login_purpose") == "manage":
        return _manage_login_finish()
    flow = _flow("started")
    if request.method == "POST":
        _check_csrf(flow.csrf_hash)
    try:
        person = services().login.finish(request)
    except LoginCancelled:
        flow.status = "refused"
        services().session().commit()
        _event("receive_authorization_cancellation", flow)
        return _redirect_error(flow, AccessDeniedError(AUTHORIZATION_DENIED))
    except LoginFailed as exc:
        return _login_failed(flow, exc)
    _event("receive_authentication_response", flow)
    patient_id = services().patient_for_bsn(person.bsn)
    requested = frozenset(flow.requested.split())
    available = services().available_diensten(patient_id, requested) if patient_id else frozenset()
    if not available:
        flow.status = "failed"
        services().session().commit()
        services().audit(event_type="oauth.no-such-resources", outcome="failure", actor="person",
                         client_id=flow.client_id, patient_id=patient_id, correlation_id=flow.correlation_id,
                         gegevensdiensten=flow.requested)
        return _redirect_error(flow, AccessDeniedError(NO_SUCH_RESOURCES))
    flow.patient_id = patient_id
    flow.available = " ".join(sorted(available))
    flow.status = "authenticated"
    services().session().commit()
    _renew_session_id()
    return redirect(url_for("oauth.consent"), code=303)


def _login_failed(flow: AuthorizationFlow, exc: LoginFailed) -> Response:
    """The identity of the person could not be established (R1 exception table "Verzamelen 2"):
    the flow ends, the person reads why in Dutch, and the way back takes the MedMij error to the PGO
    (``unauthorized_client``, RFC 6749 §4.1.2.1, with a fixed description saying where it failed:
    MedMij "Duiding van fouten")."""
    flow.status = "failed"
    services().session().commit()
    browser.pop("oauth_flow", None)
    unavailable = isinstance(exc, LoginUnavailable)
    _event("receive_authentication_error", flow,
           error={"code": "temporarily_unavailable" if unavailable else "other", "description": str(exc)})
    services().audit(event_type="oauth.login-failed", outcome="failure", actor="person", client_id=flow.client_id,
                     correlation_id=flow.correlation_id, request_id=flow.request_id,
                     detail=f"{services().login.name}: {exc}")
    description = ("The identity provider is not available." if unavailable
                   else "The person could not be authenticated.")
    back = _error_uri(flow, UnauthorizedClientError(description))
    return _page("oauth/login_failed.html", 401, message=str(exc) or "We weten niet zeker wie je bent.",
                 unavailable=unavailable, back=back, client_name=_client_name(flow.client_id))


# -------------------------------------------------------------------------------------- consent
@bp.get("/consent")
def consent() -> Response:
    """The Toestemmingsverklaring (medmij-protocol.md §3.5, R2.2.4 text; Delen: Bevestigingsverklaring),
    with what MedMij allows adding ("Het is toegestaan zinnen of elementen toe te voegen"): who is logged
    in, what each gegevensdienst holds, the requested gegevensdiensten without data (not silently
    dropped), how long the consent lasts, in words, and how to withdraw it."""
    flow = _flow("authenticated")
    csrf = _new_csrf(flow)
    services().session().commit()
    _event("show_consent_page", flow)
    settings = services().settings
    available = (flow.available or "").split()
    missing = set(flow.requested.split()) - set(available)
    return _page("oauth/consent.html", flow=flow, csrf_token=csrf, client_name=_client_name(flow.client_id),
                 diensten=_described(available), missing=_names(missing), long_term=settings.long_term_consent,
                 person=services().patient_name(flow.patient_id) if flow.patient_id else None,
                 lifetime=presentation.duration_in_words(settings.token_lifetime),
                 inactivity=presentation.duration_in_words(settings.long_term_inactivity))


@bp.post("/consent")
def consent_decision() -> Response:
    flow = _flow("authenticated")
    _check_csrf(flow.csrf_hash)
    session = services().session()
    settings = services().settings
    browser.pop("oauth_flow", None)
    if request.form.get("decision") != "grant":
        flow.status = "refused"
        session.commit()
        _event("receive_consent_refusal", flow)
        services().audit(event_type="oauth.consent-refused", outcome="success", actor="person",
                         client_id=flow.client_id, patient_id=flow.patient_id, correlation_id=flow.correlation_id,
                         request_id=flow.request_id, gegevensdiensten=flow.available)
        return _redirect_error(flow, AccessDeniedError(AUTHORIZATION_DENIED))
    long_term = settings.long_term_consent and request.form.get("long_term") == "yes"
    now = utcnow()
    record = Consent(id=str(uuid.uuid4()), patient_id=flow.patient_id or "", client_id=flow.client_id,
                     client_name=_client_name(flow.client_id), usecase=flow.usecase,
                     gegevensdiensten=flow.available or "", long_term=long_term, granted_at=now)
    session.add(record)
    value = codes.issue_code(session, flow_id=flow.id, consent_id=record.id, client_id=flow.client_id,
                             redirect_uri=flow.redirect_uri, scope=flow.scope, patient_id=flow.patient_id or "",
                             gegevensdiensten=(flow.available or "").split(), correlation_id=flow.correlation_id,
                             lifetime=settings.code_lifetime, now=now)
    flow.status = "consented"
    session.commit()
    _event("receive_consent", flow)
    services().audit(event_type="oauth.consent-granted", outcome="success", actor="person",
                     client_id=flow.client_id, patient_id=flow.patient_id, correlation_id=flow.correlation_id,
                     request_id=flow.request_id, gegevensdiensten=flow.available,
                     detail=f"consent {record.id}" + (" (langdurig)" if long_term else ""))
    params = [("code", value)] + ([("state", flow.state)] if flow.state is not None else [])
    _event("send_authorization_response", flow)
    return redirect(add_params_to_uri(flow.redirect_uri, params), code=302)


# ----------------------------------------------------------------------------------------- token
@bp.post("/token")
def token() -> Response:
    problem = header_problem(request.headers)
    correlation_id = None if problem else request.headers.get("X-Correlation-ID")
    request_id = None if problem else request.headers.get("MedMij-Request-ID")
    try:
        # a chunked body is read no further than MAX_CONTENT_LENGTH; one that fills it is too large
        data = request.get_data(cache=True)
        if request.content_length is None and request.max_content_length is not None and \
                len(data) >= request.max_content_length:
            raise RequestEntityTooLarge()
        params = request.form if request.form else request.args  # MedMij 2.2.0 example: query string
    except RequestEntityTooLarge:
        return _token_error(InvalidRequestError("The request body is too large"), correlation_id, request_id, "",
                            status=413)
    client_id = params.get("client_id", "")
    events.emit("receive_token_request", location=services().settings.location, session_id=correlation_id,
                trace_id=request_id, request={"id": request_id, "method": "POST", "client_id": client_id,
                                              "grant_type": params.get("grant_type")})
    try:
        if problem:
            raise InvalidRequestError(problem)
        repeated = _repeated_parameter()
        if repeated:
            raise InvalidRequestError(f"Parameter {repeated} is included more than once (RFC 6749 section 3.2)")
        certificate = _authenticate_client(client_id)
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            body = _exchange_code(params, client_id, certificate)
        elif grant_type == "refresh_token" and services().settings.long_term_consent:
            body = _refresh(params, client_id, certificate)
        elif not grant_type:
            raise InvalidRequestError("grant_type is missing")
        else:
            raise UnsupportedGrantTypeError(f"grant_type {grant_type!r} is not supported")
    except OAuth2Error as error:
        return _token_error(error, correlation_id, request_id, client_id)
    except Exception:  # noqa: BLE001 - answered in the token endpoint's own form; nothing was committed
        services().session().rollback()
        current_app.logger.exception("token endpoint failure")
        response = current_app.response_class(current_app.json.dumps(
            {"error": "server_error", "error_description": "The request could not be completed; try again"}),
            500, mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response
    response = current_app.response_class(current_app.json.dumps(body), 200, mimetype="application/json")
    events.emit("send_token_response", location=services().settings.location, session_id=correlation_id,
                trace_id=request_id, response={"id": request_id, "status": 200})
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    response.headers["Pragma"] = "no-cache"
    return response


def _token_error(error: OAuth2Error, correlation_id: str | None, request_id: str | None, client_id: str,
                 *, status: int | None = None) -> Response:
    """RFC 6749 §5.2 error response (JSON, ``no-store``); the failure is logged and audited."""
    services().session().rollback()
    events.emit("send_token_error", location=services().settings.location, session_id=correlation_id,
                trace_id=request_id, error={"code": error.error, "description": error.description})
    services().audit(event_type="oauth.token", outcome="failure", actor=f"pgo:{client_id}",
                     client_id=client_id or None, correlation_id=correlation_id, request_id=request_id,
                     detail=f"{error.error}: {error.description}")
    code, payload, headers = error()  # body and headers from Authlib
    response = current_app.response_class(current_app.json.dumps(payload), status or code,
                                          mimetype="application/json")
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    response.headers["Pragma"] = "no-cache"
    return response


def _repeated_parameter() -> str | None:
    """RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once" — also not
    once in the query string and once in the body. The first repeated name, or None."""
    for name, values in [*request.args.lists(), *request.form.lists()]:
        if len(values) > 1 or (name in request.args and name in request.form):
            return str(name)
    return None


def _authenticate_client(client_id: str) -> t.Any:
    """RFC 8705 §2.1 ``tls_client_auth`` plus the MedMij OCL and Whitelist checks."""
    settings = services().settings
    if not client_id:
        raise InvalidRequestError("client_id is missing")
    certificate = mtls.client_certificate(request.environ, remote_addr=request.remote_addr,
                                          trusted_proxies=settings.trusted_proxies,
                                          header_name=settings.client_cert_header)
    if certificate is None:
        raise InvalidClientError("A TLS client certificate is required (mutual TLS, RFC 8705)")
    hostnames = mtls.certificate_hostnames(certificate)
    if client_id.lower() not in hostnames:
        raise InvalidClientError("The client certificate does not belong to client_id")
    if services().directory.client_name(client_id) is None:
        raise InvalidClientError("client_id is not on the OAuth Client List")
    if settings.require_whitelist and not services().directory.is_whitelisted(client_id):
        raise InvalidClientError("The client's node is not on the MedMij Whitelist")
    return certificate


def _exchange_code(params: t.Mapping[str, str], client_id: str, certificate: t.Any) -> dict[str, t.Any]:
    value = params.get("code")
    redirect_uri = params.get("redirect_uri")
    if not value:
        raise InvalidRequestError("code is missing")
    if not redirect_uri:
        raise InvalidRequestError("redirect_uri is missing (core.tknint.205)")
    session = services().session()
    now = utcnow()
    try:
        code = codes.consume_code(session, value, client_id=client_id, now=now)
    except codes.CodeOfAnotherClient:
        raise InvalidGrantError("The authorization code was issued to another client") from None
    except codes.CodeReplayed as replay:
        session.commit()  # keep the revocation
        services().audit(event_type="oauth.code-replay", outcome="failure", actor=f"pgo:{client_id}",
                         client_id=client_id, patient_id=replay.code.patient_id,
                         detail=f"code {replay.code.id} presented again; {replay.revoked} token(s) revoked")
        events.emit("receive_token_replay", location=services().settings.location,
                    session_id=replay.code.correlation_id, trace_id=request.headers.get("MedMij-Request-ID"))
        raise InvalidGrantError("The authorization code has already been used") from None
    if code is None:
        raise InvalidGrantError("The authorization code is unknown")
    if codes.is_expired(code, now):
        raise InvalidGrantError("The authorization code has expired")
    if code.redirect_uri != redirect_uri:
        raise InvalidGrantError("redirect_uri differs from the authorization request")
    consent = session.get(Consent, code.consent_id)
    if consent is None or consent.revoked_at is not None:
        raise InvalidGrantError("The consent behind this code has been revoked")
    body, issued = _issue_tokens(session, code=code, consent=consent, client_id=client_id, certificate=certificate,
                                 now=now)
    # the record joins the token's transaction: no token without its audit record, and nothing left to
    # fail once the token is committed
    services().audit(event_type="oauth.token", outcome="success", actor=f"pgo:{client_id}", client_id=client_id,
                     patient_id=code.patient_id, token_ref=token_ref(issued.token_hash),
                     gegevensdiensten=code.gegevensdiensten, correlation_id=code.correlation_id,
                     request_id=request.headers.get("MedMij-Request-ID"), detail=f"code {code.id}", session=session)
    session.commit()
    return body


def _issue_tokens(session: t.Any, *, code: t.Any, consent: Consent, client_id: str, certificate: t.Any,
                  now: datetime) -> tuple[dict[str, t.Any], Token]:
    settings = services().settings
    diensten = code.gegevensdiensten.split()
    access = new_secret()
    thumbprint = mtls.thumbprint_s256(certificate)
    scope = " ".join(diensten) if settings.token_scope_format == "ids" else code.scope
    row = store_token(session, access, kind=ACCESS, patient_id=code.patient_id, gegevensdiensten=diensten,
                      client_id=client_id, scope=scope, lifetime=settings.token_lifetime, code_id=code.id,
                      consent_id=consent.id, cnf_x5t_s256=thumbprint, correlation_id=code.correlation_id, now=now)
    body: dict[str, t.Any] = {"access_token": access, "token_type": "Bearer",
                              "expires_in": int(settings.token_lifetime.total_seconds()), "scope": scope}
    if consent.long_term:
        refresh = new_secret()
        store_token(session, refresh, kind=REFRESH, patient_id=code.patient_id, gegevensdiensten=diensten,
                    client_id=client_id, scope=scope, code_id=code.id, consent_id=consent.id,
                    cnf_x5t_s256=thumbprint, correlation_id=code.correlation_id, now=now)
        body["refresh_token"] = refresh
    consent.last_used_at = now
    return body, row


def _refresh(params: t.Mapping[str, str], client_id: str, certificate: t.Any) -> dict[str, t.Any]:
    """R2 langdurige toestemming: a new access token for a valid refresh token of this client and
    certificate, while the consent stands and has been used in the last six months."""
    value = params.get("refresh_token")
    if not value:
        raise InvalidRequestError("refresh_token is missing")
    session = services().session()
    now = utcnow()
    row = session.scalar(select(Token).where(Token.token_hash == hash_secret(value), Token.kind == REFRESH))
    if row is None or row.revoked_at is not None or row.client_id != client_id:
        raise InvalidGrantError("The refresh token is not valid")
    if row.cnf_x5t_s256 and not hmac.compare_digest(row.cnf_x5t_s256, mtls.thumbprint_s256(certificate)):
        raise InvalidGrantError("The refresh token is bound to another client certificate")
    consent = session.get(Consent, row.consent_id) if row.consent_id else None
    last_used = aware(consent.last_used_at or consent.granted_at) if consent else None
    if consent is None or consent.revoked_at is not None or last_used is None or \
            now - last_used > services().settings.long_term_inactivity:
        raise InvalidGrantError("The consent has ended")
    access = new_secret()
    settings = services().settings
    issued = store_token(session, access, kind=ACCESS, patient_id=row.patient_id,
                         gegevensdiensten=row.gegevensdiensten.split(), client_id=client_id, scope=row.scope,
                         lifetime=settings.token_lifetime, code_id=row.code_id, consent_id=row.consent_id,
                         cnf_x5t_s256=mtls.thumbprint_s256(certificate),
                         correlation_id=request.headers.get("X-Correlation-ID"), now=now)
    consent.last_used_at = now
    services().audit(event_type="oauth.token", outcome="success", actor=f"pgo:{client_id}", client_id=client_id,
                     patient_id=row.patient_id, token_ref=token_ref(issued.token_hash),
                     gegevensdiensten=row.gegevensdiensten, correlation_id=request.headers.get("X-Correlation-ID"),
                     request_id=request.headers.get("MedMij-Request-ID"), detail=f"refresh, consent {consent.id}",
                     session=session)
    session.commit()
    return {"access_token": access, "token_type": "Bearer", "expires_in": int(settings.token_lifetime.total_seconds()),
            "scope": row.scope}


# ------------------------------------------------------------------------------ my consents
@bp.get("/toestemmingen")
def my_consents() -> Response:
    patient_id = browser.get("oauth_manage_patient")
    if not patient_id:
        csrf = secrets.token_urlsafe(32)
        browser["oauth_manage_csrf"] = hash_secret(csrf)
        return _page("oauth/manage_login.html", csrf_token=csrf)
    session = services().session()
    consents = session.scalars(select(Consent).where(Consent.patient_id == patient_id, Consent.revoked_at.is_(None))
                               .order_by(Consent.granted_at.desc())).all()
    now = utcnow()
    active = [c for c in consents if _consent_active(c, now)]
    csrf = secrets.token_urlsafe(32)
    browser["oauth_manage_csrf"] = hash_secret(csrf)
    services().audit(event_type="oauth.consents-viewed", outcome="success", actor="person", patient_id=patient_id)
    settings = services().settings
    return _page("oauth/manage.html", consents=_grouped(active), csrf_token=csrf,
                 person=services().patient_name(patient_id),
                 lifetime=presentation.duration_in_words(settings.token_lifetime),
                 inactivity=presentation.duration_in_words(settings.long_term_inactivity))


@dataclass(frozen=True, slots=True)
class ConsentLine:
    """Identical consents (same PGO, use case, gegevensdiensten and kind) as one line of "Mijn
    toestemmingen": a PGO that fetched four times in a quarter of an hour is one consent to the person."""

    consent: Consent  # the newest; revoking it revokes the whole line
    diensten: list[str]
    count: int
    first_granted: datetime
    last_used: datetime | None


def _line_key(consent: Consent) -> tuple[str, str, str, bool]:
    return consent.client_id, consent.usecase, " ".join(sorted(consent.gegevensdiensten.split())), consent.long_term


def _grouped(consents: t.Sequence[Consent]) -> list[ConsentLine]:
    groups: dict[tuple[str, str, str, bool], list[Consent]] = {}
    for consent in consents:  # newest first
        groups.setdefault(_line_key(consent), []).append(consent)
    lines = []
    for members in groups.values():
        used = [aware(c.last_used_at) for c in members if c.last_used_at is not None]
        lines.append(ConsentLine(members[0], _names(members[0].gegevensdiensten.split()), len(members),
                                 min(t.cast(datetime, aware(c.granted_at)) for c in members),
                                 max(t.cast(list[datetime], used)) if used else None))
    return lines


def _consent_active(consent: Consent, now: datetime) -> bool:
    session = services().session()
    if consent.long_term:
        last = aware(consent.last_used_at or consent.granted_at)
        return last is not None and now - last <= services().settings.long_term_inactivity
    live = session.scalar(select(Token.id).where(Token.consent_id == consent.id, Token.kind == ACCESS,
                                                 Token.revoked_at.is_(None), Token.expires_at > now).limit(1))
    return live is not None


@bp.post("/toestemmingen/login")
def my_consents_login() -> Response:
    _check_csrf(browser.get("oauth_manage_csrf", ""))
    csrf = secrets.token_urlsafe(32)
    browser["oauth_manage_csrf"] = hash_secret(csrf)
    browser["oauth_login_purpose"] = "manage"
    return services().login.start(csrf_token=csrf, finish_url=url_for("oauth.login_finish"))


def _manage_login_finish() -> Response:
    if request.method == "POST":
        _check_csrf(browser.get("oauth_manage_csrf", ""))
    browser.pop("oauth_login_purpose", None)
    try:
        person = services().login.finish(request)
    except (LoginCancelled, LoginFailed):
        return redirect(url_for("oauth.my_consents"), code=303)
    patient_id = services().patient_for_bsn(person.bsn)
    if patient_id is None:
        return _page("oauth/request_error.html", 404, message="We hebben geen toestemmingen van jou gevonden.",
                     detail="Je bent bij ons niet bekend als patiënt.")
    browser["oauth_manage_patient"] = patient_id
    _renew_session_id()
    return redirect(url_for("oauth.my_consents"), code=303)


@bp.post("/toestemmingen/<consent_id>/intrekken")
def revoke_consent(consent_id: str) -> Response:
    patient_id = browser.get("oauth_manage_patient")
    if not patient_id:
        return redirect(url_for("oauth.my_consents"), code=303)
    _check_csrf(browser.get("oauth_manage_csrf", ""))
    session = services().session()
    consent = session.get(Consent, consent_id)
    if consent is None or consent.patient_id != patient_id:
        raise RequestPageError("Deze toestemming bestaat niet.", "Ga terug naar het overzicht.")
    now = utcnow()
    # the person saw one line for identical consents: withdrawing it withdraws all of them
    line = [c for c in session.scalars(select(Consent).where(
        Consent.patient_id == patient_id, Consent.client_id == consent.client_id, Consent.revoked_at.is_(None)))
        if _line_key(c) == _line_key(consent)]
    for member in line:
        member.revoked_at = now
        revoke_tokens(session, Token.consent_id == member.id, now=now, reason="consent_revoked")
    session.commit()
    for member in line:
        services().audit(event_type="oauth.consent-revoked", outcome="success", actor="person",
                         patient_id=patient_id, client_id=member.client_id, detail=f"consent {member.id}")
    return _page("oauth/revoked.html", client_name=consent.client_name)


@bp.post("/toestemmingen/uitloggen")
def my_consents_logout() -> Response:
    """Logging out ends the session itself: with server-side sessions its row is deleted, so a copy of
    the cookie opens nothing any more."""
    browser.clear()
    return redirect(url_for("oauth.my_consents"), code=303)


# ---------------------------------------------------------------------------------- house style
@bp.get("/huisstijl.css")
def house_stylesheet() -> Response:
    """The configured colours as CSS custom properties (no inline styles: strict CSP)."""
    response = current_app.response_class(services().settings.house_style().stylesheet(), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/huisstijl/logo")
def house_logo() -> Response:
    """The configured logo file. An SVG opened on its own runs in a sandbox without scripts."""
    style = services().settings.house_style()
    if not style.logo_file or style.logo_type is None:
        abort(404)
    response = send_file(style.logo_file, mimetype=style.logo_type, max_age=3600)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -------------------------------------------------------------------------------- error pages
@bp.errorhandler(RequestPageError)
def _request_page_error(error: RequestPageError) -> Response:
    return _page("oauth/request_error.html", 400, message=error.message, detail=error.detail)


@bp.errorhandler(Exception)
def _technical_failure(error: Exception) -> Response:
    """R2 "Technische storing" page (mandated text) with Trace ID and Session ID; the button back to
    the PGO only when client_id and redirect_uri were valid."""
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException) and error.code and error.code < 500:
        return _page("oauth/request_error.html", error.code, message="Deze pagina bestaat niet of is verlopen.")
    current_app.logger.exception("authorization server failure")
    flow: AuthorizationFlow | None = getattr(g, "oauth_flow", None)
    trace_id = (flow.request_id if flow else None) or request.args.get("MedMij-Request-ID") or str(uuid.uuid4())
    session_id = (flow.correlation_id if flow else None) or request.args.get("X-Correlation-ID") or "-"
    back = None
    if flow is not None:
        back = add_params_to_uri(flow.redirect_uri, [("error", "server_error")] +
                                 ([("state", flow.state)] if flow.state is not None else []))
    settings = services().settings
    return _page("oauth/storing.html", 500, trace_id=trace_id, session_id=session_id, back=back,
                 dva_naam=settings.dva_naam, dva_telefoon=settings.dva_telefoon)
