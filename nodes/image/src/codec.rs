//! `sensor_msgs/CompressedImage` to and from `sensor_msgs/Image`, with the
//! conventions of image_transport's `compressed` plugin, so that topics and
//! bags from real camera drivers read as their raw twins do.
//!
//! The plugin writes `format` as `"<raw encoding>; <jpeg|png> compressed
//! <compressed encoding>"` (e.g. `"rgb8; jpeg compressed bgr8"`: the camera's
//! image was rgb8, OpenCV encoded it from bgr8; the file itself is an
//! ordinary JPEG). Older drivers write just `"jpeg"` or `"png"`. Decoding
//! gives back the raw encoding the format names, so a decompressed bag is the
//! raw bag up to the codec's loss.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageFormat};
use sim2real_msgs::sensor_msgs::msg::{CompressedImage, Image};

use crate::ImageError;

/// The codec of a compressed image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Lossy JPEG at a quality of 1–100 (image_transport's default is 95).
    Jpeg {
        /// 1 (smallest) to 100 (best).
        quality: u8,
    },
    /// Lossless PNG (8-bit grey or colour, 16-bit grey).
    Png,
}

impl Compression {
    /// `jpeg` (with `quality`) or `png`, as a parameter or option names it.
    pub fn parse(name: &str, quality: i64) -> Result<Compression, ImageError> {
        match name {
            "jpeg" | "jpg" => {
                if !(1..=100).contains(&quality) {
                    return Err(ImageError::Quality(quality));
                }
                Ok(Compression::Jpeg { quality: quality as u8 })
            }
            "png" => Ok(Compression::Png),
            _ => Err(ImageError::Codec(name.to_string())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Jpeg { .. } => "jpeg",
            Compression::Png => "png",
        }
    }
}

/// The pixel layout an image is compressed from, and how it comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Gray,
    Gray16,
}

impl Layout {
    fn of(encoding: &str) -> Option<Layout> {
        Some(match encoding {
            "rgb8" => Layout::Rgb,
            "bgr8" | "8UC3" => Layout::Bgr,
            "rgba8" => Layout::Rgba,
            "bgra8" | "8UC4" => Layout::Bgra,
            "mono8" | "8UC1" => Layout::Gray,
            "mono16" | "16UC1" => Layout::Gray16,
            _ => return None,
        })
    }

    fn channels(self) -> usize {
        match self {
            Layout::Rgb | Layout::Bgr => 3,
            Layout::Rgba | Layout::Bgra => 4,
            Layout::Gray => 1,
            Layout::Gray16 => 2,
        }
    }
}

/// The encodings [`compress`] takes.
const COMPRESSIBLE: &str = "rgb8, bgr8, rgba8, bgra8, mono8 (jpeg or png), mono16/16UC1 (png)";

