//! The report's charts: plotters drawing into SVG strings, one function per chart.
//!
//! Every chart is drawn on linear `f64` axes whose ticks are chosen here ([`Axis`]): a log
//! scale is `log10` of the values with ticks on whole decades, a category axis puts its labels
//! on whole numbers. One coordinate type keeps every chart on the same few helpers.
//! Legends sit in their own strip right of the plot, so they never cover a line or a bar.

use std::error::Error;
use std::ops::Range;

use nd_probe::{EpochHealth, Histogram, LayerHealth, Probe};
use nd_remedy::{Diagnosis, FixReport, Outcome, Verdict};
use nd_train::EpochMetrics;
use plotters::backend::SVGBackend;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{verdict_color, Rgb};

type DrawResult = Result<(), Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// Width of a chart in the two-column grid, in SVG pixels (the page scales it to fit).
pub const HALF_WIDTH: u32 = 580;
/// Width of a chart that spans both columns.
pub const FULL_WIDTH: u32 = 1180;
const HEIGHT: u32 = 300;

/// Font size handed to plotters; its SVG backend writes `size / 1.24` pixels.
const LABEL_FONT: u32 = 16;
const SMALL_FONT: u32 = 15;
/// Pixels per character of a [`LABEL_FONT`] label, for sizing label areas.
const CHAR_WIDTH: f64 = 7.4;

const DEAD: Rgb = Rgb(214, 39, 40);
const DEAD_AT_INIT: Rgb = Rgb(247, 182, 178);
const DORMANT: Rgb = Rgb(255, 127, 14);
const SATURATED: Rgb = Rgb(148, 103, 189);
const TRAIN: Rgb = Rgb(31, 119, 180);
const TEST: Rgb = Rgb(255, 127, 14);
const AT_INIT: Rgb = Rgb(174, 199, 232);
const PRE: Rgb = Rgb(31, 119, 180);
const POST: Rgb = Rgb(44, 160, 44);
const GRID: Rgb = Rgb(225, 225, 225);
const INK: Rgb = Rgb(40, 40, 40);
const MUTED: Rgb = Rgb(110, 110, 110);
/// One colour per layer (Tableau 10 without the red and orange that mean dead and dormant).
const LAYER_COLORS: [Rgb; 8] = [
    Rgb(31, 119, 180),
    Rgb(44, 160, 44),
    Rgb(148, 103, 189),
    Rgb(140, 86, 75),
    Rgb(227, 119, 194),
    Rgb(127, 127, 127),
    Rgb(188, 189, 34),
    Rgb(23, 190, 207),
];

