"""The app's own person-facing pages: the start page of the frontchannel (``/``) and Dutch error pages.

People who open the DVZA's address, mistype a link or meet an error get a page in Dutch, in the
hospital's house style, instead of Werkzeug's English "Not Found" (issue 17). Machine interfaces keep
their own error forms: the FHIR API answers with an OperationOutcome (its blueprint), the token
endpoint with OAuth error JSON, the queue API and the health checks with their own answers.
"""

from __future__ import annotations

import typing as t

from flask import Flask
from flask import render_template
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError

#: paths that machines call: their errors stay in the machine's form
MACHINE_PATHS = ("/queue/api", "/oauth/token", "/healthz", "/readyz", "/metrics")

#: (heading, explanation) per status, in B1 Dutch
MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Dit verzoek klopt niet", "Het formulier is misschien verlopen. Ga terug en probeer het opnieuw."),
    401: ("Je bent niet ingelogd", "Log eerst in en probeer het dan opnieuw."),
    403: ("Dit mag niet", "Je hebt geen toegang tot deze pagina."),
    404: ("Deze pagina bestaat niet", "Misschien is het adres niet goed, of is de pagina verplaatst."),
    405: ("Dat kan hier niet", "Deze pagina werkt niet op deze manier. Ga terug en probeer het opnieuw."),
    413: ("Dit is te groot", "Wat je stuurt, is groter dan wij kunnen ontvangen."),
    429: ("Te veel pogingen", "Wacht even en probeer het daarna opnieuw."),
}
FALLBACK = ("Er ging iets mis", "Probeer het later nog eens.")


def _machine_path(path: str, fhir_base: str) -> bool:
    return bool(fhir_base) and (path == fhir_base or path.startswith(fhir_base + "/")) or path.startswith(
        MACHINE_PATHS)


def init_app(app: Flask) -> None:
    fhir_base = str(app.config["FHIR_BASE_PATH"]).rstrip("/")

    @app.get("/")
    def start() -> t.Any:
        return _no_store(render_template("dvza/start.html"))

    @app.errorhandler(HTTPException)
    def _person_error(error: HTTPException) -> t.Any:
        if error.response is not None or error.code is None or _machine_path(request.path, fhir_base):
            return error  # a ready response (abort(redirect(...))) or a machine's path: unchanged
        return _error_page(error.code)

    @app.errorhandler(InternalServerError)
    def _person_failure(error: InternalServerError) -> t.Any:
        if _machine_path(request.path, fhir_base):
            return error
        return _error_page(500)


def _error_page(code: int) -> t.Any:
    heading, explanation = MESSAGES.get(code, FALLBACK)
    return _no_store(render_template("dvza/error.html", heading=heading, explanation=explanation), code)


def _no_store(body: str, status: int = 200) -> t.Any:
    return body, status, {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                          "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"}
