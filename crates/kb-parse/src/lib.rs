//! Turns document bytes into text, chunks, entities, relations and importance scores
