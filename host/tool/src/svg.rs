//! Grouped bar charts as inline SVG, drawn with `plotters`' SVG backend: a linear or a log
//! axis, an optional dashed reference line (1.0 on a ratio chart), and each bar's value written
//! over it.
//!
//! Text needs no system fonts: without plotters' `ttf`/`ab_glyph` features its font layer only
//! estimates text extents, and the SVG backend writes each label as an SVG `<text>` element for
//! the browser to render.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bar colours, one per series (colour-blind-friendly palette, then repeated).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x44, 0x77, 0xAA),
    RGBColor(0xEE, 0x66, 0x77),
    RGBColor(0x22, 0x88, 0x33),
    RGBColor(0xCC, 0xBB, 0x44),
    RGBColor(0x66, 0xCC, 0xEE),
    RGBColor(0xAA, 0x33, 0x77),
    RGBColor(0x88, 0x88, 0x88),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xDD, 0x88, 0x00),
    RGBColor(0x55, 0x22, 0x99),
];

/// The y axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// From 0.
    Linear,
    /// Logarithmic: ratios far apart (0.9× and 40×) stay readable side by side.
    Log,
}

/// One grouped bar chart: a group per entry of `groups` (workloads), a bar per series
/// (configurations) in each; a missing value leaves a gap.
pub struct Bars<'a> {
    /// Caption.
    pub title: &'a str,
    /// What the y axis shows.
    pub y_label: &'a str,
    /// Group names, under the groups.
    pub groups: &'a [String],
    /// Series: a name (in the legend) and a value per group.
    pub series: &'a [(String, Vec<Option<f64>>)],
    /// A dashed horizontal line (1.0 on a ratio chart).
    pub reference: Option<f64>,
    /// The y axis.
    pub scale: Scale,
    /// How a bar's value is written over it.
    pub label: fn(f64) -> String,
}

/// Values as ratios: `0.93`.
pub fn ratio_label(v: f64) -> String {
    format!("{v:.2}")
}

/// Values with one decimal: `8.9`.
pub fn one_decimal(v: f64) -> String {
    format!("{v:.1}")
}

/// Whole values: `2689`.
pub fn whole(v: f64) -> String {
    format!("{v:.0}")
}

/// The share of the plot's height kept above the highest bar for its label.
const LABEL_ROOM: f64 = 0.16;

