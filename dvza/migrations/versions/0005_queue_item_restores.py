"""``return_queue_item.restores_json``: what a submission changed at once, to put back if it is rejected.

A PGO's answers to a questionnaire complete the hospital's Task at once (the Vragenlijsten flow reads it back
as ``completed``), and a PGO's Task status change shows at once too. When the hospital rejects such a
submission, the Task goes back to the version before it (unless it holds something else by then), so the
patient can answer again. Each item keeps those earlier versions: a JSON list of ``{"reference", "before",
"version", "after"}`` (the version the submission wrote and a digest of its content), NULL for items that changed
nothing at once (all items from before this revision).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("return_queue_item") as batch:
        batch.add_column(sa.Column("restores_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("return_queue_item") as batch:
        batch.drop_column("restores_json")
