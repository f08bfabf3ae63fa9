//! An rgb8 buffer and the few operations the tools need on it: shrinking
//! for thumbnails and laying frames out in a contact sheet.

/// An rgb8 image: row-major, 3 bytes a pixel, no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    /// Pixels a row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl Rgb {
    /// A grey image (one byte a pixel) as rgb8.
    pub fn from_gray(width: usize, height: usize, gray: &[u8]) -> Rgb {
        Rgb { width, height, data: gray.iter().flat_map(|&g| [g, g, g]).collect() }
    }

    /// Box-filtered downscale by an integer factor.
    pub fn shrink(&self, factor: usize) -> Rgb {
        shrink(&self.data, self.width, self.height, factor)
    }

    /// Resized to exactly `width`×`height`: box-filtered down by the largest
    /// whole factor that keeps it at least that size, then bilinear (a
    /// camera of any resolution into a network's input).
    pub fn resize(&self, width: usize, height: usize) -> Rgb {
        let f = (self.width / width.max(1)).min(self.height / height.max(1)).max(1);
        let src = shrink(&self.data, self.width, self.height, f);
        if src.width == width && src.height == height {
            return src;
        }
        let mut data = vec![0u8; width * height * 3];
        let (sx, sy) = (src.width as f32 / width as f32, src.height as f32 / height as f32);
        for y in 0..height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (src.height - 1) as f32);
            let (y0, ty) = (fy as usize, fy.fract());
            let y1 = (y0 + 1).min(src.height - 1);
            for x in 0..width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (src.width - 1) as f32);
                let (x0, tx) = (fx as usize, fx.fract());
                let x1 = (x0 + 1).min(src.width - 1);
                for c in 0..3 {
                    let p = |xx: usize, yy: usize| src.data[(yy * src.width + xx) * 3 + c] as f32;
                    let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
                    let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
                    data[(y * width + x) * 3 + c] = (top * (1.0 - ty) + bottom * ty).round() as u8;
                }
            }
        }
        Rgb { width, height, data }
    }

    /// A thumbnail about `target_width` wide of an rgb8 frame (the largest
    /// integer downscale that keeps it at least that wide, box-filtered).
    pub fn thumbnail(rgb: &[u8], width: usize, height: usize, target_width: usize) -> Rgb {
        shrink(rgb, width, height, (width / target_width.max(1)).max(1))
    }
}

fn shrink(rgb: &[u8], width: usize, height: usize, factor: usize) -> Rgb {
    if factor <= 1 {
        return Rgb { width, height, data: rgb[..width * height * 3].to_vec() };
    }
    let (w, h) = (width / factor, height / factor);
    let mut data = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut s = 0u32;
                for yy in 0..factor {
                    for xx in 0..factor {
                        s += rgb[((y * factor + yy) * width + x * factor + xx) * 3 + c] as u32;
                    }
                }
                data[(y * w + x) * 3 + c] = (s / (factor * factor) as u32) as u8;
            }
        }
    }
    Rgb { width: w, height: h, data }
}

/// Lays out `rows` of tiles (all the size of the first) with a gap, on dark grey.
pub fn grid(rows: &[Vec<Rgb>], gap: usize) -> Rgb {
    let Some(first) = rows.iter().flatten().next() else { return Rgb { width: 0, height: 0, data: Vec::new() } };
    let (tw, th) = (first.width, first.height);
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (w, h) = (cols * tw + (cols + 1) * gap, rows.len() * th + (rows.len() + 1) * gap);
    let mut data = vec![24u8; w * h * 3];
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let (x0, y0) = (gap + c * (tw + gap), gap + r * (th + gap));
            for y in 0..th.min(tile.height) {
                let src = &tile.data[y * tile.width * 3..(y * tile.width + tw.min(tile.width)) * 3];
                let at = ((y0 + y) * w + x0) * 3;
                data[at..at + src.len()].copy_from_slice(src);
            }
        }
    }
    Rgb { width: w, height: h, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_averages_blocks_and_grid_places_tiles() {
        let img = Rgb { width: 2, height: 2, data: vec![0, 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30] };
        assert_eq!(img.shrink(2).data, [15, 15, 15]);
        assert_eq!(Rgb::thumbnail(&img.data, 2, 2, 1), img.shrink(2));
        assert_eq!(Rgb::thumbnail(&img.data, 2, 2, 2), img);
        assert_eq!(Rgb::from_gray(2, 1, &[5, 6]).data, [5, 5, 5, 6, 6, 6]);
        let sheet = grid(&[vec![img.clone(), img.clone()]], 1);
        assert_eq!((sheet.width, sheet.height), (7, 4));
        let px = |x: usize, y: usize| &sheet.data[(y * 7 + x) * 3..(y * 7 + x) * 3 + 3];
        assert_eq!(px(1, 1), &[0, 0, 0]);
        assert_eq!(px(5, 2), &[30, 30, 30], "the second tile's last pixel");
        assert_eq!(sheet.data[0], 24, "the gap is dark grey");
    }

    #[test]
    fn resize_keeps_a_ramp_a_ramp_at_any_size() {
        let (w, h) = (640, 480);
        let data: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let x = (i % w) as f32 / (w - 1) as f32 * 255.0;
                [x as u8, 0, 200]
            })
            .collect();
        let img = Rgb { width: w, height: h, data };
        for (tw, th) in [(128, 96), (160, 120), (100, 70)] {
            let r = img.resize(tw, th);
            assert_eq!((r.width, r.height, r.data.len()), (tw, th, tw * th * 3));
            let row: Vec<u8> = (0..tw).map(|x| r.data[(th / 2 * tw + x) * 3]).collect();
            assert!(row.windows(2).all(|p| p[1] >= p[0]), "monotone: {row:?}");
            assert!(row[0] < 5 && row[tw - 1] > 250, "{} {}", row[0], row[tw - 1]);
            assert!(r.data.chunks(3).all(|p| p[2] == 200));
        }
    }
}
