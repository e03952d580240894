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