impl Rgb {
    fn color(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

fn layer_color(index: usize) -> Rgb {
    LAYER_COLORS[index % LAYER_COLORS.len()]
}

/// Renders `draw` into a standalone `<svg>` element, or, if plotters fails, a short note in
/// its place (the rest of the report is still worth having).
fn svg(size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> String {
    let mut buffer = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Box::<dyn Error>::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Box::<dyn Error>::from))
    };
    match result {
        Ok(()) => buffer,
        Err(error) => format!(
            "<p class=\"chart-error\">could not draw this chart: {}</p>",
            super::escape(&error.to_string())
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Axes.

/// How an axis maps values and labels its ticks.
#[derive(Debug, Clone, PartialEq)]
enum Scale {
    Linear,
    /// A fraction shown as a percentage.
    Percent,
    /// Values placed at `log10(value)`; zeros and negatives cannot be placed.
    Log,
    /// Whole numbers (epochs).
    Count,
    /// One label per whole number from 0.
    Category(Vec<String>),
}

/// One axis: its range in plot coordinates, its ticks and how to read them.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    scale: Scale,
    low: f64,
    high: f64,
    ticks: Vec<f64>,
}

impl Axis {
    /// 0 to 100%, with room above 100% for value labels.
    fn percent() -> Axis {
        Axis {
            scale: Scale::Percent,
            low: 0.0,
            high: 1.08,
            ticks: vec![0.0, 0.25, 0.5, 0.75, 1.0],
        }
    }

    /// From 0 (or the smallest value, if negative) to a little above the largest value.
    fn linear(values: impl IntoIterator<Item = f64>) -> Axis {
        let (low, high) = finite_bounds(values).unwrap_or((0.0, 1.0));
        let low = low.min(0.0);
        let high = if high > low { high } else { low + 1.0 };
        Axis::linear_between(low, high + 0.08 * (high - low))
    }

    /// Exactly `low..high` with round ticks inside it.
    fn linear_between(low: f64, high: f64) -> Axis {
        let (low, high) = if high > low {
            (low, high)
        } else {
            (low - 0.5, low + 0.5)
        };
        Axis {
            scale: Scale::Linear,
            low,
            high,
            ticks: nice_ticks(low, high, 5),
        }
    }

    /// Whole decades around the positive finite values; 0.1 to 1 when there are none.
    fn log(values: impl IntoIterator<Item = f64>) -> Axis {
        let positive = values.into_iter().filter(|v| v.is_finite() && *v > 0.0);
        let (low, high) = finite_bounds(positive.map(f64::log10)).unwrap_or((-1.0, 0.0));
        // A value just above a power of ten would get a bar of almost no height: go one
        // decade lower then.
        let low = (low - 0.1).floor();
        let mut high = high.ceil();
        if high <= low {
            high = low + 1.0;
        }
        let decades = (high - low) as usize;
        let step = decades.div_ceil(6).max(1);
        let mut ticks: Vec<f64> = (0..=decades)
            .step_by(step)
            .map(|k| low + k as f64)
            .collect();
        if decades <= 2 {
            // One or two decades: 2 and 5 times each power of ten as well.
            let between = (0..decades).flat_map(|k| {
                let power = low + k as f64;
                [power + 2f64.log10(), power + 5f64.log10()]
            });
            ticks.extend(between);
            ticks.sort_by(f64::total_cmp);
        }
        Axis {
            scale: Scale::Log,
            low,
            high,
            ticks,
        }
    }

    /// Epochs `1..=epochs`, at most about ten ticks.
    fn epochs(epochs: usize) -> Axis {
        let epochs = epochs.max(1);
        let step = nice_step(epochs as f64 / 10.0).max(1.0) as usize;
        let mut ticks: Vec<f64> = (1..=epochs).step_by(step).map(|e| e as f64).collect();
        if epochs > 1 && ticks.last() != Some(&(epochs as f64)) && step > 1 {
            // The last epoch is the one the verdicts are about: always label it.
            if epochs as f64 - ticks.last().copied().unwrap_or(1.0) < step as f64 {
                ticks.pop();
            }
            ticks.push(epochs as f64);
        }
        let pad = 0.02 * (epochs as f64 - 1.0).max(10.0);
        Axis {
            scale: Scale::Count,
            low: 1.0 - pad,
            high: epochs as f64 + pad,
            ticks,
        }
    }

    /// One slot per label, labels centred on `0, 1, 2, ...`.
    fn categories(labels: Vec<String>) -> Axis {
        let n = labels.len().max(1);
        Axis {
            ticks: (0..labels.len()).map(|i| i as f64).collect(),
            scale: Scale::Category(labels),
            low: -0.5,
            high: n as f64 - 0.5,
        }
    }

    /// Where `value` goes, or `None` when it cannot be drawn (NaN, or not positive on a log
    /// scale).
    fn place(&self, value: f64) -> Option<f64> {
        match self.scale {
            Scale::Log => (value.is_finite() && value > 0.0).then(|| value.log10()),
            _ => value.is_finite().then_some(value),
        }
    }

    /// The tick label at plot coordinate `at`.
    fn label(&self, at: f64) -> String {
        match &self.scale {
            Scale::Linear => short_number(at),
            Scale::Percent => format!("{:.0}%", at * 100.0),
            Scale::Count => format!("{at:.0}"),
            Scale::Log if (at - at.round()).abs() < 1e-9 => decade(at.round() as i32),
            Scale::Log => short_number(10f64.powf(at)),
            Scale::Category(labels) => {
                let index = at.round();
                if index >= 0.0 && (index as usize) < labels.len() {
                    labels[index as usize].clone()
                } else {
                    String::new()
                }
            }
        }
    }

    /// Pixels the longest tick label needs, plus the gap to the axis.
    fn label_width(&self) -> u32 {
        let longest = self
            .ticks
            .iter()
            .map(|t| self.label(*t).chars().count())
            .max()
            .unwrap_or(1);
        (longest as f64 * CHAR_WIDTH + 16.0).clamp(40.0, 420.0) as u32
    }
}

/// Plotters places values linearly between `low` and `high` and puts ticks (and grid lines)
/// exactly at [`Axis::ticks`]; the tick labels come from [`Axis::label`].
impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.low..self.high).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.low..self.high
    }
}

/// The smallest and largest finite value.
fn finite_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |bounds, v| match bounds {
            None => Some((v, v)),
            Some((low, high)) => Some((f64::min(low, v), f64::max(high, v))),
        })
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// Round ticks inside `low..=high`, about `target` of them and at least three where a round
/// step allows (a narrow range can fall between two round numbers of the first step tried).
fn nice_ticks(low: f64, high: f64, target: usize) -> Vec<f64> {
    let ticks_with = |step: f64| -> Vec<f64> {
        let first = (low / step - 1e-9).ceil() as i64;
        let last = (high / step + 1e-9).floor() as i64;
        // Rounded to the step's decimals, so that 3 * 0.2 is 0.6, not 0.6000000000000001.
        let scale = 10f64.powi((-step.log10().floor()).max(0.0) as i32 + 1);
        (first..=last)
            .map(|k| (k as f64 * step * scale).round() / scale)
            .collect()
    };
    let mut step = nice_step((high - low) / target.max(1) as f64);
    let mut ticks = ticks_with(step);
    for _ in 0..3 {
        if ticks.len() >= 3 {
            break;
        }
        step = smaller_step(step);
        ticks = ticks_with(step);
    }
    ticks
}

/// The next round step down: 10 -> 5 -> 2 -> 1.
fn smaller_step(step: f64) -> f64 {
    let power = 10f64.powf(step.log10().floor());
    match (step / power).round() as i64 {
        5 => 2.0 * power,
        2 => power,
        _ => 0.5 * power,
    }
}

