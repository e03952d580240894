//! `hive sim --plot`: the origin's egress per second for each policy run on the same seed, and
//! the viewers watching, as an SVG, in panels drawn by `hive cc-arena --plot`'s
//! [`hive_cc::arena::time_panel`] (same look, same palette).

use std::path::Path;

use hive_cc::arena::{COLOURS, Line, time_panel};
use hive_sim::SimReport;
use plotters::prelude::*;

/// At most this many points per line: longer runs are averaged over windows of whole seconds.
const MAX_POINTS: usize = 400;

/// `series` averaged over windows of `w` seconds: (window centre, mean).
fn windows(series: &[f64], w: usize) -> Vec<(f64, f64)> {
    series
        .chunks(w.max(1))
        .enumerate()
        .map(|(i, c)| {
            let mid = (i * w) as f64 + c.len() as f64 / 2.0;
            (mid, c.iter().sum::<f64>() / c.len() as f64)
        })
        .collect()
}

/// Draws the origin egress of every run (Mbit/s, per second or averaged over a window for long
/// runs) and the viewers watching (from the first run: the same on every policy but for churn
/// replacements) in two panels. The first run is drawn last, on top.
pub(crate) fn write_svg(runs: &[&SimReport], path: &Path) -> Result<(), String> {
    let Some(first) = runs.first() else {
        return Err("no run to plot".into());
    };
    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let rows = root.split_evenly((2, 1));
    let t_max = first.duration_s.max(1.0);
    let longest = runs.iter().map(|r| r.origin_egress_bps.len()).max();
    let w = longest.unwrap_or(0).div_ceil(MAX_POINTS).max(1);
    let lines: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            let mbps: Vec<f64> = r
                .origin_egress_bps
                .iter()
                .map(|&b| b as f64 / 1e6)
                .collect();
            windows(&mbps, w)
        })
        .collect();
    // Origin egress panel; the first run is drawn last, on top.
    let top = lines.iter().flatten().map(|&(_, y)| y).fold(0.1, f64::max) * 1.05;
    let per = if w == 1 {
        "per second".to_string()
    } else {
        format!("mean over {w} s")
    };
    let egress: Vec<Line> = runs
        .iter()
        .zip(lines)
        .enumerate()
        .rev()
        .map(|(k, (r, points))| Line {
            points,
            colour: COLOURS[k % COLOURS.len()],
            label: Some(format!("{} (offload {:.1}%)", r.policy, r.offload * 100.0)),
        })
        .collect();
    time_panel(
        &rows[0],
        &format!("{} — origin egress (Mbit/s, {per})", first.scenario),
        t_max,
        top,
        &egress,
    )?;
    // Viewers panel.
    let most = first.active_viewers.iter().copied().max().unwrap_or(0);
    let viewers = Line {
        points: first
            .active_viewers
            .iter()
            .enumerate()
            .map(|(i, &n)| (i as f64 + 0.5, f64::from(n)))
            .collect(),
        colour: BLACK,
        label: None,
    };
    time_panel(
        &rows[1],
        &format!("{} — viewers watching", first.scenario),
        t_max,
        (f64::from(most) * 1.05).max(1.0),
        &[viewers],
    )?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
