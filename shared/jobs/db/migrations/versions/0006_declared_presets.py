"""presets declared by workers that serve a Python pipeline object (adq worker --pipeline)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "declared_presets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("declared_by", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("declared_presets")
