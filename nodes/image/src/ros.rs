//! `sensor_msgs/Image` to the plain buffers the stages compute on, with the
//! conversions a robotics user expects and refusals that name the topic.

use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::std_msgs::msg::Header;

use crate::ImageError;

/// The rows of an image, each `bytes_per_px * width` long (row padding cut).
pub(crate) fn rows<'a>(img: &'a Image, topic: &str, bytes_per_px: usize) -> Result<impl Iterator<Item = &'a [u8]>, ImageError> {
    let (w, h, step) = (img.width as usize, img.height as usize, img.step as usize);
    if w == 0 || h == 0 {
        return Err(ImageError::Empty { topic: topic.into(), width: img.width, height: img.height });
    }
    let row = w * bytes_per_px;
    if step < row {
        return Err(ImageError::Step { topic: topic.into(), step, width: w, encoding: img.encoding.clone(), row });
    }
    let needed = step * (h - 1) + row;
    if img.data.len() < needed {
        return Err(ImageError::Truncated {
            topic: topic.into(),
            len: img.data.len(),
            width: w,
            height: h,
            encoding: img.encoding.clone(),
            step,
            needed,
        });
    }
    Ok(img.data.chunks(step).take(h).map(move |r| &r[..row]))
}

fn refuse(img: &Image, topic: &str, expected: &'static str) -> ImageError {
    ImageError::Encoding { topic: topic.into(), encoding: img.encoding.clone(), expected }
}

/// A colour image as rgb8, row-major without padding: rgb8, bgr8, rgba8,
/// bgra8, mono8 and 8UC3 (taken as bgr8) are converted.
pub fn rgb8(img: &Image, topic: &str) -> Result<Vec<u8>, ImageError> {
    let n = img.width as usize * img.height as usize;
    let mut out = Vec::with_capacity(n * 3);
    match img.encoding.as_str() {
        "rgb8" => rows(img, topic, 3)?.for_each(|r| out.extend_from_slice(r)),
        "bgr8" | "8UC3" => rows(img, topic, 3)?.for_each(|r| r.chunks_exact(3).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]]))),
        "rgba8" => rows(img, topic, 4)?.for_each(|r| r.chunks_exact(4).for_each(|p| out.extend_from_slice(&p[..3]))),
        "bgra8" => rows(img, topic, 4)?.for_each(|r| r.chunks_exact(4).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]]))),
        "mono8" | "8UC1" => rows(img, topic, 1)?.for_each(|r| r.iter().for_each(|&p| out.extend_from_slice(&[p, p, p]))),
        _ => return Err(refuse(img, topic, "a colour image this node reads (rgb8, bgr8, rgba8, bgra8, mono8)")),
    }
    Ok(out)
}

/// Depth in metres: 32FC1 as is, 16UC1 (or mono16) as millimetres, where 0
/// (no depth) becomes infinity.
pub fn depth_m(img: &Image, topic: &str) -> Result<Vec<f32>, ImageError> {
    let big = img.is_bigendian != 0;
    let mut out = Vec::with_capacity(img.width as usize * img.height as usize);
    match img.encoding.as_str() {
        "32FC1" => rows(img, topic, 4)?.for_each(|r| {
            r.chunks_exact(4).for_each(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                out.push(if big { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) })
            })
        }),
        "16UC1" | "mono16" => out.extend(ids(img, topic)?.into_iter().map(|mm| if mm == 0 { f32::INFINITY } else { mm as f32 / 1000.0 })),
        _ => return Err(refuse(img, topic, "depth (32FC1 metres or 16UC1 millimetres)")),
    }
    Ok(out)
}

/// Class ids, one byte per pixel: mono8 or 8UC1.
pub fn classes(img: &Image, topic: &str) -> Result<Vec<u8>, ImageError> {
    match img.encoding.as_str() {
        "mono8" | "8UC1" => Ok(rows(img, topic, 1)?.flat_map(|r| r.iter().copied()).collect()),
        _ => Err(refuse(img, topic, "a class-id image (mono8 or 8UC1)")),
    }
}

