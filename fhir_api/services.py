"""What the resource server needs from the application, injected by ``dvza`` at start-up.

``fhir_api`` knows nothing of the app's configuration loading, database set-up or audit storage;
it receives them here (the dependency direction of DEVELOPERS.md: ``dvza`` imports ``fhir_api``,
never the reverse).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field

from .access import DEFAULT_GEGEVENSDIENSTEN
from .access import AccessResolver

if t.TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(slots=True)
class AccessEvent:
    """One audited data access (NEN 7513: what, when, which patient, who, on whose behalf)."""

    action: str  # e.g. type-search, instance-read, update, transaction, batch
    status: int
    resource_type: str | None = None
    resource_ids: list[str] = field(default_factory=list)
    query: str = ""
    patient_id: str | None = None
    client_id: str | None = None
    token_ref: str | None = None
    gegevensdiensten: tuple[str, ...] = ()
    request_id: str | None = None
    correlation_id: str | None = None
    remote_addr: str | None = None
    detail: str = ""
    #: written already, in the transaction of the data it describes (a submission)
    recorded: bool = False
    #: the grant's ``recheck`` (:class:`fhir_api.access.AccessGrant`), confirmed by the sink as it writes the record
    recheck: t.Any = None


class AuditSink(t.Protocol):
    def record(self, event: AccessEvent, *, session: Session | None = None) -> None:
        """Persist one access event; raising makes the request fail (fail closed). With ``session`` the
        record joins that session's transaction (committed with the data, or not at all).

        With ``event.recheck`` set, the record is written only if the grant still holds at that moment, in
        the same statement; if it does not (the token was revoked or expired meanwhile), nothing is written
        and :class:`fhir_api.errors.GrantLapsed` is raised: the answer is withheld."""
        ...


@dataclass(frozen=True, slots=True)
class Restore:
    """A resource a submission changed at once (a Task's status and output) and how it was before: if the
    hospital rejects the submission, the resource goes back — unless it holds something else by then."""

    reference: str  # Type/id
    #: the resource as it was before the submission (canonical JSON)
    before_json: str
    #: the version the submission wrote
    version: int
    #: what it wrote (``fhir_api.store.content_digest``): put back only while the resource still holds that
    after_digest: str = ""


@dataclass(slots=True)
class Submission:
    """What a PGO sent back in one request (Module 2), as handed to the return queue."""

    id: str
    kind: str  # vitalsigns | documents | questionnaire-answers | task-status
    gegevensdienst: str | None
    patient_id: str
    client_id: str
    request_id: str
    correlation_id: str | None
    body_sha256: str
    resources: list[str]
    summary: str
    #: the FHIR response bundle/resource (JSON) returned to the PGO
    response: dict[str, t.Any]
    status_code: int = 200
    #: what the submission changed at once and a rejection puts back
    restores: tuple[Restore, ...] = ()


@dataclass(frozen=True, slots=True)
class PriorSubmission:
    body_sha256: str
    response_json: str
    #: whose it was: a replay answers only the same patient's token (the answer holds that patient's data)
    patient_id: str | None = None
    status_code: int = 200


class SubmissionSink(t.Protocol):
    """The return queue, written in the caller's transaction (implemented by ``dvza.returnqueue``)."""

    def prior(self, session: Session, *, client_id: str, request_id: str) -> PriorSubmission | None:
        """The earlier submission with this MedMij-Request-ID from this client, if any."""
        ...

    def enqueue(self, session: Session, submission: Submission) -> None:
        """Add the submission; raise ``DuplicateSubmission`` if the request id was used meanwhile."""
        ...


class DuplicateSubmission(Exception):
    """Another request with the same (client, MedMij-Request-ID) was stored concurrently."""


@dataclass(slots=True)
class Limits:
    max_body_bytes: int = 20 * 1024 * 1024
    max_bundle_entries: int = 200
    max_attachment_bytes: int = 15 * 1024 * 1024


@dataclass(slots=True)
class FhirServices:
    session: t.Callable[[], Session]
    access: AccessResolver
    audit: AuditSink
    #: gegevensdienst id -> profile name (fhir_api.access.PROFILES)
    gegevensdiensten: t.Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GEGEVENSDIENSTEN))
    submissions: SubmissionSink | None = None
    #: absolute base URL to use instead of the request's (behind a proxy that rewrites hosts)
    public_base_url: str | None = None
    default_count: int = 100
    max_count: int = 1000
    limits: Limits = field(default_factory=Limits)
    #: qualification/test mode: PUT of any resource and $purge with a qualification token
    test_writes: bool = False
    url_prefix: str = "/fhir"
    software_name: str = "medmij-dvza"
    software_version: str = "0.1.0"
    #: the request's Core connection for reads (no ORM unit of work); None: reads use the session
    connection: t.Callable[[], t.Any] | None = None
    #: scopes of the gegevensdienst sets seen (fhir_api.access.scope_for), kept for the process
    scopes: dict[frozenset[str], t.Any] = field(default_factory=dict, repr=False)
