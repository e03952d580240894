//! The timeline fast path and `dash-mpd-core` alone give the same [`MPD`].

use proptest::prelude::*;

use super::timeline::{extract, parse};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn assert_agree(text: &str) {
    match (parse(text), dash_mpd_core::parse(text)) {
        (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "{text}"),
        (Err(_), Err(_)) => {}
        (fast, slow) => panic!("fast {fast:?} / dash-mpd-core {slow:?} on\n{text}"),
    }
}

/// An MPD whose timelines (at the given levels) have the given `S` bodies.
fn mpd(period: &str, set: &str, rep: &str) -> String {
    let tl = |body: &str| {
        if body.is_empty() {
            String::new()
        } else {
            format!(
                r#"<SegmentTemplate timescale="90000" media="$Time$.m4s"><SegmentTimeline>{body}</SegmentTimeline></SegmentTemplate>"#
            )
        }
    };
    format!(
        r#"<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1H"><Period>{}<AdaptationSet mimeType="video/mp4"><Representation id="a" bandwidth="1">{}</Representation>{}</AdaptationSet></Period></MPD>"#,
        tl(period),
        tl(rep),
        tl(set)
    )
}

fn long(n: usize) -> String {
    (0..n)
        .map(|i| format!("<S d=\"{}\" />\n", 180_000 + i % 2))
        .collect()
}

#[test]
fn fixtures_agree() {
    for name in [
        "dash_live_number.mpd",
        "dash_live_timeline.mpd",
        "dash_segment_base.mpd",
        "dash_segment_list.mpd",
        "dash_static_number.mpd",
        "dash_timeline_time.mpd",
    ] {
        assert_agree(&fixture(name));
    }
}

#[test]
fn long_timelines_are_extracted_at_every_level() {
    let text = mpd(&long(20), &long(30), &long(40));
    let (_, timelines) = extract(&text).unwrap();
    assert_eq!(
        timelines.iter().map(Vec::len).collect::<Vec<_>>(),
        [20, 40, 30]
    );
    assert_agree(&text);
    // The placeholder value in the text: the whole MPD goes to dash-mpd-core.
    let sentinel = mpd(
        &format!(r#"<S t="18446744073709551615" d="1"/>{}"#, long(20)),
        "",
        "",
    );
    assert!(extract(&sentinel).is_none());
    assert_agree(&sentinel);
    // Comments are left alone.
    assert!(extract(&mpd(&format!("<!-- x -->{}", long(20)), "", "")).is_none());
}

fn s_element() -> impl Strategy<Value = String> {
    let attr = |name: &'static str| {
        prop_oneof![
            3 => Just(String::new()),
            3 => (0u64..1_000_000).prop_map(move |v| format!(" {name}=\"{v}\"")),
            1 => (0u64..100).prop_map(move |v| format!(" {name}='{v}'")),
            1 => Just(format!(" {name}=\"-1\"")),
            1 => Just(format!(" {name}=\"x\"")),
            1 => Just(format!(" {name}=\"\"")),
        ]
    };
    (
        attr("t"),
        attr("d"),
        attr("r"),
        attr("n"),
        prop_oneof![8 => Just(""), 1 => Just(" z=\"1\""), 1 => Just(" d=\"2\"")],
        prop_oneof![8 => Just("/>"), 1 => Just("></S>"), 1 => Just(" />")],
        prop_oneof![Just(""), Just("\n  "), Just("\t")],
    )
        .prop_map(|(t, d, r, n, extra, close, ws)| format!("<S{t}{d}{r}{n}{extra}{close}{ws}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_timelines_agree(
        body in proptest::collection::vec(s_element(), 0..40),
        level in 0usize..3,
    ) {
        let body: String = body.concat();
        let text = match level {
            0 => mpd(&body, "", ""),
            1 => mpd("", &body, ""),
            _ => mpd("", "", &body),
        };
        assert_agree(&text);
    }
}

fn valid_s() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0u64..u64::MAX / 2),
        1u64..1_000_000,
        proptest::option::of(-1i64..5),
        proptest::option::of(0u64..1000),
        any::<bool>(),
    )
        .prop_map(|(t, d, r, n, single)| {
            let q = if single { '\'' } else { '"' };
            let mut s = String::from("<S");
            if let Some(t) = t {
                s.push_str(&format!(" t={q}{t}{q}"));
            }
            s.push_str(&format!(" d={q}{d}{q}"));
            if let Some(r) = r {
                s.push_str(&format!("\n r={q}{r}{q}"));
            }
            if let Some(n) = n {
                s.push_str(&format!(" n={q}{n}{q}"));
            }
            s.push_str("/> ");
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn valid_timelines_take_the_fast_path_and_agree(
        body in proptest::collection::vec(valid_s(), 16..60),
    ) {
        let text = mpd("", "", &body.concat());
        prop_assert!(extract(&text).is_some());
        assert_agree(&text);
    }
}
