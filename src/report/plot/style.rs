//! Look shared by every figure: the vendored font, colour-blind-safe palettes, sizes, the mesh
//! preset and legends drawn in a reserved strip so they never cover data.

use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, PlotError};

/// Every figure uses this family only, so no system font library is needed.
pub const FONT: &str = "sans-serif";

/// Width of every figure, px (three panels across, for a paper's full text width).
pub const WIDTH: u32 = 1200;
/// Height of one row of panels, px.
pub const ROW: u32 = 420;
// Plotters sizes fonts by line height; the em (glyph) size is size / 1.24, so 23 gives
// 18.5 px glyphs, legible when the figure is printed at column width.
pub const TITLE_PX: u32 = 30;
pub const SUBTITLE_PX: u32 = 23;
pub const PANEL_TITLE_PX: u32 = 24;
pub const LABEL_PX: u32 = 23;
pub const TICK_PX: u32 = 23;
pub const LEGEND_PX: u32 = 23;
/// Height of one legend line in the reserved strip, px.
pub const LEGEND_LINE: u32 = 34;
/// Height of one subtitle line, px.
const SUBTITLE_LINE: u32 = 28;

/// Registers the vendored DejaVu Sans once per process.
pub fn init() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../../../assets/DejaVuSans.ttf"),
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

pub fn text(px: u32) -> TextStyle<'static> {
    (FONT, px as f64).into_font().color(&BLACK)
}

/// Okabe & Ito (2008): the arms of an experiment (early, deferred, ...), in this order.
const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0xF0, 0xE4, 0x42), // yellow
    RGBColor(0x00, 0x00, 0x00), // black
];

pub fn arm_color(i: usize) -> RGBColor {
    OKABE_ITO[i % OKABE_ITO.len()]
}

/// Mixture modes: Paul Tol's "muted" (9), then vibrant orange so the paper's K = 10 stays
/// within colour-blind-safe schemes, then Tol's "light" for K up to 19.
const MODES: [RGBColor; 19] = [
    RGBColor(0xCC, 0x66, 0x77),
    RGBColor(0x33, 0x22, 0x88),
    RGBColor(0xDD, 0xCC, 0x77),
    RGBColor(0x11, 0x77, 0x33),
    RGBColor(0x88, 0xCC, 0xEE),
    RGBColor(0x88, 0x22, 0x55),
    RGBColor(0x44, 0xAA, 0x99),
    RGBColor(0x99, 0x99, 0x33),
    RGBColor(0xAA, 0x44, 0x99),
    RGBColor(0xEE, 0x77, 0x33),
    RGBColor(0x77, 0xAA, 0xDD),
    RGBColor(0x99, 0xDD, 0xFF),
    RGBColor(0x44, 0xBB, 0x99),
    RGBColor(0xBB, 0xCC, 0x33),
    RGBColor(0xAA, 0xAA, 0x00),
    RGBColor(0xEE, 0xDD, 0x88),
    RGBColor(0xEE, 0x88, 0x66),
    RGBColor(0xFF, 0xAA, 0xBB),
    RGBColor(0xDD, 0xDD, 0xDD),
];

/// Mode k has this colour in every panel of every figure.
pub fn mode_color(k: usize) -> RGBColor {
    MODES[k % MODES.len()]
}

/// Viridis (perceptually uniform, colour-blind safe) at t in [0, 1], from 9 stops.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (0x44, 0x01, 0x54),
        (0x47, 0x2c, 0x7a),
        (0x3b, 0x51, 0x8b),
        (0x2c, 0x71, 0x8e),
        (0x21, 0x90, 0x8d),
        (0x27, 0xad, 0x81),
        (0x5c, 0xc8, 0x63),
        (0xaa, 0xdc, 0x32),
        (0xfd, 0xe7, 0x25),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The house mesh: light grid, legible ticks and axis titles.
pub fn mesh<'a, 'b, DB, X, Y>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &'b dyn Fn(&X::ValueType) -> String,
    y_fmt: &'b dyn Fn(&Y::ValueType) -> String,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<FormatOption = DefaultFormatting> + ValueFormatter<X::ValueType>,
    Y: Ranged<FormatOption = DefaultFormatting> + ValueFormatter<Y::ValueType>,
{
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
        .label_style(text(TICK_PX))
        .axis_desc_style(text(LABEL_PX))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .draw()?;
    Ok(())
}

/// A chart builder with room for tick labels and axis titles.
pub fn panel<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &'b str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(area);
    b.caption(title, text(title_px(title, area.dim_in_pixel().0)))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(66)
        .y_label_area_size(96);
    b
}

/// Smallest panel-title size, px: titles shrink towards it to fit their panel.
const MIN_TITLE_PX: u32 = 16;

