//! `hive origin --folder`: ranges are read from disk and streamed (a 1-byte range of a 64 MiB
//! file reads 1 byte), with correct `Content-Range`/`Content-Length`/416, and no request path
//! leaves the folder (`..`, absolute paths, percent-encoded variants, symlinks out).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hive_services::origin::{Origin, OriginConfig, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIG: u64 = 64 << 20;

/// `<tmp>/hive-origin-folder-<pid>/{secret.txt, media/...}`; the media folder.
fn fixture(name: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("hive-origin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let media = base.join("media");
    std::fs::create_dir_all(media.join("sub")).expect("mkdir");
    std::fs::write(base.join("secret.txt"), b"secret").expect("secret");
    std::fs::write(media.join("small.ts"), b"0123456789").expect("small");
    std::fs::write(media.join("a b.ts"), b"spaced").expect("spaced");
    std::fs::write(media.join("sub/inner.ts"), b"inner").expect("inner");
    // A 64 MiB file (sparse: no disk used), with a known byte at 1000.
    let big = std::fs::File::create(media.join("big.ts")).expect("big");
    big.set_len(BIG).expect("set_len");
    drop(big);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(media.join("big.ts"))
            .expect("open");
        f.seek(SeekFrom::Start(1000)).expect("seek");
        f.write_all(b"X").expect("write");
    }
    std::os::unix::fs::symlink(base.join("secret.txt"), media.join("out.ts")).expect("symlink");
    std::os::unix::fs::symlink("../secret.txt", media.join("rel-out.ts")).expect("symlink");
    std::os::unix::fs::symlink("sub/inner.ts", media.join("in.ts")).expect("symlink");
    std::os::unix::fs::symlink("/etc", media.join("etc")).expect("symlink");
    (base, media)
}

async fn start(media: PathBuf) -> (SocketAddr, Arc<Origin>) {
    let origin = Arc::new(Origin::new(OriginConfig {
        folder: Some(media),
        ..OriginConfig::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, origin.clone(), std::future::pending()));
    (addr, origin)
}

/// A raw request (the path exactly as given: no client normalises it); status line, headers
/// (lower-cased names) and body.
async fn raw(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nhost: h\r\nconnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("reply in time")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end");
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head[9..12].parse().expect("status");
    (status, head, buf[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[tokio::test]
async fn a_one_byte_range_of_a_large_file_reads_one_byte() {
    let (base, media) = fixture("ranges");
    let (addr, origin) = start(media).await;

    let (status, head, body) =
        raw(addr, "GET", "/media/big.ts", "range: bytes=1000-1000\r\n").await;
    assert_eq!(status, 206);
    assert_eq!(body, b"X");
    assert_eq!(header(&head, "content-length"), Some("1"));
    assert_eq!(
        header(&head, "content-range"),
        Some(format!("bytes 1000-1000/{BIG}").as_str())
    );
    assert_eq!(origin.stats().disk_bytes, 1, "a 1-byte range read more");

    // A suffix range, and an open range at the end.
    let (status, head, body) = raw(addr, "GET", "/media/small.ts", "range: bytes=-3\r\n").await;
    assert_eq!((status, body.as_slice()), (206, &b"789"[..]));
    assert_eq!(header(&head, "content-range"), Some("bytes 7-9/10"));
    let (status, _, body) = raw(addr, "GET", "/media/small.ts", "range: bytes=8-\r\n").await;
    assert_eq!((status, body.as_slice()), (206, &b"89"[..]));

    // Beyond the end: 416 with the length.
    let (status, head, body) = raw(
        addr,
        "GET",
        "/media/big.ts",
        &format!("range: bytes={BIG}-\r\n"),
    )
    .await;
    assert_eq!(status, 416);
    assert!(body.is_empty());
    assert_eq!(
        header(&head, "content-range"),
        Some(format!("bytes */{BIG}").as_str())
    );

    // The whole file, and HEAD (which reads nothing).
    let (status, head, body) = raw(addr, "GET", "/media/small.ts", "").await;
    assert_eq!((status, body.as_slice()), (200, &b"0123456789"[..]));
    assert_eq!(header(&head, "content-length"), Some("10"));
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
    let before = origin.stats().disk_bytes;
    let (status, head, body) = raw(addr, "HEAD", "/media/big.ts", "").await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(
        header(&head, "content-length"),
        Some(BIG.to_string().as_str())
    );
    assert_eq!(origin.stats().disk_bytes, before);

    // A large range streams: 8 MiB in, read once.
    let before = origin.stats().disk_bytes;
    let (status, _, body) = raw(
        addr,
        "GET",
        "/media/big.ts",
        "range: bytes=1000-8389607\r\n",
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(body.len(), 8 << 20);
    assert_eq!(body[0], b'X');
    assert_eq!(origin.stats().disk_bytes - before, 8 << 20);
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test]
async fn no_path_leaves_the_folder() {
    let (base, media) = fixture("paths");
    let (addr, _) = start(media).await;
    for ok in [
        "/media/in.ts",
        "/media/a%20b.ts",
        "/media/sub/inner.ts",
        "/media/sub%2finner.ts",
    ] {
        let (status, _, _) = raw(addr, "GET", ok, "").await;
        assert_eq!(status, 200, "{ok}");
    }
    for bad in [
        "/media/../secret.txt",
        "/media/sub/../../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/%2E%2E%2Fsecret.txt",
        "/media/sub/..%2f..%2fsecret.txt",
        "/media/..%5csecret.txt",
        "/media//etc/passwd",
        "/media/%2fetc%2fpasswd",
        "/media/out.ts",
        "/media/rel-out.ts",
        "/media/etc/passwd",
        "/media/./small.ts",
        "/media/sub",
        "/media/",
        "/media/small.ts%00",
        "/media/%",
    ] {
        let (status, _, body) = raw(addr, "GET", bad, "").await;
        assert_eq!(status, 404, "{bad}");
        assert!(
            !body.starts_with(b"secret") && !body.starts_with(b"root"),
            "{bad}"
        );
    }
    let _ = std::fs::remove_dir_all(base);
}
