-- Verify embeddings
SELECT 
    COUNT(*) as total_chunks,
    COUNT(embedding) as chunks_with_embeddings,
    ROUND(COUNT(embedding)::NUMERIC / COUNT(*) * 100, 2) as percentage
FROM chunks;