/// Two bytes per pixel, mono16 or 16UC1 (either byte order): instance ids,
/// or depth in millimetres ([`depth_m`] reads them so).
pub fn ids(img: &Image, topic: &str) -> Result<Vec<u16>, ImageError> {
    let big = img.is_bigendian != 0;
    match img.encoding.as_str() {
        "mono16" | "16UC1" => Ok(rows(img, topic, 2)?
            .flat_map(|r| r.chunks_exact(2).map(|b| if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) }))
            .collect()),
        _ => Err(refuse(img, topic, "an instance-id image (mono16 or 16UC1)")),
    }
}

/// A `sensor_msgs/Image` of row-major, unpadded, little-endian pixels of
/// `bytes_per_pixel` bytes in `encoding`.
pub fn image_msg(header: Header, width: usize, height: usize, encoding: &str, bytes_per_pixel: usize, data: Vec<u8>) -> Image {
    Image {
        header,
        height: height as u32,
        width: width as u32,
        encoding: encoding.into(),
        is_bigendian: 0,
        step: (width * bytes_per_pixel) as u32,
        data: data.into(),
    }
}

/// An rgb8 `sensor_msgs/Image` of `rgb` (row-major, no padding).
pub fn rgb8_msg(header: Header, width: usize, height: usize, rgb: Vec<u8>) -> Image {
    image_msg(header, width, height, "rgb8", 3, rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(enc: &str, w: u32, h: u32, step: u32, data: Vec<u8>) -> Image {
        Image { width: w, height: h, encoding: enc.into(), step, data: data.into(), ..Default::default() }
    }

    #[test]
    fn encodings_convert_or_are_refused_by_topic() {
        assert_eq!(rgb8(&img("bgr8", 1, 1, 3, vec![1, 2, 3]), "/t").unwrap(), vec![3, 2, 1]);
        assert_eq!(rgb8(&img("rgba8", 1, 1, 4, vec![1, 2, 3, 4]), "/t").unwrap(), vec![1, 2, 3]);
        assert_eq!(rgb8(&img("mono8", 2, 1, 4, vec![7, 8, 0, 0]), "/t").unwrap(), vec![7, 7, 7, 8, 8, 8], "row padding skipped");
        let e = rgb8(&img("yuv422", 2, 2, 4, vec![0; 8]), "/sim/front/image_raw").unwrap_err().to_string();
        assert!(e.contains("/sim/front/image_raw") && e.contains("yuv422"), "{e}");
        let e = rgb8(&img("rgb8", 4, 4, 12, vec![0; 20]), "/cam").unwrap_err().to_string();
        assert!(e.contains("/cam") && e.contains("20 bytes"), "{e}");
        let e = rgb8(&img("rgb8", 4, 1, 6, vec![0; 12]), "/cam").unwrap_err().to_string();
        assert!(e.contains("step 6 is shorter than a row of 4 rgb8 pixels (12 bytes)"), "{e}");
        assert!(rgb8(&img("rgb8", 0, 4, 0, vec![]), "/cam").unwrap_err().to_string().contains("empty image 0x4"));
        assert_eq!(depth_m(&img("16UC1", 2, 1, 4, vec![0xe8, 0x03, 0, 0]), "/d").unwrap(), vec![1.0, f32::INFINITY]);
        assert!(classes(&img("rgb8", 1, 1, 3, vec![0; 3]), "/seg").unwrap_err().to_string().contains("/seg"));
    }

    #[test]
    fn rgb8_message_round_trips() {
        let m = rgb8_msg(Header::default(), 2, 1, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!((m.step, m.encoding.as_str()), (6, "rgb8"));
        assert_eq!(rgb8(&m, "/x").unwrap(), [1, 2, 3, 4, 5, 6]);
    }
}
