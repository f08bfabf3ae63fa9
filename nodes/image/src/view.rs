//! The square view a tokenizer sees a camera frame through: the frame's
//! centre square (its shorter side) resampled to `size`×`size`. The
//! geometry is shared by every stage that maps a view's pixels back to the
//! frame's (labels, instance ids, depth) so that they stay the pixels the
//! codec saw.

/// The `size`×`size` view of a `w`×`h` frame: the corner (x0, y0) of the
/// frame's centre square and the frame pixels one view pixel spans (step).
pub fn view_square(w: usize, h: usize, size: usize) -> (f64, f64, f64) {
    let side = w.min(h) as f64;
    ((w as f64 - side) / 2.0, (h as f64 - side) / 2.0, side / size as f64)
}

/// For each pixel of a `w`×`h` frame's `size`×`size` view (row-major), the
/// frame pixel (column, row) nearest its centre: frame coordinate
/// x0 + (x + ½)·step, pixel i's centre at i.
pub fn nearest_pixels(w: usize, h: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    let (x0, y0, step) = view_square(w, h, size);
    let at = move |origin: f64, i: usize, n: usize| ((origin + (i as f64 + 0.5) * step).round() as usize).min(n - 1);
    (0..size).flat_map(move |y| (0..size).map(move |x| (at(x0, x, w), at(y0, y, h))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_landscape_frame_is_seen_through_its_centre_square() {
        assert_eq!(view_square(320, 240, 256), (40.0, 0.0, 0.9375));
        let px: Vec<(usize, usize)> = nearest_pixels(320, 240, 256).collect();
        assert_eq!(px.len(), 256 * 256);
        // The first view pixel's centre is at 40.47: frame column 40; the last at 279.53: 280.
        assert_eq!(px[0], (40, 0));
        assert_eq!(px[255], (280, 0));
        assert_eq!(px[256 * 256 - 1], (280, 239));
    }
}
