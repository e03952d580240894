//! A custom `OverlayPolicy` plugged into real agents: "same site first" — connect to the
//! candidates nearest by locality, fetch from the nearest neighbour that has the fragment, and
//! let the origin serve only when no neighbour has it. Three agents share one stream through an
//! in-process discovery; the last two get the fragment from a peer.
//!
//! Run with: `cargo run --release --example custom_policy --features services`

use std::sync::Arc;
use std::time::Duration;

use hive::agent::{Agent, AgentConfig, Discovery, MemoryDiscovery};
use hive::core::overlay::{FetchContext, FetchDecision, LocalView, NeighbourPlan, OverlayPolicy};
use hive::core::time::Instant;
use hive::core::{FragmentId, Locality};
use hive::services::origin::{Origin, OriginConfig, serve};

#[derive(Debug)]
struct SameSiteFirst;

impl OverlayPolicy for SameSiteFirst {
    fn name(&self) -> &'static str {
        "same-site-first"
    }

    fn plan_neighbours(&mut self, _now: Instant, view: &LocalView<'_>) -> NeighbourPlan {
        let mut plan = NeighbourPlan::default();
        let room = view.max_neighbours.saturating_sub(view.neighbours.len());
        let mut c: Vec<_> = view.candidates.iter().collect();
        c.sort_by_key(|p| view.me.locality.distance(&p.locality));
        plan.connect = c.into_iter().take(room).map(|p| p.id).collect();
        plan
    }

    fn fetch_source(
        &mut self,
        _now: Instant,
        view: &LocalView<'_>,
        need: &FetchContext,
    ) -> FetchDecision {
        view.neighbours
            .iter()
            .filter(|n| n.has(&need.fragment) && !n.choked)
            .min_by_key(|n| view.me.locality.distance(&n.info.locality))
            .map(|n| FetchDecision::Peer(n.info.id))
            .unwrap_or(FetchDecision::Origin)
    }

    fn should_prefetch(&mut self, _now: Instant, _view: &LocalView<'_>, _f: &FragmentId) -> bool {
        false
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let origin = Arc::new(Origin::new(OriginConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let cdn = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, origin.clone(), std::future::pending()));
    let discovery: Arc<dyn Discovery> = Arc::new(MemoryDiscovery::default());

    let mut agents = Vec::new();
    for site in ["paris", "paris", "lyon"] {
        let agent = Agent::builder()
            .config(AgentConfig {
                origin: Some(cdn.clone()),
                locality: Locality {
                    site: Some(site.into()),
                    ..Locality::default()
                },
                ..AgentConfig::default()
            })
            .policy(|_content, _me| Box::new(SameSiteFirst))
            .discovery(discovery.clone())
            .build()
            .await?;
        agents.push(agent);
    }
    // Every agent learns the stream (the announce loop starts with the first manifest).
    for a in &agents {
        reqwest::get(format!("{}/live/master.m3u8", a.proxy_url())).await?;
        reqwest::get(format!("{}/live/1/index.m3u8", a.proxy_url())).await?;
    }
    let seq = origin.live().live_edge(std::time::SystemTime::now());
    // Give the announces a moment to introduce the agents to each other.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for a in &agents {
        let b = reqwest::get(format!("{}/live/1/{seq}.ts", a.proxy_url()))
            .await?
            .bytes()
            .await?;
        assert_eq!(b, origin.live().fragment(1, seq));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (i, a) in agents.iter().enumerate() {
        let s = a.stats();
        println!(
            "agent {i} ({}): {} neighbours, {} B from origin, {} B from peers",
            a.me().locality.site.unwrap_or_default(),
            s.neighbours,
            s.swarm.origin_bytes,
            s.swarm.peer_bytes
        );
    }
    println!(
        "origin served {} fragment bytes in all",
        origin.stats().fragment_bytes
    );
    for a in agents {
        a.shutdown().await;
    }
    Ok(())
}
