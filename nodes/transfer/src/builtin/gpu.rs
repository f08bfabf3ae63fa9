//! The built-in backend on the GPU: the same stages as [`Builtin`](super::Builtin)
//! as wgpu compute passes (`gpu.wgsl`), on any adapter wgpu opens (Vulkan,
//! Metal, DX12; lavapipe on a machine without a GPU).
//!
//! Per frame the colour image, the classes and the depth go up once, and the
//! finished rgb8 image comes back once; everything between (geometry, the
//! HDR image, the reflection and bloom images, the particles) stays on the
//! device. The per-frame constants (light, materials, camera) are the CPU
//! path's own ([`Setup`]); the sRGB, palette and tone-mapping tables are
//! uploaded from the CPU path's, and the noise lattice is the same hash
//! computed in the shader, so the two paths agree to rounding: `tests/gpu.rs`
//! compares them stage by stage.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use super::lights::{Light, Sprite, StreetLayout};
use super::materials::{srgb_to_linear, CAR_PAINTS, HAIR, SKIN, TOPS, TROUSERS};
use super::weather::Fall;
use super::{by_preset, sensor, Preset, Setup, StageImage, GLARE_RADIUS};
use crate::frame::{Frame, Weights};
use crate::{Backend, Restyled, TransferError};
use s2r_look::Look;

/// A pass and its workgroup counts (x, y).
type Dispatch = (Pass, (u32, u32));

/// The shader's entry points, in the order a frame runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Pack,
    Geometry,
    Cull,
    Materials,
    GroundPartial,
    Ground,
    Splat,
    Resolve,
    Gather,
    SpriteStreaks,
    Reflections,
    SkyMirror,
    Fog,
    Particles,
    SpriteDiscs,
    BinDraw,
    BinStreaks,
    BinSort,
    Draw,
    MotionBlur,
    Bright,
    BloomH,
    BloomV,
    Streak,
    Glow,
    Finish,
}

const PASSES: [Pass; 26] = [
    Pass::Pack,
    Pass::Geometry,
    Pass::Cull,
    Pass::Materials,
    Pass::GroundPartial,
    Pass::Ground,
    Pass::Splat,
    Pass::Resolve,
    Pass::Gather,
    Pass::SpriteStreaks,
    Pass::Reflections,
    Pass::SkyMirror,
    Pass::Fog,
    Pass::Particles,
    Pass::SpriteDiscs,
    Pass::BinDraw,
    Pass::BinStreaks,
    Pass::BinSort,
    Pass::Draw,
    Pass::MotionBlur,
    Pass::Bright,
    Pass::BloomH,
    Pass::BloomV,
    Pass::Streak,
    Pass::Glow,
    Pass::Finish,
];

impl Pass {
    fn entry(self) -> &'static str {
        match self {
            Pass::Pack => "pack",
            Pass::Geometry => "geometry",
            Pass::Cull => "cull",
            Pass::Materials => "materials",
            Pass::GroundPartial => "ground_partial",
            Pass::Ground => "ground",
            Pass::Splat => "splat",
            Pass::Resolve => "resolve",
            Pass::Gather => "gather",
            Pass::SpriteStreaks => "sprite_streaks",
            Pass::Reflections => "reflections",
            Pass::SkyMirror => "sky_mirror",
            Pass::Fog => "fog",
            Pass::Particles => "particles",
            Pass::BinDraw => "bin_draw",
            Pass::BinStreaks => "bin_streaks",
            Pass::BinSort => "bin_sort",
            Pass::SpriteDiscs => "sprite_discs",
            Pass::Draw => "draw",
            Pass::MotionBlur => "motion_blur",
            Pass::Bright => "bright",
            Pass::BloomH => "bloom_h",
            Pass::BloomV => "bloom_v",
            Pass::Streak => "streak",
            Pass::Glow => "glow",
            Pass::Finish => "finish",
        }
    }
}

// Flags in Params::dims2[3] (as gpu.wgsl).
const HAS_DEPTH: u32 = 1;
const HAS_SEG: u32 = 2;
const FAST: u32 = 4;
const SRC_BLURRED: u32 = 8;
const EDGES: u32 = 16;
const GLARE: u32 = 32;
const PARTICLES: u32 = 64;

/// Light tiles and item blocks, pixels on a side (as gpu.wgsl).
const TILE: usize = 16;
const BLOCK: usize = 8;
/// Items a block lists before it falls back to the whole list.
const BLOCK_CAP: usize = 63;
/// Offsets into the tables buffer (as gpu.wgsl).
const PALETTES_AT: usize = 512;
const LUT_AT: usize = 640;
const TABLES: usize = LUT_AT + 65536;

