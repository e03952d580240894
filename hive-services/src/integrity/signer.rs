//! `hive sign`: the packaging side. Signs, beside every HLS media playlist and DASH MPD of a
//! folder, the list of its fragments' BLAKE3 hashes ([`hive_core::integrity::SignedList`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hive_core::integrity::{
    LIST_SUFFIX, ListEntry, MAX_ENTRIES, PublisherKey, SignedList, list_url,
};
use hive_core::manifest::{Fragment, Presentation};
use hive_core::{ByteRange, ContentHash};
use hive_manifest::Manifests;
use reqwest::Url;

use super::SignError;

/// Deepest folder level searched below the signed folder.
const MAX_DEPTH: usize = 16;
/// Most playlists and MPDs signed in one folder.
pub const MAX_PLAYLISTS: usize = 10_000;
/// Largest playlist or MPD read (bytes), as hive-manifest's default limit.
const MAX_PLAYLIST_BYTES: u64 = 16 << 20;
/// Most cached hashes; past it the cache starts over.
const MAX_CACHED: usize = 1_000_000;
/// A cached hash not used for this many passes is forgotten.
const CACHE_PASSES: u64 = 3000;
/// Read buffer of the hasher.
const BUF: usize = 64 << 10;

/// What one [`Signer::pass`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Playlists and MPDs found.
    pub playlists: usize,
    /// Lists written (changed since the last pass).
    pub lists_written: usize,
    /// Fragments hashed (read from disk) in this pass; cached hashes are not counted.
    pub fragments_hashed: usize,
    /// Fragments listed whose file is not there (yet): left out, tried again next pass.
    pub missing: usize,
    /// Playlists that could not be read or parsed (skipped; logged).
    pub failed: usize,
}

/// What is known of one playlist.
#[derive(Debug)]
struct Playlist {
    /// (mtime, size) of the playlist when it was last signed.
    stamp: Option<(SystemTime, u64)>,
    /// Every fragment was there and the playlist's listing does not move with the clock: no
    /// need to look again until the playlist changes.
    settled: bool,
    /// The entries of the list last written.
    entries: Vec<ListEntry>,
    /// The `#SEQ` of the list last written.
    seq: u64,
}

/// A hash cached for one (file, range), valid while the file's (mtime, size) stay.
#[derive(Debug)]
struct Cached {
    mtime: SystemTime,
    size: u64,
    hash: ContentHash,
    used: u64,
}

/// Signs every HLS media playlist and DASH MPD under a folder; [`pass`](Signer::pass) once for
/// on-demand content, repeatedly (every 200 ms, say) for a live packager's output.
///
/// Each list is written beside its playlist as `<playlist>.hive-integrity` (a temporary file
/// renamed over it, so an origin never serves half a list), lists each fragment the playlist
/// lists now (init segments included) by its URI relative to the list's own URL, with its byte
/// range when the playlist addresses a range, and the BLAKE3 of the bytes on disk. Each
/// (file, mtime, size, range) is hashed once; a fragment whose file is missing is left out and
/// picked up on a later pass. A list is written only when its entries change; its `#SEQ` is
/// then the larger of the last one + 1 and the wall clock in milliseconds, so it grows across
/// restarts too.
#[derive(Debug)]
pub struct Signer {
    key: PublisherKey,
    dir: PathBuf,
    manifests: Manifests,
    playlists: HashMap<PathBuf, Playlist>,
    cache: HashMap<(PathBuf, Option<ByteRange>), Cached>,
    pass_no: u64,
    buf: Vec<u8>,
}

impl Signer {
    /// A signer of the playlists under `dir` with `key`.
    pub fn new(key: PublisherKey, dir: &Path) -> Result<Self, SignError> {
        let dir = dir
            .canonicalize()
            .map_err(|e| SignError::io(dir, "opening the folder", e))?;
        if !dir.is_dir() {
            return Err(SignError::NotAFolder(dir));
        }
        Ok(Signer {
            key,
            dir,
            manifests: Manifests::default(),
            playlists: HashMap::new(),
            cache: HashMap::new(),
            pass_no: 0,
            buf: vec![0; BUF],
        })
    }

    /// The folder signed (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The public half of the signing key.
    pub fn public_key(&self) -> hive_core::integrity::PublicKey {
        self.key.public()
    }

