//! `hive sim --plot`: the origin's egress per second for each policy run on the same seed, and
//! the viewers watching, as an SVG. Drawn the way `hive cc-arena --plot` draws its runs
//! (hive-cc's `arena/plot.rs`: plotters' SVG backend, stacked panels, the same palette).

use std::path::Path;

use hive_sim::SimReport;
use plotters::prelude::*;

/// hive-cc's arena palette, so plots of both tools look alike.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

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
    // Origin egress panel.
    let top = lines.iter().flatten().map(|&(_, y)| y).fold(0.1, f64::max) * 1.05;
    let per = if w == 1 {
        "per second".to_string()
    } else {
        format!("mean over {w} s")
    };
    let mut chart = ChartBuilder::on(&rows[0])
        .caption(
            format!("{} — origin egress (Mbit/s, {per})", first.scenario),
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (r, line)) in runs.iter().zip(&lines).enumerate().rev() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(line.iter().copied(), &colour))
            .map_err(|e| e.to_string())?
            .label(format!("{} (offload {:.1}%)", r.policy, r.offload * 100.0))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    // Viewers panel.
    let most = first.active_viewers.iter().copied().max().unwrap_or(0);
    let mut chart = ChartBuilder::on(&rows[1])
        .caption(
            format!("{} — viewers watching", first.scenario),
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0.0..(f64::from(most) * 1.05).max(1.0))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            first
                .active_viewers
                .iter()
                .enumerate()
                .map(|(i, &n)| (i as f64 + 0.5, f64::from(n))),
            &BLACK,
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
