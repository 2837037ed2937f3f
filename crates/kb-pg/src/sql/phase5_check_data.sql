-- Count records
SELECT 
    'sources' as table_name, COUNT(*) as count FROM sources
UNION ALL
SELECT 'chunks', COUNT(*) FROM chunks
UNION ALL
SELECT 'entities', COUNT(*) FROM entities
UNION ALL
SELECT 'chunk_mentions', COUNT(*) FROM chunk_mentions;

-- Verify embeddings
SELECT 
    COUNT(*) as total_chunks,
    COUNT(embedding) as chunks_with_embeddings,
    ROUND(COUNT(embedding)::NUMERIC / COUNT(*) * 100, 2) as percentage
FROM chunks;
