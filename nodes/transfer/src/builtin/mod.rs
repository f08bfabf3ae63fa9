//! The built-in backend: physically based restyling on the CPU.
//!
//! Per frame: geometry from depth → materials per class → lighting (sun, sky,
//! headlights, street lights) → reflections on wet or icy ground → fog →
//! rain or snow → lights seen directly → the camera (motion blur, exposure,
//! bloom and glare, aberration, vignetting, noise, tone mapping). Every stage
//! is a function of the frame, the look, the seed and the stamp alone, so the
//! same input gives the same output and nothing drifts between frames.

pub mod geometry;
pub mod gpu;
mod lights;
mod materials;
pub mod noise;
mod reflect;
mod sensor;
mod weather;

pub use lights::StreetLayout;

use std::time::Instant;

use rayon::prelude::*;

use crate::frame::{Frame, Weights};
use crate::{Backend, Restyled, TransferError};
use geometry::{Geometry, Pose};
use lights::Environment;
use materials::{luminance, srgb_to_linear, Kind, MaterialParams, Sample};
use noise::hash32;
use s2r_look::{Look, Precipitation};

/// How much work per frame. Parsed from `full` or `fast` (anything else is
/// [`TransferError::Preset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Every effect.
    Full,
    /// For 8 cameras at 30 Hz: two texture octaves, no reflections splat,
    /// no motion blur, aberration, glare streaks or noise; bloom at 1/8.
    /// Frames of 64×64 pixels and more are restyled at half resolution and
    /// upsampled along the full-resolution segmentation.
    Fast,
}

impl std::str::FromStr for Preset {
    type Err = TransferError;
    fn from_str(s: &str) -> Result<Preset, TransferError> {
        match s {
            "full" => Ok(Preset::Full),
            "fast" => Ok(Preset::Fast),
            o => Err(TransferError::Preset(o.into())),
        }
    }
}

/// Where the built-in backend runs. Parsed from `cpu`, `gpu` or `auto`
/// (anything else is [`TransferError::Device`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// [`Builtin`]: Rust on the CPU's cores (the reference).
    Cpu,
    /// [`gpu::GpuBuiltin`]: wgpu compute passes on the first adapter.
    Gpu,
    /// The GPU path when a hardware GPU adapter is present and opens, else
    /// the CPU path (a software adapter such as lavapipe is slower than the
    /// CPU path).
    #[default]
    Auto,
}

impl std::str::FromStr for Device {
    type Err = TransferError;
    fn from_str(s: &str) -> Result<Device, TransferError> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu),
            "auto" => Ok(Device::Auto),
            o => Err(TransferError::Device(o.into())),
        }
    }
}

/// The built-in backend with `preset` on `device`. Fails when `device` is
/// [`Device::Gpu`] and no adapter opens ([`TransferError::Gpu`]).
pub fn open(preset: Preset, device: Device) -> Result<Box<dyn Backend>, TransferError> {
    match device {
        Device::Cpu => Ok(Box::new(Builtin::new(preset))),
        Device::Gpu => Ok(Box::new(gpu::GpuBuiltin::new(preset)?)),
        // A hardware GPU that cannot run the passes (too few storage buffers, a lost device) leaves the CPU path.
        Device::Auto if gpu::hardware_adapter().is_some() => open(preset, Device::Gpu).or_else(|_| open(preset, Device::Cpu)),
        Device::Auto => open(preset, Device::Cpu),
    }
}

/// The built-in backend and its scratch buffers (reused between frames).
pub struct Builtin {
    /// How much work per frame; may change between frames.
    pub preset: Preset,
    /// Where the street lights of a road scene stand (they are not in any
    /// message); the default is sim_node's road worlds'.
    pub layout: StreetLayout,
    geo: Geometry,
    hdr: Vec<[f32; 3]>,
    blurred: Vec<[f32; 3]>,
    mirror: Vec<f32>,
    edges: Vec<f32>,
    encoder: sensor::Encoder,
    capture: Option<Vec<StageImage>>,
}

impl Builtin {
    /// A backend with the default street layout and empty scratch buffers
    /// (they grow to the first frame's size).
    pub fn new(preset: Preset) -> Builtin {
        Builtin {
            preset,
            layout: StreetLayout::default(),
            geo: Geometry::default(),
            hdr: Vec::new(),
            blurred: Vec::new(),
            mirror: Vec::new(),
            edges: Vec::new(),
            encoder: sensor::Encoder::default(),
            capture: None,
        }
    }
}

