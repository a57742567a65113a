//! `compression.png`: each compressed run's held-out loss ÷ the baseline's
//! against training tokens, one colour per configuration, a thin line per seed and,
//! for a configuration measured on several seeds, a thick line through their mean,
//! with the 1.00, 1.02 and 1.04 levels the benchmark's bars are stated in; below it,
//! how many tokens each run is ahead of the baseline along the way.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::{Report, RunResult};

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

/// One run's line in both panels.
struct Series {
    /// (tokens in millions, loss ratio)
    ratio: Vec<(f64, f64)>,
    /// (tokens in millions, tokens ahead in millions)
    ahead: Vec<(f64, f64)>,
}

/// One configuration: its seeds' lines, in one colour.
struct Config {
    label: String,
    /// No boundary at all: the monolithic model given a head start, the control the
    /// others' rise and lead are read against. Drawn in black.
    control: bool,
    seeds: Vec<Series>,
}

impl Config {
    /// The mean over the seeds at each point every seed has (by tokens), for both panels;
    /// `None` for a configuration measured on one seed.
    fn mean(&self) -> Option<Series> {
        if self.seeds.len() < 2 {
            return None;
        }
        let mean = |line: fn(&Series) -> &[(f64, f64)]| -> Vec<(f64, f64)> {
            line(&self.seeds[0])
                .iter()
                .filter_map(|&(x, _)| {
                    let ys: Option<Vec<f64>> = self
                        .seeds
                        .iter()
                        .map(|s| line(s).iter().find(|p| p.0 == x).map(|p| p.1))
                        .collect();
                    ys.map(|ys| (x, ys.iter().sum::<f64>() / ys.len() as f64))
                })
                .collect()
        };
        Some(Series {
            ratio: mean(|s| &s.ratio),
            ahead: mean(|s| &s.ahead),
        })
    }
}

/// A line to draw: its points, its colour and its width.
type Line<'a> = (&'a [(f64, f64)], RGBAColor, u32);

/// Configuration `i`'s colour: black for a control, else the palette's `i`th.
fn colour(configs: &[Config], i: usize) -> RGBAColor {
    if configs[i].control {
        BLACK.to_rgba()
    } else {
        Palette99::pick(i).to_rgba()
    }
}

/// Draws every valid compressed run in `report` into `path`: its loss ratio against the
/// baseline (top) and how many tokens it is ahead (bottom), with one legend beside both.
/// Runs whose scales spanned tokens (not valid measurements) are left out.
pub fn loss_ratios(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(load_font).clone()?;

    let millions = |t: u64| t as f64 / 1e6;
    let series = |r: &RunResult| Series {
        ratio: r
            .curve
            .iter()
            .filter_map(|p| p.ratio.map(|x| (millions(p.tokens), x)))
            .collect(),
        ahead: r
            .curve
            .iter()
            .filter_map(|p| p.tokens_ahead.map(|t| (millions(p.tokens), t / 1e6)))
            .collect(),
    };
    let configs: Vec<Config> = report
        .configurations()
        .into_iter()
        .filter_map(|runs| {
            let seeds: Vec<Series> = runs
                .iter()
                .map(|r| series(r))
                .filter(|s| !s.ratio.is_empty())
                .collect();
            (!seeds.is_empty()).then(|| Config {
                label: runs[0].name.clone(),
                control: runs[0].is_control(),
                seeds,
            })
        })
        .collect();
    if configs.is_empty() {
        return Err("no compressed run has a baseline with the same seed yet".into());
    }
    let means: Vec<Option<Series>> = configs.iter().map(Config::mean).collect();
    let x_max = configs
        .iter()
        .flat_map(|c| &c.seeds)
        .flat_map(|s| s.ratio.iter().map(|p| p.0))
        .fold(0.0, f64::max)
        * 1.02;
    // Every seed thin, then every mean thick, so the means are on top.
    let lines = |pick: fn(&Series) -> &[(f64, f64)]| -> Vec<Line> {
        let configs = &configs;
        let seeds = configs.iter().enumerate().flat_map(|(i, c)| {
            c.seeds
                .iter()
                .map(move |s| (pick(s), colour(configs, i), 1))
        });
        let thick = means
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (pick(m), colour(configs, i), 4)));
        seeds.chain(thick).collect()
    };

    let root = BitMapBackend::new(path, (1600, 1100)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "Staged runs against the uncompressed baseline — {}",
            report.model
        ),
        ("sans-serif", 22),
    )?;
    let (panels, legend) = root.split_horizontally(1120);
    let (top, bottom) = panels.split_vertically(530);
    panel(
        &top,
        "held-out loss ÷ baseline (same seed)",
        &lines(|s| &s.ratio),
        x_max,
        &[1.0, 1.02, 1.04],
        3,
    )?;
    panel(
        &bottom,
        "tokens ahead of the baseline (millions)",
        &lines(|s| &s.ahead),
        x_max,
        &[0.0],
        2,
    )?;
    for (i, c) in configs.iter().enumerate() {
        let y = 40 + 24 * i as i32;
        let color = colour(&configs, i);
        let label = match c.seeds.len() {
            1 => c.label.clone(),
            n => format!("{} ({n} seeds, thick: mean)", c.label),
        };
        legend.draw(&PathElement::new([(10, y), (40, y)], color.stroke_width(3)))?;
        legend.draw(&Text::new(
            label,
            (48, y - 8),
            ("sans-serif", 14).into_font(),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// One panel: each of `lines` in its colour and width, gray
/// lines at `levels`, y labels with `decimals` decimals.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    y_desc: &str,
    lines: &[Line],
    x_max: f64,
    levels: &[f64],
    decimals: usize,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let all = lines.iter().flat_map(|l| l.0.iter()).map(|p| p.1);
    let (lo, hi) = all
        .chain(levels.iter().copied())
        .fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let pad = (hi - lo).max(1e-6) * 0.05;
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("training tokens (millions)")
        .y_desc(y_desc)
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for &level in levels {
        chart.draw_series(LineSeries::new(
            [(0.0, level), (x_max, level)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))?;
    }
    for &(points, color, width) in lines {
        chart.draw_series(LineSeries::new(points.to_vec(), color.stroke_width(width)))?;
    }
    Ok(())
}