    /// One pass over the folder: signs every playlist that changed (or whose fragments were
    /// not all there last time). Errors only when the folder itself cannot be read; a playlist
    /// that fails is counted in [`PassReport::failed`] and logged.
    pub fn pass(&mut self) -> Result<PassReport, SignError> {
        self.pass_no += 1;
        let mut found = Vec::new();
        find_playlists(&self.dir, 0, &mut found)
            .map_err(|e| SignError::io(&self.dir, "reading the folder", e))?;
        found.sort();
        let mut report = PassReport {
            playlists: found.len(),
            ..Default::default()
        };
        for path in &found {
            if let Err(e) = self.sign_one(path, &mut report) {
                report.failed += 1;
                tracing::warn!(playlist = %path.display(), error = %e, "not signed");
            }
        }
        // Playlists gone from the folder are forgotten (their lists stay on disk).
        self.playlists.retain(|p, _| found.binary_search(p).is_ok());
        let pass_no = self.pass_no;
        self.cache
            .retain(|_, c| pass_no.saturating_sub(c.used) < CACHE_PASSES);
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        }
        Ok(report)
    }

    fn sign_one(&mut self, path: &Path, report: &mut PassReport) -> Result<(), SignError> {
        let meta = std::fs::metadata(path).map_err(|e| SignError::io(path, "stat", e))?;
        let stamp = (meta.modified().unwrap_or(UNIX_EPOCH), meta.len());
        let list_path = list_path(path);
        if !self.playlists.contains_key(path) {
            // Continue from the list an earlier run wrote: its `#SEQ` grows on, and it is not
            // rewritten when nothing changed.
            let earlier = std::fs::read(&list_path)
                .ok()
                .and_then(|b| SignedList::verify(&b, &self.key.public()).ok())
                .unwrap_or_default();
            self.playlists.insert(
                path.to_path_buf(),
                Playlist {
                    stamp: None,
                    settled: false,
                    entries: earlier.entries,
                    seq: earlier.seq,
                },
            );
        }
        if let Some(p) = self.playlists.get(path)
            && p.settled
            && p.stamp == Some(stamp)
            && list_path.exists()
        {
            return Ok(());
        }
        if meta.len() > MAX_PLAYLIST_BYTES {
            return Err(SignError::TooLarge(path.to_path_buf()));
        }
        let body = std::fs::read(path).map_err(|e| SignError::io(path, "reading", e))?;
        let url = Url::from_file_path(path).map_err(|()| SignError::NotAFolder(path.into()))?;
        let p = parse(&self.manifests, url.as_str(), &body)
            .map_err(|e| SignError::Manifest(path.to_path_buf(), e.to_string()))?;
        let fragments = listed(&p);
        if fragments.is_empty() && p.format == "hls" {
            // A master playlist: its media playlists are signed on their own.
            if let Some(pl) = self.playlists.get_mut(path) {
                pl.stamp = Some(stamp);
                pl.settled = true;
            }
            return Ok(());
        }
        let base = Url::parse(&list_url(url.as_str()))
            .map_err(|e| SignError::Manifest(path.to_path_buf(), e.to_string()))?;
        let mut entries = Vec::with_capacity(fragments.len());
        let mut complete = true;
        for f in fragments {
            if entries.len() >= MAX_ENTRIES {
                break;
            }
            let Ok(furl) = Url::parse(&f.url) else {
                continue;
            };
            let Some(uri) = base.make_relative(&furl) else {
                // Not a file on this disk (an absolute http URL): not ours to hash.
                continue;
            };
            let Ok(file) = furl.to_file_path() else {
                continue;
            };
            if !file.starts_with(&self.dir) {
                continue;
            }
            match self.hash(&file, f.byte_range, report)? {
                Some(hash) => entries.push(ListEntry {
                    uri,
                    range: f.byte_range,
                    hash,
                }),
                None => {
                    complete = false;
                    report.missing += 1;
                }
            }
        }
        let Some(pl) = self.playlists.get_mut(path) else {
            return Ok(());
        };
        pl.stamp = Some(stamp);
        // A dynamic MPD's listing moves with the clock even when the file does not.
        pl.settled = complete && !(p.live && p.format == "dash");
        if pl.entries == entries && list_path.exists() {
            return Ok(());
        }
        pl.seq = pl.seq.saturating_add(1).max(unix_ms());
        let list = SignedList {
            seq: pl.seq,
            entries,
        };
        write_atomically(&list_path, &list.sign(&self.key))?;
        pl.entries = list.entries;
        report.lists_written += 1;
        Ok(())
    }

    /// The hash of `range` of `file` (the whole file without one), from the cache when the
    /// file's mtime and size have not changed; `None` when the file or the range is not there.
    fn hash(
        &mut self,
        file: &Path,
        range: Option<ByteRange>,
        report: &mut PassReport,
    ) -> Result<Option<ContentHash>, SignError> {
        let meta = match std::fs::metadata(file) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SignError::io(file, "stat", e)),
        };
        let (mtime, size) = (meta.modified().unwrap_or(UNIX_EPOCH), meta.len());
        if range.is_some_and(|r| r.end() > size) {
            return Ok(None);
        }
        let key = (file.to_path_buf(), range);
        if let Some(c) = self.cache.get_mut(&key)
            && c.mtime == mtime
            && c.size == size
        {
            c.used = self.pass_no;
            return Ok(Some(c.hash));
        }
        let hash = match hash_file(file, range, &mut self.buf) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // Shorter than the range says: written as we read.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(SignError::io(file, "hashing", e)),
        };
        report.fragments_hashed += 1;
        self.cache.insert(
            key,
            Cached {
                mtime,
                size,
                hash,
                used: self.pass_no,
            },
        );
        Ok(Some(hash))
    }
}

