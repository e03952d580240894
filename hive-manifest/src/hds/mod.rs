//! HDS.
