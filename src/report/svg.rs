//! Charts as inline SVG: line charts (linear or log axes) and horizontal bar charts.
//!
//! Hand-written rather than `plotters`: plotters lays out axis text through a font backend
//! (`ttf` pulls font-kit and the system's fontconfig, `ab_glyph` needs a font file shipped
//! with the binary), while an SVG `<text>` element is laid out by the browser that shows
//! it. What the report needs is two chart types with ticks, which this does in a page of
//! code, with coordinates printed at fixed precision so the page's bytes are deterministic.

use super::html::esc;
use std::fmt::Write;

/// The colours of successive series (colour-blind-safe, Okabe–Ito).
pub const PALETTE: [&str; 6] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
];

pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub color: &'a str,
    pub width: f64,
    /// Draw dots at the points as well as the line (for short series).
    pub dots: bool,
}

#[derive(Default)]
pub struct Axes<'a> {
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
}

const W: f64 = 560.0;
const H: f64 = 300.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;

/// An axis: data range, log or not, mapped onto a pixel interval.
struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn new(values: impl Iterator<Item = f64>, log: bool, p0: f64, p1: f64) -> Scale {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        if log {
            (lo, hi) = (
                10f64.powf(lo.log10().floor()),
                10f64.powf(hi.log10().ceil()),
            );
            if lo == hi {
                hi = lo * 10.0;
            }
        } else {
            if lo == hi {
                (lo, hi) = (lo - 0.5, hi + 0.5);
            }
            let step = nice_step((hi - lo) / 5.0);
            (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        }
        Scale {
            lo,
            hi,
            log,
            p0,
            p1,
        }
    }

    fn t(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        self.p0 + f * (self.p1 - self.p0)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (
                self.lo.log10().round() as i32,
                self.hi.log10().round() as i32,
            );
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            let step = nice_step((self.hi - self.lo) / 5.0);
            let n = ((self.hi - self.lo) / step).round() as i64;
            (0..=n).map(|i| self.lo + i as f64 * step).collect()
        }
    }
}

/// 1, 2 or 5 times a power of ten, the nearest at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * p
}

/// A tick label short enough for an axis.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn open(out: &mut String, title: &str, w: f64, h: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="{t}" class="chart"><title>{t}</title>"#,
        t = esc(title)
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="17" class="ct" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(title)
    );
}