/// `0.25`, `12`, `2e4`, `3e-4`: short enough for a tick.
fn short_number(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&x.abs()) {
        format!("{x:.0e}")
    } else {
        // Enough decimals to tell neighbouring ticks apart, trailing zeros dropped.
        let text = format!("{x:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    }
}

/// `10^k` as a person writes it: `0.01`, `1`, `100`, `1e-5`.
fn decade(k: i32) -> String {
    match k {
        -3..=-1 => format!("{}", 10f64.powi(k)),
        0..=3 => format!("{}", 10i64.pow(k as u32)),
        _ => format!("1e{k}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared drawing.

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&INK.color())
}

/// A chart on `area` with the mesh (ticks, grid, axis titles) drawn.
fn chart<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis,
    y: &Axis,
    x_desc: &str,
    y_desc: &str,
    margin_right: u32,
) -> Result<Chart<'a, 'b>, Box<dyn Error>> {
    let x_label_area = if x_desc.is_empty() { 28 } else { 48 };
    let y_label_area = y.label_width() + if y_desc.is_empty() { 0 } else { 22 };
    let mut chart = ChartBuilder::on(area)
        .margin_top(12)
        .margin_right(margin_right)
        .margin_left(6)
        .margin_bottom(4)
        .x_label_area_size(x_label_area)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x.clone(), y.clone())?;
    let x_label = |v: &f64| x.label(*v);
    let y_label = |v: &f64| y.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(font(LABEL_FONT))
        .axis_desc_style(font(LABEL_FONT))
        .bold_line_style(GRID.color())
        .axis_style(MUTED.color());
    if matches!(x.scale, Scale::Category(_)) {
        mesh.disable_x_mesh();
    }
    if matches!(y.scale, Scale::Category(_)) {
        mesh.disable_y_mesh();
    }
    if !x_desc.is_empty() {
        mesh.x_desc(x_desc);
    }
    if !y_desc.is_empty() {
        mesh.y_desc(y_desc);
    }
    mesh.draw()?;
    Ok(chart)
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
enum Mark {
    Bar,
    Line,
}

/// One legend entry.
struct Key {
    label: String,
    color: Rgb,
    mark: Mark,
}

impl Key {
    fn bar(label: impl Into<String>, color: Rgb) -> Key {
        Key {
            label: label.into(),
            color,
            mark: Mark::Bar,
        }
    }

    fn line(label: impl Into<String>, color: Rgb) -> Key {
        Key {
            label: label.into(),
            color,
            mark: Mark::Line,
        }
    }
}

/// Pixels a legend of `keys` needs.
fn legend_width(keys: &[Key]) -> u32 {
    let longest = keys
        .iter()
        .map(|k| k.label.chars().count())
        .max()
        .unwrap_or(0);
    (longest as f64 * CHAR_WIDTH * SMALL_FONT as f64 / LABEL_FONT as f64 + 44.0).clamp(80.0, 280.0)
        as u32
}

/// Splits off a legend strip on the right of `area`, draws `keys` in it, and returns the rest.
fn with_legend<'b>(area: &Area<'b>, keys: &[Key]) -> Result<Area<'b>, Box<dyn Error>> {
    if keys.is_empty() {
        return Ok(area.clone());
    }
    let (width, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(width.saturating_sub(legend_width(keys)));
    let style = font(SMALL_FONT).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, key) in keys.iter().enumerate() {
        let y = 24 + 22 * i as i32;
        match key.mark {
            Mark::Bar => legend.draw(&Rectangle::new(
                [(6, y - 6), (22, y + 6)],
                key.color.color().filled(),
            ))?,
            Mark::Line => legend.draw(&PathElement::new(
                vec![(4, y), (24, y)],
                key.color.color().stroke_width(3),
            ))?,
        }
        legend.draw(&Text::new(key.label.clone(), (30, y), style.clone()))?;
    }
    Ok(plot)
}

/// A bar's value label: 12px, centred above the point.
fn value_label(text: String, at: (f64, f64)) -> Text<'static, (f64, f64), String> {
    Text::new(
        text,
        at,
        font(SMALL_FONT - 1).pos(Pos::new(HPos::Center, VPos::Bottom)),
    )
}

