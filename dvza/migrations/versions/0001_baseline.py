"""Baseline: the schema of the last release created without migrations (main at da421cb).

A database that ``dvza db init`` made before migrations existed has exactly these tables; :mod:`dvza.migrate`
recognises one (tables, no ``alembic_version``) and marks it as being at this revision before upgrading.
``tests/migrations`` checks that this revision builds the same schema as that release's own code.

The audit table is append-only in the database itself (NEN 7513 style, ``dvza.models.AuditRecord``):
triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_GUARDS = [
    "CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION dvza_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
    "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION dvza_append_only()",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION dvza_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "fhir_resource",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.String(length=40), nullable=False),
        sa.Column("json_text", sa.Text(), nullable=False),
        sa.Column("xml_text", sa.Text(), nullable=False),
        sa.Column("hidden_by", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("resource_type", "logical_id", name="uq_fhir_resource_type_id"),
    )
    op.create_index(op.f("ix_fhir_resource_hidden_by"), "fhir_resource", ["hidden_by"], unique=False)
    op.create_index("ix_fhir_resource_patient_type", "fhir_resource", ["patient_id", "resource_type"], unique=False)
    op.create_table(
        "fhir_index_date",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("start", sa.String(length=32), nullable=False),
        sa.Column("end", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["resource_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fhir_index_date_lookup", "fhir_index_date", ["param", "start", "end"], unique=False)
    op.create_index(op.f("ix_fhir_index_date_resource_pk"), "fhir_index_date", ["resource_pk"], unique=False)
    op.create_table(
        "fhir_index_reference",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["resource_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fhir_index_reference_source", "fhir_index_reference", ["resource_pk", "param"], unique=False)
    op.create_index(
        "ix_fhir_index_reference_target", "fhir_index_reference", ["target_type", "target_id", "param"], unique=False
    )
    op.create_table(
        "fhir_index_string",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["resource_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fhir_index_string_lookup", "fhir_index_string", ["param", "value"], unique=False)
    op.create_index(op.f("ix_fhir_index_string_resource_pk"), "fhir_index_string", ["resource_pk"], unique=False)
    op.create_table(
        "fhir_index_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["resource_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fhir_index_token_lookup", "fhir_index_token", ["param", "code", "system"], unique=False)
    op.create_index(op.f("ix_fhir_index_token_resource_pk"), "fhir_index_token", ["resource_pk"], unique=False)
    op.create_table(
        "oauth_code",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("flow_id", sa.String(length=36), nullable=False),
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("gegevensdiensten", sa.String(length=255), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_table(
        "oauth_consent",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_name", sa.String(length=255), nullable=False),
        sa.Column("usecase", sa.String(length=16), nullable=False),
        sa.Column("gegevensdiensten", sa.String(length=255), nullable=False),
        sa.Column("long_term", sa.Boolean(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oauth_consent_patient", "oauth_consent", ["patient_id"], unique=False)
    op.create_table(
        "oauth_flow",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("usecase", sa.String(length=16), nullable=False),
        sa.Column("requested", sa.String(length=255), nullable=False),
        sa.Column("available", sa.String(length=255), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("csrf_hash", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "oauth_token",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("gegevensdiensten", sa.String(length=255), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("code_id", sa.String(length=36), nullable=True),
        sa.Column("consent_id", sa.String(length=36), nullable=True),
        sa.Column("cnf_x5t_s256", sa.String(length=64), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_oauth_token_code", "oauth_token", ["code_id"], unique=False)
    op.create_index("ix_oauth_token_consent", "oauth_token", ["consent_id"], unique=False)
    op.create_index("ix_oauth_token_patient", "oauth_token", ["patient_id"], unique=False)
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("token_ref", sa.String(length=32), nullable=True),
        sa.Column("gegevensdiensten", sa.String(length=255), nullable=True),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("resource_ids", sa.Text(), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_event_client_time", "audit_event", ["client_id", "occurred_at"], unique=False)
    op.create_index(op.f("ix_audit_event_occurred_at"), "audit_event", ["occurred_at"], unique=False)
    op.create_index("ix_audit_event_patient_time", "audit_event", ["patient_id", "occurred_at"], unique=False)
    op.create_table(
        "identity_link",
        sa.Column("bsn_hmac", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("bsn_hmac"),
    )
    op.create_index(op.f("ix_identity_link_patient_id"), "identity_link", ["patient_id"], unique=False)
    op.create_table(
        "return_queue_item",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("gegevensdienst", sa.String(length=16), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("response_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "request_id", name="uq_return_queue_request"),
    )
    op.create_index(op.f("ix_return_queue_item_patient_id"), "return_queue_item", ["patient_id"], unique=False)
    op.create_index("ix_return_queue_status_received", "return_queue_item", ["status", "received_at"], unique=False)

    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_GUARDS if postgresql else _SQLITE_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dvza_append_only() CASCADE")
    op.drop_index("ix_return_queue_status_received", table_name="return_queue_item")
    op.drop_index(op.f("ix_return_queue_item_patient_id"), table_name="return_queue_item")
    op.drop_table("return_queue_item")
    op.drop_index(op.f("ix_identity_link_patient_id"), table_name="identity_link")
    op.drop_table("identity_link")
    op.drop_index("ix_audit_event_patient_time", table_name="audit_event")
    op.drop_index(op.f("ix_audit_event_occurred_at"), table_name="audit_event")
    op.drop_index("ix_audit_event_client_time", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_oauth_token_patient", table_name="oauth_token")
    op.drop_index("ix_oauth_token_consent", table_name="oauth_token")
    op.drop_index("ix_oauth_token_code", table_name="oauth_token")
    op.drop_table("oauth_token")
    op.drop_table("oauth_flow")
    op.drop_index("ix_oauth_consent_patient", table_name="oauth_consent")
    op.drop_table("oauth_consent")
    op.drop_table("oauth_code")
    op.drop_index(op.f("ix_fhir_index_token_resource_pk"), table_name="fhir_index_token")
    op.drop_index("ix_fhir_index_token_lookup", table_name="fhir_index_token")
    op.drop_table("fhir_index_token")
    op.drop_index(op.f("ix_fhir_index_string_resource_pk"), table_name="fhir_index_string")
    op.drop_index("ix_fhir_index_string_lookup", table_name="fhir_index_string")
    op.drop_table("fhir_index_string")
    op.drop_index("ix_fhir_index_reference_target", table_name="fhir_index_reference")
    op.drop_index("ix_fhir_index_reference_source", table_name="fhir_index_reference")
    op.drop_table("fhir_index_reference")
    op.drop_index(op.f("ix_fhir_index_date_resource_pk"), table_name="fhir_index_date")
    op.drop_index("ix_fhir_index_date_lookup", table_name="fhir_index_date")
    op.drop_table("fhir_index_date")
    op.drop_index("ix_fhir_resource_patient_type", table_name="fhir_resource")
    op.drop_index(op.f("ix_fhir_resource_hidden_by"), table_name="fhir_resource")
    op.drop_table("fhir_resource")
