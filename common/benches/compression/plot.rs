//! `compression.png`: each compressed run's held-out loss ÷ the baseline's
//! against training tokens, one line per run and seed, with the 1.00, 1.02 and
//! 1.04 levels the benchmark's bars are stated in.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::Report;

/// Where a sans-serif TrueType font is found on common systems; `SLIVER_PLOT_FONT` overrides.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Plotters draws text with a font it is given; the benchmark uses one the system has
/// rather than carrying one in the repository.
fn load_font() -> Result<(), String> {
    let candidates: Vec<String> = std::env::var("SLIVER_PLOT_FONT")
        .into_iter()
        .chain(FONT_PATHS.iter().map(|p| p.to_string()))
        .collect();
    let (path, bytes) = candidates
        .iter()
        .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
        .ok_or_else(|| {
            format!(
                "no TrueType font found (tried {}); set SLIVER_PLOT_FONT to a .ttf file \
                 (Debian: apt-get install fonts-dejavu-core)",
                candidates.join(", ")
            )
        })?;
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| format!("{path} is not a font plotters can read"))
}

/// Draws the loss ratio of every compressed run in `report` into `path`.
pub fn loss_ratios(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(load_font).clone()?;

    let lines: Vec<(String, Vec<(f64, f64)>)> = report
        .results
        .iter()
        .filter(|r| !r.monolithic)
        .map(|r| {
            let points = r
                .curve
                .iter()
                .filter_map(|p| p.ratio.map(|x| (p.tokens as f64 / 1e6, x)))
                .collect();
            (format!("{} (seed {})", r.name, r.seed), points)
        })
        .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    if lines.is_empty() {
        return Err("no compressed run has a baseline with the same seed yet".into());
    }
    let all = lines.iter().flat_map(|(_, p)| p.iter());
    let x_max = all.clone().map(|p| p.0).fold(0.0, f64::max);
    let (lo, hi) = all.fold((1.0f64, 1.04f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let pad = (hi - lo) * 0.05;

    let root = BitMapBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Held-out loss ÷ uncompressed baseline — {}", report.model),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0..x_max * 1.02, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("training tokens (millions)")
        .y_desc("loss ratio")
        .y_label_formatter(&|y| format!("{y:.3}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for level in [1.0, 1.02, 1.04] {
        chart.draw_series(LineSeries::new(
            [(0.0, level), (x_max * 1.02, level)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))?;
    }
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
