-- The read side: full-text search over chunk text, and what a reader needs to cite a source.
--
-- Text-search configuration `english`: the documents this system serves (meeting transcripts,
-- notes, reports) are mostly English, and a chatbot's questions use other word forms than the
-- text ("decided" / "decision", "meetings" / "meeting"): stemming finds them, and English
-- stop words ("what", "did", "the") would otherwise match nearly every chunk. Text in other
-- languages is still split into words and found by exact form. The configuration is fixed
-- here because a generated column must name it; changing it is a new migration.

ALTER TABLE chunks
    ADD COLUMN text_search tsvector
        GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED;
CREATE INDEX chunks_text_search_idx ON chunks USING gin (text_search);

-- Where a person opens the source (a Google Drive file's link); empty for local files.
ALTER TABLE sources ADD COLUMN link text NOT NULL DEFAULT '';
-- The content's own date (a meeting's date from a transcript), when the document says;
-- the date filters use it before modified_at.
ALTER TABLE sources ADD COLUMN document_at timestamptz;
CREATE INDEX sources_time_idx ON sources ((COALESCE(document_at, modified_at)));

-- Entities named in a question are looked up by canonical name, whatever their type.
CREATE INDEX entities_canonical_name_idx ON entities (canonical_name);
