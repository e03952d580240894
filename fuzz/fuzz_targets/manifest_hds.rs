//! Arbitrary bytes as an HDS f4m manifest; and, for inputs starting with `abst`, the rest as a
//! bootstrap box, base64-encoded into a fixed f4m (the fuzzer cannot be expected to find base64
//! of a valid box on its own). Whatever parses must keep every bound of
//! `hive_manifest::limits` (see `manifest_common.rs`).

#![no_main]

use hive_manifest::ManifestFormat;
use hive_manifest::UrlPolicy;
use hive_manifest::hds::Hds;
use libfuzzer_sys::fuzz_target;

#[path = "manifest_common.rs"]
mod common;

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for c in bytes.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, b)| a | u32::from(*b) << (16 - 8 * i));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    let hds = Hds::new(limits.clone(), UrlPolicy::default());
    let url = "https://o.example/v/manifest.f4m";
    let body = match data.strip_prefix(b"BOX") {
        Some(boxed) => format!(
            r#"<manifest xmlns="http://ns.adobe.com/f4m/1.0"><streamType>live</streamType><bootstrapInfo id="b" profile="named">{}</bootstrapInfo><media url="v1" bitrate="800" bootstrapInfoId="b"/><media url="v2" bitrate="1600" bootstrapInfoId="b"/></manifest>"#,
            base64(boxed)
        )
        .into_bytes(),
        None => data.to_vec(),
    };
    if let Ok(p) = hds.parse(url, &body) {
        assert_eq!(p.format, "hds");
        common::check(&p, &limits);
    }
});
