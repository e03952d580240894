//! The arena targets of the hive-cc issue on the default link (10 Mbit/s, 40 ms base RTT, 250 ms
//! drop-tail buffer). Runs are 60 s where the property shows in 60 s, and the full 120 s where it
//! needs the time (convergence of four flows, latecomers); a 120 s run costs well under a second
//! even in a debug build. The full table comes from `hive cc-arena --scenario all`.

use hive_cc::Algorithm;
use hive_cc::arena::{Report, Scenario, run, scenarios};
use hive_core::time::{Duration, Instant};

const SHORT: Duration = Duration::from_secs(60);

fn runs(name: &str) -> Vec<Report> {
    let mut r = scenarios::named(name).expect("named scenario");
    scenarios::shorten(&mut r, SHORT);
    r.iter().map(run).collect()
}

fn full_runs(name: &str) -> Vec<Report> {
    scenarios::named(name)
        .expect("named scenario")
        .iter()
        .map(run)
        .collect()
}

fn find<'a>(reports: &'a [Report], name: &str) -> &'a Report {
    reports
        .iter()
        .find(|r| r.scenario == name)
        .unwrap_or_else(|| panic!("no run {name}"))
}

#[test]
fn each_controller_alone_fills_the_link() {
    let reports = runs("solo");
    for r in &reports {
        let floor = if r.scenario == "solo/ledbat++" {
            0.90
        } else {
            0.95
        };
        assert!(
            r.utilization >= floor,
            "{}: utilization {:.3} < {floor}",
            r.scenario,
            r.utilization
        );
    }
    let ledbat = find(&reports, "solo/ledbat");
    assert!(
        (90.0..=110.0).contains(&ledbat.qdelay_ms_p95),
        "LEDBAT p95 queuing {:.1} ms not within 100 ms ± 10%",
        ledbat.qdelay_ms_p95
    );
    let lpp = find(&reports, "solo/ledbat++");
    assert!(
        (54.0..=66.0).contains(&lpp.qdelay_ms_p95),
        "LEDBAT++ p95 queuing {:.1} ms not within 60 ms ± 10%",
        lpp.qdelay_ms_p95
    );
    // Loss-based controllers fill the buffer instead.
    assert!(find(&reports, "solo/newreno").qdelay_ms_p95 > 200.0);
}

#[test]
fn background_controllers_yield_to_tcp() {
    for name in ["ledbat-vs-newreno", "ledbat-vs-cubic", "ledbatpp-vs-cubic"] {
        let r = &runs(name)[0];
        assert!(
            r.flows[0].share <= 0.10,
            "{name}: background share {:.3} > 0.10",
            r.flows[0].share
        );
        assert!(
            r.utilization >= 0.95,
            "{name}: utilization {:.3}",
            r.utilization
        );
    }
    // LEDBAT++ against NewReno too.
    let mut s = Scenario::new(
        "ledbatpp-vs-newreno",
        &[Algorithm::LedbatPlusPlus, Algorithm::NewReno],
    );
    s.duration = SHORT;
    assert!(run(&s).flows[0].share <= 0.10);
}

#[test]
fn dtl_share_rises_with_priority() {
    let reports = runs("dtl-sweep");
    let shares: Vec<f64> = reports.iter().map(|r| r.flows[0].share).collect();
    for w in shares.windows(2) {
        assert!(w[1] > w[0], "DTL share not increasing with p: {shares:?}");
    }
    assert!(shares[0] <= 0.10, "p = 0 share {:.3}", shares[0]);
    let p1 = find(&reports, "dtl-sweep/p=1.00");
    assert!(p1.jain >= 0.95, "p = 1 Jain {:.3}", p1.jain);
    let p2 = shares[8];
    assert!(
        (0.6..=0.75).contains(&p2),
        "p = 2 share {p2:.3} outside [0.6, 0.75]"
    );
}

#[test]
fn dtl_priority_change_takes_effect_on_a_live_flow() {
    // p = 0 until 40 s, then p = 2: the share after the change (once the windows adapted, 60 s
    // to 120 s) must be far above the share before it.
    let mut s = Scenario::new("switch", &[Algorithm::Dtl(0.0), Algorithm::NewReno]);
    s.flows[0].priority_changes = vec![(Instant::from_secs(40), 2.0)];
    let r = run(&s);
    let share = |from_s: f64, to_s: f64| -> f64 {
        let (a, b) = ((from_s / r.bin_s) as usize, (to_s / r.bin_s) as usize);
        let x: f64 = r.flows[0].series_mbps[a..b].iter().sum();
        let y: f64 = r.flows[1].series_mbps[a..b].iter().sum();
        x / (x + y)
    };
    let before = share(5.0, 40.0);
    let after = share(60.0, 120.0);
    assert!(before < 0.1, "before the change: share {before:.3}");
    assert!(after > 0.55, "after the change to p = 2: share {after:.3}");
    assert_eq!(r.flows[0].priority, Some(2.0));
}

