//! The fast path for media playlists: a line scanner for the RFC 8216 §4 subset that
//! packagers write, giving exactly what `m3u8-rs` gives for the same text, or `None` to let
//! `m3u8-rs` parse it.
//!
//! `m3u8-rs` (nom) costs about 1 µs per segment, mostly allocating each tag's strings; a two-hour
//! playlist of 2 s segments took 3.5 ms of the 2 ms budget (issue #5). This scanner borrows from
//! the text and reads only what [`super::media`] uses. It is deliberately strict: it accepts a
//! line only when it is sure how `m3u8-rs` reads it, and gives up (returns `None`) on anything
//! else — a malformed value, an attribute list it does not fully understand, a stray `\r`,
//! invalid UTF-8, a tag line cut off at the end of the text — because `m3u8-rs` has its own
//! ways with such lines (a `#EXT-X-TARGETDURATION:4.5` line is read as the number 4 followed
//! by a segment URI `.5`; a key with `METHOD=NONE` and no `IV` is dropped). The tests check both
//! paths agree on every fixture and on generated playlists.

use super::media::{Listing, RangeTag, Segment};

/// Tags `m3u8-rs` recognises by prefix. A line starting with one of these is accepted only in
/// the exact form the scanner understands; any other `#` line is a comment or an unknown tag,
/// which `m3u8-rs` also ignores.
const KNOWN_PREFIXES: &[&str] = &[
    "#EXTINF:",
    "#EXT-X-VERSION:",
    "#EXT-X-TARGETDURATION:",
    "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-DISCONTINUITY-SEQUENCE:",
    "#EXT-X-PLAYLIST-TYPE:",
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-START:",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-ENDLIST",
    "#EXT-X-BYTERANGE:",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-KEY:",
    "#EXT-X-MAP:",
    "#EXT-X-PROGRAM-DATE-TIME:",
    "#EXT-X-DATERANGE:",
];

/// Tags without a value, accepted only as the whole line.
const FLAGS: &[&str] = &[
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-ENDLIST",
    "#EXT-X-DISCONTINUITY",
];

fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `n[@o]` (RFC 8216 §4.3.2.2), digits only.
fn byte_range(s: &str) -> Option<RangeTag> {
    match s.split_once('@') {
        Some((n, o)) => Some((digits(n)?, Some(digits(o)?))),
        None => Some((digits(s)?, None)),
    }
}

/// A strictly well-formed attribute list (RFC 8216 §4.2): `NAME=value` pairs separated by
/// single commas, names of `A-Z`, `0-9` and `-`, values non-empty, quoted strings without
/// quotes inside, unquoted values without quotes or commas, no name twice. Up to 16 pairs of
/// (name, value, quoted).
fn attribute_list(list: &str) -> Option<Vec<(&str, &str, bool)>> {
    let mut out: Vec<(&str, &str, bool)> = Vec::new();
    let mut rest = list;
    loop {
        let (name, after) = rest.split_once('=')?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            || out.iter().any(|(n, _, _)| *n == name)
            || out.len() >= 16
        {
            return None;
        }
        let (value, quoted, next) = if let Some(q) = after.strip_prefix('"') {
            let (v, n) = q.split_once('"')?;
            (v, true, n)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], false, &after[end..])
        };
        if value.is_empty() || value.contains('"') {
            return None;
        }
        out.push((name, value, quoted));
        match next.strip_prefix(',') {
            Some(n) if !n.is_empty() => rest = n,
            None if next.is_empty() => return Some(out),
            _ => return None,
        }
    }
}

fn get<'a>(attrs: &[(&str, &'a str, bool)], name: &str) -> Option<(&'a str, bool)> {
    attrs
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, q)| (*v, *q))
}

/// An `EXT-X-KEY` as `m3u8-rs` reads it: `None` to give up, `Some(None)` for a tag it drops
/// (`METHOD=NONE` without `IV`), else `Some(Some(uri))` with the URI of a key that encrypts
/// (`None` for `METHOD=NONE` or no URI).
#[allow(clippy::option_option)]
fn key(list: &str) -> Option<Option<Option<&str>>> {
    let attrs = attribute_list(list)?;
    let (method, quoted) = get(&attrs, "METHOD")?;
    let quoted_ok = |name| get(&attrs, name).is_none_or(|(_, q)| q);
    let unquoted_ok = |name| get(&attrs, name).is_none_or(|(_, q)| !q);
    if quoted || !quoted_ok("URI") || !unquoted_ok("IV") {
        return None;
    }
    if !quoted_ok("KEYFORMAT") || !quoted_ok("KEYFORMATVERSIONS") {
        return None;
    }
    if method == "NONE" {
        // m3u8-rs 6 rejects METHOD=NONE without IV (its check is inverted) and drops the tag.
        return Some(get(&attrs, "IV").map(|_| None));
    }
    Some(Some(get(&attrs, "URI").map(|(u, _)| u)))
}

