"""Tables of the login adapters, server-side browser sessions, the staff copy of the BSN, sign-in throttling,
client qualification sessions and the source API (issues 13 to 17).

- ``oauth_login_state``: where a DigiD SAML or OIDC login is while the person is at the identity provider
  (``oauth.models``; issue 14).
- ``browser_session``, ``rate_limit_counter``: server-side sessions of patients and staff, and the counters of
  throttled sign-ins (``dvza.sessions``, ``dvza.ratelimit``; issue 13).
- ``patient_bsn``: the BSN, encrypted, for hospital staff only (``dvza.models.PatientBsn``; issue 17).
- ``qualification_session``, ``qualification_request``: a PGO's client-role qualification run and the requests
  it made (``dvza.qualification.models``; issue 15).
- ``source_resource_owner``, ``source_import_job``, ``source_import_refusal``: which hospital system owns a
  resource, and restartable bulk imports (``dvza.source.models``; issue 16).

Only new tables: nothing existing changes, so this revision never touches data.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_login_state",
        sa.Column("handle_hash", sa.String(length=64), nullable=False),
        sa.Column("adapter", sa.String(length=32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("handle_hash"),
    )
    op.create_table(
        "browser_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index(op.f("ix_browser_session_expires_at"), "browser_session", ["expires_at"], unique=False)
    op.create_table(
        "patient_bsn",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("bsn_encrypted", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "qualification_session",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sets", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_by", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("today", sa.String(length=10), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("patients", sa.Text(), nullable=False),
        sa.Column("variables", sa.Text(), nullable=False),
        sa.Column("work", sa.Text(), nullable=False),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_qualification_session_status"), "qualification_session", ["status"], unique=False)
    op.create_table(
        "rate_limit_counter",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index(op.f("ix_rate_limit_counter_expires_at"), "rate_limit_counter", ["expires_at"], unique=False)
    op.create_table(
        "source_import_job",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("total_bytes", sa.Integer(), nullable=True),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "source_import_refusal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=140), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_source_import_refusal_job", "source_import_refusal", ["job_id", "line"], unique=False)
    op.create_table(
        "source_resource_owner",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "logical_id"),
    )
    op.create_table(
        "qualification_request",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("request_headers", sa.Text(), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response_headers", sa.Text(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("token_label", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["qualification_session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_qualification_request_session", "qualification_request", ["session_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_qualification_request_session", table_name="qualification_request")
    op.drop_table("qualification_request")
    op.drop_table("source_resource_owner")
    op.drop_index("ix_source_import_refusal_job", table_name="source_import_refusal")
    op.drop_table("source_import_refusal")
    op.drop_table("source_import_job")
    op.drop_index(op.f("ix_rate_limit_counter_expires_at"), table_name="rate_limit_counter")
    op.drop_table("rate_limit_counter")
    op.drop_index(op.f("ix_qualification_session_status"), table_name="qualification_session")
    op.drop_table("qualification_session")
    op.drop_table("patient_bsn")
    op.drop_index(op.f("ix_browser_session_expires_at"), table_name="browser_session")
    op.drop_table("browser_session")
    op.drop_table("oauth_login_state")
