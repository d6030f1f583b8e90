"""webhook outbox, tenants, structured and grounded output

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:50:00

"""

import sqlalchemy as sa
from alembic import op

import jobsvc.core.models

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_due_at", jobsvc.core.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("webhook_gave_up_at", jobsvc.core.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("owner", sa.String(length=64), server_default="", nullable=False))
        batch_op.add_column(sa.Column("checklist_items", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("checklist_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("prompt_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("grounding", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("chunk_summaries", sa.JSON(), nullable=True))
        batch_op.drop_constraint("uq_jobs_idempotency_key", type_="unique")
        batch_op.create_unique_constraint("uq_jobs_owner_idempotency_key", ["owner", "idempotency_key"])
        batch_op.create_index("ix_jobs_owner_created_at", ["owner", "created_at"], unique=False)
        batch_op.create_index("ix_jobs_webhook_due_at", ["webhook_due_at"], unique=False)
    # Jobs that ended with a callback and were neither delivered nor given up are owed one.
    op.execute(
        "UPDATE jobs SET webhook_due_at = finished_at WHERE callback_url IS NOT NULL "
        "AND status IN ('succeeded', 'failed', 'canceled') AND webhook_delivered_at IS NULL "
        "AND (webhook_error IS NULL OR webhook_error NOT LIKE 'gave up: %')"
    )
    op.execute("UPDATE jobs SET webhook_gave_up_at = finished_at WHERE webhook_error LIKE 'gave up: %'")


def downgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_webhook_due_at")
        batch_op.drop_index("ix_jobs_owner_created_at")
        batch_op.drop_constraint("uq_jobs_owner_idempotency_key", type_="unique")
        batch_op.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
        for column in (
            "chunk_summaries", "warnings", "grounding", "prompt_version", "checklist_source",
            "checklist_items", "owner", "webhook_gave_up_at", "webhook_due_at",
        ):  # fmt: skip
            batch_op.drop_column(column)
