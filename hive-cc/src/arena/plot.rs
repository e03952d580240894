//! SVG plots of arena runs: goodput per flow and mean queuing delay over time.

use std::path::Path;

use plotters::prelude::*;

use super::Report;

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws every run as two panels (throughput per flow, queuing delay) stacked in one SVG.
pub fn write_svg(reports: &[Report], path: &Path) -> Result<(), String> {
    let panel_h = 260u32;
    let height = (panel_h * 2 * reports.len().max(1) as u32).max(panel_h);
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let rows = root.split_evenly((reports.len().max(1) * 2, 1));
    for (i, r) in reports.iter().enumerate() {
        let t_max = r.duration_s.max(1.0);
        let xs = |n: usize| (0..n).map(move |k| (k as f64 + 0.5) * r.bin_s);
        // Throughput panel.
        let top = r
            .flows
            .iter()
            .flat_map(|f| f.series_mbps.iter().copied())
            .fold(r.link.rate_mbps, f64::max)
            * 1.05;
        let mut chart = ChartBuilder::on(&rows[2 * i])
            .caption(
                format!("{} — goodput per flow (Mbit/s)", r.scenario),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..t_max, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, f) in r.flows.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let label = match f.priority {
                Some(p) => format!("flow {k}: {} p={p:.2}", f.algo),
                None => format!("flow {k}: {}", f.algo),
            };
            chart
                .draw_series(LineSeries::new(
                    xs(f.series_mbps.len()).zip(f.series_mbps.iter().copied()),
                    &colour,
                ))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        // Queuing delay panel.
        let qtop = r.qdelay_series_ms.iter().copied().fold(10.0, f64::max) * 1.05;
        let mut chart = ChartBuilder::on(&rows[2 * i + 1])
            .caption(
                format!("{} — mean queuing delay (ms)", r.scenario),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..t_max, 0.0..qtop)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                xs(r.qdelay_series_ms.len()).zip(r.qdelay_series_ms.iter().copied()),
                &BLACK,
            ))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
