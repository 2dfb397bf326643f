"""image inputs: a job's init_image and control_image (upload ids, the sha256 of the stored bytes) and strength

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("init_image", sa.String(64), nullable=True))
        batch.add_column(sa.Column("strength", sa.Float(), nullable=True))
        batch.add_column(sa.Column("control_image", sa.String(64), nullable=True))
    # retention asks, for an input of a pruned job, whether an unexpired job still uses it
    op.create_index("ix_jobs_init_image", "jobs", ["init_image"])
    op.create_index("ix_jobs_control_image", "jobs", ["control_image"])


def downgrade() -> None:
    op.drop_index("ix_jobs_control_image", table_name="jobs")
    op.drop_index("ix_jobs_init_image", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("control_image")
        batch.drop_column("strength")
        batch.drop_column("init_image")