/// An `EXT-X-MAP`: its URI and byte range.
type MapTag<'a> = (&'a str, Option<RangeTag>);

fn map(list: &str) -> Option<MapTag<'_>> {
    let attrs = attribute_list(list)?;
    let (uri, quoted) = get(&attrs, "URI")?;
    if !quoted {
        return None;
    }
    let range = match get(&attrs, "BYTERANGE") {
        Some((r, true)) => Some(byte_range(r)?),
        Some((_, false)) => return None,
        None => None,
    };
    Some((uri, range))
}

/// `EXTINF:<duration>,[<title>]`, with `m3u8-rs`'s reading of the duration (an `f32` of
/// `digits[.digits]`).
fn extinf(value: &str) -> Option<f32> {
    let (number, title) = match value.split_once(',') {
        Some((n, t)) => (n, Some(t)),
        None => (value, None),
    };
    if title.is_some_and(|t| t.contains(',')) {
        return None;
    }
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    number.parse().ok()
}

/// Scans a media playlist (after any byte order mark and leading whitespace), or `None` to
/// leave it to `m3u8-rs`.
pub(super) fn scan(text: &str) -> Option<Listing<'_>> {
    let mut lines = text.split('\n');
    let first = lines.next()?;
    if first.strip_suffix('\r').unwrap_or(first) != "#EXTM3U" {
        return None;
    }
    // A tag line cut off at the end of the text: m3u8-rs may read it as a URI.
    if !text.ends_with('\n') {
        let last = text.rsplit('\n').next().unwrap_or_default().trim();
        if last.starts_with('#') && last != "#EXT-X-ENDLIST" {
            return None;
        }
    }
    let mut out = Listing {
        media_sequence: 0,
        discontinuity_sequence: 0,
        live: true,
        segments: Vec::with_capacity(text.len() / 40),
    };
    let (mut end_list, mut vod) = (false, false);
    let mut duration = 0f32;
    let mut range = None;
    let mut pending_key: Option<Option<&str>> = None;
    let mut pending_map = None;
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if line.contains('\r') {
            return None;
        }
        if !line.starts_with('#') {
            if line.starts_with(',') {
                return None;
            }
            out.segments.push(Segment {
                uri: line.trim_end(),
                duration,
                byte_range: range,
                key: pending_key.flatten(),
                map: pending_map,
            });
            (duration, range, pending_key, pending_map) = (0.0, None, None, None);
            continue;
        }
        let Some(known) = KNOWN_PREFIXES.iter().find(|p| line.starts_with(*p)) else {
            continue; // a comment or a tag m3u8-rs keeps as unknown
        };
        if line.ends_with([' ', '\t']) {
            return None;
        }
        if FLAGS.contains(known) {
            if line != *known {
                return None;
            }
            end_list |= *known == "#EXT-X-ENDLIST";
            continue;
        }
        let value = &line[known.len()..];
        match *known {
            "#EXTINF:" => duration = extinf(value)?,
            "#EXT-X-VERSION:" | "#EXT-X-TARGETDURATION:" => {
                digits(value)?;
            }
            "#EXT-X-MEDIA-SEQUENCE:" => out.media_sequence = digits(value)?,
            "#EXT-X-DISCONTINUITY-SEQUENCE:" => out.discontinuity_sequence = digits(value)?,
            "#EXT-X-PLAYLIST-TYPE:" if !value.is_empty() => vod = value == "VOD",
            "#EXT-X-BYTERANGE:" => range = Some(byte_range(value)?),
            "#EXT-X-KEY:" => {
                if let Some(k) = key(value)? {
                    pending_key = Some(k);
                }
            }
            "#EXT-X-MAP:" => pending_map = Some(map(value)?),
            "#EXT-X-START:" | "#EXT-X-DATERANGE:" => {
                attribute_list(value)?;
            }
            // Read (or dropped as an unknown tag if malformed) by m3u8-rs; unused here.
            "#EXT-X-PROGRAM-DATE-TIME:" => {}
            _ => return None,
        }
    }
    out.live = !end_list && !vod;
    Some(out)
}
