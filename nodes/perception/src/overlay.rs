//! Predictions drawn over a frame: boxes in a colour per class with the
//! class name and confidence, optionally the segmentation tinted over the
//! image. perception_node's `<camera>/overlay` and the contact sheets of
//! `s2r eval perception --sheet` are drawn here.

/// A colour per class index, distinct for neighbours and bright on dark scenes.
pub fn class_color(class: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 12] = [
        [255, 64, 64],
        [64, 160, 255],
        [255, 200, 0],
        [0, 220, 120],
        [220, 80, 255],
        [255, 130, 40],
        [0, 230, 230],
        [180, 255, 60],
        [255, 100, 180],
        [140, 140, 255],
        [200, 160, 90],
        [240, 240, 240],
    ];
    PALETTE[class % PALETTE.len()]
}

/// An RGB image to draw on.
pub struct Canvas<'a> {
    /// Interleaved RGB.
    pub rgb: &'a mut [u8],
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl Canvas<'_> {
    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A rectangle outline `thickness` pixels wide inside [x0, y0, x1, y1].
    pub fn rect(&mut self, b: [f32; 4], c: [u8; 3], thickness: usize) {
        let (x0, y0, x1, y1) = (b[0].round() as i64, b[1].round() as i64, b[2].round() as i64 - 1, b[3].round() as i64 - 1);
        for t in 0..thickness as i64 {
            for x in x0..=x1 {
                self.put(x, y0 + t, c);
                self.put(x, y1 - t, c);
            }
            for y in y0..=y1 {
                self.put(x0 + t, y, c);
                self.put(x1 - t, y, c);
            }
        }
    }

    /// `text` in the 5×7 font at `scale`, on a filled background, top-left at (x, y).
    pub fn label(&mut self, x: i64, y: i64, text: &str, fg: [u8; 3], bg: [u8; 3], scale: usize) {
        let s = scale.max(1) as i64;
        let width = text.chars().count() as i64 * 6 * s + s;
        for yy in y..y + 9 * s {
            for xx in x..x + width {
                self.put(xx, yy, bg);
            }
        }
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for dy in 0..s {
                            for dx in 0..s {
                                self.put(x + s + (i as i64 * 6 + col) * s + dx, y + s + r as i64 * s + dy, fg);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Tints every pixel towards its class's colour by `alpha`; class 0 (the
    /// sky, nothing) and 255 (unknown) stay as they are.
    pub fn tint(&mut self, classes: &[u8], alpha: f32) {
        for (px, &c) in self.rgb.chunks_exact_mut(3).zip(classes) {
            if c == 0 || c == 255 {
                continue;
            }
            let col = class_color(c as usize);
            for k in 0..3 {
                px[k] = (px[k] as f32 * (1.0 - alpha) + col[k] as f32 * alpha).round() as u8;
            }
        }
    }
}

/// Boxes with "class 0.87" labels over `rgb`.
pub fn draw_detections(canvas: &mut Canvas, boxes: &[(usize, &str, Option<f32>, [f32; 4])]) {
    let scale = if canvas.w >= 960 { 2 } else { 1 };
    let thick = if canvas.w >= 640 { 2 } else { 1 };
    for &(class, name, score, b) in boxes {
        let c = class_color(class);
        canvas.rect(b, c, thick);
        let text = match score {
            Some(s) => format!("{name} {:.2}", s),
            None => name.to_string(),
        };
        let y = (b[1] as i64 - 9 * scale as i64).max(0);
        canvas.label(b[0] as i64, y, &text, [0, 0, 0], c, scale);
    }
}

/// The 5×7 glyph of `c` (lower case; unknown characters as a box), one byte per row, bit 4 leftmost.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_lowercase() {
        'a' => [0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f],
        'b' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e],
        'c' => [0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e],
        'd' => [0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f],
        'e' => [0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e],
        'f' => [0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08],
        'g' => [0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
        'i' => [0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e],
        'j' => [0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'l' => [0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'm' => [0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11],
        'o' => [0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e],
        'p' => [0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10],
        'q' => [0x00, 0x00, 0x0d, 0x13, 0x0f, 0x01, 0x01],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        's' => [0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e],
        't' => [0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04],
        'w' => [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a],
        'x' => [0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11],
        'y' => [0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e],
        'z' => [0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f],
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f],
        '-' => [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        ' ' => [0; 7],
        _ => [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_labels_land_where_asked() {
        let (w, h) = (64, 48);
        let mut rgb = vec![0u8; w * h * 3];
        let mut c = Canvas { rgb: &mut rgb, w, h };
        draw_detections(&mut c, &[(0, "car", Some(0.9), [10.0, 20.0, 40.0, 40.0])]);
        let at = |x: usize, y: usize| [rgb[(y * w + x) * 3], rgb[(y * w + x) * 3 + 1], rgb[(y * w + x) * 3 + 2]];
        assert_eq!(at(10, 30), class_color(0), "left edge");
        assert_eq!(at(39, 30), class_color(0), "right edge (exclusive corner minus one)");
        assert_eq!(at(25, 30), [0, 0, 0], "inside untouched");
        assert_eq!(at(10, 11), class_color(0), "label background above the box");
    }
}
