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
}
