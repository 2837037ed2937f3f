-- The Postgres mirror: the seed plan's tables and column names (sources, chunks with text,
-- importance_score and embedding, entities, chunk_mentions), plus per-source relations and
-- tombstones so that last-writer-wins by version survives a delete.
--
-- `chunks.embedding` has no dimension here: the dimension belongs to the embedding model and is
-- fixed by the application at start (ALTER to vector(N) + HNSW index) while the table is empty.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE sources (
    source_id       text PRIMARY KEY,
    version         bigint NOT NULL,
    origin          text NOT NULL,
    path            text NOT NULL,
    title           text,
    content_hash    text NOT NULL,
    media_type      text NOT NULL,
    size_bytes      bigint NOT NULL,
    modified_at     timestamptz,
    status          text NOT NULL CHECK (status IN ('ok', 'failed')),
    error           text,
    embedding_model text,
    parser          text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chunks (
    chunk_id         text PRIMARY KEY,
    source_id        text NOT NULL REFERENCES sources (source_id) ON DELETE CASCADE,
    chunk_index      integer NOT NULL,
    text             text NOT NULL,
    importance_score real,
    embedding        vector,
    start_offset     bigint,
    end_offset       bigint,
    token_count      integer,
    speakers         text[] NOT NULL DEFAULT '{}',
    start_seconds    double precision,
    end_seconds      double precision,
    section          text
);
CREATE INDEX chunks_source_id_idx ON chunks (source_id, chunk_index);

CREATE TABLE entities (
    entity_id      text PRIMARY KEY,
    name           text NOT NULL,
    canonical_name text NOT NULL,
    entity_type    text NOT NULL
);
CREATE INDEX entities_type_name_idx ON entities (entity_type, canonical_name);

-- No cascade towards entities: an entity goes only when nothing references it any more.
CREATE TABLE chunk_mentions (
    chunk_id  text NOT NULL REFERENCES chunks (chunk_id) ON DELETE CASCADE,
    entity_id text NOT NULL REFERENCES entities (entity_id),
    count     integer NOT NULL,
    PRIMARY KEY (chunk_id, entity_id)
);
CREATE INDEX chunk_mentions_entity_id_idx ON chunk_mentions (entity_id);

CREATE TABLE entity_relations (
    source_id        text NOT NULL REFERENCES sources (source_id) ON DELETE CASCADE,
    source_entity_id text NOT NULL REFERENCES entities (entity_id),
    target_entity_id text NOT NULL REFERENCES entities (entity_id),
    relation_type    text NOT NULL,
    weight           real NOT NULL,
    PRIMARY KEY (source_id, source_entity_id, target_entity_id, relation_type)
);
CREATE INDEX entity_relations_source_entity_idx ON entity_relations (source_entity_id);
CREATE INDEX entity_relations_target_entity_idx ON entity_relations (target_entity_id);

CREATE TABLE tombstones (
    source_id  text PRIMARY KEY,
    version    bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
