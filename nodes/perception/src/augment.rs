//! Training examples: a sample cut to the network's input through a view
//! (random zoom, shift and mirror while training), then photometric
//! augmentation meant to cover what real cameras do and the simulator does
//! not: colour casts, exposure and contrast, defocus and motion blur, sensor
//! noise, JPEG artefacts, and occluders (cutout).

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::data::{decode_depth, Sample};
use crate::frame::{View, PAD};

/// A sample at the network's input, with its labels in input pixels.
#[derive(Clone, Debug)]
pub struct Example {
    /// Interleaved RGB, `w`×`h`.
    pub rgb: Vec<u8>,
    /// Input width.
    pub w: usize,
    /// Input height.
    pub h: usize,
    /// Depth in metres per input pixel (NaN where unknown).
    pub depth: Vec<f32>,
    /// Segmentation class per input pixel, 255 where unknown (padding).
    pub seg: Vec<u8>,
    /// Boxes in input pixels: (segmentation class, [x0, y0, x1, y1], visible fraction).
    pub objects: Vec<(usize, [f32; 4], f32)>,
    /// The camera's focal length in input pixels.
    pub fx: f32,
}

/// Which augmentations, and how strong.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    /// Zoom range over the letterboxed frame (1 = whole frame; 2 = a quarter of it).
    pub zoom: (f32, f32),
    /// Mirror half of the examples.
    pub flip: bool,
    /// Probability of colour jitter (exposure, contrast, saturation, white balance).
    pub color: f32,
    /// Probability of a blur.
    pub blur: f32,
    /// Probability of sensor noise.
    pub noise: f32,
    /// Probability of JPEG compression at quality 20–90.
    pub jpeg: f32,
    /// Probability of 1–3 cutout rectangles.
    pub cutout: f32,
}

impl Augment {
    /// What training uses by default.
    pub const DEFAULT: Augment = Augment { zoom: (0.85, 1.6), flip: true, color: 0.8, blur: 0.2, noise: 0.3, jpeg: 0.3, cutout: 0.3 };
    /// Nothing: the letterboxed frame as it is.
    pub const NONE: Augment = Augment { zoom: (1.0, 1.0), flip: false, color: 0.0, blur: 0.0, noise: 0.0, jpeg: 0.0, cutout: 0.0 };
}

/// The view of a training example: a `w`×`h` window of the frame at the
/// scale the network sees it at inference (letterboxed into `net`), zoomed
/// by a random factor in `aug.zoom`, at a random place, mirrored at random.
pub fn random_view(sw: usize, sh: usize, net: (usize, usize), w: usize, h: usize, aug: &Augment, rng: &mut StdRng) -> View {
    let base = View::letterbox(sw, sh, net.0, net.1);
    let z = if aug.zoom.1 > aug.zoom.0 { rng.random_range(aug.zoom.0..aug.zoom.1) } else { aug.zoom.0 };
    let k = base.k / z;
    // The crop's top-left corner: anywhere that keeps the crop inside the
    // source when it is smaller, centred jitter when it is larger.
    let span = |src: f32, crop: f32, rng: &mut StdRng| {
        if crop <= src {
            rng.random_range(0.0..=(src - crop))
        } else {
            (src - crop) / 2.0 + rng.random_range(-0.25..=0.25) * (crop - src)
        }
    };
    let ox = span(sw as f32, k * w as f32, rng);
    let oy = span(sh as f32, k * h as f32, rng);
    View { k, ox, oy, flip: aug.flip && rng.random_bool(0.5), w, h }
}

/// The example of `sample` through `view`, augmented with `aug` (photometric
/// parts only; the view carries the geometric ones).
pub fn example(sample: &Sample, view: &View, aug: &Augment, rng: &mut StdRng) -> Example {
    let l = &sample.labels;
    let mut rgb = view.sample_rgb(&sample.rgb, l.w, l.h);
    let depth = view.sample_nearest(&l.depth, l.w, l.h, 0).into_iter().map(decode_depth).collect();
    let seg = view.sample_nearest(&l.seg, l.w, l.h, 255);
    let objects = l.objects.iter().map(|o| (o.class, view.box_to_input(o.bbox), o.visible)).collect();
    photometric(&mut rgb, view.w, view.h, aug, rng);
    Example { rgb, w: view.w, h: view.h, depth, seg, objects, fx: l.fx / view.k }
}