/// A text note inside the plot, for a chart that has nothing to draw.
fn empty_note(area: &Area, note: &str) -> DrawResult {
    let (width, height) = area.dim_in_pixel();
    area.draw(&Text::new(
        note.to_string(),
        (width as i32 / 2, height as i32 / 2),
        font(LABEL_FONT)
            .color(&MUTED.color())
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// One group of vertical bars per category: `series[s].1[c]` is series `s` at category `c`.
/// `None` draws nothing; a value the axis cannot place (0 on a log scale) is marked with its
/// text at the floor.
fn grouped_bars(
    area: &Area,
    categories: Vec<String>,
    series: &[(Key, Vec<Option<f64>>)],
    y: Axis,
    y_desc: &str,
    value_text: impl Fn(f64) -> Option<String>,
) -> DrawResult {
    let keys: Vec<Key> = series
        .iter()
        .map(|(k, _)| Key::bar(k.label.clone(), k.color))
        .collect();
    let plot = with_legend(area, &keys)?;
    let n_categories = categories.len();
    let x = Axis::categories(categories);
    let mut chart = chart(&plot, &x, &y, "", y_desc, 16)?;
    let slots = series.len().max(1) as f64;
    let group = 0.8;
    let width = group / slots;
    for (s, (key, values)) in series.iter().enumerate() {
        for (c, value) in values.iter().enumerate().take(n_categories) {
            let Some(value) = *value else { continue };
            let left = c as f64 - group / 2.0 + s as f64 * width;
            let centre = left + width / 2.0;
            match y.place(value) {
                Some(top) => {
                    let top = top.clamp(y.low, y.high);
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(left + 0.08 * width, y.low), (left + 0.92 * width, top)],
                        key.color.color().filled(),
                    )))?;
                    if let Some(text) = value_text(value) {
                        chart.draw_series(std::iter::once(value_label(text, (centre, top))))?;
                    }
                }
                None => {
                    let text = if value.is_nan() {
                        "NaN".to_string()
                    } else {
                        short_number(value)
                    };
                    chart.draw_series(std::iter::once(value_label(text, (centre, y.low))))?;
                }
            }
        }
    }
    Ok(())
}