/// The panel-title size at which `title` fits a panel `width` px wide (long arm names such as
/// "deferred, init uniform" would otherwise run into the neighbouring panel).
pub fn title_px(title: &str, width: u32) -> u32 {
    let room = width.saturating_sub(24);
    let mut px = PANEL_TITLE_PX;
    while px > MIN_TITLE_PX && text(px).font.box_size(title).is_ok_and(|(w, _)| w > room) {
        px -= 1;
    }
    px
}

/// Tick label for a number: integers plainly, otherwise three significant digits; from 10⁴
/// up and below 10⁻³ in powers of ten ("2.5e4"), short enough that neighbouring ticks of a
/// narrow panel do not run into each other.
pub fn num_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        let e = a.log10().floor() as i32;
        let mantissa = format!("{:.2}", v / 10f64.powi(e));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{e}")
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        let digits = (2 - a.log10().floor() as i32).clamp(0, 5) as usize;
        let s = format!("{v:.digits$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            &s
        };
        s.to_string()
    }
}

/// `c` drawn at opacity `alpha` on white, as one solid colour: a legend swatch for markers
/// that are drawn translucent.
pub fn over_white(c: RGBColor, alpha: f64) -> RGBColor {
    let blend = |v: u8| (255.0 - alpha * (255.0 - f64::from(v))).round() as u8;
    RGBColor(blend(c.0), blend(c.1), blend(c.2))
}

/// The outline of markers drawn over a cloud of points, so each stays visible on top of it.
pub const OUTLINE: RGBColor = RGBColor(0x11, 0x11, 0x11);

/// What a legend entry shows beside its text.
#[derive(Clone, Copy)]
pub enum Key {
    /// Text only, e.g. the heading of a row of swatches.
    Text,
    Line(RGBColor),
    /// A line over its translucent CI band.
    Band(RGBColor),
    Dashed(RGBColor),
    Dot(RGBColor),
    /// A ring around a dot (a code in the latent panels).
    Ring(RGBColor),
    HollowSquare(RGBColor),
    Cross(RGBColor),
    Square(RGBColor),
    /// A dot of its colour with a dark outline (a marker drawn over a cloud of points).
    Outlined(RGBColor),
}

/// Horizontal layout of legend entries: swatch width, swatch-to-text gap, gap between entries.
const SWATCH: i32 = 34;
const SWATCH_GAP: i32 = 8;
const ENTRY_GAP: i32 = 30;

fn key_width(k: &Key) -> i32 {
    if matches!(k, Key::Text) {
        0
    } else {
        SWATCH + SWATCH_GAP
    }
}

fn entry_width(k: &Key, label: &str) -> i32 {
    let w = text(LEGEND_PX)
        .font
        .box_size(label)
        .map_or(LEGEND_PX * label.chars().count() as u32 / 2, |(w, _)| w);
    key_width(k) + w as i32
}

/// Legend lines broken where they would not fit `width` px, so many arms wrap onto further
/// lines instead of running off the figure's edges.
pub fn wrap_legend(lines: &[Vec<(Key, String)>], width: u32) -> Vec<Vec<(Key, String)>> {
    let room = width as i32 - 2 * ENTRY_GAP;
    let mut out: Vec<Vec<(Key, String)>> = Vec::new();
    for line in lines {
        let mut cur: Vec<(Key, String)> = Vec::new();
        let mut used = 0;
        for (key, label) in line {
            let w = entry_width(key, label);
            // A text-only heading (e.g. "true mode:") stays with the entry after it.
            let heading = cur.last().is_some_and(|(k, _)| matches!(k, Key::Text));
            if !cur.is_empty() && !heading && used + ENTRY_GAP + w > room {
                out.push(std::mem::take(&mut cur));
                used = 0;
            }
            used += if cur.is_empty() { w } else { ENTRY_GAP + w };
            cur.push((*key, label.clone()));
        }
        out.push(cur);
    }
    out
}

/// Height `legend` takes for these lines in a figure `width` px wide.
pub fn legend_height(lines: &[Vec<(Key, String)>], width: u32) -> u32 {
    wrap_legend(lines, width).len() as u32 * LEGEND_LINE + 6
}