/// `img` compressed as image_transport's `compressed` plugin publishes it:
/// colour images as a colour JPEG/PNG (alpha dropped), mono8 as grey, 16-bit
/// grey (depth in millimetres) as a 16-bit PNG only. Other encodings (32FC1
/// depth, Bayer, YUV) are refused with the topic named.
pub fn compress(img: &Image, topic: &str, how: Compression) -> Result<CompressedImage, ImageError> {
    let refuse = || ImageError::Encoding { topic: topic.into(), encoding: img.encoding.clone(), expected: COMPRESSIBLE };
    let layout = Layout::of(&img.encoding).ok_or_else(refuse)?;
    if layout == Layout::Gray16 && matches!(how, Compression::Jpeg { .. }) {
        return Err(refuse());
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let rows = crate::ros::rows(img, topic, layout.channels())?;
    // Pixels as the encoder takes them: RGB, grey, or 16-bit grey in native order.
    let (pixels, color, target): (Vec<u8>, ExtendedColorType, &str) = match layout {
        Layout::Rgb => (rows.flat_map(|r| r.iter().copied()).collect(), ExtendedColorType::Rgb8, "bgr8"),
        Layout::Bgr => (rows.flat_map(|r| r.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]])).collect(), ExtendedColorType::Rgb8, "bgr8"),
        Layout::Rgba => (rows.flat_map(|r| r.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]])).collect(), ExtendedColorType::Rgb8, "bgr8"),
        Layout::Bgra => (rows.flat_map(|r| r.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0]])).collect(), ExtendedColorType::Rgb8, "bgr8"),
        Layout::Gray => (rows.flat_map(|r| r.iter().copied()).collect(), ExtendedColorType::L8, "mono8"),
        Layout::Gray16 => {
            let big = img.is_bigendian != 0;
            let px = rows
                .flat_map(|r| {
                    r.chunks_exact(2).map(move |b| if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
                })
                .flat_map(u16::to_ne_bytes)
                .collect();
            (px, ExtendedColorType::L16, "mono16")
        }
    };
    let mut data = Vec::with_capacity(pixels.len() / 4);
    let encoded = match how {
        Compression::Jpeg { quality } => {
            // jpeg-encoder (SIMD) encodes 3-4x faster than the image crate's encoder.
            let ct = if color == ExtendedColorType::L8 { jpeg_encoder::ColorType::Luma } else { jpeg_encoder::ColorType::Rgb };
            let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
                return Err(ImageError::Compress {
                    topic: topic.into(),
                    codec: "jpeg",
                    message: format!("{w}x{h} is larger than JPEG's 65535x65535"),
                });
            };
            jpeg_encoder::Encoder::new(&mut data, quality).encode(&pixels, w16, h16, ct).map_err(|e| ImageError::Compress {
                topic: topic.into(),
                codec: "jpeg",
                message: e.to_string(),
            })?;
            Ok(())
        }
        Compression::Png => PngEncoder::new_with_quality(&mut data, CompressionType::Fast, FilterType::Adaptive)
            .write_image(&pixels, w as u32, h as u32, color),
    };
    encoded.map_err(|e| ImageError::Compress { topic: topic.into(), codec: how.name(), message: e.to_string() })?;
    Ok(CompressedImage {
        header: img.header.clone(),
        format: format!("{}; {} compressed {target}", img.encoding, how.name()),
        data: data.into(),
    })
}

/// What a `format` string says: the codec, and the raw encoding to give back
/// (`None` for the old bare `"jpeg"`/`"png"`).
fn parse_format(format: &str, topic: &str) -> Result<(ImageFormat, Option<String>), ImageError> {
    let bad = |why: &'static str| ImageError::Format { topic: topic.into(), format: format.into(), why };
    let codec = |c: &str| match c.trim().to_ascii_lowercase().as_str() {
        "jpeg" | "jpg" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        _ => None,
    };
    if format.contains("compressedDepth") {
        return Err(bad("the compressedDepth transport is not read; publish depth raw (32FC1 or 16UC1)"));
    }
    let Some((encoding, rest)) = format.split_once(';') else {
        return codec(format).map(|c| (c, None)).ok_or_else(|| bad("expected jpeg or png"));
    };
    let c = rest.split_whitespace().next().and_then(codec).ok_or_else(|| bad("expected '<encoding>; jpeg|png compressed <encoding>'"))?;
    let encoding = encoding.trim();
    if Layout::of(encoding).is_none() {
        return Err(bad("the raw encoding before ';' is not one this reader gives back (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1)"));
    }
    Ok((c, Some(encoding.to_string())))
}

