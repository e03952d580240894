//! Rewrite.
