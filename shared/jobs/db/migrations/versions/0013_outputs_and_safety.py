"""several outputs per request, and the safety filter's verdict

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("num_outputs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("nsfw", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("safety_filter", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("safety_filter")
        batch.drop_column("nsfw")
        batch.drop_column("num_outputs")
