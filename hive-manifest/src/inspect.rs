//! Inspect.
/// x
#[derive(Default)]
pub struct Manifests;
/// x
pub fn report_json() {}