impl Bars<'_> {
    /// The SVG text, or an HTML note saying why there is no chart.
    pub fn svg(&self) -> String {
        match self.draw() {
            Ok(s) => s,
            Err(e) => format!("<p>(chart not drawn: {})</p>", super::report::esc(&e)),
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten())
            .copied()
            .filter(|v| v.is_finite())
    }

    /// The y range: from 0 (linear) or below the smallest value (log) to above the highest,
    /// with room for the labels.
    fn y_range(&self) -> Result<(f64, f64), String> {
        let max = self.values().chain(self.reference).fold(0.0f64, f64::max);
        match self.scale {
            Scale::Linear => {
                let top = if max > 0.0 { max } else { 1.0 };
                Ok((0.0, top / (1.0 - LABEL_ROOM)))
            }
            Scale::Log => {
                let min = self
                    .values()
                    .chain(self.reference)
                    .filter(|&v| v > 0.0)
                    .fold(f64::INFINITY, f64::min);
                if !(min.is_finite() && max > 0.0) {
                    return Err("no positive value for a log axis".into());
                }
                // A decade-ish margin below, so the smallest bar is still a bar.
                let lo = min / 1.6;
                let span = (max / lo).ln().max(0.1) / (1.0 - LABEL_ROOM);
                Ok((lo, lo * span.exp()))
            }
        }
    }

    fn draw(&self) -> Result<String, String> {
        if self.groups.is_empty() || self.series.is_empty() || self.values().next().is_none() {
            return Err("no data".into());
        }
        let (lo, hi) = self.y_range()?;
        let n = self.groups.len();
        let k = self.series.len();
        let legend_w = 200;
        // Room for every bar's label, and for the group's name under it.
        let longest = self
            .groups
            .iter()
            .map(|g| g.chars().count())
            .max()
            .unwrap_or(0);
        let per_group = (k as u32 * 16 + 36).max(longest as u32 * 8 + 16).max(90);
        let width = (per_group * n as u32 + 90).clamp(420, 1800) + legend_w;
        let height = 480;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
            let err = |e: &dyn std::fmt::Display| e.to_string();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            let (plot, legend) = root.split_horizontally(width - legend_w);
            let mut builder = ChartBuilder::on(&plot);
            builder
                .caption(self.title, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(64);
            match self.scale {
                Scale::Linear => {
                    let mut chart = builder
                        .build_cartesian_2d(0f64..n as f64, lo..hi)
                        .map_err(|e| err(&e))?;
                    chart
                        .configure_mesh()
                        .disable_x_mesh()
                        .disable_x_axis()
                        .y_desc(self.y_label)
                        .label_style(("sans-serif", 14))
                        .axis_desc_style(("sans-serif", 15))
                        .y_label_formatter(&|v| short(*v))
                        .draw()
                        .map_err(|e| err(&e))?;
                    self.bars(&mut chart, lo, &plot)?;
                }
                Scale::Log => {
                    let mut chart = builder
                        .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())
                        .map_err(|e| err(&e))?;
                    chart
                        .configure_mesh()
                        .disable_x_mesh()
                        .disable_x_axis()
                        .y_desc(format!("{} (log scale)", self.y_label))
                        .label_style(("sans-serif", 14))
                        .axis_desc_style(("sans-serif", 15))
                        .y_label_formatter(&|v| short(*v))
                        .draw()
                        .map_err(|e| err(&e))?;
                    self.bars(&mut chart, lo, &plot)?;
                }
            }
            self.legend(&legend)?;
            root.present().map_err(|e| err(&e))?;
        }
        Ok(out)
    }

    /// The bars, their labels, the reference line and the group names.
    fn bars<Y>(
        &self,
        chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, Y>>,
        floor: f64,
        plot: &DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<(), String>
    where
        Y: Ranged<ValueType = f64>,
    {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let n = self.groups.len() as f64;
        let bar = 0.84 / self.series.len() as f64;
        for (si, (_, values)) in self.series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let placed: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(gi, v)| Some((gi as f64 + 0.08 + si as f64 * bar, (*v)?)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            chart
                .draw_series(placed.iter().map(|&(x0, v)| {
                    Rectangle::new([(x0, floor), (x0 + bar * 0.9, v)], color.filled())
                }))
                .map_err(|e| err(&e))?;
            // The value over each bar, written upwards.
            for &(x0, v) in &placed {
                let (px, py) = chart.backend_coord(&(x0 + bar * 0.45, v));
                plot.draw(&Text::new(
                    (self.label)(v),
                    (px, py - 3),
                    ("sans-serif", 12)
                        .into_font()
                        .transform(FontTransform::Rotate270)
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(|e| err(&e))?;
            }
        }
        if let Some(r) = self.reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, r), (n, r)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| err(&e))?;
        }
        for (gi, g) in self.groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(gi as f64 + 0.5, floor));
            plot.draw(&Text::new(
                g.clone(),
                (px, py + 8),
                ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|e| err(&e))?;
        }
        Ok(())
    }

    /// The legend, in its own column right of the plot.
    fn legend(&self, legend: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        for (si, (name, _)) in self.series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let y = 50 + 22 * si as i32;
            legend
                .draw(&Rectangle::new([(8, y - 6), (22, y + 6)], color.filled()))
                .map_err(|e| err(&e))?;
            legend
                .draw(&Text::new(
                    name.clone(),
                    (30, y),
                    ("sans-serif", 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(|e| err(&e))?;
        }
        Ok(())
    }
}

/// An axis value, short: `0.5`, `2`, `1.2k`.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || a == a.round() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(scale: Scale) -> String {
        Bars {
            title: "Title",
            y_label: "ratio",
            groups: &["alpha".into(), "beta".into()],
            series: &[
                ("system".into(), vec![Some(1.0), Some(1.0)]),
                ("slab".into(), vec![Some(0.8), None]),
                ("bump".into(), vec![Some(42.0), Some(3.5)]),
            ],
            reference: Some(1.0),
            scale,
            label: ratio_label,
        }
        .svg()
    }

    #[test]
    fn draws_bars_values_labels_and_legend() {
        for scale in [Scale::Linear, Scale::Log] {
            let svg = chart(scale);
            assert!(svg.starts_with("<svg"), "{svg}");
            for text in ["alpha", "beta", "system", "slab", "bump", "Title"] {
                assert!(svg.contains(text), "missing {text}");
            }
            // Every bar's value is written over it.
            for value in ["1.00", "0.80", "42.00", "3.50"] {
                let text = format!("\n{value}\n</text>");
                assert!(svg.contains(&text), "{scale:?}: missing {value}");
            }
            assert!(svg.matches("<rect").count() >= 5);
        }
        assert!(chart(Scale::Log).contains("(log scale)"));
        let none = Bars {
            title: "T",
            y_label: "y",
            groups: &[],
            series: &[],
            reference: None,
            scale: Scale::Linear,
            label: whole,
        };
        assert!(none.svg().contains("not drawn"));
    }

    #[test]
    fn a_log_axis_keeps_small_bars_visible() {
        let big = Bars {
            title: "T",
            y_label: "MiB",
            groups: &["w".into()],
            series: &[
                ("system".into(), vec![Some(9.0)]),
                ("bump".into(), vec![Some(400.0)]),
            ],
            reference: None,
            scale: Scale::Log,
            label: one_decimal,
        };
        let (lo, hi) = big.y_range().unwrap();
        assert!(lo < 9.0 && hi > 400.0, "{lo}..{hi}");
        // The 9 MiB bar is a visible part of the axis, not a sliver under 400 MiB.
        assert!((9.0f64 / lo).ln() / (hi / lo).ln() > 0.05);
        assert_eq!(short(0.5), "0.50");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(12_500.0), "12k");
    }
}
