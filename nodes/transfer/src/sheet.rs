//! Contact sheets: tiles of frames in a grid, written as PNG.

use std::path::Path;

/// An rgb8 image.
#[derive(Clone, Debug)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    /// Box-filtered downscale by an integer factor.
    pub fn shrink(&self, factor: usize) -> Rgb {
        if factor <= 1 {
            return self.clone();
        }
        let (w, h) = (self.width / factor, self.height / factor);
        let mut data = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0u32;
                    for yy in 0..factor {
                        for xx in 0..factor {
                            s += self.data[((y * factor + yy) * self.width + x * factor + xx) * 3 + c] as u32;
                        }
                    }
                    data[(y * w + x) * 3 + c] = (s / (factor * factor) as u32) as u8;
                }
            }
        }
        Rgb { width: w, height: h, data }
    }
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

pub fn write_png(path: &Path, img: &Rgb) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), img.width as u32, img.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().map_err(|e| format!("{}: {e}", path.display()))?;
    wr.write_image_data(&img.data).map_err(|e| format!("{}: {e}", path.display()))
}
