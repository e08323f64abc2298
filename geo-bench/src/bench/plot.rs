//! CDF plots of a mode's latencies (EVALUATION.md: latency CDF per op
//! type): one line per region and op type, x = latency (ms), y = the
//! fraction of operations at most that slow; written as SVG and PNG.
//!
//! Text is measured (SVG) and drawn (PNG) with a TrueType font: DejaVu
//! Sans from the system (paths in [`FONT_PATHS`]) is registered with
//! plotters' ab_glyph backend. Without one, no plot is written (a note
//! says so).

use super::results::ModeResults;
use crate::RegionMatrix;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a system font once; whether one is available.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

type Series = (String, usize, Vec<(f64, f64)>);

fn series(m: &ModeResults, matrix: &RegionMatrix) -> Vec<Series> {
    let mut out = Vec::new();
    for ((region, op), h) in &m.hists {
        if h.is_empty() {
            continue;
        }
        let total = h.len() as f64;
        let mut acc = 0u64;
        let mut pts = Vec::new();
        // A step function: up at each recorded value.
        for v in h.iter_recorded() {
            let x = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            pts.push((x, acc as f64 / total));
            acc += v.count_at_value();
            pts.push((x, acc as f64 / total));
        }
        out.push((format!("{} {op}", matrix.regions()[*region]), *region, pts));
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    data: &[Series],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let xmax = data
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..xmax, 0.0..1.0)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("CDF")
        .draw()
        .map_err(|x| e(&x))?;
    for (label, region, pts) in data {
        let color = Palette99::pick(*region).to_rgba();
        let style = if label.ends_with("get") {
            color.stroke_width(2)
        } else {
            color.stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), style))
            .map_err(|x| e(&x))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Writes `cdf-<prefix><mode>.svg` and `.png` into `dir`; returns the files
/// written and a note for anything left out.
pub fn write_cdf(
    dir: &Path,
    prefix: &str,
    m: &ModeResults,
    matrix: &RegionMatrix,
) -> (Vec<PathBuf>, Option<String>) {
    let data = series(m, matrix);
    let title = format!("{prefix}{}: latency CDF per region and op", m.mode);
    let mut written = Vec::new();
    let mut note = None;
    // Both backends measure text with the registered font.
    if !font_ready() {
        return (
            written,
            Some(format!(
                "no TrueType font at {FONT_PATHS:?} (apt-get install fonts-dejavu-core): plots left out"
            )),
        );
    }
    let svg = dir.join(format!("cdf-{prefix}{}.svg", m.mode));
    match draw(
        SVGBackend::new(&svg, (960, 600)).into_drawing_area(),
        &title,
        &data,
    ) {
        Ok(()) => written.push(svg),
        Err(e) => note = Some(format!("SVG plot failed: {e}")),
    }
    let png = dir.join(format!("cdf-{prefix}{}.png", m.mode));
    match draw(
        BitMapBackend::new(&png, (960, 600)).into_drawing_area(),
        &title,
        &data,
    ) {
        Ok(()) => written.push(png),
        Err(e) => note = Some(format!("PNG plot failed: {e}")),
    }
    (written, note)
}
