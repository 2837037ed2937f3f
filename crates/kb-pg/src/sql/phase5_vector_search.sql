-- Test semantic search
WITH sample_embedding AS (
    SELECT embedding FROM chunks WHERE embedding IS NOT NULL LIMIT 1
)
SELECT 
    LEFT(text, 100) || '...' as preview,
    importance_score,
    1 - (embedding <=> (SELECT embedding FROM sample_embedding)) as similarity
FROM chunks
WHERE embedding IS NOT NULL
ORDER BY embedding <=> (SELECT embedding FROM sample_embedding)
LIMIT 5;
