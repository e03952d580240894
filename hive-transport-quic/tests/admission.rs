//! Admission tokens in the TLS handshake, end to end on loopback: a peer whose token the other
//! side refuses gets no connection — `dial` fails and `accept` never yields it — whichever side
//! dials; a valid token connects; a token set or renewed after `bind` is what new handshakes
//! present.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_core::PeerId;
use hive_core::transport::{Class, DialTarget, Transport};
use hive_transport_quic::admission::{MAX_ADMISSION_TOKEN, token_of_certificate};
use hive_transport_quic::{Admission, AdmissionCheck, Config, Identity, QuicTransport};
use parking_lot::Mutex;

const GOOD: &[u8] = b"a token the check likes";

fn config() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(3),
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// What a check was asked: the remote's id and token, in order.
type Seen = Arc<Mutex<Vec<(PeerId, Vec<u8>)>>>;

/// A check admitting [`GOOD`] only, remembering who it was asked about.
fn strict(seen: &Seen) -> AdmissionCheck {
    let seen = seen.clone();
    Arc::new(move |peer: &PeerId, token: &[u8]| {
        seen.lock().push((*peer, token.to_vec()));
        token == GOOD
    })
}

async fn endpoint(token: &[u8], check: Option<AdmissionCheck>) -> Arc<QuicTransport> {
    QuicTransport::bind_with_admission(
        "127.0.0.1:0".parse().expect("addr"),
        config(),
        Identity::generate().expect("identity"),
        Admission {
            token: Bytes::copy_from_slice(token),
            check,
        },
    )
    .await
    .expect("bind")
}

fn target(t: &QuicTransport) -> DialTarget {
    DialTarget::new(t.local_peer_id(), t.local_addrs())
}

/// Whether `t.accept()` yields a connection within a second and a half.
async fn accepts(t: &QuicTransport) -> bool {
    tokio::time::timeout(Duration::from_millis(1500), t.accept())
        .await
        .is_ok_and(|r| r.is_ok())
}

