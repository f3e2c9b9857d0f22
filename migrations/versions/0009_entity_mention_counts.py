"""entity mention counts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 20:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# Existing entities get their counts from whichever store holds their mentions: kg_mentions rows, or the
# MENTIONS edges of the workspace's AGE graph (graph names are kg_<workspace id>, never user input).
FROM_ROWS = """
UPDATE kg_entities e SET mentions = m.n
FROM (SELECT entity_id, count(*) AS n FROM kg_mentions GROUP BY entity_id) m WHERE e.id = m.entity_id"""
FROM_AGE = """
DO $$
DECLARE graph text;
BEGIN
    IF to_regclass('ag_catalog.ag_graph') IS NULL THEN
        RETURN;
    END IF;
    FOR graph IN SELECT name FROM ag_catalog.ag_graph WHERE name LIKE 'kg\\_%' LOOP
        EXECUTE format($sql$
            UPDATE kg_entities e SET mentions = btrim(g.n::text, '"')::int
            FROM ag_catalog.cypher(%L, $cypher$ MATCH (:Chunk)-[:MENTIONS]->(e:Entity) RETURN e.id, count(*)
            $cypher$) AS g(id ag_catalog.agtype, n ag_catalog.agtype)
            WHERE e.id = btrim(g.id::text, '"')::uuid$sql$, graph);
    END LOOP;
END $$
"""


def upgrade() -> None:
    op.add_column('kg_entities', sa.Column('mentions', sa.Integer(), server_default='0', nullable=False))
    for statement in (FROM_ROWS, FROM_AGE):  # as the driver gets them: `:Chunk` is Cypher, not a parameter
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    op.drop_column('kg_entities', 'mentions')