/// Draws legend lines, each centred and wrapped to the width of `area`, at the top of `area`;
/// returns the area below them.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Vec<(Key, String)>],
) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (width, _) = area.dim_in_pixel();
    let style = text(LEGEND_PX);
    let lines = wrap_legend(lines, width);
    for (li, line) in lines.iter().enumerate() {
        let widths: Vec<i32> = line
            .iter()
            .map(|(_, t)| area.estimate_text_size(t, &style).map(|(w, _)| w as i32))
            .collect::<Result<_, _>>()?;
        let total: i32 = line
            .iter()
            .zip(&widths)
            .map(|((k, _), w)| key_width(k) + w)
            .sum::<i32>()
            + ENTRY_GAP * (line.len() as i32 - 1).max(0);
        let mut x = (width as i32 - total) / 2;
        let y = li as i32 * LEGEND_LINE as i32 + LEGEND_LINE as i32 / 2;
        for ((key, label), w) in line.iter().zip(widths) {
            draw_key(area, *key, (x, y), SWATCH)?;
            area.draw(&Text::new(
                label.as_str(),
                (x + key_width(key), y),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += key_width(key) + w + ENTRY_GAP;
        }
    }
    let used = lines.len() as u32 * LEGEND_LINE + 6;
    Ok(area.split_vertically(used).1)
}

fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    key: Key,
    (x, y): (i32, i32),
    w: i32,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mid = (x + w / 2, y);
    match key {
        Key::Text => {}
        Key::Line(c) => {
            area.draw(&PathElement::new(
                vec![(x, y), (x + w, y)],
                c.stroke_width(3),
            ))?;
        }
        Key::Band(c) => {
            area.draw(&Rectangle::new(
                [(x, y - 8), (x + w, y + 8)],
                c.mix(0.2).filled(),
            ))?;
            area.draw(&PathElement::new(
                vec![(x, y), (x + w, y)],
                c.stroke_width(3),
            ))?;
        }
        Key::Dashed(c) => {
            for s in (0..w).step_by(10) {
                area.draw(&PathElement::new(
                    vec![(x + s, y), (x + (s + 6).min(w), y)],
                    c.stroke_width(2),
                ))?;
            }
        }
        Key::Dot(c) => area.draw(&Circle::new(mid, 6, c.filled()))?,
        Key::Ring(c) => {
            area.draw(&Circle::new(mid, 8, c.mix(0.8).stroke_width(1)))?;
            area.draw(&Circle::new(mid, 1, c.mix(0.8).filled()))?;
        }
        Key::HollowSquare(c) => area.draw(&Rectangle::new(
            [(mid.0 - 4, y - 4), (mid.0 + 4, y + 4)],
            c.stroke_width(1),
        ))?,
        Key::Cross(c) => area.draw(&Cross::new(mid, 6, c.stroke_width(2)))?,
        Key::Square(c) => area.draw(&Rectangle::new(
            [(mid.0 - 8, y - 8), (mid.0 + 8, y + 8)],
            c.filled(),
        ))?,
        Key::Outlined(c) => {
            area.draw(&Circle::new(mid, 7, c.filled()))?;
            area.draw(&Circle::new(mid, 7, OUTLINE.stroke_width(2)))?;
        }
    }
    Ok(())
}

/// Title and subtitle across the top of the figure (the subtitle wrapped at " · "); returns
/// the area below.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (w, _) = root.dim_in_pixel();
    let centre = Pos::new(HPos::Center, VPos::Center);
    root.draw(&Text::new(
        title,
        (w as i32 / 2, 22),
        text(TITLE_PX).pos(centre),
    ))?;
    let lines = wrap(subtitle, w);
    for (i, line) in lines.iter().enumerate() {
        root.draw(&Text::new(
            line.as_str(),
            (w as i32 / 2, 56 + (i as u32 * SUBTITLE_LINE) as i32),
            text(SUBTITLE_PX)
                .color(&RGBColor(0x44, 0x44, 0x44))
                .pos(centre),
        ))?;
    }
    Ok(root.split_vertically(header_height(subtitle, w)).1)
}

/// Size of a figure `WIDTH` px wide: `header` with this subtitle, `legend` with these lines,
/// then `body` px of panels.
pub fn size(subtitle: &str, legend: &[Vec<(Key, String)>], body: u32) -> (u32, u32) {
    (
        WIDTH,
        header_height(subtitle, WIDTH) + legend_height(legend, WIDTH) + body,
    )
}

/// Height `header` takes for this subtitle in a figure `width` px wide.
pub fn header_height(subtitle: &str, width: u32) -> u32 {
    48 + SUBTITLE_LINE * wrap(subtitle, width).len() as u32
}

/// Splits `s` at " · " into lines that fit `width` at the subtitle size.
fn wrap(s: &str, width: u32) -> Vec<String> {
    let font = text(SUBTITLE_PX).font;
    let fits = |t: &str| font.box_size(t).map_or(true, |(w, _)| w + 40 <= width);
    let mut lines: Vec<String> = Vec::new();
    for piece in s.split(" · ") {
        match lines.last_mut() {
            Some(last) if fits(&format!("{last} · {piece}")) => {
                last.push_str(" · ");
                last.push_str(piece);
            }
            _ => lines.push(piece.to_string()),
        }
    }
    lines
}