/// A line chart of one or more series, with a legend when there are several.
pub fn line_chart(title: &str, series: &[Series], axes: &Axes) -> String {
    let xs = Scale::new(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        axes.log_x,
        LEFT,
        W - RIGHT,
    );
    let ys = Scale::new(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        axes.log_y,
        H - BOTTOM,
        TOP,
    );
    let mut out = String::new();
    open(&mut out, title, W, H);
    for t in ys.ticks() {
        let y = ys.t(t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" class="tk" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            y + 3.5,
            tick_label(t)
        );
    }
    for t in xs.ticks() {
        let x = xs.t(t);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" class="tk" text-anchor="middle">{}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 4.0,
            H - BOTTOM + 15.0,
            tick_label(t)
        );
    }
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" class="al" text-anchor="middle">{}</text><text transform="translate(14 {:.1}) rotate(-90)" class="al" text-anchor="middle">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 8.0,
        esc(axes.x_label),
        (TOP + H - BOTTOM) / 2.0,
        esc(axes.y_label)
    );
    for s in series {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| {
                x.is_finite()
                    && y.is_finite()
                    && (!axes.log_x || *x > 0.0)
                    && (!axes.log_y || *y > 0.0)
            })
            .map(|&(x, y)| format!("{:.1},{:.1}", xs.t(x), ys.t(y)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="{}" points="{}"><title>{}</title></polyline>"#,
            s.color,
            s.width,
            pts.join(" "),
            esc(s.name)
        );
        if s.dots {
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    r#"<circle cx="{x}" cy="{y}" r="2" fill="{}"/>"#,
                    s.color
                );
            }
        }
    }
    if series.len() > 1 {
        for (i, s) in series.iter().enumerate() {
            let y = TOP + 12.0 + 14.0 * i as f64;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="10" height="3" fill="{}"/><text x="{:.1}" y="{:.1}" class="tk" text-anchor="end">{}</text>"#,
                W - RIGHT - 16.0,
                y - 3.0,
                s.color,
                W - RIGHT - 20.0,
                y + 1.0,
                esc(s.name)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A bar of a horizontal bar chart.
pub struct Bar {
    pub label: String,
    /// One value per group (several groups give grouped bars).
    pub values: Vec<f64>,
    /// Printed at the bar's end.
    pub note: String,
}

/// Horizontal bars, one row per bar, one coloured bar per group in the row.
pub fn bar_chart(title: &str, groups: &[&str], bars: &[Bar]) -> String {
    let label_w = 8.0
        + 6.5
            * bars
                .iter()
                .map(|b| b.label.chars().count())
                .max()
                .unwrap_or(4)
                .min(36) as f64;
    let ng = groups.len().max(1) as f64;
    let row = 6.0 + 11.0 * ng;
    let legend = if groups.len() > 1 { 16.0 } else { 0.0 };
    let h = TOP + legend + row * bars.len() as f64 + 8.0;
    let max = bars
        .iter()
        .flat_map(|b| b.values.iter().copied())
        .fold(0.0f64, f64::max);
    let span = W - label_w - 170.0;
    let mut out = String::new();
    open(&mut out, title, W, h);
    if groups.len() > 1 {
        let mut x = label_w;
        for (g, name) in groups.iter().enumerate() {
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" class="tk">{}</text>"#,
                TOP - 2.0,
                PALETTE[g % PALETTE.len()],
                x + 14.0,
                TOP + 7.0,
                esc(name)
            );
            x += 24.0 + 6.5 * name.chars().count() as f64;
        }
    }
    for (i, b) in bars.iter().enumerate() {
        let y0 = TOP + legend + row * i as f64;
        let label: String = b.label.chars().take(36).collect();
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="tk" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y0 + row / 2.0 + 3.0,
            esc(&label)
        );
        for (g, v) in b.values.iter().enumerate() {
            let w = if max > 0.0 { span * v / max } else { 0.0 };
            let _ = write!(
                out,
                r#"<rect x="{label_w:.1}" y="{:.1}" width="{w:.1}" height="9" fill="{}"><title>{}: {}</title></rect>"#,
                y0 + 3.0 + 11.0 * g as f64,
                PALETTE[g % PALETTE.len()],
                esc(&b.label),
                tick_label(*v)
            );
        }
        let widest = b.values.iter().copied().fold(0.0f64, f64::max);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="tk">{}</text>"#,
            label_w + if max > 0.0 { span * widest / max } else { 0.0 } + 4.0,
            y0 + row / 2.0 + 3.0,
            esc(&b.note)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_and_labels() {
        assert_eq!(nice_step(0.37), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(2000.0), "2000");
        assert_eq!(tick_label(1e6), "1e6");
    }

    #[test]
    fn log_scale_spans_whole_decades_and_skips_non_positive_points() {
        let s = Series {
            name: "a",
            points: vec![(1.0, 3.0), (0.0, 5.0), (40.0, 0.2)],
            color: PALETTE[0],
            width: 1.0,
            dots: false,
        };
        let svg = line_chart(
            "t",
            &[s],
            &Axes {
                log_x: true,
                log_y: true,
                ..Axes::default()
            },
        );
        // Ticks 1, 10, 100 on x and 0.1, 1, 10 on y; two of the three points drawn.
        for t in [">1<", ">10<", ">100<", ">0.1<"] {
            assert!(svg.contains(t), "{t} missing in {svg}");
        }
        let pts = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 2);
    }

    #[test]
    fn titles_are_escaped() {
        let svg = bar_chart(
            "<b>&",
            &["x"],
            &[Bar {
                label: "a<b".into(),
                values: vec![1.0],
                note: "1".into(),
            }],
        );
        assert!(svg.contains("&lt;b&gt;&amp;") && svg.contains("a&lt;b"));
        assert!(!svg.contains("<b>"));
    }
}
