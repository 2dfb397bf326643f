"""frontiers recorded by `adq tune --record`, the frontier point each job used, and the event log's index for the
service rate

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frontiers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("preset", sa.String(64), nullable=False, index=True),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("frontier_point", sa.JSON(), nullable=True))
    op.create_index("ix_job_events_status_at", "job_events", ["status", "at"])


def downgrade() -> None:
    op.drop_index("ix_job_events_status_at", table_name="job_events")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("frontier_point")
    op.drop_table("frontiers")
