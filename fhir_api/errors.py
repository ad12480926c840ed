"""One error hierarchy for the resource server; every error becomes an OperationOutcome.

FHIR http.html: "a server SHOULD return an OperationOutcome resource" with any 4xx/5xx response;
the issue ``code`` comes from the IssueType value set (https://hl7.org/fhir/STU3/valueset-issue-type.html).
A handler renders these in the negotiated format (JSON or XML), see ``fhir_api.responses``.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One ``OperationOutcome.issue``."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: str | None = None

    def to_json(self) -> dict[str, t.Any]:
        issue: dict[str, t.Any] = {"severity": self.severity, "code": self.code}
        issue["details"] = {"text": self.diagnostics}
        issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirError(Exception):
    """Base class: an HTTP status plus the issues that explain it."""

    status_code: int = 500
    issue_code: str = "exception"
    severity: str = "error"

    def __init__(self, diagnostics: str, *, issues: t.Sequence[Issue] | None = None,
                 headers: t.Mapping[str, str] | None = None):
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.issues = list(issues) if issues else [Issue(self.issue_code, diagnostics, self.severity)]
        self.headers = dict(headers or {})

    def operation_outcome(self) -> dict[str, t.Any]:
        return {
            "resourceType": "OperationOutcome",
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/OperationOutcome"]},
            "issue": [issue.to_json() for issue in self.issues],
        }


class FhirFormatError(FhirError):
    """The body is not well-formed FHIR JSON/XML (400 ``structure``)."""

    status_code = 400
    issue_code = "structure"


class InvalidResource(FhirError):
    """The resource does not conform to the specification or the content rules (400/422 ``invalid``)."""

    status_code = 400
    issue_code = "invalid"


class InvalidRequest(FhirError):
    """Bad search syntax, unknown search parameter, malformed URL (400 ``invalid``)."""

    status_code = 400
    issue_code = "invalid"


class Unauthorized(FhirError):
    """No usable access token (401 ``login``); carries ``WWW-Authenticate: Bearer`` (RFC 6750 §3)."""

    status_code = 401
    issue_code = "login"


class GrantLapsed(Unauthorized):
    """The token was revoked or expired while the request ran: found when the read's audit record was to be
    written (``AuditSink.record``), so the answer is withheld and this 401 ``invalid_token`` (RFC 6750 §3.1)
    goes instead — revocation takes effect on the next request, whatever a worker read before."""


class Forbidden(FhirError):
    """The token does not cover this gegevensdienst or client (403 ``forbidden``)."""

    status_code = 403
    issue_code = "forbidden"


class NotFound(FhirError):
    """Unknown resource, or one outside the token's patient (404 ``not-found``)."""

    status_code = 404
    issue_code = "not-found"


class NotSupported(FhirError):
    """Unsupported resource type or interaction (404 ``not-supported``, http.html#general)."""

    status_code = 404
    issue_code = "not-supported"


class MethodNotAllowed(FhirError):
    status_code = 405
    issue_code = "not-supported"


class NotAcceptable(FhirError):
    """The Accept header/``_format`` names no format this server writes (406)."""

    status_code = 406
    issue_code = "not-supported"


class UnsupportedMediaType(FhirError):
    """The Content-Type of a write is not FHIR JSON/XML (415)."""

    status_code = 415
    issue_code = "not-supported"


class Conflict(FhirError):
    status_code = 409
    issue_code = "conflict"


class PreconditionFailed(FhirError):
    status_code = 412
    issue_code = "conflict"


class PayloadTooLarge(FhirError):
    """Body, bundle or attachment over the configured limit (413 ``too-costly``)."""

    status_code = 413
    issue_code = "too-costly"


class BusinessRuleViolation(FhirError):
    """A well-formed request that the rules refuse, e.g. a completed Task without answers (422)."""

    status_code = 422
    issue_code = "business-rule"
