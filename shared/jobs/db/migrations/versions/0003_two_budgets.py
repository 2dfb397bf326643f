"""two retry budgets (crashes vs outages), a monotonic claim fence, operator retries, webhook delivery record

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("fence", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("transient_retries", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("transient_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_transient_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("history", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("webhook_delivered", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name in (
            "webhook_delivered",
            "history",
            "retries",
            "last_transient_error",
            "transient_since",
            "transient_retries",
            "fence",
        ):
            batch.drop_column(name)
