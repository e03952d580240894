//! Admission tokens in the handshake: each side checks the other's token before the
//! connection is surfaced; a refused peer never gets a connection.

mod util;

use std::sync::Arc;

use bytes::Bytes;
use hive_core::time::Duration;
use hive_transport_udp::{Admission, Config, Ended, Endpoint, Event, Keypair};
use util::Pair;

fn admission(token: &'static [u8], wants: &'static [u8]) -> Admission {
    Admission {
        token: Bytes::from_static(token),
        check: Some(Arc::new(move |_peer, t: &[u8]| t == wants)),
    }
}

fn pair(a: Admission, b: Admission) -> Pair {
    let mut p = Pair::new(Config::default(), 21);
    p.a = Endpoint::with_admission(Config::default(), Keypair::generate().expect("key"), 1, a);
    p.b = Endpoint::with_admission(Config::default(), Keypair::generate().expect("key"), 2, b);
    p
}

#[test]
fn good_tokens_both_ways_connect() {
    let mut p = pair(admission(b"alice", b"bob"), admission(b"bob", b"alice"));
    let (ca, cb) = p.connect();
    assert!(p.a.connection(ca).expect("a").is_open());
    assert!(p.b.connection(cb).expect("b").is_open());
    assert_eq!(p.b.stats().admission_refused, 0);
}

#[test]
fn the_acceptor_refuses_a_bad_dialler_token_and_never_surfaces_it() {
    let mut p = pair(admission(b"mallory", b"bob"), admission(b"bob", b"alice"));
    let now = p.now;
    let cid =
        p.a.connect(now, p.b_addr, p.b.local_peer_id())
            .expect("connect");
    let mut accepted = false;
    p.run_until(Duration::from_secs(2), |p| {
        accepted |= matches!(p.b.poll_event(), Some(Event::Accepted(_)));
        p.a.connection(cid).is_some_and(|c| c.ended().is_some())
    });
    assert!(!accepted, "a refused dialler was surfaced");
    assert_eq!(p.b.stats().admission_refused, 1);
    // The dialler is told at once (it spoke last, so its dial may have returned first).
    let ended = p.a.connection(cid).and_then(|c| c.ended().cloned());
    assert!(matches!(ended, Some(Ended::Handshake(_))), "{ended:?}");
    // And the acceptor forgets it.
    p.run_until(Duration::from_secs(3), |p| p.b.is_empty());
    assert!(p.b.is_empty());
}

#[test]
fn the_dialler_refuses_a_bad_responder_token_before_revealing_itself() {
    let mut p = pair(admission(b"alice", b"bob"), admission(b"eve", b"alice"));
    let now = p.now;
    let cid =
        p.a.connect(now, p.b_addr, p.b.local_peer_id())
            .expect("connect");
    p.run_until(Duration::from_secs(2), |p| {
        p.a.connection(cid).is_some_and(|c| c.ended().is_some())
    });
    let c = p.a.connection(cid).expect("conn");
    assert!(!c.is_open());
    assert!(
        matches!(c.ended(), Some(Ended::Handshake(_))),
        "{:?}",
        c.ended()
    );
    assert_eq!(p.a.stats().admission_refused, 1);
    // No FINISH (the dialler's static key) went out.
    assert!(!p.captured.iter().any(|d| d[0] == 0x05));
    assert!(!matches!(p.b.poll_event(), Some(Event::Accepted(_))));
}

#[test]
fn no_check_admits_a_peer_without_a_token() {
    let mut p = pair(Admission::default(), Admission::default());
    p.connect();
}

#[test]
fn a_token_set_after_creation_is_carried_by_later_handshakes() {
    // The dialler starts with a token the acceptor refuses (as an agent before its registrar
    // answered), then gets the right one: the next dial carries it.
    let mut p = pair(admission(b"stale", b"bob"), admission(b"bob", b"fresh"));
    let now = p.now;
    let first =
        p.a.connect(now, p.b_addr, p.b.local_peer_id())
            .expect("connect");
    p.run_until(Duration::from_secs(2), |p| {
        p.a.connection(first).is_some_and(|c| c.ended().is_some())
    });
    assert_eq!(p.b.stats().admission_refused, 1);
    p.a.set_admission_token(Bytes::from_static(b"fresh"));
    let (ca, cb) = p.connect();
    assert!(p.a.connection(ca).expect("a").is_open());
    assert!(p.b.connection(cb).expect("b").is_open());
    assert_eq!(p.b.stats().admission_refused, 1);
}
