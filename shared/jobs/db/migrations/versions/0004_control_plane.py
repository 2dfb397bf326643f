"""the control plane: each job's decision record, k_max, and live score sketches shared by the student workers

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("k_max", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("effective_k", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("threshold_source", sa.String(16), nullable=True))
        batch.add_column(sa.Column("control_policy", sa.String(16), nullable=True))
        batch.add_column(sa.Column("route_reason", sa.String(255), nullable=True))
        batch.create_index("ix_jobs_created_at", ["created_at"])
        batch.create_index("ix_jobs_finished_at", ["finished_at"])
    op.create_table(
        "score_sketches",
        sa.Column("key", sa.String(96), primary_key=True),
        sa.Column("bucket", sa.BigInteger(), primary_key=True),
        sa.Column("holder", sa.String(255), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("score_sketches")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_finished_at")
        batch.drop_index("ix_jobs_created_at")
        for name in ("route_reason", "control_policy", "threshold_source", "effective_k", "k_max"):
            batch.drop_column(name)
