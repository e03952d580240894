//! Static files of a folder (real media made by ffmpeg), with `Range` support: a reply reads
//! and streams from disk only the bytes it sends, and no request path leads out of the folder.

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, ReadBuf};

use super::{Kind, Reply};

/// Bytes read from disk per chunk of a streamed reply.
pub(super) const CHUNK: usize = 64 * 1024;
/// Longest request path under `/media/`, bytes.
const MAX_PATH: usize = 1024;

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

/// What a `Range` header asks of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Range {
    /// No range (or one this server does not serve, such as several ranges: RFC 9110 lets a
    /// server ignore `Range` and send the whole file).
    Whole,
    /// Bytes `a..=b`.
    Bytes(u64, u64),
    /// Well-formed but outside the file: 416.
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` of a file of `len` bytes.
fn range(headers: &HeaderMap, len: u64) -> Range {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Range::Whole;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let last = len.checked_sub(1);
    let parsed = match (a.trim(), b.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => last.map(|l| (len.saturating_sub(n), l)),
            Err(_) => return Range::Whole,
        },
        (a, "") => match a.parse::<u64>() {
            Ok(a) => last.map(|l| (a, l)),
            Err(_) => return Range::Whole,
        },
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => last.map(|l| (a, b.min(l))),
            _ => return Range::Whole,
        },
    };
    match parsed {
        Some((a, b)) if a <= b && b < len => Range::Bytes(a, b),
        _ => Range::Unsatisfiable,
    }
}

/// Decodes `%XX` escapes; `None` when an escape is broken or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file under `dir` that `rest` (the request path after `/media/`, percent-encoded) names:
/// only plain names (no `..`, `.`, root or prefix, no backslash or NUL, after decoding), and,
/// symlinks resolved, still inside `dir`.
async fn resolve(dir: &Path, rest: &str) -> Option<PathBuf> {
    if rest.is_empty() || rest.len() > MAX_PATH {
        return None;
    }
    let decoded = percent_decode(rest)?;
    if decoded.contains(['\\', '\0']) {
        return None;
    }
    let rel = Path::new(&decoded);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let root = tokio::fs::canonicalize(dir).await.ok()?;
    let path = tokio::fs::canonicalize(root.join(rel)).await.ok()?;
    path.starts_with(&root).then_some(path)
}

/// A file's bytes from an offset, up to a length, counting what it reads.
#[derive(Debug)]
pub(super) struct FileRange {
    file: tokio::io::Take<tokio::fs::File>,
    read: Arc<AtomicU64>,
}

impl AsyncRead for FileRange {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.file).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

fn unsatisfiable(ct: &'static str, len: u64) -> Reply {
    let mut r = Reply::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Kind::Other,
        ct,
        Bytes::new(),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        r.headers.push((header::CONTENT_RANGE, v));
    }
    r
}

/// Answers `GET /media/<rest>` from `dir`, counting the bytes read from disk in `read`.
pub(super) async fn serve(
    dir: &Path,
    rest: &str,
    headers: &HeaderMap,
    read: &Arc<AtomicU64>,
) -> Reply {
    let Some(path) = resolve(dir, rest).await else {
        return Reply::not_found();
    };
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return Reply::not_found();
    };
    let len = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return Reply::not_found(),
    };
    let (ct, kind) = content_type(&path);
    let (status, start, n) = match range(headers, len) {
        Range::Whole => (StatusCode::OK, 0, len),
        Range::Bytes(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Range::Unsatisfiable => return unsatisfiable(ct, len),
    };
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return Reply::not_found();
    }
    let mut r = Reply::new(status, kind, ct, Bytes::new());
    r.stream = Some((
        FileRange {
            file: file.take(n),
            read: read.clone(),
        },
        n,
    ));
    r.headers
        .push((header::ACCEPT_RANGES, HeaderValue::from_static("bytes")));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + n - 1))
    {
        r.headers.push((header::CONTENT_RANGE, v));
    }
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
        use Range::*;
        assert_eq!(range(&HeaderMap::new(), 100), Whole);
        assert_eq!(range(&h("bytes=0-9"), 100), Bytes(0, 9));
        assert_eq!(range(&h("bytes=90-"), 100), Bytes(90, 99));
        assert_eq!(range(&h("bytes=-10"), 100), Bytes(90, 99));
        assert_eq!(range(&h("bytes=-1000"), 100), Bytes(0, 99));
        assert_eq!(range(&h("bytes=50-500"), 100), Bytes(50, 99));
        assert_eq!(range(&h("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(range(&h("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(range(&h("bytes=0-0"), 0), Unsatisfiable);
        // Malformed or unsupported: the whole file.
        assert_eq!(range(&h("bytes=9-0"), 100), Whole);
        assert_eq!(range(&h("items=0-1"), 100), Whole);
        assert_eq!(range(&h("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(range(&h("bytes=x-"), 100), Whole);
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%2e%2E/x").as_deref(), Some("../x"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
