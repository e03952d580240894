//! Static files of a folder (real media made by ffmpeg), with `Range` support.

use std::path::{Component, Path};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use bytes::Bytes;

use super::{Kind, Reply};

/// Largest file served (the whole file is read into memory).
const MAX_FILE: u64 = 512 << 20;

fn content_type(path: &Path) -> (&'static str, Kind) {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "m3u8" => ("application/vnd.apple.mpegurl", Kind::Manifest),
        "mpd" => ("application/dash+xml", Kind::Manifest),
        "ts" => ("video/mp2t", Kind::Fragment),
        "m4s" => ("video/iso.segment", Kind::Fragment),
        "mp4" | "m4v" => ("video/mp4", Kind::Fragment),
        "m4a" | "aac" => ("audio/mp4", Kind::Fragment),
        "vtt" => ("text/vtt", Kind::Other),
        _ => ("application/octet-stream", Kind::Other),
    }
}

/// `bytes=a-b` or `bytes=a-` of a file of `len` bytes, as an inclusive range.
fn range(headers: &HeaderMap, len: u64) -> Option<(u64, u64)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (a <= b && b < len).then_some((a, b))
}

pub(super) fn serve(dir: &Path, rest: &str, _method: &Method, headers: &HeaderMap) -> Reply {
    let rel = Path::new(rest);
    // Only plain names below the folder: no `..`, no absolute paths.
    if rest.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Reply::not_found();
    }
    let path = dir.join(rel);
    let len = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE => m.len(),
        _ => return Reply::not_found(),
    };
    let Ok(data) = std::fs::read(&path) else {
        return Reply::not_found();
    };
    let (ct, kind) = content_type(&path);
    let data = Bytes::from(data);
    if headers.contains_key(header::RANGE) {
        let Some((a, b)) = range(headers, len) else {
            let mut r = Reply::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Kind::Other,
                ct,
                Bytes::new(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers.push((header::CONTENT_RANGE, v));
            }
            return r;
        };
        let mut r = Reply::new(
            StatusCode::PARTIAL_CONTENT,
            kind,
            ct,
            data.slice(a as usize..=b as usize),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
            r.headers.push((header::CONTENT_RANGE, v));
        }
        return r;
    }
    let mut r = Reply::new(StatusCode::OK, kind, ct, data);
    r.headers
        .push((header::ACCEPT_RANGES, HeaderValue::from_static("bytes")));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::RANGE, HeaderValue::from_str(v).expect("ascii"));
        m
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range(&h("bytes=0-9"), 100), Some((0, 9)));
        assert_eq!(range(&h("bytes=90-"), 100), Some((90, 99)));
        assert_eq!(range(&h("bytes=-10"), 100), Some((90, 99)));
        assert_eq!(range(&h("bytes=50-500"), 100), Some((50, 99)));
        assert_eq!(range(&h("bytes=100-"), 100), None);
        assert_eq!(range(&h("bytes=9-0"), 100), None);
        assert_eq!(range(&h("items=0-1"), 100), None);
        assert_eq!(range(&h("bytes=0-0"), 0), None);
    }

    #[test]
    fn paths_cannot_leave_the_folder() {
        let dir = std::env::temp_dir();
        let m = Method::GET;
        let none = HeaderMap::new();
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../x", ""] {
            assert_eq!(
                serve(&dir, bad, &m, &none).status,
                StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
    }
}
