//! Helpers shared by the agent's end-to-end tests: a player's requests through an agent, and
//! waiting for a condition.

#![allow(dead_code)] // each test file uses some of them

/// The status of a GET of `url` (0 when it failed).
pub(crate) async fn get(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The newest fragment of track 1 the agent at `proxy` lists.
pub(crate) async fn newest(proxy: &str) -> u64 {
    let text = reqwest::get(format!("{proxy}/live/1/index.m3u8"))
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter_map(|l| l.strip_suffix(".ts"))
        .filter_map(|n| n.parse().ok())
        .max()
        .expect("a fragment")
}

/// Whether `cond` holds within `tries` tenths of a second.
pub(crate) async fn within(tries: u32, cond: impl Fn() -> bool) -> bool {
    for _ in 0..tries {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    cond()
}
