"""webhook url and owning API key per job; queue waits for the metrics histograms

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("student_wait_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("teacher_wait_s", sa.Float(), nullable=True))
        batch.create_index("ix_jobs_owner", ["owner"])
        batch.create_index("ix_jobs_student_finished_at", ["student_finished_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_student_finished_at")
        batch.drop_index("ix_jobs_owner")
        batch.drop_column("teacher_wait_s")
        batch.drop_column("student_wait_s")
        batch.drop_column("owner")
        batch.drop_column("webhook_url")
