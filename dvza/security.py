"""Security headers on every answer of the app (OWASP HTTP Headers Cheat Sheet; OWASP Secure Headers).

* ``Content-Security-Policy`` (CSP Level 3): only the app's own scripts, styles and images, no plugins,
  no ``<base>`` tricks, forms only to the app itself, and never inside a frame (``frame-ancestors
  'none'``, the CSP successor of ``X-Frame-Options``, which is sent too for old browsers). A view that
  needs another policy (the consent page's form-action to the PGO) sets its own; it is kept.
* ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` on everything.
* ``Strict-Transport-Security`` (RFC 6797) when the app ends TLS itself (``dvza serve --certfile``);
  behind a proxy the proxy sends it (deploy/nginx.conf). ``HSTS_MAX_AGE`` = 0 switches it off.

Caching: the authorization server and the FHIR API mark their own answers ``no-store``
(``oauth.server``, ``fhir_api.api``), the hospital pages theirs (``dvza.returnqueue.pages``).
"""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import request

DEFAULT_CSP = ("default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; "
               "form-action 'self'")


def _tls_ended_here() -> bool:
    """True for HTTPS that reached the app directly (not an ``X-Forwarded-Proto`` from a proxy)."""
    return request.environ.get("wsgi.url_scheme") == "https" and "werkzeug.proxy_fix.orig" not in request.environ


def init_app(app: Flask) -> None:
    max_age = int(app.config["HSTS_MAX_AGE"])

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers["X-Content-Type-Options"] = "nosniff"
        headers.setdefault("Referrer-Policy", "no-referrer")
        if max_age and _tls_ended_here():
            headers.setdefault("Strict-Transport-Security", f"max-age={max_age}")
        return response
