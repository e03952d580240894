//! The registrar's HTTP API through RegistrarClient; its tokens admit a peer to the tracker.

use std::sync::Arc;
use std::time::Duration;

use hive_core::{ContentId, PeerId};
use hive_services::registrar::{self, Registrar, RegistrarClient, TokenError, TokenVerifier};

#[tokio::test]
async fn tokens_from_the_http_api_verify_offline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let r = Arc::new(Registrar::generate());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(registrar::serve_registrar(
        listener,
        r.clone(),
        Duration::from_secs(3600),
        async {
            let _ = rx.await;
        },
    ));

    let c = RegistrarClient::new(&url).unwrap();
    let key = c.public_key().await.unwrap();
    assert_eq!(key, r.verifying_key());
    let (peer, content) = (PeerId::from_bytes([5; 32]), ContentId::derive("live/reg"));
    let (token, expires) = c.token(peer, content).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 3590..=now + 3610).contains(&expires),
        "{expires} vs {now}"
    );
    let v = TokenVerifier::new(key);
    let claims = v.verify(&token, peer, content, now).unwrap();
    assert_eq!(claims.expires_unix_s, expires);
    assert!(matches!(
        v.verify(&token, peer, content, expires),
        Err(TokenError::Expired { .. })
    ));

    let http = reqwest::Client::new();
    let bad = http
        .post(format!("{url}/v1/token"))
        .body(r#"{"peer": "xyz", "content": "00"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let v: serde_json::Value = bad.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("peer"));
    let m = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hive_registrar_tokens_issued_total 1"), "{m}");

    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Starts a registrar with `policy` on a free loopback port; returns its URL and a stopper.
async fn start(
    policy: registrar::EnrollPolicy,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let r = Arc::new(Registrar::generate().with_enroll(policy));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(registrar::serve_registrar(
        listener,
        r,
        Duration::from_secs(60),
        async {
            let _ = rx.await;
        },
    ));
    (url, tx, task)
}

async fn ask(url: &str, secret: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/token"))
        .json(&serde_json::json!({
            "peer": PeerId::from_bytes([9; 32]).to_string(),
            "content": ContentId::derive("live/ranges").to_string(),
        }));
    if let Some(s) = secret {
        req = req.header(registrar::ENROLL_HEADER, s);
    }
    let resp = req.send().await.expect("registrar answers");
    (resp.status().as_u16(), resp.text().await.expect("a body"))
}

#[tokio::test]
async fn address_ranges_decide_who_enrolls() {
    use registrar::EnrollPolicy;
    let lo: ipnet::IpNet = "127.0.0.0/8".parse().unwrap();
    let corp: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();

    // A client inside the ranges gets a token.
    let (url, tx, task) = start(EnrollPolicy::Ranges(vec![corp, lo])).await;
    let (status, body) = ask(&url, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("token"), "{body}");
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    // A client outside them is refused, and told why.
    let (url, tx, task) = start(EnrollPolicy::Ranges(vec![corp])).await;
    let (status, body) = ask(&url, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("127.0.0.1"), "{body}");
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    // Secret and range together: both are needed.
    let both = EnrollPolicy::All(vec![
        EnrollPolicy::Secret("s3cret".into()),
        EnrollPolicy::Ranges(vec![lo]),
    ]);
    let (url, tx, task) = start(both).await;
    assert_eq!(ask(&url, None).await.0, 403);
    assert_eq!(ask(&url, Some("wrong")).await.0, 403);
    assert_eq!(ask(&url, Some("s3cret")).await.0, 200);
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    let both = EnrollPolicy::All(vec![
        EnrollPolicy::Secret("s3cret".into()),
        EnrollPolicy::Ranges(vec![corp]),
    ]);
    let (url, tx, task) = start(both).await;
    assert_eq!(ask(&url, Some("s3cret")).await.0, 403);
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