/// gpu.wgsl's `Params`, field for field.
#[repr(C)]
#[derive(Clone, Copy, Default, Pod, Zeroable)]
struct Params {
    dims: [u32; 4],
    dims2: [u32; 4],
    dims3: [u32; 4],
    counts: [u32; 4],
    grid: [i32; 4],
    grid2: [u32; 4],
    seeds: [u32; 4],
    radii: [u32; 4],
    off: [u32; 4],
    off2: [u32; 4],
    off3: [u32; 4],
    off4: [u32; 4],
    k: [f32; 4],
    kinv: [f32; 4],
    cam: [[f32; 4]; 3],
    before: [[f32; 4]; 3],
    mat: [f32; 4],
    mat2: [f32; 4],
    mat3: [f32; 4],
    sun_dir: [f32; 4],
    sun: [f32; 4],
    ambient: [f32; 4],
    zenith: [f32; 4],
    horizon: [f32; 4],
    airlight: [f32; 4],
    fog: [f32; 4],
    fin: [f32; 4],
    fin2: [f32; 4],
    part: [f32; 4],
}

fn v4(v: [f32; 3], w: f32) -> [f32; 4] {
    [v[0], v[1], v[2], w]
}

fn pose_rows(p: &super::geometry::Pose) -> [[f32; 4]; 3] {
    [v4(p.r[0], p.t[0]), v4(p.r[1], p.t[1]), v4(p.r[2], p.t[2])]
}

/// Where each region lies in the frame's buffers, and how many dispatches a pass needs.
#[derive(Clone, Copy, Debug, Default)]
struct Layout {
    w: usize,
    h: usize,
    tiles: (usize, usize),
    blocks: usize,
    mirror: (usize, usize),
    small: (usize, usize),
    particles: usize,
    /// vec4 offsets in px: hdr, blurred, mirror colours, particles, bright,
    /// scratch, bloom, streak, glow, light sources; then its length.
    px: [usize; 11],
    /// u32 offsets in words: light tiles, block lists, output, ground
    /// partials, ground, reflection splats; then its length.
    words: [usize; 7],
}

impl Layout {
    fn new(w: usize, h: usize, lights: usize, sprites: usize, particles: usize, bloom_factor: usize) -> Layout {
        let n = w * h;
        let tiles = (w.div_ceil(TILE), h.div_ceil(TILE));
        let blocks = w.div_ceil(BLOCK) * h.div_ceil(BLOCK);
        let mirror = (w.div_ceil(2), h.div_ceil(2));
        let small = (w.div_ceil(bloom_factor), h.div_ceil(bloom_factor));
        let (nt, nm, ns) = (tiles.0 * tiles.1, mirror.0 * mirror.1, small.0 * small.1);
        let mut px = [0usize; 11];
        let sizes = [n, n, nm, 3 * particles.max(1), ns, ns, ns, ns, ns, 4 * sprites.max(1)];
        for (i, s) in sizes.iter().enumerate() {
            px[i + 1] = px[i] + s;
        }
        let mut words = [0usize; 7];
        let sizes = [nt * (lights + 1), 2 * blocks * BLOCK_CAP, n, 2 * nt, 2, 2 * n];
        for (i, s) in sizes.iter().enumerate() {
            words[i + 1] = words[i] + s;
        }
        Layout { w, h, tiles, blocks, mirror, small, particles, px, words }
    }
}

/// A frame whose images are already on the backend's device: the render
/// targets of a renderer that shares it ([`GpuBuiltin::on_device`]), e.g.
/// the simulator's. The CPU copies in the [`Frame`] restyled with it must be
/// the same images (they give the frame's constants: mean luminance, which
/// classes are present); the pixels the passes read come from here.
#[derive(Clone, Copy, Debug)]
pub struct DeviceFrame<'a> {
    /// The colour image, Rgba8Unorm (alpha ignored), the frame's size.
    pub color: &'a wgpu::Texture,
    /// Depth along the optical axis in metres, R32Float; needed when the frame has depth.
    pub depth: Option<&'a wgpu::Texture>,
    /// Class ids, R8Uint; needed when the frame has segmentation.
    pub class: Option<&'a wgpu::Texture>,
}

/// A buffer that grows to the largest frame seen.
struct Grown {
    buffer: wgpu::Buffer,
    bytes: u64,
}

/// The frame-sized buffers and the bind group over them.
struct Frames {
    inp: Grown,
    scene: Grown,
    geo: Grown,
    px: Grown,
    words: Grown,
    atom: Grown,
    readback: Grown,
    group: wgpu::BindGroup,
}

/// The built-in backend on a wgpu device. Gives the same pictures as
/// [`Builtin`](super::Builtin) to rounding (≥ 40 dB PSNR per stage, see `tests/gpu.rs`).
pub struct GpuBuiltin {
    /// How much work per frame; may change between frames.
    pub preset: Preset,
    /// Where the street lights of a road scene stand.
    pub layout: StreetLayout,
    /// Wait for the device after every stage, so that [`Restyled::stages`]
    /// times each stage (slower: the stages no longer overlap).
    pub profile: bool,
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: String,
    bind_layout: wgpu::BindGroupLayout,
    /// The render targets' bind group (the pack pass's group 1).
    targets_layout: wgpu::BindGroupLayout,
    /// Stand-ins for absent depth or classes (1 × 1).
    no_depth: wgpu::Texture,
    no_class: wgpu::Texture,
    pipelines: Vec<wgpu::ComputePipeline>,
    params: wgpu::Buffer,
    tables: wgpu::Buffer,
    frames: Option<Frames>,
    failure: Arc<Mutex<Option<String>>>,
    encoder: sensor::Encoder,
    capture: Option<Vec<StageImage>>,
}

