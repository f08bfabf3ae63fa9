//! PNG files of rgb8 images: contact sheets, thumbnails, test artifacts.

use std::path::Path;

use crate::{ImageError, Rgb};

/// The PNG encoding of `img` (8-bit RGB).
pub fn encode_png(img: &Rgb) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(&mut buf, img).expect("a PNG of a well-formed Rgb encodes into memory");
    buf
}

fn encode<W: std::io::Write>(out: W, img: &Rgb) -> Result<(), png::EncodingError> {
    let mut enc = png::Encoder::new(out, img.width as u32, img.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&img.data)
}

/// Writes `img` to `path` as PNG.
pub fn write_png(path: &Path, img: &Rgb) -> Result<(), ImageError> {
    let file = std::fs::File::create(path).map_err(|source| ImageError::Io { path: path.into(), source })?;
    encode(std::io::BufWriter::new(file), img).map_err(|e| ImageError::Png { path: path.into(), message: e.to_string() })
}

/// Reads an 8-bit PNG (grey, grey + alpha, RGB or RGBA) as rgb8.
pub fn read_png(path: &Path) -> Result<Rgb, ImageError> {
    let png_err = |e: png::DecodingError| ImageError::Png { path: path.into(), message: e.to_string() };
    let file = std::fs::File::open(path).map_err(|source| ImageError::Io { path: path.into(), source })?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(png_err)?;
    let size = reader.output_buffer_size().ok_or_else(|| ImageError::Png { path: path.into(), message: "image too large".into() })?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(png_err)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let px = &buf[..info.buffer_size()];
    let data = match info.color_type {
        png::ColorType::Rgb => px.to_vec(),
        png::ColorType::Rgba => px.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Grayscale => return Ok(Rgb::from_gray(w, h, px)),
        png::ColorType::GrayscaleAlpha => px.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect(),
        png::ColorType::Indexed => unreachable!("EXPAND turns palettes into RGB"),
    };
    Ok(Rgb { width: w, height: h, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("s2r-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = Rgb { width: 3, height: 2, data: (0..18).collect() };
        let p = dir.join("a.png");
        write_png(&p, &img).unwrap();
        assert_eq!(read_png(&p).unwrap(), img);
        assert_eq!(std::fs::read(&p).unwrap(), encode_png(&img));
        std::fs::write(&p, b"not a png").unwrap();
        let e = read_png(&p).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        let e = write_png(&dir.join("missing/b.png"), &img).unwrap_err().to_string();
        assert!(e.contains("missing/b.png"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