/// Lines over epochs; points the axis cannot place (NaN, 0 on a log scale) break the line.
fn epoch_lines(
    area: &Area,
    epochs: usize,
    series: Vec<(Key, Vec<(f64, f64)>)>,
    y: Axis,
    y_desc: &str,
) -> DrawResult {
    let keys: Vec<Key> = series
        .iter()
        .map(|(k, _)| Key::line(k.label.clone(), k.color))
        .collect();
    let plot = with_legend(area, &keys)?;
    let x = Axis::epochs(epochs);
    let mut chart = chart(&plot, &x, &y, "epoch", y_desc, 16)?;
    let dots = epochs <= 30;
    for (key, points) in series {
        let color = key.color.color();
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (epoch, value) in points {
            match y.place(value) {
                Some(v) => runs
                    .last_mut()
                    .expect("never empty")
                    .push((epoch, v.clamp(y.low, y.high))),
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let size = if dots || run.len() == 1 { 3 } else { 0 };
            chart.draw_series(LineSeries::new(run, color.stroke_width(2)).point_size(size))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The charts.

/// (a) Per layer: dead, dormant and saturated fraction, and the dead fraction at init.
pub fn layer_health(d: &Diagnosis) -> String {
    let categories: Vec<String> = d.layers.iter().map(|l| l.name.clone()).collect();
    let mut series = vec![
        (
            Key::bar("dead", DEAD),
            d.layers.iter().map(|l| Some(l.dead_fraction)).collect(),
        ),
        (
            Key::bar("dormant", DORMANT),
            d.layers
                .iter()
                .map(|l| Some(l.dormant as f64 / l.units.max(1) as f64))
                .collect(),
        ),
        (
            Key::bar("saturated", SATURATED),
            d.layers
                .iter()
                .map(|l| Some(l.saturated_fraction))
                .collect(),
        ),
    ];
    if d.layers.iter().any(|l| l.dead_fraction_at_init.is_some()) {
        series.push((
            Key::bar("dead at init", DEAD_AT_INIT),
            d.layers.iter().map(|l| l.dead_fraction_at_init).collect(),
        ));
    }
    svg((HALF_WIDTH, HEIGHT), |area| {
        grouped_bars(
            area,
            categories,
            &series,
            Axis::percent(),
            "share of units",
            |v| (v >= 0.01).then(|| format!("{:.0}%", v * 100.0)),
        )
    })
}

/// (c) Per layer: the weight gradient's L2 norm as trained and at init, on a log scale.
pub fn gradient_norms(probe: &Probe, initial: Option<&Probe>) -> String {
    let categories: Vec<String> = probe.layers.iter().map(|l| l.name.clone()).collect();
    let mut series = vec![(
        Key::bar("trained", TRAIN),
        probe
            .layers
            .iter()
            .map(|l| Some(l.grad_norm))
            .collect::<Vec<_>>(),
    )];
    if let Some(initial) = initial {
        series.push((
            Key::bar("at init", AT_INIT),
            probe
                .layers
                .iter()
                .map(|l| initial.layer(&l.name).map(|i| i.grad_norm))
                .collect(),
        ));
    }
    let y = Axis::log(series.iter().flat_map(|(_, v)| v.iter().flatten().copied()));
    svg((HALF_WIDTH, HEIGHT), |area| {
        grouped_bars(
            area,
            categories,
            &series,
            y,
            "weight gradient L2 norm",
            |_| None,
        )
    })
}

/// (b) One site's histograms: pre-activation on the left, post-activation on the right.
pub fn activation_histograms(
    site: &str,
    activation: &str,
    pre: &Histogram,
    post: &Histogram,
) -> String {
    svg((HALF_WIDTH, 230), |area| {
        let (left, right) = area.split_horizontally(HALF_WIDTH / 2);
        histogram_panel(&left, &format!("{site} pre-activation"), pre, PRE)?;
        histogram_panel(&right, &format!("{site} after {activation}"), post, POST)
    })
}

fn histogram_panel(area: &Area, title: &str, histogram: &Histogram, color: Rgb) -> DrawResult {
    let (width, _) = area.dim_in_pixel();
    area.draw(&Text::new(
        title.to_string(),
        (width as i32 / 2, 4),
        font(LABEL_FONT).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let plot = area.margin(24, 0, 0, 0);
    let total: u64 = histogram.counts.iter().sum();
    if total == 0 || !(histogram.low.is_finite() && histogram.high.is_finite()) {
        return empty_note(&plot, "no finite values");
    }
    let bins = histogram.counts.len().max(1);
    let shares: Vec<f64> = histogram
        .counts
        .iter()
        .map(|c| *c as f64 / total as f64)
        .collect();
    let x = Axis::linear_between(histogram.low, histogram.high);
    let x = Axis {
        ticks: nice_ticks(x.low, x.high, 4),
        ..x
    };
    let top = shares.iter().copied().fold(0.0, f64::max);
    let y = Axis {
        scale: Scale::Percent,
        ..Axis::linear_between(0.0, (top * 1.1).max(0.01))
    };
    let y = Axis {
        ticks: nice_ticks(0.0, y.high, 4),
        ..y
    };
    let mut chart = chart(&plot, &x, &y, "", "", 16)?;
    let bin_width = (x.high - x.low) / bins as f64;
    chart.draw_series(shares.iter().enumerate().map(|(i, share)| {
        let left = x.low + i as f64 * bin_width;
        Rectangle::new(
            [(left, 0.0), (left + bin_width, *share)],
            color.color().filled(),
        )
    }))?;
    if x.low < 0.0 && x.high > 0.0 {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, y.high)],
            MUTED.color().stroke_width(1),
        )))?;
    }
    Ok(())
}

/// (d) Train and test loss per epoch (log scale when they span more than a decade or so).
pub fn loss_curves(metrics: &[EpochMetrics]) -> String {
    let train: Vec<(f64, f64)> = metrics
        .iter()
        .map(|m| (m.epoch as f64, m.train_loss))
        .collect();
    let test: Vec<(f64, f64)> = metrics
        .iter()
        .map(|m| (m.epoch as f64, m.test_loss))
        .collect();
    let values = || train.iter().chain(&test).map(|p| p.1);
    let y = match finite_bounds(values().filter(|v| *v > 0.0)) {
        Some((low, high)) if high / low > 30.0 => Axis::log(values()),
        _ => Axis::linear(values()),
    };
    let log = y.scale == Scale::Log;
    let series = vec![
        (Key::line("train loss", TRAIN), train),
        (Key::line("test loss", TEST), test),
    ];
    let epochs = epoch_count(metrics);
    svg((HALF_WIDTH, HEIGHT), |area| {
        if metrics.is_empty() {
            return empty_note(area, "no epochs recorded");
        }
        epoch_lines(
            area,
            epochs,
            series,
            y,
            if log { "loss (log scale)" } else { "loss" },
        )
    })
}

/// (d) Train and test accuracy per epoch, or the test MSE for regression.
pub fn metric_curves(metrics: &[EpochMetrics]) -> String {
    let epochs = epoch_count(metrics);
    let classification = metrics.iter().any(|m| m.test_accuracy.is_some());
    let (series, y, y_desc) = if classification {
        let line = |label: &str, color, value: fn(&EpochMetrics) -> Option<f64>| {
            (
                Key::line(label, color),
                metrics
                    .iter()
                    .map(|m| (m.epoch as f64, value(m).unwrap_or(f64::NAN)))
                    .collect::<Vec<_>>(),
            )
        };
        (
            vec![
                line("train accuracy", TRAIN, |m| m.train_accuracy),
                line("test accuracy", TEST, |m| m.test_accuracy),
            ],
            Axis::percent(),
            "accuracy",
        )
    } else {
        let points: Vec<(f64, f64)> = metrics
            .iter()
            .map(|m| (m.epoch as f64, m.test_mse.unwrap_or(f64::NAN)))
            .collect();
        let y = Axis::linear(points.iter().map(|p| p.1));
        (vec![(Key::line("test MSE", TEST), points)], y, "test MSE")
    };
    svg((HALF_WIDTH, HEIGHT), |area| {
        if metrics.is_empty() {
            return empty_note(area, "no epochs recorded");
        }
        epoch_lines(area, epochs, series, y, y_desc)
    })
}

/// Which per-layer live statistic a health chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStat {
    /// Fraction of units that never fired on the sampled batches.
    Dead,
    /// Fraction of units saturated on the sampled batches.
    Saturated,
    /// Weight gradient L2 norm, averaged over the sampled batches.
    GradNorm,
}

impl HealthStat {
    fn of(self, layer: &LayerHealth) -> f64 {
        match self {
            HealthStat::Dead => layer.dead_fraction,
            HealthStat::Saturated => layer.saturated_fraction,
            HealthStat::GradNorm => layer.grad_norm,
        }
    }
}