/// The first hardware GPU adapter (integrated, discrete or virtual; not a
/// software rasteriser such as lavapipe), if any.
pub fn hardware_adapter() -> Option<String> {
    instance()
        .enumerate_adapters(wgpu::Backends::PRIMARY)
        .into_iter()
        .map(|a| a.get_info())
        .find(|i| i.device_type != wgpu::DeviceType::Cpu)
        .map(|i| describe(&i))
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(&wgpu::InstanceDescriptor { backends: wgpu::Backends::PRIMARY, ..Default::default() })
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

impl GpuBuiltin {
    /// Opens the first adapter wgpu finds (a discrete GPU first) and builds
    /// the passes. Fails with [`TransferError::Gpu`] when there is no
    /// adapter (no Vulkan, Metal or DX12 driver) or the device refuses.
    pub fn new(preset: Preset) -> Result<GpuBuiltin, TransferError> {
        let adapter = pollster::block_on(instance().request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .ok_or_else(|| TransferError::Gpu { adapter: "none".into(), problem: "no GPU adapter (a Vulkan, Metal or DX12 driver)".into() })?;
        let name = describe(&adapter.get_info());
        let have = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffers_per_shader_stage: 8,
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..wgpu::Limits::downlevel_defaults()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(
            &wgpu::DeviceDescriptor {
                label: Some("transfer_node"),
                required_features: wgpu::Features::empty(),
                required_limits: limits,
                memory_hints: wgpu::MemoryHints::Performance,
            },
            None,
        ))
        .map_err(|e| TransferError::Gpu { adapter: name.clone(), problem: e.to_string() })?;
        // wgpu's default for errors nobody catches is a panic; on its own device the
        // backend reports them instead (every frame also runs in error scopes).
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = failure.clone();
        device.on_uncaptured_error(Box::new(move |e| {
            let mut f = sink.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(e.to_string());
            }
        }));
        let mut g = GpuBuiltin::on_device(device, queue, &name, preset)?;
        g.failure = failure;
        Ok(g)
    }

    /// The backend on a device the caller opened (the simulator's, so that
    /// both share one GPU); `adapter` names it in errors. The device needs 8
    /// storage buffers per shader stage. The caller's error handler stays:
    /// the backend catches its own errors in error scopes.
    pub fn on_device(device: wgpu::Device, queue: wgpu::Queue, adapter: &str, preset: Preset) -> Result<GpuBuiltin, TransferError> {
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let scopes = Scopes::push(&device);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("transfer builtin"),
            source: wgpu::ShaderSource::Wgsl(include_str!("gpu.wgsl").into()),
        });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("transfer builtin"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(size_of::<Params>() as u64),
                    },
                    count: None,
                },
                storage(1, false),
                storage(2, true),
                storage(3, true),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                storage(7, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("transfer builtin"),
            bind_group_layouts: &[&bind_layout],
            push_constant_ranges: &[],
        });
        let texture = |binding: u32, sample_type: wgpu::TextureSampleType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Texture { sample_type, view_dimension: wgpu::TextureViewDimension::D2, multisampled: false },
            count: None,
        };
        let targets_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("render targets"),
            entries: &[
                texture(0, wgpu::TextureSampleType::Float { filterable: false }),
                texture(1, wgpu::TextureSampleType::Float { filterable: false }),
                texture(2, wgpu::TextureSampleType::Uint),
            ],
        });
        let pack_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("pack"),
            bind_group_layouts: &[&bind_layout, &targets_layout],
            push_constant_ranges: &[],
        });
        let one = |format, label| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d { width: 1, height: 1, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            })
        };
        let no_depth = one(wgpu::TextureFormat::R32Float, "no depth");
        let no_class = one(wgpu::TextureFormat::R8Uint, "no classes");
        let pipelines = PASSES
            .iter()
            .map(|p| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(p.entry()),
                    layout: Some(if *p == Pass::Pack { &pack_layout } else { &pipeline_layout }),
                    module: &module,
                    entry_point: Some(p.entry()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let tables = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tables"),
            size: (TABLES * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let encoder = sensor::Encoder::default();
        let mut t = vec![0u32; TABLES];
        for (c, v) in t[256..512].iter_mut().enumerate() {
            *v = srgb_to_linear(c as u8).to_bits();
        }
        let palettes = [&CAR_PAINTS[..], &TROUSERS[..], &TOPS[..], &SKIN[..], &HAIR[..]].concat();
        for (v, c) in t[PALETTES_AT..].iter_mut().zip(palettes.iter().flatten()) {
            *v = c.to_bits();
        }
        for (i, v) in t[LUT_AT..].iter_mut().enumerate() {
            *v = encoder.entry(i) as u32;
        }
        queue.write_buffer(&tables, 0, bytemuck::cast_slice(&t));
        if let Some(e) = scopes.pop() {
            return Err(TransferError::Gpu { adapter: adapter.to_string(), problem: e.to_string() });
        }
        Ok(GpuBuiltin {
            preset,
            layout: StreetLayout::default(),
            profile: false,
            device,
            queue,
            adapter: adapter.to_string(),
            bind_layout,
            targets_layout,
            no_depth,
            no_class,
            pipelines,
            params,
            tables,
            frames: None,
            failure,
            encoder,
            capture: None,
        })
    }

    /// The adapter, as "name (backend, device type)".
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// Restyles `frame` at its own resolution and returns what every stage
    /// produced, as [`Builtin::stage_images`](super::Builtin::stage_images) does.
    pub fn stage_images(&mut self, frame: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Vec<StageImage>, TransferError> {
        frame.validate()?;
        self.capture = Some(Vec::new());
        let r = self.restyle_at(frame, look, weights, seed, None);
        let images = self.capture.take().unwrap_or_default();
        r.map(|_| images)
    }

    fn error(&self, problem: impl Into<String>) -> TransferError {
        TransferError::Gpu { adapter: self.adapter.clone(), problem: problem.into() }
    }

    /// The first error the device reported, if any.
    fn check(&self) -> Result<(), TransferError> {
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(self.error(e)),
            None => Ok(()),
        }
    }

    /// Makes every frame buffer at least as large as `l` needs.
    fn ensure(&mut self, l: &Layout, scene_vec4s: usize) -> Result<(), TransferError> {
        let n = l.w * l.h;
        let need = [
            (2 * n * 4) as u64,
            (scene_vec4s.max(1) * 16) as u64,
            (3 * n * 16) as u64,
            (l.px[10] * 16) as u64,
            (l.words[6] * 4) as u64,
            (atom_words(l) * 4) as u64,
            (n * 4) as u64,
        ];
        let groups = self.device.limits().max_compute_workgroups_per_dimension as usize;
        if l.w.div_ceil(8) > groups || l.h.div_ceil(8) > groups || l.particles.div_ceil(64) > groups {
            return Err(self.error(format!("a {}x{} frame needs more than {groups} workgroups along one dimension", l.w, l.h)));
        }
        let limit = self.device.limits().max_storage_buffer_binding_size as u64;
        if let Some(b) = need[..6].iter().find(|&&b| b > limit) {
            return Err(self.error(format!("a {}x{} frame needs a {b}-byte buffer; the device binds at most {limit} bytes", l.w, l.h)));
        }
        let fits = self
            .frames
            .as_ref()
            .is_some_and(|f| [&f.inp, &f.scene, &f.geo, &f.px, &f.words, &f.atom, &f.readback].iter().zip(need).all(|(g, b)| g.bytes >= b));
        if fits {
            return Ok(());
        }
        let old = self.frames.take();
        let grow = |old: Option<&Grown>, bytes: u64, usage: wgpu::BufferUsages, label: &str| -> Grown {
            match old {
                Some(g) if g.bytes >= bytes => Grown { buffer: g.buffer.clone(), bytes: g.bytes },
                _ => Grown {
                    buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: bytes,
                        usage,
                        mapped_at_creation: false,
                    }),
                    bytes,
                },
            }
        };
        use wgpu::BufferUsages as U;
        let o = old.as_ref();
        let inp = grow(o.map(|f| &f.inp), need[0], U::STORAGE | U::COPY_DST, "input");
        let scene = grow(o.map(|f| &f.scene), need[1], U::STORAGE | U::COPY_DST, "scene");
        let geo = grow(o.map(|f| &f.geo), need[2], U::STORAGE | U::COPY_SRC, "geometry");
        let px = grow(o.map(|f| &f.px), need[3], U::STORAGE | U::COPY_SRC, "images");
        let words = grow(o.map(|f| &f.words), need[4], U::STORAGE | U::COPY_SRC, "words");
        let atom = grow(o.map(|f| &f.atom), need[5], U::STORAGE | U::COPY_DST, "mirror and block counters");
        let readback = grow(o.map(|f| &f.readback), need[6], U::MAP_READ | U::COPY_DST, "readback");
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("transfer builtin"),
            layout: &self.bind_layout,
            entries: &[
                entry(0, &self.params),
                entry(1, &inp.buffer),
                entry(2, &self.tables),
                entry(3, &scene.buffer),
                entry(4, &geo.buffer),
                entry(5, &px.buffer),
                entry(6, &words.buffer),
                entry(7, &atom.buffer),
            ],
        });
        self.frames = Some(Frames { inp, scene, geo, px, words, atom, readback, group });
        Ok(())
    }

    /// Reads `bytes` bytes of `buffer` from `offset` (capture only: it waits for the device).
    fn read(&self, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>, TransferError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("capture"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        self.map(&staging)?;
        let data = staging.slice(..).get_mapped_range().to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Waits for the device's work; a lost device (wgpu panics) is an error.
    fn wait(&self) -> Result<(), TransferError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.device.poll(wgpu::Maintain::Wait)))
            .map(|_| ())
            .map_err(|_| self.error("the device was lost"))
    }

    /// Maps a buffer for reading, waiting for the device. A read-back that
    /// does not complete after the device went idle is an error, not a hang.
    fn map(&self, buffer: &wgpu::Buffer) -> Result<(), TransferError> {
        let (tx, rx) = std::sync::mpsc::channel();
        buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        for _ in 0..3 {
            self.wait()?;
            self.check()?;
            match rx.try_recv() {
                Ok(r) => return r.map_err(|e| self.error(format!("read-back: {e}"))),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(self.error("the read-back was dropped")),
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
        }
        Err(self.error("the read-back did not complete (the device stopped answering)"))
    }

    /// With capture on, the vec4 image at `offset` (px) as an exposed, tone-mapped picture.
    fn snap(&mut self, name: &'static str, offset: usize, w: usize, h: usize, exposure: f32) -> Result<(), TransferError> {
        if self.capture.is_none() {
            return Ok(());
        }
        let frames = self.frames.as_ref().ok_or_else(|| self.error("no frame buffers"))?;
        let data = self.read(&frames.px.buffer, (offset * 16) as u64, (w * h * 16) as u64)?;
        let v: &[[f32; 4]] = bytemuck::cast_slice(&data);
        let rgb: Vec<[f32; 3]> = v.iter().map(|c| [c[0], c[1], c[2]]).collect();
        let img = StageImage::hdr(name, w, h, &rgb, exposure, &self.encoder);
        if let Some(c) = &mut self.capture {
            c.push(img);
        }
        Ok(())
    }

    /// Restyles `f` at its own size; its pixels from `on_device` when given
    /// (texel (s x, s y) for pixel (x, y), stride s), else uploaded from `f`.
    /// The device's errors during the frame are this frame's error; after
    /// one, the frame buffers are made afresh (nothing stale or left mapped).
    fn restyle_at(
        &mut self,
        f: &Frame,
        look: &Look,
        weights: &Weights,
        seed: u64,
        on_device: Option<(&DeviceFrame, u32)>,
    ) -> Result<Restyled, TransferError> {
        let scopes = Scopes::push(&self.device);
        let r = self.frame(f, look, weights, seed, on_device);
        let r = match (r, scopes.pop()) {
            (Ok(_), Some(e)) => Err(self.error(e.to_string())),
            (r, _) => r,
        };
        if r.is_err() {
            self.frames = None;
        }
        r
    }

    fn frame(
        &mut self,
        f: &Frame,
        look: &Look,
        weights: &Weights,
        seed: u64,
        on_device: Option<(&DeviceFrame, u32)>,
    ) -> Result<Restyled, TransferError> {
        let t0 = Instant::now();
        let (w, h) = (f.width, f.height);
        let n = w * h;
        let k = f.intrinsics;
        let s = Setup::new(f, look, weights, seed, self.preset == Preset::Fast, &self.layout);

        // Particles: one per thread, in the cells weather::particles walks.
        let fall = Fall::of(look, s.camera.t, s.seconds);
        let particles = fall.as_ref().map_or(0, Fall::count);
        // First cell and cell count along i, j, k; the fall's per-cell count, speed, reach, time.
        let span = |r: &std::ops::Range<i32>| (r.start, r.len().max(1) as u32);
        let [(i0, ni), (j0, nj), (k0, nk)] = fall.as_ref().map_or([(0, 1); 3], |f| [span(&f.i), span(&f.j), span(&f.k)]);
        let per_cell = fall.as_ref().map_or(1, |f| f.per_cell.max(1));
        let part = fall.as_ref().map_or([0.0; 4], |f| [f.t, f.speed, f.reach, f.snow as u32 as f32]);

        let l = Layout::new(w, h, s.lights.len(), s.sprites.len(), particles, s.bloom_factor);
        let scene = scene_words(&s.lights, &s.sprites);
        self.ensure(&l, scene.len())?;

        let mut flags = 0;
        for (on, bit) in [
            (f.depth.is_some(), HAS_DEPTH),
            (f.segmentation.is_some(), HAS_SEG),
            (s.fast, FAST),
            (s.motion.is_some(), SRC_BLURRED),
            (s.edge > 0.0, EDGES),
            (s.glare.is_some(), GLARE),
            (particles > 0, PARTICLES),
        ] {
            if on {
                flags |= bit;
            }
        }
        let u = |x: usize| x as u32;
        let env = &s.env;
        let m = &s.materials;
        let (before, blur) = s.motion.unwrap_or((s.camera, 0.0));
        let p = Params {
            dims: [u(w), u(h), u(l.tiles.0), u(l.tiles.1)],
            dims2: [u(l.small.0), u(l.small.1), u(s.bloom_factor), flags],
            dims3: [u(l.mirror.0), u(l.mirror.1), 0, 0],
            counts: [u(s.lights.len()), u(s.sprites.len()), u(particles), per_cell],
            grid: [i0, j0, k0, 0],
            grid2: [ni, nj, nk, 0],
            seeds: [s.seed32, s.frame_seed, m.octaves, 0],
            radii: [u(s.bloom_radius), u(GLARE_RADIUS), on_device.map_or(1, |d| d.1), 0],
            off: [u(l.px[0]), u(l.px[1]), u(l.px[2]), u(l.px[3])],
            off2: [u(l.px[4]), u(l.px[5]), u(l.px[6]), u(l.px[7])],
            off3: [u(l.px[8]), u(l.words[0]), u(l.words[1]), u(l.words[2])],
            off4: [u(l.words[3]), u(l.words[4]), u(l.px[9]), u(l.words[5])],
            k: [k.fx, k.fy, k.cx, k.cy],
            kinv: [1.0 / k.fx, 1.0 / k.fy, 0.0, 0.0],
            cam: pose_rows(&s.camera),
            before: pose_rows(&before),
            mat: [m.seg, m.vis, m.snow_cover, m.wet],
            mat2: [m.icy as u32 as f32, m.reflections, m.dark as u32 as f32, m.input_gain],
            mat3: [s.depth_strength, s.seg_strength, 0.0, 0.0],
            sun_dir: v4(env.sun_dir, env.exposure),
            sun: v4(env.sun, 0.0),
            ambient: v4(env.ambient, 0.0),
            zenith: v4(env.sky_zenith, 0.0),
            horizon: v4(env.sky_horizon, 0.0),
            airlight: v4(env.airlight, 0.0),
            fog: [s.beta, s.sky_fog, blur, s.threshold],
            fin: [s.aberration, s.vignette, s.shot, s.read],
            fin2: [s.edge, s.bloom_gain, s.glare.unwrap_or(0.0), s.lens_dirt],
            part,
        };

        // Up: the parameters, the scene's lights, the pixels (colour and class
        // in one word, depth) unless they are on the device already.
        let targets = match on_device {
            Some((d, _)) => Some(self.targets_group(f, d)?),
            None => None,
        };
        let frames = self.frames.as_ref().ok_or_else(|| self.error("no frame buffers"))?;
        if targets.is_none() {
            let mut inp = vec![0u32; if f.depth.is_some() { 2 * n } else { n }];
            let (words, depth_words) = inp.split_at_mut(n);
            let seg = f.segmentation;
            words.par_chunks_mut(4096).enumerate().for_each(|(c, chunk)| {
                for (j, o) in chunk.iter_mut().enumerate() {
                    let i = c * 4096 + j;
                    let class = seg.map(|s| s[i]).unwrap_or(255) as u32;
                    *o = f.rgb[3 * i] as u32 | (f.rgb[3 * i + 1] as u32) << 8 | (f.rgb[3 * i + 2] as u32) << 16 | class << 24;
                }
            });
            if let Some(d) = f.depth {
                for (o, z) in depth_words.iter_mut().zip(d) {
                    *o = z.to_bits();
                }
            }
            self.queue.write_buffer(&frames.inp.buffer, 0, bytemuck::cast_slice(&inp));
        }
        let kinds: Vec<u32> = s.kinds.iter().map(|&k| k as u32).collect();
        self.queue.write_buffer(&self.tables, 0, bytemuck::cast_slice(&kinds));
        self.queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        self.queue.write_buffer(&frames.scene.buffer, 0, bytemuck::cast_slice(&scene));
        let mut stages = vec![("upload", t0.elapsed().as_secs_f64() * 1e3)];
        let t1 = Instant::now();

        // The passes, grouped by the stage they belong to.
        let per_pixel = (w.div_ceil(8) as u32, h.div_ceil(8) as u32);
        let per_small = (l.small.0.div_ceil(8) as u32, l.small.1.div_ceil(8) as u32);
        let per_mirror = (l.mirror.0.div_ceil(8) as u32, l.mirror.1.div_ceil(8) as u32);
        let lin = |count: usize| (count.div_ceil(64).max(1) as u32, 1);
        let geometry =
            if targets.is_some() { vec![(Pass::Pack, per_pixel), (Pass::Geometry, per_pixel)] } else { vec![(Pass::Geometry, per_pixel)] };
        let mut plan: Vec<(&'static str, Vec<Dispatch>)> = vec![
            ("geometry", geometry),
            ("materials+lighting", vec![(Pass::Cull, lin(l.tiles.0 * l.tiles.1)), (Pass::Materials, per_pixel)]),
        ];
        let reflections = if !s.fast && f.depth.is_some() {
            vec![
                (Pass::GroundPartial, lin(l.tiles.0 * l.tiles.1)),
                (Pass::Ground, (1, 1)),
                (Pass::Splat, per_pixel),
                (Pass::Resolve, per_pixel),
                (Pass::Gather, per_mirror),
                (Pass::SpriteStreaks, lin(s.sprites.len())),
                (Pass::BinStreaks, lin(s.sprites.len())),
                (Pass::BinSort, lin(2 * l.blocks)),
                (Pass::Reflections, per_pixel),
            ]
        } else if s.fast {
            vec![(Pass::SkyMirror, per_pixel)]
        } else {
            vec![]
        };
        plan.push(("reflections", reflections));
        plan.push(("fog", vec![(Pass::Fog, per_pixel)]));
        let mut draw = vec![];
        if particles > 0 {
            draw.push((Pass::Particles, lin(particles)));
        }
        draw.push((Pass::SpriteDiscs, lin(s.sprites.len())));
        draw.push((Pass::BinDraw, lin(particles + s.sprites.len())));
        draw.push((Pass::BinSort, lin(2 * l.blocks)));
        draw.push((Pass::Draw, per_pixel));
        plan.push(("particles+lights", draw));
        plan.push(("motion blur", if s.motion.is_some() { vec![(Pass::MotionBlur, per_pixel)] } else { vec![] }));
        let mut bloom = vec![(Pass::Bright, per_small), (Pass::BloomH, per_small), (Pass::BloomV, per_small)];
        if s.glare.is_some() {
            bloom.push((Pass::Streak, per_small));
        }
        bloom.push((Pass::Glow, per_small));
        plan.push(("bloom+glare", bloom));
        plan.push(("sensor+tonemap", vec![(Pass::Finish, per_pixel)]));

        let capture = self.capture.is_some();
        let mut enc = self.device.create_command_encoder(&Default::default());
        // The mirror image and the block counters start at zero.
        enc.clear_buffer(&frames.atom.buffer, 0, Some((atom_words(&l) * 4) as u64));
        for (stage, passes) in &plan {
            let frames = self.frames.as_ref().ok_or_else(|| self.error("no frame buffers"))?;
            for (pass, (x, y)) in passes {
                let i = PASSES.iter().position(|q| q == pass).unwrap_or(0);
                let mut cp = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(pass.entry()), timestamp_writes: None });
                cp.set_pipeline(&self.pipelines[i]);
                cp.set_bind_group(0, &frames.group, &[]);
                if let (Pass::Pack, Some(t)) = (pass, &targets) {
                    cp.set_bind_group(1, t, &[]);
                }
                cp.dispatch_workgroups(*x, *y, 1);
                drop(cp);
                if self.profile {
                    let t = Instant::now();
                    self.queue.submit([std::mem::replace(&mut enc, self.device.create_command_encoder(&Default::default())).finish()]);
                    self.wait()?;
                    stages.push((pass.entry(), t.elapsed().as_secs_f64() * 1e3));
                }
            }
            if capture {
                let t = Instant::now();
                self.queue.submit([enc.finish()]);
                enc = self.device.create_command_encoder(&Default::default());
                self.wait()?;
                stages.push((stage, t.elapsed().as_secs_f64() * 1e3));
                self.capture_stage(stage, &l, &s)?;
            }
        }
        let frames = self.frames.as_ref().ok_or_else(|| self.error("no frame buffers"))?;
        enc.copy_buffer_to_buffer(&frames.words.buffer, (l.words[2] * 4) as u64, &frames.readback.buffer, 0, (n * 4) as u64);
        self.queue.submit([enc.finish()]);
        self.map(&frames.readback.buffer)?;
        if !(capture || self.profile) {
            stages.push(("gpu", t1.elapsed().as_secs_f64() * 1e3));
        }
        let t2 = Instant::now();
        let mut out = vec![0u8; n * 3];
        {
            let data = frames.readback.buffer.slice(..(n * 4) as u64).get_mapped_range();
            let px: &[u32] = bytemuck::cast_slice(&data);
            out.par_chunks_mut(3 * 4096).zip(px.par_chunks(4096)).for_each(|(o, p)| {
                for (o, p) in o.chunks_exact_mut(3).zip(p) {
                    o.copy_from_slice(&p.to_le_bytes()[..3]);
                }
            });
        }
        frames.readback.buffer.unmap();
        stages.push(("readback", t2.elapsed().as_secs_f64() * 1e3));
        if let Some(c) = &mut self.capture {
            c.push(StageImage { name: "sensor+tonemap", width: w, height: h, rgb: out.clone() });
        }
        Ok(Restyled { rgb: out, width: w, height: h, weights: s.effective, stages, extinction: s.beta })
    }

    /// The pack pass's bind group over `d`, after checking its formats and usage against the frame.
    fn targets_group(&self, f: &Frame, d: &DeviceFrame) -> Result<wgpu::BindGroup, TransferError> {
        use wgpu::TextureFormat as T;
        // Their sizes were checked against the whole frame (restyle_on_device).
        let check = |what: &str, t: &wgpu::Texture, format: T| -> Result<(), TransferError> {
            if t.format() != format {
                return Err(self.error(format!("render target {what} is {:?}, not {format:?}", t.format())));
            }
            if !t.usage().contains(wgpu::TextureUsages::TEXTURE_BINDING) {
                return Err(self.error(format!("render target {what} was not made with TEXTURE_BINDING usage")));
            }
            Ok(())
        };
        check("colour", d.color, T::Rgba8Unorm)?;
        // A control the frame lacks is not read (the flags say so); one the targets lack cannot be.
        let depth = match (d.depth, f.depth.is_some()) {
            (Some(t), true) => check("depth", t, T::R32Float).map(|_| t)?,
            (None, true) => return Err(self.error("the frame has depth, the render targets none")),
            (_, false) => &self.no_depth,
        };
        let class = match (d.class, f.segmentation.is_some()) {
            (Some(t), true) => check("classes", t, T::R8Uint).map(|_| t)?,
            (None, true) => return Err(self.error("the frame has classes, the render targets none")),
            (_, false) => &self.no_class,
        };
        let view = |t: &wgpu::Texture| t.create_view(&Default::default());
        let (color, depth, class) = (view(d.color), view(depth), view(class));
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("render targets"),
            layout: &self.targets_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&color) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&depth) },
                wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&class) },
            ],
        });
        Ok(group)
    }

    /// With capture on, what `stage` left behind.
    fn capture_stage(&mut self, stage: &'static str, l: &Layout, s: &Setup) -> Result<(), TransferError> {
        let (w, h) = (l.w, l.h);
        let exposure = s.env.exposure;
        match stage {
            "geometry" => {
                let frames = self.frames.as_ref().ok_or_else(|| self.error("no frame buffers"))?;
                let data = self.read(&frames.geo.buffer, 0, (3 * w * h * 16) as u64)?;
                let v: &[[f32; 4]] = bytemuck::cast_slice(&data);
                let normals: Vec<[f32; 3]> = v.chunks_exact(3).map(|g| [g[1][0], g[1][1], g[1][2]]).collect();
                let img = StageImage::normals(stage, w, h, &normals);
                if let Some(c) = &mut self.capture {
                    c.push(img);
                }
                Ok(())
            }
            "motion blur" => self.snap(stage, if s.motion.is_some() { l.px[1] } else { l.px[0] }, w, h, exposure),
            "bloom+glare" => self.snap(stage, l.px[8], l.small.0, l.small.1, exposure),
            "sensor+tonemap" => Ok(()),
            _ => self.snap(stage, l.px[0], w, h, exposure),
        }
    }
}

