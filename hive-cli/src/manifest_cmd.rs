//! `hive manifest inspect FILE|URL`: detect and parse a manifest, print its Presentation.

use std::io::Read;
use std::process::ExitCode;

use hive_core::manifest::Presentation;
use hive_manifest::ManifestLimits;
use hive_manifest::inspect::{Manifests, report_json};

use crate::ManifestArgs;

/// Reads a local file or fetches an http(s) URL, never more than the manifest size limit.
fn load(source: &str, limit: u64) -> Result<(String, Option<String>, Vec<u8>), String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let resp = ureq::get(source)
            .call()
            .map_err(|e| format!("cannot fetch {source}: {e}"))?;
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("cannot read {source}: {e}"))?;
        Ok((source.to_string(), ct, body))
    } else {
        let path = std::path::Path::new(source);
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open {source}: {e}"))?;
        let mut body = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("cannot read {source}: {e}"))?;
        let abs =
            std::fs::canonicalize(path).map_err(|e| format!("cannot resolve {source}: {e}"))?;
        Ok((format!("file://{}", abs.display()), None, body))
    }
}

fn table(p: &Presentation) -> String {
    let mut out = format!(
        "format {}  live {}  tracks {}  fragments {}\n{:<4} {:<10} {:>10} {:<28} {:<11} {:>9}\n",
        p.format,
        p.live,
        p.tracks.len(),
        p.fragments_total(),
        "id",
        "kind",
        "bandwidth",
        "codecs",
        "resolution",
        "fragments"
    );
    for t in &p.tracks {
        out += &format!(
            "{:<4} {:<10} {:>10} {:<28} {:<11} {:>9}\n",
            t.id.0,
            t.kind.as_str(),
            t.bandwidth,
            t.codecs.as_deref().unwrap_or("-"),
            t.resolution
                .map_or("-".to_string(), |(w, h)| format!("{w}x{h}")),
            t.fragments.len()
        );
    }
    out
}

pub(crate) fn run(args: &ManifestArgs) -> ExitCode {
    let crate::ManifestCommand::Inspect { source, json } = &args.command;
    let limits = ManifestLimits::default();
    let (url, ct, body) = match load(source, limits.max_manifest_bytes as u64) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("hive manifest: {e}");
            return ExitCode::from(2);
        }
    };
    let formats = Manifests::default();
    match formats.parse(&url, ct.as_deref(), &body) {
        Ok(mut p) => {
            // An HLS master lists media playlists: load them too, so the fragments show.
            let pending: Vec<_> = p
                .tracks
                .iter()
                .filter(|t| t.fragments.is_empty())
                .filter_map(|t| t.playlist_url.clone().map(|u| (t.id, u)))
                .collect();
            for (track, media_url) in pending {
                let source = media_url.strip_prefix("file://").unwrap_or(&media_url);
                match load(source, limits.max_manifest_bytes as u64) {
                    Ok((u, _, b)) => {
                        if let Err(e) = formats.hls.fill_track(&mut p, track, &u, &b) {
                            eprintln!("hive manifest: media playlist {media_url}: {e}");
                        }
                    }
                    Err(e) => eprintln!("hive manifest: {e}"),
                }
            }
            if *json {
                println!("{}", report_json(&p));
            } else {
                print!("{}", table(&p));
            }
            ExitCode::SUCCESS
        }
        Err(hive_core::ManifestError::NotThisFormat { .. }) => {
            eprintln!(
                "hive manifest: {source}: not a manifest of a known format (HLS, DASH, Smooth Streaming, HDS)"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hive manifest: {source}: {e}");
            ExitCode::FAILURE
        }
    }
}
