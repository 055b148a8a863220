"""company_logos: every logo a profile has held, by digest; invoices.seller_logo names the snapshot's logo

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01

Existing profile logos are kept by their digest, and each profile's JSON records its logo's digest.
Invoices issued before keep seller_logo NULL: their PDFs draw the live logo, as they did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "company_logos",
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "digest", name="pk_company_logos"),
    )
    op.add_column("invoices", sa.Column("seller_logo", sa.Text(), nullable=True))
    op.execute(
        "INSERT INTO company_logos (company_id, digest, data, content_type) "
        "SELECT company_id, encode(sha256(logo), 'hex'), logo, logo_content_type FROM company_profiles "
        "WHERE logo IS NOT NULL"
    )
    op.execute(
        "UPDATE company_profiles SET profile = jsonb_set(profile, '{logo_digest}', "
        "to_jsonb(encode(sha256(logo), 'hex'))) WHERE logo IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE company_profiles SET profile = profile - 'logo_digest'")
    op.drop_column("invoices", "seller_logo")
    op.drop_table("company_logos")