/// (d) One line per layer over epochs, from the live health statistics.
pub fn health_lines(health: &[EpochHealth], stat: HealthStat) -> String {
    // Layers in the order they first appear.
    let mut names: Vec<&str> = Vec::new();
    for layer in health.iter().flat_map(|h| &h.layers) {
        if !names.contains(&layer.name.as_str()) {
            names.push(&layer.name);
        }
    }
    let series: Vec<(Key, Vec<(f64, f64)>)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let points = health
                .iter()
                .map(|h| {
                    let value = h
                        .layers
                        .iter()
                        .find(|l| l.name == *name)
                        .map_or(f64::NAN, |l| stat.of(l));
                    (h.epoch as f64, value)
                })
                .collect();
            (Key::line(*name, layer_color(i)), points)
        })
        .collect();
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1));
    let (y, y_desc) = match stat {
        HealthStat::Dead => (Axis::percent(), "dead units"),
        HealthStat::Saturated => (Axis::percent(), "saturated units"),
        HealthStat::GradNorm => (Axis::log(values), "gradient L2 norm"),
    };
    let epochs = health.iter().map(|h| h.epoch).max().unwrap_or(1);
    svg((HALF_WIDTH, HEIGHT), |area| {
        if health.is_empty() {
            return empty_note(area, "no live health recorded for this run");
        }
        epoch_lines(area, epochs, series, y, y_desc)
    })
}

fn epoch_count(metrics: &[EpochMetrics]) -> usize {
    metrics.iter().map(|m| m.epoch).max().unwrap_or(1)
}

/// The networks of a fix, original first, with their labels.
fn networks(report: &FixReport) -> Vec<(String, &Outcome, Option<Verdict>)> {
    std::iter::once(("original".to_string(), &report.original, None))
        .chain(report.candidates.iter().map(|j| {
            (
                super::shorten(&j.candidate.label, 48),
                &j.outcome,
                Some(j.verdict),
            )
        }))
        .collect()
}

/// One network's row in a fix chart.
struct NetworkRow {
    /// One bar per key, each with the text written at its end.
    bars: Vec<(f64, Option<String>)>,
    /// Every seed's value, drawn as dots across the first bar.
    seeds: Vec<f64>,
    /// Text after the row's longest bar or dot, in a colour.
    note: Option<(String, Rgb)>,
}

