//! Embedding providers behind one trait, the local offline model first