/// `from` dials `to` while `to` accepts: whether both ends got the connection (and a message
/// crosses it), or neither did.
async fn connects(from: &QuicTransport, to: &QuicTransport) -> bool {
    let to_target = target(to);
    let (dialled, accepted) = tokio::join!(
        from.dial(&to_target),
        tokio::time::timeout(Duration::from_secs(4), to.accept())
    );
    match (dialled, accepted.ok().and_then(Result::ok)) {
        (Ok(d), Some(a)) => {
            assert_eq!(a.remote_peer_id(), from.local_peer_id());
            d.send(Bytes::from_static(b"hi"), Class::Control)
                .await
                .expect("send");
            assert_eq!(
                a.recv().await.expect("recv"),
                Some(Bytes::from_static(b"hi"))
            );
            d.close().await;
            true
        }
        (Err(_), None) => false,
        (Err(e), Some(_)) => panic!("the dial failed ({e}) but accept yielded the connection"),
        (Ok(_), None) => panic!("the dial succeeded but accept yielded nothing"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptor_refuses_dialers_without_a_valid_token() {
    let seen: Seen = Arc::default();
    let server = endpoint(GOOD, Some(strict(&seen))).await;
    for (what, token) in [
        ("no token", &b""[..]),
        ("a wrong token", &b"a token the check dislikes"[..]),
        (
            "a token over the bound (not sent)",
            &[b'x'; MAX_ADMISSION_TOKEN + 1][..],
        ),
    ] {
        let client = endpoint(token, None).await;
        let before = server.admission_refused();
        assert!(
            client.dial(&target(&server)).await.is_err(),
            "{what}: the dial succeeded"
        );
        assert!(!accepts(&server).await, "{what}: accept yielded it");
        assert_eq!(server.admission_refused(), before + 1, "{what}");
        let expected: &[u8] = if token.len() > MAX_ADMISSION_TOKEN {
            &[]
        } else {
            token
        };
        assert_eq!(
            seen.lock().last().cloned(),
            Some((client.local_peer_id(), expected.to_vec())),
            "{what}: the check saw the dialler's certificate id and token"
        );
        client.shutdown().await;
    }
    let good = endpoint(GOOD, None).await;
    assert!(connects(&good, &server).await, "a valid token connects");
    assert_eq!(seen.lock().last().map(|s| s.0), Some(good.local_peer_id()));
    assert_eq!(server.admission_refused(), 3);
    good.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_refuses_acceptors_without_a_valid_token() {
    let seen: Seen = Arc::default();
    let client = endpoint(GOOD, Some(strict(&seen))).await;
    for (what, token) in [("no token", &b""[..]), ("a wrong token", &b"nope"[..])] {
        let server = endpoint(token, None).await;
        let to_server = target(&server);
        let (dialled, accepted) = tokio::join!(client.dial(&to_server), accepts(&server));
        let err = dialled.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("admission token was refused"),
            "{what}: dial gave {err:?}"
        );
        assert!(!accepted, "{what}: the server's accept yielded it");
        assert_eq!(
            seen.lock().last().cloned(),
            Some((server.local_peer_id(), token.to_vec())),
            "{what}"
        );
        server.shutdown().await;
    }
    assert_eq!(client.admission_refused(), 2);
    let server = endpoint(GOOD, None).await;
    assert!(connects(&client, &server).await, "a valid token connects");
    assert_eq!(client.admission_refused(), 2);
    server.shutdown().await;
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_checking_connect_with_valid_tokens_only() {
    let seen: Seen = Arc::default();
    let a = endpoint(GOOD, Some(strict(&seen))).await;
    let b = endpoint(GOOD, Some(strict(&seen))).await;
    assert!(connects(&a, &b).await);
    assert!(connects(&b, &a).await);
    assert_eq!(a.admission_refused() + b.admission_refused(), 0);
    // The dialer checks the server's certificate, the server the dialer's: both ids seen.
    let ids: Vec<PeerId> = seen.lock().iter().map(|s| s.0).collect();
    assert!(ids.contains(&a.local_peer_id()) && ids.contains(&b.local_peer_id()));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_set_or_renewed_after_bind_is_used_for_new_handshakes() {
    let seen: Seen = Arc::default();
    let strict_server = endpoint(b"", Some(strict(&seen))).await;
    let peer = endpoint(b"", Some(strict(&seen))).await;
    let id = peer.local_peer_id();
    assert!(!connects(&peer, &strict_server).await, "no token yet");
    // The dialler checked first: the server's missing token was refused.
    assert_eq!(peer.admission_refused(), 1);
    assert_eq!(strict_server.admission_refused(), 0);

    // The registrar answers: the token goes in a new certificate of the same key.
    peer.set_admission_token(Bytes::from_static(GOOD))
        .expect("set");
    let cert = peer.certificate();
    assert_eq!(token_of_certificate(&cert), Ok(Some(GOOD)));
    assert_eq!(
        hive_transport_quic::identity::peer_id_of_certificate(&cert).expect("id"),
        id,
        "same key, same id"
    );
    // An open connection survives a renewal; new handshakes carry the new token.
    strict_server
        .set_admission_token(Bytes::from_static(GOOD))
        .expect("set");
    let to_server = target(&strict_server);
    let (open, accepted) = tokio::join!(peer.dial(&to_server), strict_server.accept());
    let (open, accepted) = (open.expect("dial"), accepted.expect("accept"));
    peer.set_admission_token(Bytes::from_static(b"renewed, but not one the check likes"))
        .expect("renew");
    assert!(
        !connects(&peer, &strict_server).await,
        "the renewed token is presented"
    );
    assert!(!connects(&strict_server, &peer).await, "dialled too");
    open.send(Bytes::from_static(b"still here"), Class::Data)
        .await
        .expect("send on the open connection");
    assert_eq!(
        accepted.recv().await.expect("recv"),
        Some(Bytes::from_static(b"still here"))
    );
    peer.set_admission_token(Bytes::from_static(GOOD))
        .expect("renew");
    assert!(connects(&peer, &strict_server).await);
    assert!(connects(&strict_server, &peer).await);
    // The renewed bad token was refused by strict_server twice: once accepting, once dialling.
    assert_eq!(strict_server.admission_refused(), 2);
    assert_eq!(peer.admission_refused(), 1);
    open.close().await;
    peer.shutdown().await;
    strict_server.shutdown().await;
}

#[test]
fn the_token_bound_is_the_udp_transports() {
    assert_eq!(
        MAX_ADMISSION_TOKEN,
        hive_transport_udp::handshake::MAX_ADMISSION_TOKEN
    );
}
