//! SVG plots of arena runs: goodput per flow and mean queuing delay over time. The panel drawing
//! is public so other tools (`hive sim --plot`) draw their time series the same way.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;

/// The palette of every line plot.
pub const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a [`time_panel`].
pub struct Line {
    /// (seconds, value) points.
    pub points: Vec<(f64, f64)>,
    /// Its colour.
    pub colour: RGBColor,
    /// Its legend entry (`None`: none).
    pub label: Option<String>,
}

/// Draws one panel on `area`: `caption`, time from 0 to `t_max` seconds, values from 0 to
/// `y_max`, the `lines` in order (the last on top), and a legend when a line has a label.
pub fn time_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    t_max: f64,
    y_max: f64,
    lines: &[Line],
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .draw()
        .map_err(|e| e.to_string())?;
    for line in lines {
        let colour = line.colour;
        let drawn = chart
            .draw_series(LineSeries::new(line.points.iter().copied(), &colour))
            .map_err(|e| e.to_string())?;
        if let Some(label) = &line.label {
            drawn
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
    }
    if lines.iter().any(|l| l.label.is_some()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Draws every run as two panels (throughput per flow, queuing delay) stacked in one SVG.
pub fn write_svg(reports: &[Report], path: &Path) -> Result<(), String> {
    let panel_h = 260u32;
    let height = (panel_h * 2 * reports.len().max(1) as u32).max(panel_h);
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let rows = root.split_evenly((reports.len().max(1) * 2, 1));
    for (i, r) in reports.iter().enumerate() {
        let t_max = r.duration_s.max(1.0);
        let points = |series: &[f64]| -> Vec<(f64, f64)> {
            series
                .iter()
                .enumerate()
                .map(|(k, &y)| ((k as f64 + 0.5) * r.bin_s, y))
                .collect()
        };
        let top = r
            .flows
            .iter()
            .flat_map(|f| f.series_mbps.iter().copied())
            .fold(r.link.rate_mbps, f64::max)
            * 1.05;
        let flows: Vec<Line> = r
            .flows
            .iter()
            .enumerate()
            .map(|(k, f)| Line {
                points: points(&f.series_mbps),
                colour: COLOURS[k % COLOURS.len()],
                label: Some(match f.priority {
                    Some(p) => format!("flow {k}: {} p={p:.2}", f.algo),
                    None => format!("flow {k}: {}", f.algo),
                }),
            })
            .collect();
        time_panel(
            &rows[2 * i],
            &format!("{} — goodput per flow (Mbit/s)", r.scenario),
            t_max,
            top,
            &flows,
        )?;
        let qtop = r.qdelay_series_ms.iter().copied().fold(10.0, f64::max) * 1.05;
        let delay = Line {
            points: points(&r.qdelay_series_ms),
            colour: BLACK,
            label: None,
        };
        time_panel(
            &rows[2 * i + 1],
            &format!("{} — mean queuing delay (ms)", r.scenario),
            t_max,
            qtop,
            &[delay],
        )?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
