"""the API round: priorities, batches, the job event log (SSE and the webhook outbox), delivery records, retention

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JOB_COLUMNS = (
    sa.Column("priority", sa.String(8), nullable=False, server_default="normal"),
    sa.Column("queue_priority", sa.Integer(), nullable=False, server_default="3"),
    sa.Column("batch_id", sa.String(36), nullable=True),
    sa.Column("webhook_events", sa.JSON(), nullable=True),
    sa.Column("webhook_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("webhook_last_status", sa.Integer(), nullable=True),
    sa.Column("webhook_last_error", sa.Text(), nullable=True),
    sa.Column("webhook_last_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("steps_done", sa.Integer(), nullable=True),
    sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in JOB_COLUMNS:
            batch.add_column(column.copy())
        batch.create_index("ix_jobs_batch_id", ["batch_id"])
        batch.create_index("ix_jobs_owner_created", ["owner", "created_at"])
        batch.create_index("ix_jobs_webhook_pending", ["webhook_pending"])
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=True, index=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(36), nullable=False, index=True),
        sa.Column("owner", sa.String(64), nullable=True, index=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,  # ids never reused: a stream's Last-Event-ID stays meaningful
    )


def downgrade() -> None:
    op.drop_table("job_events")
    op.drop_table("batches")
    with op.batch_alter_table("jobs") as batch:
        for name in ("ix_jobs_webhook_pending", "ix_jobs_owner_created", "ix_jobs_batch_id"):
            batch.drop_index(name)
        for column in reversed(JOB_COLUMNS):
            batch.drop_column(column.name)
