//! The simulator's labels of a camera's frame carried into the codec's view
//! of that frame (the `size`×`size` centre square the tokenizer samples), so
//! that a generated rig is a perception training set: the labels say what
//! was at each camera's instant, the generated view is what the model made
//! of it.
//!
//! Depth and segmentation take the frame pixel nearest each view pixel's
//! centre (as [`crate::reproject::view_depth`]: never averaged across an
//! object's edge); boxes are mapped by the same similarity (the one
//! [`crate::rig::Camera::view`] applies to the principal point) and clipped
//! to the view, their visibility scaled by the share of the box left inside.

use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::vision_msgs::msg::Detection2DArray;

use crate::reproject::{nearest_pixels, square};

/// Bytes a pixel of `img`: by its encoding, else as its row step says.
fn bytes_per_pixel(img: &Image) -> usize {
    match img.encoding.as_str() {
        "mono8" | "8UC1" => 1,
        "mono16" | "16UC1" => 2,
        "rgb8" | "bgr8" => 3,
        "32FC1" | "rgba8" | "bgra8" => 4,
        _ => img.step as usize / (img.width as usize).max(1),
    }
}

/// `img` (any encoding of whole pixels: depth, class ids) sampled at the
/// nearest frame pixel of each pixel centre of its `size`×`size` view (rows
/// of the result unpadded); `None` when its rows or buffer are shorter than
/// its encoding and header say.
pub fn view_nearest(img: &Image, size: usize) -> Option<Image> {
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 {
        return None;
    }
    let bpp = bytes_per_pixel(img);
    if bpp == 0 || (img.step as usize) < w * bpp || img.data.len() < img.step as usize * (h - 1) + w * bpp {
        return None;
    }
    let mut data = Vec::with_capacity(size * size * bpp);
    for (x, y) in nearest_pixels(w, h, size) {
        let at = y * img.step as usize + x * bpp;
        data.extend_from_slice(&img.data[at..at + bpp]);
    }
    Some(Image {
        header: img.header.clone(),
        height: size as u32,
        width: size as u32,
        encoding: img.encoding.clone(),
        is_bigendian: img.is_bigendian,
        step: (size * bpp) as u32,
        data: data.into(),
    })
}

/// Boxes of a `w`×`h` frame in its `size`×`size` view: mapped, clipped to
/// the view, and dropped when less than two view pixels wide or high remain;
/// each box's visibility (its first hypothesis's score) is scaled by the
/// share of its area left. Coordinates are the simulator's: pixel centres at
/// integers (a box from column a to column b has centre (a + b)/2 and width
/// b − a + 1), in the frame and in the view alike.
pub fn view_boxes(dets: &Detection2DArray, w: usize, h: usize, size: usize) -> Detection2DArray {
    let (x0, y0, step) = square(w, h, size);
    // View pixel u's centre lies over frame coordinate x0 + (u + ½)·step.
    let to_view = |x: f64, origin: f64| (x - origin) / step - 0.5;
    // The view spans [−½, size − ½].
    let (lo, hi) = (-0.5, size as f64 - 0.5);
    let mut out = Detection2DArray { header: dets.header.clone(), detections: Vec::new() };
    for d in &dets.detections {
        let (cx, cy) = (d.bbox.center.position.x, d.bbox.center.position.y);
        let (bw, bh) = (d.bbox.size_x, d.bbox.size_y);
        let (l, r) = (to_view(cx - bw / 2.0, x0), to_view(cx + bw / 2.0, x0));
        let (t, b) = (to_view(cy - bh / 2.0, y0), to_view(cy + bh / 2.0, y0));
        let (cl, cr, ct, cb) = (l.max(lo), r.min(hi), t.max(lo), b.min(hi));
        if cr - cl < 2.0 || cb - ct < 2.0 {
            continue;
        }
        let kept = ((cr - cl) * (cb - ct)) / ((r - l) * (b - t)).max(1e-9);
        let mut v = d.clone();
        v.bbox.center.position.x = (cl + cr) / 2.0;
        v.bbox.center.position.y = (ct + cb) / 2.0;
        v.bbox.size_x = cr - cl;
        v.bbox.size_y = cb - ct;
        if let Some(hyp) = v.results.first_mut() {
            hyp.hypothesis.score *= kept.min(1.0);
        }
        out.detections.push(v);
    }
    out
}