/// Horizontal bars, one group per network (original on top), for the fix comparison. Text
/// at the end of the bars may run past the axis into a right margin sized for it.
fn network_bars(
    area: &Area,
    labels: Vec<String>,
    keys: Vec<Key>,
    rows: Vec<NetworkRow>,
    x: Axis,
    x_desc: &str,
) -> DrawResult {
    let legend: Vec<Key> = if keys.len() > 1 {
        keys.iter()
            .map(|k| Key::bar(k.label.clone(), k.color))
            .collect()
    } else {
        Vec::new()
    };
    let plot = with_legend(area, &legend)?;
    let longest_text = rows
        .iter()
        .flat_map(|r| {
            r.bars
                .iter()
                .filter_map(|(_, t)| t.as_ref())
                .chain(r.note.as_ref().map(|(t, _)| t))
        })
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(0);
    let right = (longest_text as f64 * CHAR_WIDTH + 24.0) as u32;
    let n = labels.len();
    // The original on top: network i sits at y = n - 1 - i.
    let y = Axis::categories(labels.into_iter().rev().collect());
    let chart = chart(&plot, &x, &y, x_desc, "", right)?;
    let plotting = chart.plotting_area();
    let group = 0.76;
    let height = group / keys.len().max(1) as f64;
    let text_at = |text: &str, at: (f64, f64), gap: i32, color: Rgb, size: u32| {
        // In the root's pixels: the text may run into the right margin.
        let (px, py) = chart.backend_coord(&at);
        area.draw(&Text::new(
            text.to_string(),
            (px + gap, py),
            font(size)
                .color(&color.color())
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
    };
    for (i, row) in rows.iter().enumerate() {
        let slot = (n - 1 - i) as f64;
        let mut end = x.low;
        for (k, (key, (value, text))) in keys.iter().zip(&row.bars).enumerate() {
            let top = slot + group / 2.0 - k as f64 * height;
            let middle = top - height / 2.0;
            let right = x.place(*value).map(|v| v.clamp(x.low, x.high));
            if let Some(right) = right {
                end = end.max(right);
                plotting.draw(&Rectangle::new(
                    [(x.low, top - 0.08 * height), (right, top - 0.92 * height)],
                    key.color.color().filled(),
                ))?;
            }
            if let Some(text) = text {
                text_at(text, (right.unwrap_or(x.low), middle), 5, INK, SMALL_FONT)?;
            }
        }
        for value in row.seeds.iter().filter_map(|v| x.place(*v)) {
            let value = value.clamp(x.low, x.high);
            end = end.max(value);
            plotting.draw(&Circle::new((value, slot), 4, INK.color().filled()))?;
        }
        if let Some((text, color)) = &row.note {
            text_at(text, (end, slot), 10, *color, LABEL_FONT)?;
        }
    }
    Ok(())
}

fn fix_height(networks: usize, bars_per_network: usize) -> u32 {
    let per_network = 26 + 14 * bars_per_network.max(1) as u32;
    (70 + per_network * networks as u32).max(160)
}

/// (e) The primary metric of the original and every candidate, with their verdicts.
pub fn fix_metric(report: &FixReport) -> String {
    let networks = networks(report);
    let accuracy = report.metric == "test_accuracy";
    let main = |o: &Outcome| o.metrics.primary.first().copied().unwrap_or(f64::NAN);
    let x = if accuracy {
        Axis {
            high: 1.02,
            ..Axis::percent()
        }
    } else {
        Axis::linear(
            networks
                .iter()
                .flat_map(|(_, o, _)| o.metrics.primary.iter().copied()),
        )
    };
    let format = |v: f64| {
        if accuracy {
            format!("{:.1}%", v * 100.0)
        } else {
            format!("{v:.4}")
        }
    };
    let rows = networks
        .iter()
        .enumerate()
        .map(|(i, (_, o, verdict))| {
            let best = i > 0 && report.best == Some(i - 1);
            let note = match verdict {
                None => (format!("{} (before)", format(main(o))), MUTED),
                Some(v) => (
                    format!(
                        "{}  {}{}",
                        format(main(o)),
                        v.as_str(),
                        if best { " (best)" } else { "" }
                    ),
                    verdict_color(*v),
                ),
            };
            NetworkRow {
                bars: vec![(main(o), None)],
                seeds: o.metrics.primary.clone(),
                note: Some(note),
            }
        })
        .collect();
    let labels: Vec<String> = networks.iter().map(|(l, _, _)| l.clone()).collect();
    let x_desc = format!(
        "{} (bar: the spec's seed; dots: every seed)",
        report.metric.replace('_', " ")
    );
    let height = fix_height(labels.len(), 1);
    svg((FULL_WIDTH, height), |area| {
        network_bars(
            area,
            labels,
            vec![Key::bar(report.metric.clone(), TRAIN)],
            rows,
            x,
            &x_desc,
        )
    })
}

/// (e) The dead fraction of every network: over all units, and per layer.
pub fn fix_dead(report: &FixReport) -> String {
    let networks = networks(report);
    // Every layer any network reports, in the original's order.
    let mut layers: Vec<&str> = Vec::new();
    for (_, outcome, _) in &networks {
        for layer in &outcome.layers {
            if !layers.contains(&layer.name.as_str()) {
                layers.push(&layer.name);
            }
        }
    }
    let mut keys = vec![Key::bar("all units", DEAD)];
    keys.extend(
        layers
            .iter()
            .enumerate()
            .map(|(i, name)| Key::bar(*name, layer_color(i))),
    );
    let percent = |v: f64| (!v.is_nan()).then(|| format!("{:.0}%", v * 100.0));
    let rows = networks
        .iter()
        .map(|(_, o, _)| {
            let mut bars = vec![(o.dead_fraction, percent(o.dead_fraction))];
            bars.extend(layers.iter().map(|name| {
                let value = o
                    .layers
                    .iter()
                    .find(|l| l.name == *name)
                    .map_or(f64::NAN, |l| l.dead_fraction);
                (value, percent(value))
            }));
            NetworkRow {
                bars,
                seeds: Vec::new(),
                note: None,
            }
        })
        .collect();
    let labels: Vec<String> = networks.iter().map(|(l, _, _)| l.clone()).collect();
    let x = Axis {
        high: 1.02,
        ..Axis::percent()
    };
    let height = fix_height(labels.len(), keys.len());
    svg((FULL_WIDTH, height), |area| {
        network_bars(area, labels, keys, rows, x, "dead units (spec's seed)")
    })
}

/// (f) `compare`: every setting's metric after every epoch (main seed), one line each.
pub fn compare_curves(report: &nd_remedy::CompareReport) -> String {
    let epochs = report
        .settings
        .iter()
        .map(|r| r.curve.len())
        .max()
        .unwrap_or(0);
    let series: Vec<(Key, Vec<(f64, f64)>)> = report
        .settings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                Key::line(r.setting.label.clone(), layer_color(i)),
                r.curve
                    .iter()
                    .enumerate()
                    .map(|(e, v)| ((e + 1) as f64, *v))
                    .collect(),
            )
        })
        .collect();
    let accuracy = report.metric == "test_accuracy";
    let y = if accuracy {
        Axis::percent()
    } else {
        Axis::linear(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)))
    };
    let desc = if accuracy {
        "test accuracy"
    } else {
        "test MSE"
    };
    svg((FULL_WIDTH, HEIGHT + 40), |area| {
        if epochs == 0 {
            return empty_note(area, "no epochs recorded");
        }
        epoch_lines(area, epochs, series, y, desc)
    })
}

