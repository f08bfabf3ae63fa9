//! ROS images to the buffers a restyling takes, with the conversions a
//! robotics user expects and refusals that name the topic and the problem.

use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};

use crate::frame::Intrinsics;

fn rows<'a>(img: &'a Image, topic: &str, bytes_per_px: usize) -> Result<impl Iterator<Item = &'a [u8]>, String> {
    let (w, h, step) = (img.width as usize, img.height as usize, img.step as usize);
    if w == 0 || h == 0 {
        return Err(format!("{topic}: empty image {w}x{h}"));
    }
    let row = w * bytes_per_px;
    if step < row {
        return Err(format!("{topic}: step {step} is shorter than a row of {w} {} pixels ({row} bytes)", img.encoding));
    }
    if img.data.len() < step * (h - 1) + row {
        return Err(format!(
            "{topic}: {} bytes of data, a {w}x{h} {} image with step {step} needs {}",
            img.data.len(),
            img.encoding,
            step * (h - 1) + row
        ));
    }
    Ok(img.data.chunks(step).take(h).map(move |r| &r[..row]))
}

/// A colour image as rgb8: rgb8, bgr8, rgba8, bgra8, mono8 and 8UC3 (taken as bgr8) are converted.
pub fn rgb8(img: &Image, topic: &str) -> Result<Vec<u8>, String> {
    let n = img.width as usize * img.height as usize;
    let mut out = Vec::with_capacity(n * 3);
    match img.encoding.as_str() {
        "rgb8" => rows(img, topic, 3)?.for_each(|r| out.extend_from_slice(r)),
        "bgr8" | "8UC3" => rows(img, topic, 3)?.for_each(|r| r.chunks_exact(3).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]]))),
        "rgba8" => rows(img, topic, 4)?.for_each(|r| r.chunks_exact(4).for_each(|p| out.extend_from_slice(&p[..3]))),
        "bgra8" => rows(img, topic, 4)?.for_each(|r| r.chunks_exact(4).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]]))),
        "mono8" | "8UC1" => rows(img, topic, 1)?.for_each(|r| r.iter().for_each(|&p| out.extend_from_slice(&[p, p, p]))),
        e => return Err(format!("{topic}: encoding '{e}' is not a colour image this node reads (rgb8, bgr8, rgba8, bgra8, mono8)")),
    }
    Ok(out)
}

/// Depth in metres: 32FC1 as is, 16UC1 as millimetres (0 = no depth).
pub fn depth_m(img: &Image, topic: &str) -> Result<Vec<f32>, String> {
    let big = img.is_bigendian != 0;
    let mut out = Vec::with_capacity(img.width as usize * img.height as usize);
    match img.encoding.as_str() {
        "32FC1" => rows(img, topic, 4)?.for_each(|r| {
            r.chunks_exact(4).for_each(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                out.push(if big { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) })
            })
        }),
        "16UC1" | "mono16" => rows(img, topic, 2)?.for_each(|r| {
            r.chunks_exact(2).for_each(|b| {
                let mm = if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) };
                out.push(if mm == 0 { f32::INFINITY } else { mm as f32 / 1000.0 })
            })
        }),
        e => return Err(format!("{topic}: encoding '{e}' is not depth (32FC1 metres or 16UC1 millimetres)")),
    }
    Ok(out)
}

/// Class ids: mono8 or 8UC1.
pub fn classes(img: &Image, topic: &str) -> Result<Vec<u8>, String> {
    match img.encoding.as_str() {
        "mono8" | "8UC1" => Ok(rows(img, topic, 1)?.flat_map(|r| r.iter().copied()).collect()),
        e => Err(format!("{topic}: encoding '{e}' is not a class-id image (mono8 or 8UC1)")),
    }
}

/// Intrinsics from CameraInfo's K; None for an uncalibrated (all-zero) K.
pub fn intrinsics(info: &CameraInfo) -> Option<Intrinsics> {
    let k = &info.k;
    (k[0] > 0.0 && k[4] > 0.0).then(|| Intrinsics { fx: k[0] as f32, fy: k[4] as f32, cx: k[2] as f32, cy: k[5] as f32 })
}

/// An rgb8 Image message.
pub fn image_msg(header: sim2real_msgs::std_msgs::msg::Header, width: usize, height: usize, rgb: Vec<u8>) -> Image {
    Image {
        header,
        height: height as u32,
        width: width as u32,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: width as u32 * 3,
        data: rgb.into(),
    }
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
        let e = rgb8(&img("yuv422", 2, 2, 4, vec![0; 8]), "/sim/front/image_raw").unwrap_err();
        assert!(e.contains("/sim/front/image_raw") && e.contains("yuv422"), "{e}");
        let e = rgb8(&img("rgb8", 4, 4, 12, vec![0; 20]), "/cam").unwrap_err();
        assert!(e.contains("/cam") && e.contains("20 bytes"), "{e}");
        assert_eq!(depth_m(&img("16UC1", 2, 1, 4, vec![0xe8, 0x03, 0, 0]), "/d").unwrap(), vec![1.0, f32::INFINITY]);
        assert!(classes(&img("rgb8", 1, 1, 3, vec![0; 3]), "/seg").unwrap_err().contains("/seg"));
    }
}
