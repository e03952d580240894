//! Model-based fuzzing of every controller (as s2n-quic does): random sequences of sent, acked,
//! lost, timeout and priority events; invariants checked after each.

use hive_cc::Algorithm;
use hive_core::cc::{AckEvent, LossEvent};
use hive_core::time::{Duration, Instant};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Ev {
    Sent(u16),
    Ack {
        bytes: u16,
        rtt_ms: u16,
        owd: Option<u16>,
        app_limited: bool,
    },
    Loss {
        bytes: u16,
        persistent: bool,
    },
    Timeout,
    Priority(f64),
    Wait(u32),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (1u16..1500).prop_map(Ev::Sent),
        (
            1u16..3000,
            1u16..2000,
            proptest::option::of(0u16..2000),
            any::<bool>()
        )
            .prop_map(|(bytes, rtt_ms, owd, app_limited)| Ev::Ack {
                bytes,
                rtt_ms,
                owd,
                app_limited
            }),
        (1u16..3000, any::<bool>()).prop_map(|(bytes, persistent)| Ev::Loss { bytes, persistent }),
        Just(Ev::Timeout),
        (-1.0f64..3.0).prop_map(Ev::Priority),
        (0u32..5_000_000).prop_map(Ev::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn controllers_keep_their_invariants(algo in 0usize..5, p in 0.0f64..2.0, events in proptest::collection::vec(ev(), 1..300)) {
        let mss = 1200u64;
        let a = match algo { 4 => Algorithm::Dtl(p), i => Algorithm::ALL[i] };
        let mut cc = a.build(mss);
        let mut now = Instant::from_secs(1);
        let mut in_flight = 0u64;
        for e in events {
            now += Duration::from_micros(1);
            match e {
                Ev::Sent(b) => { in_flight += u64::from(b); cc.on_sent(now, u64::from(b), in_flight); }
                Ev::Ack { bytes, rtt_ms, owd, app_limited } => {
                    let bytes = u64::from(bytes).min(in_flight);
                    in_flight -= bytes;
                    let rtt = Duration::from_millis(u64::from(rtt_ms));
                    cc.on_ack(now, &AckEvent {
                        bytes_acked: bytes, bytes_in_flight: in_flight, rtt, min_rtt: rtt / 2,
                        one_way_delay: owd.map(|o| Duration::from_millis(u64::from(o))),
                        sent_time: now - rtt, app_limited,
                    });
                }
                Ev::Loss { bytes, persistent } => {
                    let bytes = u64::from(bytes).min(in_flight);
                    in_flight -= bytes;
                    cc.on_loss(now, &LossEvent { bytes_lost: bytes, bytes_in_flight: in_flight, sent_time: now - Duration::from_millis(10), persistent });
                }
                Ev::Timeout => { in_flight = 0; cc.on_timeout(now); }
                Ev::Priority(p) => {
                    let r = cc.set_priority(p);
                    match a {
                        Algorithm::Dtl(_) => prop_assert_eq!(r.is_ok(), (0.0..=2.0).contains(&p)),
                        _ => prop_assert!(r.is_err()),
                    }
                }
                Ev::Wait(us) => now += Duration::from_micros(u64::from(us)),
            }
            let w = cc.window();
            // The window never collapses below one segment and never explodes.
            prop_assert!(w >= mss, "{} window {} below one segment", cc.name(), w);
            prop_assert!(w < 1 << 40, "{} window {} exploded", cc.name(), w);
            if let Some(p) = cc.priority() { prop_assert!((0.0..=2.0).contains(&p)); }
        }
    }
}