/// The file a playlist's list is written to: `<playlist>.hive-integrity`.
pub fn list_path(playlist: &Path) -> PathBuf {
    let mut s = playlist.as_os_str().to_owned();
    s.push(LIST_SUFFIX);
    PathBuf::from(s)
}

/// BLAKE3 of `range` of the file at `path` (the whole file without one), streamed through
/// `buf`: a range of a big file is read alone, never the whole file.
pub fn hash_file(
    path: &Path,
    range: Option<ByteRange>,
    buf: &mut [u8],
) -> std::io::Result<ContentHash> {
    let mut f = File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut left = match range {
        Some(r) => {
            f.seek(SeekFrom::Start(r.start))?;
            r.len
        }
        None => u64::MAX,
    };
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            if range.is_some() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            break;
        }
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(ContentHash(*h.finalize().as_bytes()))
}

/// Parses a manifest; a dynamic MPD is evaluated at the wall clock's now.
pub(crate) fn parse(
    manifests: &Manifests,
    url: &str,
    body: &[u8],
) -> Result<Presentation, hive_core::ManifestError> {
    match manifests.detect(url, None, body) {
        Some(f) if f.name() == "dash" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            manifests.dash.parse_at(url, body, Some(now))
        }
        Some(f) => f.parse(url, body),
        None => Err(hive_core::ManifestError::NotThisFormat {
            format: "any known",
        }),
    }
}

/// Every fragment a presentation lists, init segments first per track, deduplicated (an init
/// segment shared by tracks, a resource listed twice).
pub(crate) fn listed(p: &Presentation) -> Vec<&Fragment> {
    let mut seen = std::collections::HashSet::new();
    p.tracks
        .iter()
        .flat_map(|t| t.init.iter().chain(t.fragments.iter()))
        .filter(|f| seen.insert((f.url.as_str(), f.byte_range)))
        .collect()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SignError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SignError::io(path, "writing", e)
    })
}

fn find_playlists(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let Ok(e) = e else { continue };
        let Ok(kind) = e.file_type() else { continue };
        let path = e.path();
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                // A sub-folder that cannot be read is skipped, not fatal.
                let _ = find_playlists(&path, depth + 1, out);
            }
        } else if kind.is_file()
            && path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("m3u8") || x.eq_ignore_ascii_case("mpd"))
            && out.len() < MAX_PLAYLISTS
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs [`Signer::pass`] every `interval` until `stop` returns true, calling `progress` with
/// each pass's report.
pub fn watch(
    signer: &mut Signer,
    interval: Duration,
    mut stop: impl FnMut() -> bool,
    mut progress: impl FnMut(&PassReport),
) -> Result<(), SignError> {
    while !stop() {
        let started = std::time::Instant::now();
        let r = signer.pass()?;
        progress(&r);
        std::thread::sleep(interval.saturating_sub(started.elapsed()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hive-signer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ranges_are_hashed_alone_and_short_files_refused() {
        let d = tmp("range");
        let f = d.join("v.mp4");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &bytes).unwrap();
        let mut buf = vec![0; 1000];
        let r = ByteRange {
            start: 70_001,
            len: 12_345,
        };
        assert_eq!(
            hash_file(&f, Some(r), &mut buf).unwrap(),
            ContentHash::of(&bytes[70_001..82_346])
        );
        assert_eq!(
            hash_file(&f, None, &mut buf).unwrap(),
            ContentHash::of(&bytes)
        );
        let past = ByteRange {
            start: 199_000,
            len: 2000,
        };
        assert!(hash_file(&f, Some(past), &mut buf).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_missing_fragment_is_left_out_then_picked_up() {
        let d = tmp("missing");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        let pl = d.join("sub/live.m3u8");
        std::fs::write(
            &pl,
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n",
        )
        .unwrap();
        std::fs::write(d.join("sub/a.ts"), b"aaaa").unwrap();
        let key = PublisherKey::from_seed([5; 32]);
        let mut s = Signer::new(PublisherKey::from_seed([5; 32]), &d).unwrap();
        let r = s.pass().unwrap();
        assert_eq!((r.lists_written, r.fragments_hashed, r.missing), (1, 1, 1));
        let read =
            || SignedList::verify(&std::fs::read(list_path(&pl)).unwrap(), &key.public()).unwrap();
        let first = read();
        assert_eq!(first.entries.len(), 1);
        assert_eq!(first.entries[0].uri, "a.ts");
        assert_eq!(first.entries[0].hash, ContentHash::of(b"aaaa"));
        std::fs::write(d.join("sub/b.ts"), b"bbbb").unwrap();
        let r = s.pass().unwrap();
        assert_eq!((r.lists_written, r.fragments_hashed, r.missing), (1, 1, 0));
        let second = read();
        assert_eq!(second.entries.len(), 2);
        assert!(second.seq > first.seq);
        // Settled: nothing read again.
        let r = s.pass().unwrap();
        assert_eq!((r.lists_written, r.fragments_hashed), (0, 0));
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(d.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
