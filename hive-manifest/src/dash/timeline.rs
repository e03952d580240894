//! The fast path for long `SegmentTimeline`s (ISO/IEC 23009-1:2022 §5.3.9.6).
//!
//! `dash-mpd-core` deserialises every `S` element through serde and quick-xml, about 0.4 µs each:
//! a two-hour timeline of 3600 `S` took most of the 2 ms parse budget (issue #5). Before handing
//! the MPD to `dash-mpd-core`, [`extract`] reads each long `<SegmentTimeline>` whose content is
//! nothing but `<S .../>` elements with plain integer `t`, `n`, `d`, `r`, `k` attributes, and
//! leaves one placeholder `S` in its place (`t` = [`u64::MAX`], `d` = index + 1);
//! [`restore`] puts the extracted elements back into the parsed [`MPD`]. Anything else — a
//! comment, an unknown attribute, a namespace prefix, an odd number — leaves that timeline (or,
//! for comments, CDATA or a text already holding the placeholder value, the whole MPD) to
//! `dash-mpd-core`. The tests check both give the same [`MPD`].

use dash_mpd_core::{MPD, S, SegmentTimeline};

/// Timelines shorter than this are left to `dash-mpd-core`.
const MIN_EXTRACTED: usize = 16;
const OPEN: &str = "<SegmentTimeline>";
const CLOSE: &str = "</SegmentTimeline>";
const SENTINEL: &str = "18446744073709551615";

/// The MPD text with long timelines replaced by placeholders, and the extracted timelines; `None`
/// when there is nothing to extract or the text is not plain enough.
pub(crate) fn extract(text: &str) -> Option<(String, Vec<Vec<S>>)> {
    if !text.contains(OPEN) || text.contains("<!--") || text.contains("<![CDATA[") {
        return None;
    }
    if text.contains(SENTINEL) {
        return None;
    }
    let mut out = String::with_capacity(text.len() / 4);
    let mut timelines = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        let body_start = i + OPEN.len();
        let Some(len) = rest[body_start..].find(CLOSE) else {
            break;
        };
        let body = &rest[body_start..body_start + len];
        out.push_str(&rest[..body_start]);
        match elements(body) {
            Some(s) if s.len() >= MIN_EXTRACTED => {
                timelines.push(s);
                out.push_str(&format!(r#"<S t="{SENTINEL}" d="{}"/>"#, timelines.len()));
            }
            _ => out.push_str(body),
        }
        out.push_str(CLOSE);
        rest = &rest[body_start + len + CLOSE.len()..];
    }
    out.push_str(rest);
    (!timelines.is_empty()).then_some((out, timelines))
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The `S` elements of a timeline body made only of `<S a="v" .../>` and whitespace.
fn elements(body: &str) -> Option<Vec<S>> {
    let mut out = Vec::with_capacity(body.len() / 16);
    let mut rest = body.trim_start_matches(|c: char| c.is_ascii() && is_xml_space(c as u8));
    while !rest.is_empty() {
        let tail = rest.strip_prefix("<S")?;
        let end = tail.find("/>")?;
        let attrs = &tail[..end];
        if !attrs.as_bytes().first().is_some_and(|b| is_xml_space(*b)) {
            return None;
        }
        out.push(element(attrs)?);
        rest = tail[end + 2..].trim_start_matches(|c: char| c.is_ascii() && is_xml_space(c as u8));
    }
    Some(out)
}

/// One `S` from its attribute text: `t`, `n`, `d` (required), `r` (may be negative), `k`, each
/// once, with a plain decimal value in single or double quotes.
fn element(attrs: &str) -> Option<S> {
    let mut s = S::default();
    let mut seen = [false; 5];
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii() && is_xml_space(c as u8));
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let (value, next) = after[1..].split_once(quote)?;
        if !next.is_empty() && !next.as_bytes().first().is_some_and(|b| is_xml_space(*b)) {
            return None;
        }
        rest = next;
        let slot = match name {
            "t" => 0,
            "n" => 1,
            "d" => 2,
            "r" => 3,
            "k" => 4,
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        let digits = value
            .strip_prefix('-')
            .filter(|_| slot == 3)
            .unwrap_or(value);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match slot {
            0 => s.t = Some(value.parse().ok()?),
            1 => s.n = Some(value.parse().ok()?),
            2 => s.d = value.parse().ok()?,
            3 => s.r = Some(value.parse().ok()?),
            _ => s.k = Some(value.parse().ok()?),
        }
    }
    seen[2].then_some(s)
}

/// Puts the extracted timelines back in place of their placeholders; `false` if a placeholder
/// does not match (then the MPD must be parsed again from the original text).
pub(crate) fn restore(mpd: &mut MPD, mut timelines: Vec<Vec<S>>) -> bool {
    let mut ok = true;
    let mut fix = |tl: Option<&mut SegmentTimeline>| {
        let Some(tl) = tl else {
            return;
        };
        if let [only] = tl.segments.as_slice() {
            if only.t == Some(u64::MAX) {
                match only
                    .d
                    .checked_sub(1)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| timelines.get_mut(i))
                {
                    Some(s) if !s.is_empty() => tl.segments = std::mem::take(s),
                    _ => ok = false,
                }
            }
        }
    };
    for p in &mut mpd.periods {
        fix(p
            .SegmentTemplate
            .as_mut()
            .and_then(|t| t.SegmentTimeline.as_mut()));
        fix(p
            .SegmentList
            .as_mut()
            .and_then(|t| t.SegmentTimeline.as_mut()));
        for a in &mut p.adaptations {
            fix(a
                .SegmentTemplate
                .as_mut()
                .and_then(|t| t.SegmentTimeline.as_mut()));
            fix(a
                .SegmentList
                .as_mut()
                .and_then(|t| t.SegmentTimeline.as_mut()));
            for r in &mut a.representations {
                fix(r
                    .SegmentTemplate
                    .as_mut()
                    .and_then(|t| t.SegmentTimeline.as_mut()));
                fix(r
                    .SegmentList
                    .as_mut()
                    .and_then(|t| t.SegmentTimeline.as_mut()));
            }
        }
    }
    ok
}

/// Parses an MPD with `dash-mpd-core`, long timelines through [`extract`].
pub(crate) fn parse(text: &str) -> Result<MPD, dash_mpd_core::DashMpdError> {
    if let Some((short, timelines)) = extract(text) {
        if let Ok(mut mpd) = dash_mpd_core::parse(&short) {
            if restore(&mut mpd, timelines) {
                return Ok(mpd);
            }
        }
    }
    dash_mpd_core::parse(text)
}
