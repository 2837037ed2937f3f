//! The Neo4j knowledge graph writer: constraints, per-document UNWIND MERGE, deletes, verification
