"""Search indexes led by the patient, and ``$lastn`` from an ordered index (issue 12).

Every index row gets its resource's ``patient_id`` and ``resource_type`` (copied from ``fhir_resource``), and
the indexes lead with them, so a search is driven by the patient's own matching values
(``fhir_api.models`` module docstring). The global value indexes go: with them a query plan could start from
every patient's matches.

``fhir_index_lastn`` is filled from the stored Observations: each coding of ``Observation.code`` with its
position, and the effective date — the latest start of the Observation's ``date`` index values, which are
already stored — so ``Observation/$lastn`` (fhir-content.md §1.5) reads the newest per code from the index.
The rules are written out here, as they stood when this revision was made, rather than imported: a
migration must do tomorrow what it did today.

Runs in one transaction (SQLite and PostgreSQL both have transactional DDL): a failure leaves the database at
revision 0002, untouched.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
import typing as t

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: table → (old value index, (name, columns) of the patient-led indexes that replace it)
_INDEXES: dict[str, tuple[tuple[str, list[str]], list[tuple[str, list[str]]]]] = {
    "fhir_index_token": (
        ("ix_fhir_index_token_lookup", ["param", "code", "system"]),
        [("ix_fhir_index_token_patient", ["patient_id", "resource_type", "param", "code", "system"])],
    ),
    "fhir_index_date": (
        ("ix_fhir_index_date_lookup", ["param", "start", "end"]),
        [("ix_fhir_index_date_patient", ["patient_id", "resource_type", "param", "start"])],
    ),
    "fhir_index_string": (
        ("ix_fhir_index_string_lookup", ["param", "value"]),
        [("ix_fhir_index_string_patient", ["patient_id", "resource_type", "param", "value"])],
    ),
    "fhir_index_reference": (
        ("ix_fhir_index_reference_target", ["target_type", "target_id", "param"]),
        [
            ("ix_fhir_index_reference_target", ["target_type", "target_id", "param", "patient_id"]),
            ("ix_fhir_index_reference_patient", ["patient_id", "resource_type", "param", "target_id"]),
        ],
    ),
}

#: Observations read per round trip while filling ``fhir_index_lastn``
_BATCH = 500

_resource = sa.table(
    "fhir_resource",
    sa.column("pk", sa.Integer),
    sa.column("resource_type", sa.String),
    sa.column("patient_id", sa.String),
    sa.column("last_updated", sa.String),
    sa.column("json_text", sa.Text),
)
_date = sa.table(
    "fhir_index_date",
    sa.column("resource_pk", sa.Integer),
    sa.column("param", sa.String),
    sa.column("start", sa.String),
)


def upgrade() -> None:
    for name, (old, new) in _INDEXES.items():
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("patient_id", sa.String(length=64), nullable=True))
            batch.add_column(sa.Column("resource_type", sa.String(length=64), nullable=True))
        index = sa.table(name, sa.column("resource_pk"), sa.column("patient_id"), sa.column("resource_type"))
        op.execute(
            sa.update(index)
            .values(patient_id=_resource.c.patient_id, resource_type=_resource.c.resource_type)
            .where(index.c.resource_pk == _resource.c.pk)
        )
        with op.batch_alter_table(name) as batch:
            batch.alter_column("resource_type", existing_type=sa.String(length=64), nullable=False)
            batch.drop_index(old[0])
        for index_name, columns in new:
            op.create_index(index_name, name, columns, unique=False)

    lastn = op.create_table(
        "fhir_index_lastn",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("effective", sa.String(length=32), nullable=False),
        sa.Column("last_updated", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["resource_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    _fill_lastn(lastn)
    op.create_index(
        "ix_fhir_index_lastn_code",
        "fhir_index_lastn",
        ["patient_id", "code", "system", "effective", "last_updated", "resource_pk"],
        unique=False,
    )
    op.create_index(op.f("ix_fhir_index_lastn_resource_pk"), "fhir_index_lastn", ["resource_pk"], unique=False)


def _fill_lastn(lastn: sa.Table) -> None:
    """One row per coding of every stored Observation's ``code``, in pages of ``_BATCH`` (keyset on ``pk``)."""
    connection = op.get_bind()
    after = 0
    while True:
        page = connection.execute(
            sa.select(_resource.c.pk, _resource.c.patient_id, _resource.c.last_updated, _resource.c.json_text)
            .where(_resource.c.resource_type == "Observation", _resource.c.pk > after)
            .order_by(_resource.c.pk)
            .limit(_BATCH)
        ).all()
        if not page:
            return
        after = page[-1].pk
        effective = dict(
            connection.execute(
                sa.select(_date.c.resource_pk, sa.func.max(_date.c.start))
                .where(_date.c.param == "date", _date.c.resource_pk.between(page[0].pk, after))
                .group_by(_date.c.resource_pk)
            ).all()
        )
        rows = [
            {
                "resource_pk": row.pk,
                "patient_id": row.patient_id,
                "system": system,
                "code": code,
                "position": position,
                "effective": effective.get(row.pk) or "",
                "last_updated": row.last_updated,
            }
            for row in page
            for system, code, position in _codings(json.loads(row.json_text))
        ]
        if rows:
            connection.execute(sa.insert(lastn), rows)


def _codings(observation: dict[str, t.Any]) -> list[tuple[str, str, int]]:
    """(system, code, position) of each coding of ``Observation.code`` that has a code; ``system`` "" when absent."""
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    found = []
    for position, coding in enumerate(codings if isinstance(codings, list) else []):
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            system = coding.get("system") if isinstance(coding.get("system"), str) else ""
            found.append((system[:255], coding["code"][:255], position))
    return found


def downgrade() -> None:
    op.drop_index(op.f("ix_fhir_index_lastn_resource_pk"), table_name="fhir_index_lastn")
    op.drop_index("ix_fhir_index_lastn_code", table_name="fhir_index_lastn")
    op.drop_table("fhir_index_lastn")
    for name, (old, new) in _INDEXES.items():
        for index_name, _columns in new:
            op.drop_index(index_name, table_name=name)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("resource_type")
            batch.drop_column("patient_id")
        op.create_index(old[0], name, old[1], unique=False)