/// The backend's error scopes (validation, out of memory) on a device that
/// may be shared: popped by [`Scopes::pop`], or when dropped (a panic in
/// between), so that the device's scope stack is always left as found.
struct Scopes {
    device: Option<wgpu::Device>,
}

impl Scopes {
    fn push(device: &wgpu::Device) -> Scopes {
        device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        device.push_error_scope(wgpu::ErrorFilter::Validation);
        Scopes { device: Some(device.clone()) }
    }

    /// The first error either scope caught.
    fn pop(mut self) -> Option<wgpu::Error> {
        let d = self.device.take()?;
        let validation = pollster::block_on(d.pop_error_scope());
        let memory = pollster::block_on(d.pop_error_scope());
        validation.or(memory)
    }
}

impl Drop for Scopes {
    fn drop(&mut self) {
        if let Some(d) = self.device.take() {
            let _ = pollster::block_on(d.pop_error_scope());
            let _ = pollster::block_on(d.pop_error_scope());
        }
    }
}

/// Words of the atomic buffer: the mirror image's depths and owners, the two lists' block counters.
fn atom_words(l: &Layout) -> usize {
    2 * l.mirror.0 * l.mirror.1 + 2 * l.blocks
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }
}

/// Lights as 4 vec4s (position and radius; colour and near field; spot
/// axis and inner cosine; outer cosine and whether it is a spot), then
/// sprites as 2 (position and size; colour).
fn scene_words(lights: &[Light], sprites: &[Sprite]) -> Vec<[f32; 4]> {
    let mut v = Vec::with_capacity(4 * lights.len() + 2 * sprites.len());
    for l in lights {
        let (axis, inner, outer, spot) = match l.spot {
            Some((a, i, o)) => (a, i, o, 1.0),
            None => ([0.0; 3], 1.0, -1.0, 0.0),
        };
        v.extend([v4(l.pos, l.radius), v4(l.color, l.near), v4(axis, inner), [outer, spot, 0.0, 0.0]]);
    }
    for s in sprites {
        v.extend([v4(s.pos, s.size), v4(s.color, 0.0)]);
    }
    v
}

