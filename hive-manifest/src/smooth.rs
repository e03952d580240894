//! Smooth.
