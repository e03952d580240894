//! Arbitrary bytes as a Smooth Streaming client manifest. Whatever parses must keep every bound
//! of `hive_manifest::limits` (see `manifest_common.rs`).

#![no_main]

use hive_manifest::ManifestFormat;
use hive_manifest::UrlPolicy;
use hive_manifest::smooth::Smooth;
use libfuzzer_sys::fuzz_target;

#[path = "manifest_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    let smooth = Smooth::new(limits.clone(), UrlPolicy::default());
    if let Ok(p) = smooth.parse("https://o.example/v.ism/Manifest", data) {
        assert_eq!(p.format, "smooth");
        common::check(&p, &limits);
    }
});