impl Backend for GpuBuiltin {
    fn name(&self) -> String {
        match self.preset {
            Preset::Full => "builtin:gpu".into(),
            Preset::Fast => "builtin:fast:gpu".into(),
        }
    }

    fn restyle(&mut self, f: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Restyled, TransferError> {
        f.validate()?;
        by_preset(self.preset, f, |frame, _| self.restyle_at(frame, look, weights, seed, None))
    }

    fn restyle_on_device(
        &mut self,
        f: &Frame,
        on_device: &DeviceFrame,
        look: &Look,
        weights: &Weights,
        seed: u64,
    ) -> Result<Restyled, TransferError> {
        f.validate()?;
        // The targets are the frame's size (the fast preset samples every second texel of them).
        for (what, t) in [("colour", Some(on_device.color)), ("depth", on_device.depth), ("classes", on_device.class)] {
            if let Some(t) = t.filter(|t| (t.width() as usize, t.height() as usize) != (f.width, f.height)) {
                return Err(self.error(format!(
                    "render target {what} is {}x{}, not the frame's {}x{}",
                    t.width(),
                    t.height(),
                    f.width,
                    f.height
                )));
            }
        }
        by_preset(self.preset, f, |frame, stride| self.restyle_at(frame, look, weights, seed, Some((on_device, stride))))
    }
}
