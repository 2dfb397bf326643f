"""the fields hosted image APIs share: a negative prompt, and the size as an aspect ratio and megapixels

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("negative_prompt", sa.Text(), nullable=True))
        batch.add_column(sa.Column("aspect_ratio", sa.String(8), nullable=True))
        batch.add_column(sa.Column("megapixels", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("megapixels")
        batch.drop_column("aspect_ratio")
        batch.drop_column("negative_prompt")
