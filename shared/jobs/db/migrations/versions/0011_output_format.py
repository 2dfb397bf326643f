"""output format: the final image's format (png, jpeg, webp) and the lossy formats' quality

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("output_format", sa.String(8), nullable=True))
        batch.add_column(sa.Column("output_quality", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("output_quality")
        batch.drop_column("output_format")