struct Timer {
    at: Instant,
    stages: Vec<(&'static str, f64)>,
}

impl Timer {
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.stages.push((name, (now - self.at).as_secs_f64() * 1e3));
        self.at = now;
    }
}

impl Backend for Builtin {
    fn name(&self) -> String {
        match self.preset {
            Preset::Full => "builtin".into(),
            Preset::Fast => "builtin:fast".into(),
        }
    }

    fn restyle(&mut self, f: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Restyled, TransferError> {
        f.validate()?;
        by_preset(self.preset, f, |frame, _| self.restyle_at(frame, look, weights, seed))
    }
}

/// Restyles `f` as `preset` asks with `restyle_at` (the whole pipeline at a
/// frame's own size): the fast preset on frames of 64×64 and more at half
/// resolution ([`restyle_half`]), else at full. `restyle_at` gets the frame
/// and its stride in `f` (2: every second pixel of each row and column).
pub(crate) fn by_preset(
    preset: Preset,
    f: &Frame,
    restyle_at: impl FnOnce(&Frame, u32) -> Result<Restyled, TransferError>,
) -> Result<Restyled, TransferError> {
    if preset == Preset::Fast && f.width >= 64 && f.height >= 64 {
        return restyle_half(f, |small| restyle_at(small, 2));
    }
    restyle_at(f, 1)
}

/// The fast preset: `restyle` (the whole pipeline) at half resolution, then
/// an upsampling guided by the full-resolution segmentation, so that class
/// boundaries stay where the labels say.
fn restyle_half(f: &Frame, restyle: impl FnOnce(&Frame) -> Result<Restyled, TransferError>) -> Result<Restyled, TransferError> {
    let t0 = Instant::now();
    let (w, h) = (f.width, f.height);
    let (w2, h2) = (w / 2, h / 2);
    // Point-sample every second pixel: depth and classes must not be averaged.
    let pick = |x: usize, y: usize| (2 * y) * w + 2 * x;
    let rgb: Vec<u8> = (0..w2 * h2)
        .flat_map(|i| {
            let j = pick(i % w2, i / w2);
            [f.rgb[j * 3], f.rgb[j * 3 + 1], f.rgb[j * 3 + 2]]
        })
        .collect();
    let depth: Option<Vec<f32>> = f.depth.map(|d| (0..w2 * h2).map(|i| d[pick(i % w2, i / w2)]).collect());
    let seg: Option<Vec<u8>> = f.segmentation.map(|s| (0..w2 * h2).map(|i| s[pick(i % w2, i / w2)]).collect());
    let k = f.intrinsics;
    let mut small = f.clone();
    small.width = w2;
    small.height = h2;
    small.rgb = &rgb;
    small.depth = depth.as_deref();
    small.segmentation = seg.as_deref();
    // Pixel (x, y) of the small image is pixel (2x, 2y) of the large one.
    small.intrinsics = crate::frame::Intrinsics { fx: k.fx / 2.0, fy: k.fy / 2.0, cx: (k.cx - 0.5) / 2.0, cy: (k.cy - 0.5) / 2.0 };
    let downsample = t0.elapsed().as_secs_f64() * 1e3;
    let mut r = restyle(&small)?;
    r.stages.insert(0, ("downsample", downsample));
    let t1 = Instant::now();
    let mut out = vec![0u8; w * h * 3];
    let lo = &r.rgb;
    let full_seg = f.segmentation;
    let small_seg = seg.as_deref();
    out.par_chunks_mut(w * 3).enumerate().for_each(|(y, row)| {
        // Output pixel (x, y) sits at (x/2, y/2) of the small image: on a
        // sample, or halfway between two.
        let y0 = (y / 2).min(h2 - 1);
        let y1 = if y % 2 == 1 { (y0 + 1).min(h2 - 1) } else { y0 };
        for x in 0..w {
            let x0 = (x / 2).min(w2 - 1);
            let x1 = if x % 2 == 1 { (x0 + 1).min(w2 - 1) } else { x0 };
            let taps = [y0 * w2 + x0, y0 * w2 + x1, y1 * w2 + x0, y1 * w2 + x1];
            let (mut c, mut n) = ([0u32; 3], 0u32);
            match (full_seg, small_seg) {
                (Some(fs), Some(ss)) => {
                    // Only samples of this pixel's own class (by the full-resolution labels).
                    let mine = fs[y * w + x];
                    for t in taps {
                        if ss[t] == mine {
                            c = [c[0] + lo[t * 3] as u32, c[1] + lo[t * 3 + 1] as u32, c[2] + lo[t * 3 + 2] as u32];
                            n += 1;
                        }
                    }
                }
                _ => {
                    for t in taps {
                        c = [c[0] + lo[t * 3] as u32, c[1] + lo[t * 3 + 1] as u32, c[2] + lo[t * 3 + 2] as u32];
                    }
                    n = 4;
                }
            }
            match n {
                // No neighbour of this class (a one-pixel sliver): the nearest sample.
                0 => {
                    let t = taps[0];
                    row[x * 3..x * 3 + 3].copy_from_slice(&lo[t * 3..t * 3 + 3]);
                }
                n => {
                    for ch in 0..3 {
                        row[x * 3 + ch] = ((c[ch] + n / 2) / n) as u8;
                    }
                }
            }
        }
    });
    r.stages.push(("guided upsample", t1.elapsed().as_secs_f64() * 1e3));
    Ok(Restyled { rgb: out, width: w, height: h, weights: r.weights, stages: r.stages, extinction: r.extinction })
}

impl Builtin {
    fn restyle_at(&mut self, f: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Restyled, TransferError> {
        let (w, h) = (f.width, f.height);
        let n = w * h;
        let k = f.intrinsics;
        let mut t = Timer { at: Instant::now(), stages: Vec::new() };
        let s = Setup::new(f, look, weights, seed, self.preset == Preset::Fast, &self.layout);

        // Geometry.
        self.geo.compute(f);
        t.lap("geometry");
        if let Some(c) = &mut self.capture {
            c.push(StageImage::normals("geometry", w, h, &self.geo.normal));
        }

        // Materials and direct light.
        let env = &s.env;
        let seg = f.segmentation;
        let tiles = lights::cull(&s.lights, &self.geo.world, &self.geo.distance, w, h);
        let tiles_x = w.div_ceil(lights::TILE);
        self.hdr.resize(n, [0.0; 3]);
        self.mirror.resize(n, 0.0);
        let geo = &self.geo;
        let lin: Vec<f32> = (0..256).map(|c| srgb_to_linear(c as u8)).collect();
        let (input_gain, seg_strength, depth_strength) = (s.input_gain, s.seg_strength, s.depth_strength);
        let inv_f = 1.0 / k.fx;
        self.hdr.par_chunks_mut(w).zip(self.mirror.par_chunks_mut(w)).enumerate().for_each(|(v, (row, mrow))| {
            for u in 0..w {
                let i = v * w + u;
                let input = [lin[f.rgb[i * 3] as usize], lin[f.rgb[i * 3 + 1] as usize], lin[f.rgb[i * 3 + 2] as usize]];
                let class = seg.map(|s| s[i]).unwrap_or(255);
                let d = geo.distance[i];
                let kind = match seg.map(|_| s.kinds[class as usize]) {
                    Some(Kind::Sky) if d.is_finite() => Kind::Generic,
                    Some(kind) => kind,
                    None => Kind::Generic,
                };
                if !d.is_finite() && (kind == Kind::Sky || f.depth.is_some()) {
                    let sky = env.sky(geo.view[i]);
                    // Without segmentation weight, keep the flat sky's hue.
                    row[u] = lights::mix(
                        [input[0] * input_gain * 0.5, input[1] * input_gain * 0.5, input[2] * input_gain * 0.5],
                        sky,
                        seg_strength.max(depth_strength),
                    );
                    mrow[u] = 0.0;
                    continue;
                }
                let nrm = geo.normal[i];
                let to_eye = [-geo.view[i][0], -geo.view[i][1], -geo.view[i][2]];
                let grazing = geometry::dot(nrm, to_eye).abs().max(0.15);
                let footprint = if d.is_finite() { d * inv_f / grazing } else { 1.0 };
                let key =
                    (class as u32) << 24 ^ ((input[0] * 31.0) as u32) << 10 ^ ((input[1] * 31.0) as u32) << 5 ^ (input[2] * 31.0) as u32;
                let sample = Sample { kind, p: geo.world[i], n: nrm, footprint, input, key };
                let surf = materials::surface(&sample, &s.materials);
                let tile = &tiles[(v / lights::TILE) * tiles_x + u / lights::TILE];
                let c = lights::shade(&surf, geo.world[i], nrm, to_eye, env, tile, depth_strength);
                row[u] = [c[0] + surf.emissive[0], c[1] + surf.emissive[1], c[2] + surf.emissive[2]];
                mrow[u] = if f.depth.is_some() { surf.mirror * depth_strength } else { 0.0 };
            }
        });
        t.lap("materials+lighting");
        self.snap("materials+lighting", w, h, s.env.exposure);

        if !s.fast && f.depth.is_some() && self.mirror.iter().any(|&m| m > 0.0) {
            reflect::reflect(&mut self.hdr, &self.geo, &self.mirror, &k, w, h, env, &s.sprites, true);
        } else if s.fast {
            // The fast preset mirrors only the sky.
            for i in 0..n {
                let m = self.mirror[i];
                if m > 0.0 {
                    let v = self.geo.view[i];
                    self.hdr[i] = reflect::blend(self.hdr[i], env.sky([v[0], v[1], -v[2]]), m, v, self.geo.normal[i]);
                }
            }
        }
        t.lap("reflections");
        self.snap("reflections", w, h, s.env.exposure);

        weather::fog(&mut self.hdr, &self.geo.distance, s.beta, env, s.sky_fog);
        t.lap("fog");
        self.snap("fog", w, h, s.env.exposure);

        let pv = s.particle_view(f);
        let particles = weather::particles(&mut self.hdr, &pv, look, env, &s.lights);
        weather::sprites(&mut self.hdr, &pv, &s.sprites);
        t.lap("particles+lights");
        self.snap("particles+lights", w, h, s.env.exposure);

        // The camera.
        let src: &[[f32; 3]] = match &s.motion {
            Some((before, amount)) => {
                sensor::motion_blur(&self.hdr, &mut self.blurred, &self.geo, before, &k, w, h, *amount);
                &self.blurred
            }
            None => &self.hdr,
        };
        t.lap("motion blur");
        if let Some(c) = &mut self.capture {
            c.push(StageImage::hdr("motion blur", w, h, src, s.env.exposure, &self.encoder));
        }
        let bright = sensor::bright_pass(src, w, h, s.bloom_factor, s.threshold);
        let bloom = bright.blurred(s.bloom_radius);
        let glare = s.glare.map(|_| bright.streaked(GLARE_RADIUS));
        let glow = sensor::glow(&bloom, s.bloom_gain, glare.as_ref().zip(s.glare), s.lens_dirt, s.seed32);
        t.lap("bloom+glare");
        if let Some(c) = &mut self.capture {
            c.push(StageImage::hdr("bloom+glare", glow.w, glow.h, &glow.px, s.env.exposure, &self.encoder));
        }
        if s.edge > 0.0 {
            // The edge control: the flat frame's structure, as a luminance high-pass.
            self.edges.resize(n, 0.0);
            let l = |i: usize| {
                (77 * f.rgb[i * 3] as u32 + 150 * f.rgb[i * 3 + 1] as u32 + 29 * f.rgb[i * 3 + 2] as u32) as f32 * (1.0 / (256.0 * 255.0))
            };
            self.edges.par_chunks_mut(w).enumerate().for_each(|(v, row)| {
                for (u, e) in row.iter_mut().enumerate() {
                    let i = v * w + u;
                    let (le, ri) = (if u > 0 { i - 1 } else { i }, if u + 1 < w { i + 1 } else { i });
                    let (up, dn) = (if v > 0 { i - w } else { i }, if v + 1 < h { i + w } else { i });
                    // The pixel against the mean of its four neighbours.
                    *e = (l(i) - 0.25 * (l(le) + l(ri) + l(up) + l(dn))) * (4.0 / 9.0) * 2.0;
                }
            });
        }
        let finish = sensor::Finish {
            exposure: s.env.exposure,
            glow: Some(&glow),
            aberration: s.aberration,
            vignette: s.vignette,
            shot: s.shot,
            read: s.read,
            seed: s.frame_seed,
            edges: (s.edge > 0.0).then(|| (&self.edges[..], s.edge)),
        };
        let mut out = vec![0u8; n * 3];
        sensor::finish(src, &mut out, w, h, &k, &finish, &self.encoder);
        t.lap("sensor+tonemap");
        if let Some(c) = &mut self.capture {
            c.push(StageImage { name: "sensor+tonemap", width: w, height: h, rgb: out.clone() });
        }
        let _ = particles;
        Ok(Restyled { rgb: out, width: w, height: h, weights: s.effective, stages: t.stages, extinction: s.beta })
    }

    /// With stage capture on, the HDR image as it stands after `stage`.
    fn snap(&mut self, stage: &'static str, w: usize, h: usize, exposure: f32) {
        if let Some(c) = &mut self.capture {
            c.push(StageImage::hdr(stage, w, h, &self.hdr, exposure, &self.encoder));
        }
    }

    /// Restyles `frame` at its own resolution (whatever the preset's
    /// resolution rule) and returns what every stage produced, as 8-bit
    /// pictures: the normals after geometry (`(n + 1) / 2`), the HDR image
    /// after each lighting and weather stage and after motion blur, the glow
    /// image (bloom, glare and lens dirt, at its low resolution), each
    /// exposed and tone-mapped as the sensor would, and the final frame. What
    /// the GPU backend is compared with stage by stage.
    pub fn stage_images(&mut self, frame: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Vec<StageImage>, TransferError> {
        frame.validate()?;
        self.capture = Some(Vec::new());
        let r = self.restyle_at(frame, look, weights, seed);
        let images = self.capture.take().unwrap_or_default();
        r.map(|_| images)
    }
}

/// The glare streak's blur radius, pixels of the bloom image.
const GLARE_RADIUS: usize = 28;

/// One stage's result as an 8-bit picture ([`Builtin::stage_images`]).
#[derive(Clone, Debug)]
pub struct StageImage {
    /// The stage, as in [`Restyled::stages`].
    pub name: &'static str,
    /// Pixels per row (the bloom image is smaller than the frame).
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// rgb8, row-major.
    pub rgb: Vec<u8>,
}

impl StageImage {
    /// An HDR image exposed and tone-mapped as the sensor does.
    pub(crate) fn hdr(
        name: &'static str,
        width: usize,
        height: usize,
        px: &[[f32; 3]],
        exposure: f32,
        enc: &sensor::Encoder,
    ) -> StageImage {
        let rgb = px[..width * height].iter().flat_map(|c| c.map(|v| enc.tonemap(v * exposure))).collect();
        StageImage { name, width, height, rgb }
    }

    /// Unit normals as colours, `(n + 1) / 2`.
    pub(crate) fn normals(name: &'static str, width: usize, height: usize, n: &[[f32; 3]]) -> StageImage {
        let rgb = n[..width * height].iter().flat_map(|c| c.map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)).collect();
        StageImage { name, width, height, rgb }
    }
}

/// What a frame's stages need beyond its pixels: the light, the materials'
/// parameters and every camera setting, computed once per frame the same way
/// for the CPU and the GPU paths.
pub(crate) struct Setup {
    /// The control weights in force.
    pub effective: Weights,
    pub fast: bool,
    pub seed32: u32,
    /// The seed of this frame's sensor noise (seed and stamp).
    pub frame_seed: u32,
    pub env: Environment,
    /// The material of every class id.
    pub kinds: Vec<Kind>,
    /// The camera's pose (identity when unknown).
    pub camera: Pose,
    pub lights: Vec<lights::Light>,
    pub sprites: Vec<lights::Sprite>,
    pub input_gain: f32,
    pub seg_strength: f32,
    pub depth_strength: f32,
    pub materials: MaterialParams,
    /// Fog extinction per metre, and how much fog hides the sky.
    pub beta: f32,
    pub sky_fog: f32,
    /// The pose one shutter interval earlier and the blur amount, when motion blur runs.
    pub motion: Option<(Pose, f32)>,
    /// Bloom: downscale factor, blur radius, threshold, gain; glare gain when glare runs.
    pub bloom_factor: usize,
    pub bloom_radius: usize,
    pub threshold: f32,
    pub bloom_gain: f32,
    pub glare: Option<f32>,
    pub lens_dirt: f32,
    pub aberration: f32,
    pub vignette: f32,
    pub shot: f32,
    pub read: f32,
    /// The edge control's strength (0: off).
    pub edge: f32,
    /// Seconds of the frame's stamp (particles move with it).
    pub seconds: f64,
}

impl Setup {
    pub(crate) fn new(f: &Frame, look: &Look, weights: &Weights, seed: u64, fast: bool, layout: &StreetLayout) -> Setup {
        let n = f.width * f.height;
        let effective = weights.effective(f.controls());
        let rel = effective.relative();
        let seed32 = (seed ^ (seed >> 32)) as u32;
        let frame_seed = hash32(seed32 ^ hash32(f.stamp_ns as u32) ^ hash32((f.stamp_ns >> 32) as u32 ^ 0x5bd1_e995));
        let env = Environment::new(look);
        let kinds: Vec<Kind> = (0..256).map(|c| f.class_names.get(c).map(|n| Kind::of(n)).unwrap_or(Kind::Generic)).collect();
        let has_road = f.segmentation.is_some_and(|s| s.iter().step_by(97).any(|&c| kinds[c as usize] == Kind::Road));
        let camera = f.camera_to_world.as_ref().map(Pose::from_isometry).unwrap_or(Pose::IDENTITY);
        let (lights, sprites) = lights::scene_lights(f, look, layout, has_road, &camera);
        // The flat frame's colours as reflectances: its mean (every 64th pixel's) brought to 18% grey.
        let mean_lum = {
            let s: f64 = f
                .rgb
                .par_chunks(3 * 64)
                .map(|c| luminance([srgb_to_linear(c[0]), srgb_to_linear(c[1]), srgb_to_linear(c[2])]) as f64)
                .sum();
            (s / n.div_ceil(64) as f64) as f32
        };
        let input_gain = (0.18 / mean_lum.max(1e-3)).clamp(0.5, 8.0);
        let seg_strength = if f.segmentation.is_some() { rel.seg } else { 0.0 };
        let depth_strength = if f.depth.is_some() { rel.depth } else { 0.0 };
        let materials = MaterialParams::new(look, seg_strength, rel.vis, seed32, fast, input_gain);
        let beta = weather::extinction(look) * if f.depth.is_some() { rel.depth.max(0.3) } else { 0.0 };
        let sky_fog =
            (look.fog * 0.9 + if look.precipitation != Precipitation::None { 0.2 * look.precipitation_intensity } else { 0.0 }).min(0.95);
        let blur = look.motion_blur.max(if look.dashcam { 0.25 } else { 0.0 });
        let motion = match &f.camera_to_world_before {
            Some(before) if !fast && blur > 0.0 && f.depth.is_some() => Some((Pose::from_isometry(before), blur)),
            _ => None,
        };
        let dark = look.time.is_dark();
        let grain = look.grain + if dark { 0.35 } else { 0.1 };
        Setup {
            effective,
            fast,
            seed32,
            frame_seed,
            threshold: 1.0 / env.exposure,
            env,
            kinds,
            camera,
            lights,
            sprites,
            input_gain,
            seg_strength,
            depth_strength,
            materials,
            beta,
            sky_fog,
            motion,
            bloom_factor: if fast { 8 } else { 4 },
            bloom_radius: if fast { 2 } else { (5.0 + 8.0 * look.fog) as usize },
            bloom_gain: 0.12 + 0.3 * look.fog + if dark { 0.1 } else { 0.0 },
            glare: (!fast && look.glare > 0.0).then_some(0.12 * look.glare),
            lens_dirt: if fast { 0.0 } else { look.lens_dirt },
            aberration: if fast {
                0.0
            } else if look.dashcam {
                2.0
            } else {
                0.6
            },
            vignette: if look.dashcam { 0.7 } else { 0.35 },
            shot: if fast { 0.0 } else { 0.0015 * grain },
            read: if fast { 0.0 } else { 0.01 * grain },
            edge: if rel.edge > 0.0 { 0.6 * rel.edge } else { 0.0 },
            seconds: f.stamp_ns as f64 * 1e-9,
        }
    }

    /// What particle and light-source drawing needs of the frame.
    pub(crate) fn particle_view<'a>(&self, f: &Frame<'a>) -> weather::ParticleView<'a> {
        weather::ParticleView {
            width: f.width,
            height: f.height,
            k: f.intrinsics,
            camera: self.camera,
            depth: f.depth,
            seconds: self.seconds,
            seed: self.seed32,
            beta: self.beta,
        }
    }
}