#[test]
fn ledbatpp_latecomer_converges_and_plain_ledbat_is_measured() {
    let reports = full_runs("latecomer");
    let lpp = find(&reports, "latecomer/ledbat++");
    let conv = lpp
        .converge_s
        .flatten()
        .expect("LEDBAT++ latecomer never became fair");
    // The second flow starts at 30 s; fairness must be reached (and kept) within 60 s.
    assert!(conv <= 60.0, "LEDBAT++ latecomer converged after {conv} s");
    // Plain LEDBAT's latecomer problem (RFC 6817 §4.4) is reported, not hidden: it exists here.
    let l = find(&reports, "latecomer/ledbat");
    assert!(l.converge_s.is_some());
}

#[test]
fn fair4_is_fair_for_loss_based_and_dtl1() {
    let reports = full_runs("fair4");
    for name in ["fair4/newreno", "fair4/cubic", "fair4/dtl:1"] {
        let r = find(&reports, name);
        assert!(r.jain >= 0.95, "{name}: Jain {:.3}", r.jain);
    }
}

#[test]
fn lossy_link_keeps_flows_alive() {
    for r in runs("lossy") {
        let f = &r.flows[0];
        assert!(
            (0.008..0.013).contains(&f.loss),
            "{}: loss {:.4}",
            r.scenario,
            f.loss
        );
        assert!(
            f.throughput_mbps > 1.0,
            "{}: {:.2} Mbit/s under 1% loss",
            r.scenario,
            f.throughput_mbps
        );
    }
}

#[test]
fn same_seed_same_result() {
    let mut s = Scenario::new("det", &[Algorithm::Cubic, Algorithm::Ledbat]);
    s.duration = Duration::from_secs(20);
    s.link.loss = 0.005;
    let a = run(&s);
    let b = run(&s);
    assert_eq!(a.flows, b.flows);
    assert_eq!(a.qdelay_ms_p95, b.qdelay_ms_p95);
}

#[test]
fn json_has_the_design_keys() {
    let r = &runs("ledbat-vs-newreno")[0];
    let j = r.to_json();
    for k in [
        "scenario",
        "link",
        "flows",
        "utilization",
        "qdelay_ms_p50",
        "qdelay_ms_p95",
        "jain",
        "wall_s",
    ] {
        assert!(j.get(k).is_some(), "missing key {k}");
    }
    for k in ["rate_mbps", "rtt_ms", "buffer_ms", "loss"] {
        assert!(j["link"].get(k).is_some(), "missing link key {k}");
    }
    for k in ["algo", "priority", "throughput_mbps", "share", "loss"] {
        assert!(j["flows"][0].get(k).is_some(), "missing flow key {k}");
    }
    assert_eq!(j["link"]["rate_mbps"], 10.0);
}

#[test]
fn dtl_tolerates_random_loss_without_taking_more_of_a_congested_link() {
    // 1% random loss: loss-based controllers are held to the Mathis bound; DTL is not.
    let reports = runs("lossy");
    let dtl = find(&reports, "lossy/dtl:1");
    assert!(
        dtl.utilization >= 0.95,
        "DTL under 1% random loss: utilization {:.3}",
        dtl.utilization
    );
    assert!(find(&reports, "lossy/newreno").utilization < 0.5);
    // The transport target: 20 Mbit/s, 40 ms, 1% loss.
    let mut s = Scenario::new("lossy20", &[Algorithm::Dtl(1.0)]);
    s.duration = SHORT;
    s.link.rate_bps = 20_000_000;
    s.link.loss = 0.01;
    s.link.buffer = hive_cc::link::BufferLimit::Time(Duration::from_millis(100));
    let u = run(&s).utilization;
    assert!(u >= 0.95, "20 Mbit/s, 1% loss: utilization {u:.3}");
}

#[test]
fn dtl_at_p1_behind_a_shallow_buffer_is_no_greedier_than_cubic() {
    // The gentler decrease on a loss (β up to Cubic's 0.7) must not let DTL p = 1 take much more
    // than half from Cubic where the buffer is shallower than the base RTT.
    let mut s = Scenario::new("shallow", &[Algorithm::Dtl(1.0), Algorithm::Cubic]);
    s.duration = SHORT;
    s.link.buffer = hive_cc::link::BufferLimit::Time(Duration::from_millis(20));
    let r = run(&s);
    let share = r.flows[0].share;
    assert!(
        (0.4..=0.62).contains(&share),
        "DTL p=1 vs Cubic, 20 ms buffer: {share:.3}"
    );
}
