//! Line charts of the soak benchmarks as PNG files, with `plotters`. The charts carry no
//! text (no font is needed); their scales are printed with the report instead.

use std::path::Path;

use plotters::prelude::*;

/// Draws `lines` (points, color) on a white 1000×500 PNG at `path` with a frame: x from 0
/// to the largest x of any point (seconds), y from 0 to 110% of the largest y. Prints the
/// scale, with `unit` for y.
pub fn lines(path: &Path, unit: &str, lines: &[(Vec<(f64, f64)>, RGBColor)]) {
    let points = || lines.iter().flat_map(|(points, _)| points);
    let width = points().map(|p| p.0).fold(1.0, f64::max);
    let height = points().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    println!("{name}: x 0 to {width:.0} s, y 0 to {height:.1} {unit}");
    let root = BitMapBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE).expect("fill");
    let area = root.margin(20, 20, 20, 20);
    let mut chart = ChartBuilder::on(&area)
        .build_cartesian_2d(0f64..width, 0f64..height)
        .expect("chart");
    chart
        .plotting_area()
        .draw(&Rectangle::new(
            [(0.0, 0.0), (width, height)],
            BLACK.stroke_width(1),
        ))
        .expect("frame");
    for (points, color) in lines {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .expect("series");
    }
    root.present().expect("write the PNG");
    println!("wrote {}", path.display());
}