/// What the data's first bytes say it is.
fn sniff(data: &[u8]) -> Option<ImageFormat> {
    if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(ImageFormat::Jpeg)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else {
        None
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    if f == ImageFormat::Jpeg {
        "a JPEG"
    } else {
        "a PNG"
    }
}

/// A compressed image as the `sensor_msgs/Image` it was made from: the raw
/// encoding its `format` names (rgb8 or mono8 when the format is the bare
/// codec). Refused, with the topic named: a format that is not JPEG or PNG,
/// data that is not what the format says, a truncated or corrupt file.
pub fn decompress(msg: &CompressedImage, topic: &str) -> Result<Image, ImageError> {
    let (claimed, encoding) = parse_format(&msg.format, topic)?;
    let data: &[u8] = &msg.data;
    let found = sniff(data);
    if found != Some(claimed) {
        return Err(ImageError::NotWhatFormatSays {
            topic: topic.into(),
            format: msg.format.clone(),
            found: found.map_or("neither a JPEG nor a PNG", format_name),
            len: data.len(),
        });
    }
    // A JPEG ends with its EOI marker (FF D9), which entropy-coded data cannot
    // hold; decoders fill a file cut short with grey instead of failing.
    if claimed == ImageFormat::Jpeg && !data[data.len().saturating_sub(64)..].windows(2).any(|w| w == [0xff, 0xd9]) {
        return Err(ImageError::Decode {
            topic: topic.into(),
            what: "JPEG",
            message: format!("truncated: {} bytes and no end-of-image marker", data.len()),
        });
    }
    let decoded = image::load_from_memory_with_format(data, claimed).map_err(|e| ImageError::Decode {
        topic: topic.into(),
        what: if claimed == ImageFormat::Jpeg { "JPEG" } else { "PNG" },
        message: e.to_string(),
    })?;
    let (w, h) = (decoded.width(), decoded.height());
    let want = encoding.as_deref().and_then(Layout::of).unwrap_or(if decoded.color().has_color() { Layout::Rgb } else { Layout::Gray });
    let encoding = encoding.unwrap_or_else(|| if want == Layout::Rgb { "rgb8".into() } else { "mono8".into() });
    let data: Vec<u8> = match want {
        Layout::Rgb | Layout::Bgr | Layout::Rgba | Layout::Bgra => {
            let rgb = rgb_of(decoded);
            match want {
                Layout::Rgb => rgb,
                Layout::Bgr => rgb.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect(),
                Layout::Rgba => rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
                _ => rgb.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0], 255]).collect(),
            }
        }
        Layout::Gray => decoded.into_luma8().into_raw(),
        Layout::Gray16 => decoded.into_luma16().into_raw().into_iter().flat_map(u16::to_le_bytes).collect(),
    };
    Ok(crate::image_msg(msg.header.clone(), w as usize, h as usize, &encoding, want.channels(), data))
}

