//! DASH.
