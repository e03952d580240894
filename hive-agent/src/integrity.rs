//! Trusted hashes for the swarm engines: publisher-signed lists fetched beside each manifest
//! through the origin, and lists a hash service signs, pulled from it (see
//! [`hive_core::integrity`]).
//!
//! When a manifest that lists fragments passes through the proxy, the agent fetches the list
//! beside it (`<manifest>.hive-integrity`), checks its signature against the configured
//! publisher key, maps each entry's URI to the fragment the manifest lists there, and gives the
//! engine the hashes. A packager writes the list just after the playlist, so a list that lacks
//! some of the manifest's fragments is fetched again a little later (a few times). A list that
//! fails is logged and counted; its fragments then come from the origin.
//!
//! With a hash service, the agent long-polls it for each manifest that lists fragments (one
//! poll at a time per manifest, while the stream is in use), verifies each list with the
//! service's key, and hands the hashes over the same way.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hive_core::integrity::{SignedList, list_url};
use hive_core::{ContentHash, ContentId, FragmentId};

use crate::Shared;
use crate::engine::Cmd;

/// Lists fetched at once, at most (one per manifest URL).
const MAX_IN_FLIGHT: usize = 64;
/// Fetches of one manifest's list while it lacks fragments the manifest lists.
const ATTEMPTS: u32 = 4;
/// Pause between them.
const RETRY: Duration = Duration::from_millis(250);

/// Manifests followed on a hash service at once, at most.
const MAX_FOLLOWED: usize = 64;

/// A manifest at `url` listed `fragments` of `content`: fetch their trusted hashes, unless a
/// fetch for that manifest is under way, from the publisher's list beside it and/or from the
/// hash service, whichever are configured.
pub(crate) fn manifest_seen(
    shared: &Arc<Shared>,
    url: &str,
    content: ContentId,
    fragments: Vec<FragmentId>,
) {
    if fragments.is_empty() {
        return;
    }
    follow_service(shared, url, content);
    let Some(key) = shared.cfg.integrity.publisher().copied() else {
        return;
    };
    {
        let mut inflight = shared.integrity.inflight.lock();
        if inflight.len() >= MAX_IN_FLIGHT || !inflight.insert(url.to_string()) {
            return;
        }
    }
    let shared = shared.clone();
    let url = url.to_string();
    tokio::spawn(async move {
        let list = list_url(&url);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY).await;
            }
            let body = match shared.proxy.fetcher.get_once(&list, None, RETRY * 4).await {
                Ok(f) => f.body,
                Err(e) => {
                    failed(&shared);
                    tracing::debug!(%list, error = %e, "integrity list not fetched");
                    continue;
                }
            };
            let Some((_, hashes)) = take_list(&shared, &list, content, &body, &key).await else {
                continue;
            };
            let complete = fragments
                .iter()
                .all(|f| hashes.iter().any(|(id, _)| id == f));
            if complete {
                break;
            }
        }
        shared.integrity.inflight.lock().remove(&url);
    });
}

/// Long-polls the hash service for `url`'s lists while the stream is in use.
fn follow_service(shared: &Arc<Shared>, url: &str, content: ContentId) {
    let Some(key) = shared.cfg.integrity.service().copied() else {
        return;
    };
    let Some(client) = shared.integrity.service.clone() else {
        return;
    };
    {
        let mut followed = shared.integrity.followed.lock();
        if followed.len() >= MAX_FOLLOWED || !followed.insert(url.to_string()) {
            return;
        }
    }
    let shared = shared.clone();
    let url = url.to_string();
    tokio::spawn(async move {
        let mut since = None;
        let mut failures = 0u32;
        while shared.proxy.contents.lock().knows(&content) {
            match client.poll(&url, since).await {
                Ok(None) => failures = 0,
                Ok(Some(body)) => {
                    let base = list_url(&url);
                    match take_list(&shared, &base, content, &body, &key).await {
                        Some((seq, _)) => {
                            failures = 0;
                            since = Some(seq);
                        }
                        None => failures += 1,
                    }
                }
                Err(e) => {
                    failures += 1;
                    failed(&shared);
                    tracing::debug!(%url, error = %e, "hash service poll failed");
                }
            }
            if failures > 0 {
                // Back off while the service fails: 250 ms doubling to 8 s.
                tokio::time::sleep(RETRY * (1 << failures.min(5))).await;
            }
        }
        shared.integrity.followed.lock().remove(&url);
    });
}

/// Counts a list not fetched or refused.
fn failed(shared: &Shared) {
    shared
        .metrics
        .integrity_list_failures
        .fetch_add(1, Ordering::Relaxed);
}

/// Verifies a list fetched from `list` (the URL its entries are relative to) with `key`, and
/// hands the hashes of the fragments it names to the engine; its sequence number and those
/// hashes, or `None` (counted and logged) when it does not verify.
async fn take_list(
    shared: &Shared,
    list: &str,
    content: ContentId,
    body: &[u8],
    key: &hive_core::integrity::PublicKey,
) -> Option<(u64, Vec<(FragmentId, ContentHash)>)> {
    let parsed = match SignedList::verify(body, key) {
        Ok(l) => l,
        Err(e) => {
            failed(shared);
            tracing::warn!(%list, error = %e, "integrity list refused");
            return None;
        }
    };
    shared
        .metrics
        .integrity_lists
        .fetch_add(1, Ordering::Relaxed);
    let hashes = map_entries(shared, list, content, &parsed);
    if !hashes.is_empty() {
        let _ = shared
            .tx
            .send(Cmd::Swarm {
                content,
                input: hive_overlay::Input::TrustedHashes(hashes.clone()),
            })
            .await;
    }
    Some((parsed.seq, hashes))
}

/// The fragments a list names, as the manifests the agent knows list them.
fn map_entries(
    shared: &Shared,
    list: &str,
    content: ContentId,
    parsed: &SignedList,
) -> Vec<(FragmentId, ContentHash)> {
    let Ok(base) = reqwest::Url::parse(list) else {
        return Vec::new();
    };
    let now = shared.now();
    let mut contents = shared.proxy.contents.lock();
    parsed
        .entries
        .iter()
        .filter_map(|e| {
            let u = base.join(&e.uri).ok()?;
            let (info, _) = contents.classify(u.as_str(), e.range, now)?;
            (info.id.content == content).then_some((info.id, e.hash))
        })
        .collect()
}