fn rgb_of(img: DynamicImage) -> Vec<u8> {
    match img {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        other => other.into_rgb8().into_raw(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth colour test card with edges, as a camera might see.
    fn card(w: u32, h: u32, encoding: &str) -> Image {
        let ch = Layout::of(encoding).unwrap().channels();
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = ((x * 255 / w) as u8, (y * 255 / h) as u8, if (x / 16 + y / 16) % 2 == 0 { 60 } else { 190 });
                match ch {
                    3 => data.extend_from_slice(&[r, g, b]),
                    4 => data.extend_from_slice(&[r, g, b, 255]),
                    1 => data.push(((x + y) * 255 / (w + h)) as u8),
                    _ => data.extend_from_slice(&((x * 40 + y) as u16).to_le_bytes()),
                }
            }
        }
        Image { width: w, height: h, encoding: encoding.into(), step: w * ch as u32, data: data.into(), ..Default::default() }
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
    }

    #[test]
    fn jpeg_at_95_keeps_40_db_and_png_is_exact() {
        for enc in ["rgb8", "bgr8", "mono8"] {
            let raw = card(320, 240, enc);
            let c = compress(&raw, "/cam/image_raw", Compression::Jpeg { quality: 95 }).unwrap();
            assert!(c.format.starts_with(&format!("{enc}; jpeg compressed ")), "{}", c.format);
            assert!(c.data.len() < raw.data.len() / 4, "{enc}: {} bytes", c.data.len());
            let back = decompress(&c, "/cam/image_raw/compressed").unwrap();
            assert_eq!((back.width, back.height, back.encoding.as_str(), back.step), (raw.width, raw.height, enc, raw.step));
            let p = psnr(&back.data, &raw.data);
            assert!(p >= 40.0, "{enc}: {p:.1} dB");
        }
        for enc in ["rgb8", "bgr8", "mono8", "16UC1", "rgba8"] {
            let raw = card(64, 48, enc);
            let c = compress(&raw, "/cam/image_raw", Compression::Png).unwrap();
            let back = decompress(&c, "/cam/image_raw/compressed").unwrap();
            assert_eq!((back.encoding.as_str(), &back.data[..]), (enc, &raw.data[..]), "{enc}: PNG is lossless");
        }
    }

    #[test]
    fn image_transport_formats_and_bare_codecs_are_read() {
        let raw = card(32, 16, "rgb8");
        let mut c = compress(&raw, "/t", Compression::Jpeg { quality: 90 }).unwrap();
        assert_eq!(c.format, "rgb8; jpeg compressed bgr8");
        c.format = "jpeg".into();
        assert_eq!(decompress(&c, "/t").unwrap().encoding, "rgb8", "a bare codec gives rgb8 for colour");
        c.format = "bgr8; jpeg compressed bgr8".into();
        let bgr = decompress(&c, "/t").unwrap();
        assert_eq!(bgr.encoding, "bgr8");
        assert_eq!(
            crate::rgb8(&bgr, "/t").unwrap(),
            decompress(&CompressedImage { format: "jpeg".into(), ..c.clone() }, "/t").unwrap().data[..]
        );
        let g = compress(&card(8, 8, "mono8"), "/t", Compression::Png).unwrap();
        assert_eq!(decompress(&CompressedImage { format: "png".into(), ..g }, "/t").unwrap().encoding, "mono8");
    }

    #[test]
    fn bad_input_is_refused_with_the_topic() {
        let raw = card(64, 48, "rgb8");
        let jpeg = compress(&raw, "/t", Compression::Jpeg { quality: 80 }).unwrap();
        let png = compress(&raw, "/t", Compression::Png).unwrap();
        let topic = "/robot/cam/image_raw/compressed";
        let cut = CompressedImage { data: jpeg.data[..jpeg.data.len() / 2].to_vec().into(), ..jpeg.clone() };
        let e = decompress(&cut, topic).unwrap_err().to_string();
        assert!(e.starts_with(topic) && e.contains("truncated"), "{e}");
        let e = decompress(&CompressedImage { format: "rgb8; h264 compressed".into(), ..jpeg.clone() }, topic).unwrap_err().to_string();
        assert!(e.starts_with(topic) && e.contains("'rgb8; h264 compressed'"), "{e}");
        let e = decompress(&CompressedImage { format: "16UC1; compressedDepth png".into(), ..png.clone() }, topic).unwrap_err().to_string();
        assert!(e.contains("compressedDepth"), "{e}");
        let e = decompress(&CompressedImage { format: jpeg.format.clone(), ..png.clone() }, topic).unwrap_err().to_string();
        assert!(e.starts_with(topic) && e.contains("is a PNG"), "{e}");
        let mut garbage = jpeg.data.to_vec();
        garbage[200..400].fill(0xab);
        let e = decompress(&CompressedImage { data: garbage.into(), ..jpeg.clone() }, topic);
        assert!(
            e.is_ok() || e.unwrap_err().to_string().starts_with(topic),
            "corrupt entropy data decodes to noise or is refused, never panics"
        );
        let e = compress(&Image { encoding: "32FC1".into(), ..card(4, 4, "rgba8") }, "/d", Compression::Png).unwrap_err().to_string();
        assert!(e.contains("/d") && e.contains("32FC1"), "{e}");
        assert!(compress(&card(4, 4, "16UC1"), "/d", Compression::Jpeg { quality: 90 }).is_err(), "16-bit JPEG is refused");
        assert!(Compression::parse("webp", 90).unwrap_err().to_string().contains("webp"));
        assert!(Compression::parse("jpeg", 0).unwrap_err().to_string().contains("1 to 100"));
    }
}
