//! An agent embedded in an application: the app starts a Hive agent and points its player at
//! the agent's proxy instead of the CDN. Here a synthetic origin stands in for the CDN and a few
//! HTTP GETs stand in for the player.
//!
//! Run with: `cargo run --release --example embed_agent --features services`

use std::sync::Arc;

use hive::agent::{Agent, AgentConfig};
use hive::services::origin::{Origin, OriginConfig, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The "CDN": a synthetic live HLS origin on loopback.
    let origin = Arc::new(Origin::new(OriginConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let cdn = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, origin.clone(), std::future::pending()));

    // The agent, in reverse-proxy mode for that CDN, with every other default.
    let agent = Agent::builder()
        .config(AgentConfig {
            origin: Some(cdn.clone()),
            ..AgentConfig::default()
        })
        .build()
        .await?;
    println!(
        "agent {} proxies {cdn} at {}",
        agent.peer_id().short(),
        agent.proxy_url()
    );

    // The "player": the master playlist, a variant, its newest fragment — all via the agent.
    let base = agent.proxy_url();
    let master = reqwest::get(format!("{base}/live/master.m3u8"))
        .await?
        .text()
        .await?;
    println!(
        "master playlist: {} variants",
        master.matches("#EXT-X-STREAM-INF").count()
    );
    let media = reqwest::get(format!("{base}/live/1/index.m3u8"))
        .await?
        .text()
        .await?;
    let newest = media
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .ok_or_else(|| anyhow::anyhow!("empty playlist"))?
        .to_string();
    let bytes = reqwest::get(format!("{base}/live/1/{newest}"))
        .await?
        .bytes()
        .await?;
    println!("fragment {newest}: {} bytes", bytes.len());

    // What the application can monitor (also at {base}/metrics and {base}/status).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let s = agent.stats();
    println!(
        "from origin {} B, from peers {} B, to the player {} B",
        s.swarm.origin_bytes, s.swarm.peer_bytes, s.swarm.player_bytes
    );
    agent.shutdown().await;
    Ok(())
}