/// (g) `compare`: per layer, each setting's dead (or saturated) fraction at the end.
pub fn compare_layers(report: &nd_remedy::CompareReport, saturated: bool) -> String {
    let mut layers: Vec<String> = Vec::new();
    for r in &report.settings {
        for l in &r.layers {
            if !layers.contains(&l.name) {
                layers.push(l.name.clone());
            }
        }
    }
    let series: Vec<(Key, Vec<Option<f64>>)> = report
        .settings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                Key::bar(r.setting.label.clone(), layer_color(i)),
                layers
                    .iter()
                    .map(|name| {
                        r.layers.iter().find(|l| l.name == *name).map(|l| {
                            if saturated {
                                l.saturated_fraction
                            } else {
                                l.dead_fraction
                            }
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    svg((FULL_WIDTH, HEIGHT), |area| {
        grouped_bars(
            area,
            layers,
            &series,
            Axis::percent(),
            if saturated {
                "saturated units"
            } else {
                "dead units"
            },
            |v| (v >= 0.01).then(|| format!("{:.0}%", v * 100.0)),
        )
    })
}

/// (h) `fix`: each learning-rate range test that set a candidate's rate, the smoothed loss
/// against the rate (log scale), its suggested rate ringed.
pub fn range_tests(report: &FixReport) -> String {
    let tests = &report.range_tests;
    let x = Axis::log(
        tests
            .iter()
            .flat_map(|t| t.curve.points.iter().map(|p| p.learning_rate)),
    );
    let y = Axis::linear(
        tests
            .iter()
            .flat_map(|t| t.curve.points.iter().map(|p| p.smoothed)),
    );
    let keys: Vec<Key> = tests
        .iter()
        .enumerate()
        .map(|(i, t)| Key::line(t.candidate.clone(), layer_color(i)))
        .collect();
    svg((FULL_WIDTH, HEIGHT + 40), |area| {
        if tests.iter().all(|t| t.curve.points.is_empty()) {
            return empty_note(area, "no range test ran");
        }
        let plot = with_legend(area, &keys)?;
        let mut chart = chart(&plot, &x, &y, "learning rate", "smoothed loss", 16)?;
        for (i, t) in tests.iter().enumerate() {
            let color = layer_color(i).color();
            let line: Vec<(f64, f64)> = t
                .curve
                .points
                .iter()
                .filter_map(|p| Some((x.place(p.learning_rate)?, y.place(p.smoothed)?)))
                .map(|(a, b)| (a, b.clamp(y.low, y.high)))
                .collect();
            chart.draw_series(LineSeries::new(line, color.stroke_width(2)))?;
            let suggested = t.curve.suggested.and_then(|rate| {
                t.curve
                    .points
                    .iter()
                    .min_by(|a, b| {
                        (a.learning_rate - rate)
                            .abs()
                            .total_cmp(&(b.learning_rate - rate).abs())
                    })
                    .and_then(|p| Some((x.place(p.learning_rate)?, y.place(p.smoothed)?)))
            });
            if let Some(at) = suggested {
                chart.draw_series(std::iter::once(Circle::new(at, 7, color.stroke_width(3))))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_ticks(-0.3, 1.1, 5), vec![0.0, 0.5, 1.0]);
        // Between two round numbers of the first step: smaller steps.
        assert_eq!(nice_ticks(-4.9, 4.9, 4), vec![-4.0, -2.0, 0.0, 2.0, 4.0]);
        assert_eq!(nice_ticks(0.0, 0.088, 4), vec![0.0, 0.02, 0.04, 0.06, 0.08]);
        assert_eq!(
            nice_ticks(0.0, 1.2, 6),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
        );
    }

    #[test]
    fn log_axes_cover_whole_decades_and_skip_zeros() {
        let axis = Axis::log([0.037, 0.0, f64::NAN, 0.069, 2.5]);
        assert_eq!((axis.low, axis.high), (-2.0, 1.0));
        assert_eq!(axis.ticks, vec![-2.0, -1.0, 0.0, 1.0]);
        let narrow = Axis::log([1.3, 7.0]);
        let labels: Vec<String> = narrow.ticks.iter().map(|t| narrow.label(*t)).collect();
        assert_eq!(labels, ["1", "2", "5", "10"]);
        assert_eq!(axis.label(-2.0), "0.01");
        assert_eq!(axis.label(1.0), "10");
        assert_eq!(axis.place(0.0), None);
        assert_eq!(axis.place(100.0), Some(2.0));
        // No positive value at all still gives a usable axis.
        let empty = Axis::log([0.0, 0.0]);
        assert!(empty.high > empty.low);
    }

    #[test]
    fn epoch_ticks_always_label_the_last_epoch() {
        assert_eq!(Axis::epochs(1).ticks, vec![1.0]);
        assert_eq!(Axis::epochs(5).ticks, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let twenty = Axis::epochs(20).ticks;
        assert_eq!(twenty.first(), Some(&1.0));
        assert_eq!(twenty.last(), Some(&20.0));
        assert!(twenty.len() <= 11, "{twenty:?}");
    }

    #[test]
    fn category_labels_sit_on_whole_numbers() {
        let axis = Axis::categories(vec!["hidden.0".into(), "output".into()]);
        assert_eq!(axis.ticks, vec![0.0, 1.0]);
        assert_eq!(axis.label(1.0), "output");
        assert_eq!(axis.label(2.0), "");
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(12.0), "12");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(25000.0), "2e4");
        assert_eq!(decade(-5), "1e-5");
        assert_eq!(decade(2), "100");
    }
}