/// The photometric augmentations, each with its probability, in the order a camera applies them.
pub fn photometric(rgb: &mut [u8], w: usize, h: usize, aug: &Augment, rng: &mut StdRng) {
    if rng.random_bool(aug.color as f64) {
        color(rgb, rng);
    }
    if rng.random_bool(aug.blur as f64) {
        let passes = rng.random_range(1..=2);
        for _ in 0..passes {
            blur(rgb, w, h);
        }
    }
    if rng.random_bool(aug.noise as f64) {
        let sigma = rng.random_range(2.0..10.0f32);
        let n = Normal::new(0.0f32, sigma).expect("a positive sigma");
        for v in rgb.iter_mut() {
            *v = (*v as f32 + n.sample(rng)).round().clamp(0.0, 255.0) as u8;
        }
    }
    if rng.random_bool(aug.cutout as f64) {
        for _ in 0..rng.random_range(1..=3) {
            let (cw, ch) = ((rng.random_range(0.05..0.2) * w as f32) as usize, (rng.random_range(0.05..0.2) * h as f32) as usize);
            let (x0, y0) = (rng.random_range(0..w - cw.min(w - 1)), rng.random_range(0..h - ch.min(h - 1)));
            let fill = if rng.random_bool(0.5) { [PAD; 3] } else { [rng.random(), rng.random(), rng.random()] };
            for y in y0..(y0 + ch).min(h) {
                for x in x0..(x0 + cw).min(w) {
                    rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&fill);
                }
            }
        }
    }
    if rng.random_bool(aug.jpeg as f64) {
        jpeg(rgb, w, h, rng.random_range(20..=90));
    }
}

/// Exposure, contrast, saturation and a white-balance cast.
fn color(rgb: &mut [u8], rng: &mut impl Rng) {
    let gain = rng.random_range(0.6..1.4f32);
    let contrast = rng.random_range(0.7..1.3f32);
    let saturation = rng.random_range(0.5..1.4f32);
    let cast: [f32; 3] = [rng.random_range(0.88..1.12), 1.0, rng.random_range(0.88..1.12)];
    let mean = rgb.iter().map(|&v| v as f32).sum::<f32>() / rgb.len().max(1) as f32;
    for px in rgb.chunks_exact_mut(3) {
        let luma = 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32;
        for c in 0..3 {
            let v = luma + (px[c] as f32 - luma) * saturation;
            let v = mean + (v - mean) * contrast;
            px[c] = (v * gain * cast[c]).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// A 3×3 binomial blur (edges clamped).
fn blur(rgb: &mut [u8], w: usize, h: usize) {
    let src = rgb.to_vec();
    let k = [1.0f32, 2.0, 1.0];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut s = 0.0;
                for (j, kj) in k.iter().enumerate() {
                    for (i, ki) in k.iter().enumerate() {
                        let xx = (x + i).saturating_sub(1).min(w - 1);
                        let yy = (y + j).saturating_sub(1).min(h - 1);
                        s += kj * ki * src[(yy * w + xx) * 3 + c] as f32;
                    }
                }
                rgb[(y * w + x) * 3 + c] = (s / 16.0).round() as u8;
            }
        }
    }
}

/// Through a JPEG encoder and decoder at `quality`.
fn jpeg(rgb: &mut [u8], w: usize, h: usize, quality: u8) {
    let mut buf = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut buf, quality);
    if enc.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb).is_err() {
        return;
    }
    if let Ok(img) = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
        let back = img.to_rgb8();
        if back.len() == rgb.len() {
            rgb.copy_from_slice(&back);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_views_stay_on_the_frame_and_augmentations_change_pixels() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let v = random_view(320, 240, (320, 240), 160, 128, &Augment::DEFAULT, &mut rng);
            let (x0, y0) = v.to_source(0.0, 0.0);
            let (x1, y1) = v.to_source(160.0, 128.0);
            let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            assert!((0.0..=320.0).contains(&cx) && (0.0..=240.0).contains(&cy), "{v:?}");
        }
        let (w, h) = (32, 24);
        let orig: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        let all = Augment { color: 1.0, blur: 1.0, noise: 1.0, jpeg: 1.0, cutout: 1.0, ..Augment::DEFAULT };
        let mut a = orig.clone();
        photometric(&mut a, w, h, &all, &mut rng);
        assert_ne!(a, orig);
        let mut b = orig.clone();
        photometric(&mut b, w, h, &Augment::NONE, &mut rng);
        assert_eq!(b, orig);
    }
}
