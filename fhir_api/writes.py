"""Writes through the FHIR API outside Module 2 bundles.

* ``PUT [base]/Task/<id>`` by a PGO whose gegevensdiensten allow questionnaire task changes: only
  the status of the patient's own, hospital-created Task (:func:`fhir_api.submissions.task_update`,
  fhir-content.md §4.1 step 3). A Task that is not the patient's gets the same 404 as one that does
  not exist.
* ``PUT [base]/<type>/<id>`` (update / create with a client-assigned id, http.html#update) in
  qualification/test mode: how the Nictiz load scripts put their test patients on a server
  ("The target XIS FHIR server is expected to support resource create via the update (PUT)
  operation for client assigned ids", fhir-content.md §2.2). Only with a qualification token, only
  for that token's patient or shared resources; a shared resource that another patient's data
  refers to can only be written again unchanged (re-running a load script), never altered. A clear BSN
  is refused: this API never takes a BSN (the source API, ``dvza.source``, does).
* ``POST [base]/Patient/<id>/$purge`` in the same mode: removes that patient's compartment, the
  ConformanceLab operation the load scripts start with (fhir-content.md §7.5).
"""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import Response
from flask import request

from . import compartment
from . import content_rules
from . import formats
from . import submissions
from .context import audit
from .context import authorize
from .context import base_url
from .context import fhir_response
from .context import local_bases
from .context import patient_view
from .context import read_resource
from .context import response_format
from .context import services
from .context import supported_type
from .errors import Forbidden
from .errors import InvalidRequest
from .errors import InvalidResource
from .errors import Issue
from .store import ResourceStore
from .store import valid_id


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/<rtype>/<rid>", "update", update, methods=["PUT"])
    bp.add_url_rule("/Patient/<pid>/$purge", "purge", purge, methods=["POST", "DELETE"])


def update(rtype: str, rid: str) -> Response:
    fmt = response_format()
    audit("update", resource_type=rtype, resource_ids=[f"{rtype}/{rid}"])
    supported_type(rtype)
    if not valid_id(rid):
        raise InvalidRequest(f"{rid!r} is not a valid resource id")
    grant, scope = authorize()
    resource = read_resource()
    bsn_paths = content_rules.clear_bsn_paths(resource)
    if bsn_paths:
        raise InvalidResource("A BSN is never accepted from a PGO (MedMij core.rscint.203); the hospital's own "
                              "systems register a patient's BSN", issues=[
                                  Issue("invalid", f"{path}: a BSN in clear", expression=path) for path in bsn_paths])
    if resource.get("resourceType") != rtype:
        raise InvalidResource(f"The body is a {resource.get('resourceType')}, the URL names {rtype}")
    if resource.get("id") != rid:
        raise InvalidResource(f"The body has id {resource.get('id')!r}, the URL names {rid!r}")
    session = services().session()
    store = ResourceStore(session, local_bases=local_bases())
    qualification_write = services().test_writes and grant.qualification
    if submissions.is_task_status_change(rtype, scope):
        visible = patient_view(grant, scope).read(rtype, rid) is not None
        if visible or not qualification_write:
            return submissions.task_update(grant, scope, resource, fmt)
    if not qualification_write:
        raise Forbidden(f"This access token may not change {rtype} resources")
    owner = compartment.owner(resource, store.local_bases)
    existing = store.get(rtype, rid)
    refused = Forbidden("This resource cannot be written with this token")
    if (rtype == "Patient" and rid != grant.patient_id) or (owner is not None and owner != grant.patient_id):
        raise refused
    if existing is not None and (existing.patient_id != owner or existing.hidden_by is not None):
        raise refused
    if existing is not None and owner is None and store.claimed_by_other_patients(existing, grant.patient_id):
        if not store.same_content(existing, resource):
            raise refused
        return _written_response(existing, 200, fmt)
    written = store.put(resource)
    session.commit()
    return _written_response(written.row, 201 if written.created else 200, fmt)


def _written_response(row: t.Any, status: int, fmt: str) -> Response:
    """http.html#update: Location with the version, ETag, and the resource unless ``return=minimal``."""
    location = f"{base_url()}/{row.resource_type}/{row.logical_id}/_history/{row.version_id}"
    headers = {"ETag": f'W/"{row.version_id}"', "Location": location}
    if "return=minimal" in request.headers.get("Prefer", ""):
        return fhir_response("", status, fmt=fmt, headers=headers)
    body = row.xml_text if fmt == formats.XML else row.json_text
    return fhir_response(body, status, fmt=fmt, headers=headers)


def purge(pid: str) -> Response:
    audit("operation-purge", resource_type="Patient", resource_ids=[f"Patient/{pid}"])
    grant, _ = authorize()
    if not (services().test_writes and grant.qualification and grant.patient_id == pid):
        raise Forbidden("$purge is only available in qualification mode, for the token's own patient")
    session = services().session()
    removed = ResourceStore(session, local_bases=local_bases()).delete_patient_data(pid)
    session.commit()
    audit("operation-purge", detail=f"{removed} resources removed")
    return Response(status=204)
