"""Storage of FHIR resources: canonical JSON + pre-rendered XML, and search-index rows.

Design (design-references.md §2.4, the HAPI/Microsoft pattern): values are extracted at write time
into small index tables (tokens, dates, references, strings) and searches compile to SQL over them;
the JSON is never scanned at query time. Each resource row holds the canonical JSON text and the
XML rendering of the same version, so reads and searches serve stored bytes in either format
without a pydantic model on the read path.

``patient_id`` is the Patient compartment the resource belongs to (its own id for a Patient,
https://hl7.org/fhir/STU3/compartmentdefinition-patient.html); ``NULL`` for shared resources
(Practitioner, Organization, Medication, Binary, ...), which a token may read only when its
patient's resources reference them (see :mod:`fhir_api.view`).

Every index row repeats its resource's ``patient_id`` and ``resource_type`` and the indexes lead with
them, so a search is driven by the patient's own matching values: its cost follows what it finds in
that patient's record, never the size of the record or of other patients' data (issue 12). There is
deliberately no index on a value across all patients: a query plan can then never start from every
patient's matches (PostgreSQL's generic plans for prepared statements would, when it looks cheap).
``fhir_index_lastn`` keeps each Observation's codes with its effective date in index order, so
``Observation/$lastn`` reads the newest per code straight from an index.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column


class FhirBase(DeclarativeBase):
    """Declarative base of the resource server's tables (own MetaData; the app creates them)."""


class ResourceRow(FhirBase):
    __tablename__ = "fhir_resource"
    __table_args__ = (
        UniqueConstraint("resource_type", "logical_id", name="uq_fhir_resource_type_id"),
        Index("ix_fhir_resource_patient_type", "patient_id", "resource_type"),
        # only the hidden rows (the return queue finds an item's resources by it). Nearly every row is NULL; a
        # full index let SQLite's planner, whose statistics average over the many distinct submission ids, take
        # "hidden_by IS NULL" for a selective lookup and scan every visible resource (issue 12, $lastn growth)
        Index("ix_fhir_resource_hidden_by", "hidden_by", sqlite_where=text("hidden_by IS NOT NULL"),
              postgresql_where=text("hidden_by IS NOT NULL")),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    logical_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer, default=1)
    last_updated: Mapped[str] = mapped_column(String(40))
    #: canonical FHIR JSON (fhir_api.fhirjson.dumps of the spec-ordered resource)
    json_text: Mapped[str] = mapped_column(Text)
    #: FHIR XML rendering of the same version (fhir_api.fhirxml.render_xml)
    xml_text: Mapped[str] = mapped_column(Text)
    #: data a PGO sent that the hospital has not accepted yet: the return-queue item id. Such
    #: resources are not served until the item is accepted (then NULL).
    hidden_by: Mapped[str | None] = mapped_column(String(36))

    #: optimistic locking (SQLAlchemy "Configuring a Version Counter"): every ORM UPDATE of a row says
    #: ``WHERE version_id = <the version it read>``, so of two writers that read the same version only the
    #: first can store its next one (the other gets ``StaleDataError``: no lost update, http.html#concurrency).
    #: The store sets the next version itself (``version_id_generator=False``).
    __mapper_args__ = {"version_id_col": version_id, "version_id_generator": False}


class TokenIndex(FhirBase):
    """Token search values: (system, code) pairs, ``system`` NULL when the value has none."""

    __tablename__ = "fhir_index_token"
    __table_args__ = (
        Index("ix_fhir_index_token_patient", "patient_id", "resource_type", "param", "code", "system"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pk", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    system: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))


class DateIndex(FhirBase):
    """Date search values as closed UTC ranges ``[start, end]`` (search.html#date)."""

    __tablename__ = "fhir_index_date"
    __table_args__ = (
        Index("ix_fhir_index_date_patient", "patient_id", "resource_type", "param", "start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pk", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    start: Mapped[str] = mapped_column(String(32))
    end: Mapped[str] = mapped_column(String(32))


class ReferenceIndex(FhirBase):
    """References out of a resource. ``param`` is a search parameter name, or ``*`` for every
    reference anywhere in the resource (used for access control and ``_include`` closure).
    ``patient_id``/``resource_type`` are those of the *source* resource."""

    __tablename__ = "fhir_index_reference"
    __table_args__ = (
        Index("ix_fhir_index_reference_target", "target_type", "target_id", "param", "patient_id"),
        Index("ix_fhir_index_reference_source", "resource_pk", "param"),
        Index("ix_fhir_index_reference_patient", "patient_id", "resource_type", "param", "target_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pk", ondelete="CASCADE"))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))


class StringIndex(FhirBase):
    """String search values, normalised (case- and accent-insensitive) for ``starts with``."""

    __tablename__ = "fhir_index_string"
    __table_args__ = (
        Index("ix_fhir_index_string_patient", "patient_id", "resource_type", "param", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pk", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(255))


class LastnIndex(FhirBase):
    """Each coding of an Observation's ``code`` (``position`` 0 is the first) with the Observation's
    effective date (the latest start of its ``date`` values) and ``meta.lastUpdated``: the order of
    ``Observation/$lastn`` (fhir-content.md §1.5: newest per code), read from the index."""

    __tablename__ = "fhir_index_lastn"
    __table_args__ = (
        Index("ix_fhir_index_lastn_code", "patient_id", "code", "system", "effective", "last_updated",
              "resource_pk"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pk", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)
    effective: Mapped[str] = mapped_column(String(32))
    last_updated: Mapped[str] = mapped_column(String(40))



#: the index tables a resource's values live in (written and dropped together)
INDEX_TABLES = (TokenIndex, DateIndex, ReferenceIndex, StringIndex, LastnIndex)