/// Keeps of a generated view's labels only what the view has evidence for:
/// `valid` says per view pixel (row-major) whether the source camera's
/// pixels landed there (the reprojection). Elsewhere depth becomes 0 and
/// the class every byte 0xFF (255: unknown) — perception's losses skip
/// both; each box's visibility is scaled by the share of its pixels covered,
/// so a box the view does not show falls below perception's visibility
/// floor, which makes its cells neither object nor background.
pub fn keep_covered(depth: &mut Image, classes: &mut Image, boxes: &mut Detection2DArray, valid: &[bool]) {
    for (img, fill) in [(depth, 0u8), (classes, 0xFF)] {
        let (w, h) = (img.width as usize, img.height as usize);
        if w * h != valid.len() || (img.step as usize) < w * bytes_per_pixel(img) || img.data.len() < img.step as usize * h {
            continue;
        }
        let bpp = bytes_per_pixel(img);
        let mut data = img.data.to_vec();
        for (p, _) in valid.iter().enumerate().filter(|(_, v)| !**v) {
            let at = (p / w) * img.step as usize + (p % w) * bpp;
            data[at..at + bpp].fill(fill);
        }
        img.data = data.into();
    }
    let side = (valid.len() as f64).sqrt() as usize;
    for d in &mut boxes.detections {
        let (cx, cy) = (d.bbox.center.position.x, d.bbox.center.position.y);
        let (hw, hh) = (d.bbox.size_x / 2.0, d.bbox.size_y / 2.0);
        // The pixels whose centres lie in the box (pixel centres at integers).
        let range = |lo: f64, hi: f64| -> std::ops::Range<usize> {
            let a = lo.ceil().max(0.0) as usize;
            let b = (hi.floor() + 1.0).clamp(0.0, side as f64) as usize;
            a..b.max(a)
        };
        let (xs, ys) = (range(cx - hw, cx + hw), range(cy - hh, cy + hh));
        let inside = xs.len() * ys.len();
        let covered = ys.flat_map(|y| xs.clone().map(move |x| (x, y))).filter(|&(x, y)| valid[y * side + x]).count();
        let share = if inside == 0 { 0.0 } else { covered as f64 / inside as f64 };
        if let Some(hyp) = d.results.first_mut() {
            hyp.hypothesis.score *= share;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim2real_msgs::vision_msgs::msg::{Detection2D, ObjectHypothesisWithPose};

    fn det(cx: f64, cy: f64, w: f64, h: f64) -> Detection2D {
        let mut d = Detection2D::default();
        d.bbox.center.position.x = cx;
        d.bbox.center.position.y = cy;
        d.bbox.size_x = w;
        d.bbox.size_y = h;
        let mut hyp = ObjectHypothesisWithPose::default();
        hyp.hypothesis.class_id = "pedestrian".into();
        hyp.hypothesis.score = 1.0;
        d.results.push(hyp);
        d
    }

    #[test]
    fn class_ids_follow_the_views_sampling() {
        // A 320×240 frame whose class id is its column / 10 (one byte a pixel).
        let (w, h) = (320usize, 240usize);
        let data: Vec<u8> = (0..h).flat_map(|_| (0..w).map(|x| (x / 10) as u8)).collect();
        let img =
            Image { width: w as u32, height: h as u32, encoding: "mono8".into(), step: w as u32, data: data.into(), ..Default::default() };
        let v = view_nearest(&img, 256).unwrap();
        assert_eq!((v.width, v.height, v.step, v.data.len()), (256, 256, 256, 256 * 256));
        // The view's first pixel centre lies over frame column 40.47 (the
        // square's left edge), its last over 279.53 (the tokenizer's sampling).
        assert_eq!(v.data[0], 4);
        assert_eq!(v.data[255], 28);
        // Every row alike.
        assert_eq!(&v.data[..256], &v.data[255 * 256..]);
        // Two bytes a pixel (16-bit depth) keep their pairs.
        let depth: Vec<u8> = (0..h).flat_map(|_| (0..w).flat_map(|x| (x as u16).to_le_bytes())).collect();
        let img = Image {
            width: w as u32,
            height: h as u32,
            encoding: "16UC1".into(),
            step: 2 * w as u32,
            data: depth.into(),
            ..Default::default()
        };
        let v = view_nearest(&img, 256).unwrap();
        let col = |x: usize| u16::from_le_bytes([v.data[2 * x], v.data[2 * x + 1]]);
        assert_eq!(col(0), 40);
        assert_eq!(col(255), 280);
        // Padded rows (step beyond the pixels) are read by their step.
        let data: Vec<u8> = (0..h).flat_map(|_| (0..w + 8).map(|x| (x.min(w - 1) / 10) as u8)).collect();
        let padded = Image {
            width: w as u32,
            height: h as u32,
            encoding: "mono8".into(),
            step: (w + 8) as u32,
            data: data.into(),
            ..Default::default()
        };
        let v = view_nearest(&padded, 256).unwrap();
        assert_eq!((v.step, v.data[0], v.data[255]), (256, 4, 28));
        // A short buffer is refused.
        let short = Image { data: vec![0; 10].into(), ..img };
        assert!(view_nearest(&short, 256).is_none());
    }

    #[test]
    fn only_what_the_reprojection_covers_is_taught() {
        // A 4×4 view whose left half the source covers.
        let valid: Vec<bool> = (0..16).map(|p| p % 4 < 2).collect();
        let mut depth = Image {
            width: 4,
            height: 4,
            encoding: "32FC1".into(),
            step: 16,
            data: (0..16).flat_map(|_| 7.5f32.to_le_bytes()).collect::<Vec<u8>>().into(),
            ..Default::default()
        };
        let mut classes =
            Image { width: 4, height: 4, encoding: "mono8".into(), step: 4, data: vec![3u8; 16].into(), ..Default::default() };
        let mut boxes = Detection2DArray {
            detections: vec![
                // Columns 0–1: covered.
                det(0.5, 1.5, 2.0, 2.0),
                // Columns 1–2: half.
                det(1.5, 1.5, 2.0, 2.0),
                // Columns 2–3: not at all.
                det(2.5, 1.5, 2.0, 2.0),
            ],
            ..Default::default()
        };
        keep_covered(&mut depth, &mut classes, &mut boxes, &valid);
        let d: Vec<f32> = depth.data.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        for (p, (&depth, &class)) in d.iter().zip(classes.data.iter()).enumerate() {
            let want = if p % 4 < 2 { (7.5, 3) } else { (0.0, 255) };
            assert_eq!((depth, class), want, "pixel {p}");
        }
        let vis: Vec<f64> = boxes.detections.iter().map(|d| d.results[0].hypothesis.score).collect();
        assert_eq!(vis, [1.0, 0.5, 0.0]);
    }

    #[test]
    fn boxes_map_and_clip_into_the_view() {
        let dets = Detection2DArray {
            detections: vec![
                // Inside the centre square: scaled by 256/240 about its corner.
                det(160.0, 120.0, 60.0, 30.0),
                // Half outside on the left (the square's edge is at 40): clipped, visibility halved.
                det(40.0, 120.0, 40.0, 40.0),
                // Wholly in the left strip the square leaves out: dropped.
                det(15.0, 100.0, 20.0, 20.0),
            ],
            ..Default::default()
        };
        let v = view_boxes(&dets, 320, 240, 256);
        assert_eq!(v.detections.len(), 2);
        let a = &v.detections[0].bbox;
        let k = 256.0 / 240.0;
        // Frame point (160, 120) is view point (120/step − ½, 120/step − ½) = (127.5, 127.5).
        assert!((a.center.position.x - 127.5).abs() < 1e-9, "{}", a.center.position.x);
        assert!((a.center.position.y - 127.5).abs() < 1e-9);
        assert!((a.size_x - 60.0 * k).abs() < 1e-9 && (a.size_y - 30.0 * k).abs() < 1e-9);
        assert_eq!(v.detections[0].results[0].hypothesis.score, 1.0);
        let b = &v.detections[1];
        assert!((b.bbox.center.position.x - b.bbox.size_x / 2.0 + 0.5).abs() < 1e-9);
        let kept = b.results[0].hypothesis.score;
        assert!((kept - 0.5).abs() < 1e-9, "{kept}");
    }
}
