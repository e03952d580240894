//! URL classification and HTTP `Range` parsing on arbitrary text: `parse_range_header` must
//! give a non-empty range that ends within `u64` and reads back the same; `UrlPolicy::canonical`
//! must be idempotent; and a `Classifier` over a presentation with byte ranges, init segments
//! and tokens must only ever answer ids of that presentation, for a URL of the same canonical
//! form.

#![no_main]

use std::sync::OnceLock;

use hive_core::manifest::Presentation;
use hive_manifest::{Classifier, Manifests, UrlPolicy, parse_range_header};
use libfuzzer_sys::fuzz_target;

const PLAYLIST: &[u8] = b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"v.mp4\",BYTERANGE=\"800@0\"\n#EXT-X-BYTERANGE:1000@800\n#EXTINF:4,\nv.mp4?token=a\n#EXT-X-BYTERANGE:1000\n#EXTINF:4,\nv.mp4?token=a\n#EXTINF:4,\nseg/3.ts?x=1&token=b\n#EXT-X-ENDLIST\n";

fn index() -> &'static (Presentation, Classifier) {
    static P: OnceLock<(Presentation, Classifier)> = OnceLock::new();
    P.get_or_init(|| {
        let p = Manifests::default()
            .parse("https://o.example/v/index.m3u8?token=z", None, PLAYLIST)
            .unwrap_or_else(|e| panic!("the seed playlist parses: {e}"));
        let c = Classifier::new(&p, UrlPolicy::default());
        (p, c)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // 1. Range headers.
    if let Some(r) = parse_range_header(text) {
        assert!(r.len >= 1);
        let end = r.start.checked_add(r.len).expect("range end within u64");
        let again = parse_range_header(&format!("bytes={}-{}", r.start, end - 1));
        assert_eq!(again, Some(r));
    }
    // 2. Canonical URLs.
    let policy = UrlPolicy::default();
    if let Some(c) = policy.canonical(text) {
        assert_eq!(
            policy.canonical(&c).as_deref(),
            Some(c.as_str()),
            "{text:?}"
        );
    }
    // 3. Classification, with and without the range the text may end with.
    let (p, classifier) = index();
    let (url, range) = match text.rsplit_once(' ') {
        Some((u, r)) => (u, parse_range_header(r)),
        None => (text, None),
    };
    for id in [
        classifier.classify(url),
        classifier.classify_range(url, range),
    ]
    .into_iter()
    .flatten()
    {
        let f = p
            .tracks
            .iter()
            .flat_map(|t| t.init.iter().chain(t.fragments.iter()))
            .find(|f| f.id == id)
            .expect("a classified id is listed");
        assert_eq!(policy.canonical(&f.url), policy.canonical(url));
    }
});
