//! Grouped bar charts as inline SVG, drawn with `plotters`' SVG backend.
//!
//! Text needs no system fonts: without plotters' `ttf`/`ab_glyph` features its font layer only
//! estimates text extents, and the SVG backend writes each label as an SVG `<text>` element for
//! the browser to render.

use plotters::prelude::*;

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

/// A grouped bar chart: one group per entry of `groups` (workloads), one bar per series
/// (configurations) in each; a missing value leaves a gap. `reference` draws a dashed
/// horizontal line (1.0 on a ratio chart). Returns the SVG text, or an HTML note saying why
/// there is no chart.
pub fn grouped_bars(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<Option<f64>>)],
    reference: Option<f64>,
) -> String {
    match draw(title, y_label, groups, series, reference) {
        Ok(s) => s,
        Err(e) => format!("<p>(chart not drawn: {})</p>", super::report::esc(&e)),
    }
}

fn draw(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<Option<f64>>)],
    reference: Option<f64>,
) -> Result<String, String> {
    if groups.is_empty() || series.is_empty() {
        return Err("no data".into());
    }
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .chain(reference)
        .fold(0.0f64, f64::max);
    let y_max = if max > 0.0 { max * 1.12 } else { 1.0 };
    let n = groups.len();
    let legend_w = 190;
    let width = (130 * n as u32).clamp(520, 1300) + legend_w;
    let height = 460;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (plot, legend) = root.split_horizontally(width - legend_w);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n as f64, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(|e| err(&e))?;
        let k = series.len() as f64;
        let bar = 0.8 / k;
        for (si, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let rects = values.iter().enumerate().filter_map(|(gi, v)| {
                let v = (*v)?;
                let x0 = gi as f64 + 0.1 + si as f64 * bar;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + bar * 0.92, v)],
                    color.filled(),
                ))
            });
            chart.draw_series(rects).map_err(|e| err(&e))?;
            // The legend, in its own column right of the plot.
            let y = 50 + 22 * si as i32;
            legend
                .draw(&Rectangle::new([(8, y - 6), (22, y + 6)], color.filled()))
                .map_err(|e| err(&e))?;
            legend
                .draw(&Text::new(
                    name.clone(),
                    (30, y),
                    ("sans-serif", 13).into_font().color(&BLACK).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Left,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    ),
                ))
                .map_err(|e| err(&e))?;
        }
        if let Some(r) = reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, r), (n as f64, r)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| err(&e))?;
        }
        // Group names under the groups, in the x label area.
        for (gi, g) in groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(gi as f64 + 0.5, 0.0));
            plot.draw(&Text::new(
                g.clone(),
                (px, py + 8),
                ("sans-serif", 14).into_font().color(&BLACK).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Top,
                    ),
                ),
            ))
            .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_labels_and_legend() {
        let svg = grouped_bars(
            "Title",
            "ratio",
            &["alpha".into(), "beta".into()],
            &[
                ("system".into(), vec![Some(1.0), Some(1.0)]),
                ("slab".into(), vec![Some(0.8), None]),
            ],
            Some(1.0),
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in ["alpha", "beta", "system", "slab", "Title"] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.matches("<rect").count() >= 3);
        assert!(grouped_bars("T", "y", &[], &[], None).contains("not drawn"));
    }
}
