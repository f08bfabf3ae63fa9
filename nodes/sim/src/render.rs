//! Headless rendering with wgpu: every camera of the rig in one submission,
//! each into four targets written by the same fragment (colour, z-depth in
//! metres, class, instance), read back together in one mapped buffer.
//!
//! Runs on whatever adapter wgpu finds: a GPU where there is one, Mesa's
//! lavapipe (Vulkan on the CPU; Debian `mesa-vulkan-drivers`) elsewhere.

use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};
use nalgebra::{Isometry3, Point3, Vector3};

use crate::asset::{MeshAsset, TEXTURE_SIZE};
use crate::figures::{posed, Gait};
use crate::world::{Shape, World};

/// Call first thing in `main`, before any thread starts: on a headless
/// machine (no XDG_RUNTIME_DIR) turns off Mesa's Vulkan device-select layer,
/// which would look for a display and print
/// "error: XDG_RUNTIME_DIR is invalid or not set" on every renderer start.
/// wgpu picks the adapter itself.
pub fn quiet_headless_vulkan() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// A pinhole camera: intrinsics in pixels (OpenCV/ROS convention, pixel
/// centres at integer coordinates).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraModel {
    /// The camera's name in the scenario (its topics and frames).
    pub name: String,
    /// Pixels, after `SimOptions::image_scale`.
    pub width: u32,
    /// Pixels, after `SimOptions::image_scale`.
    pub height: u32,
    /// Focal length along x, pixels.
    pub fx: f64,
    /// Focal length along y, pixels (equal to `fx`: square pixels).
    pub fy: f64,
    /// Principal point, column: (width − 1) / 2.
    pub cx: f64,
    /// Principal point, row: (height − 1) / 2.
    pub cy: f64,
}

impl CameraModel {
    /// Square pixels, principal point in the middle, horizontal field of view.
    pub(crate) fn from_fov(name: &str, width: u32, height: u32, hfov_deg: f64) -> CameraModel {
        let fx = (width as f64 / 2.0) / (hfov_deg.to_radians() / 2.0).tan();
        CameraModel { name: name.into(), width, height, fx, fy: fx, cx: (width as f64 - 1.0) / 2.0, cy: (height as f64 - 1.0) / 2.0 }
    }

    /// Pixel coordinates (u right, v down) of a point in the optical frame
    /// (REP-103 camera convention: z forward, x right, y down; metres); None
    /// behind the camera. Points outside the image project outside it.
    pub fn project(&self, p: &Point3<f64>) -> Option<(f64, f64)> {
        (p.z > 1e-6).then(|| (self.fx * p.x / p.z + self.cx, self.fy * p.y / p.z + self.cy))
    }
}

/// Shading a world needs beyond ambient and sun light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Features {
    /// Headlights or street lamps (per-pixel point lights).
    pub point_lights: bool,
    /// Distance fog.
    pub fog: bool,
}

impl Features {
    /// What a world's light needs; the rest is compiled out of the shader.
    pub(crate) fn of(world: &World) -> Features {
        Features { point_lights: world.light.headlights || !world.light.lamps.is_empty(), fog: world.light.fog > 0.0 }
    }
}

/// Near clipping plane, metres: nearer surfaces are not drawn.
pub(crate) const NEAR: f32 = 0.05;
/// Far clipping plane, metres.
const FAR: f32 = 1000.0;

/// The images of one camera at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// rgb8, row-major, no padding.
    pub rgb: Vec<u8>,
    /// z-depth along the optical axis, metres; +inf where nothing was hit (sky).
    pub depth: Vec<f32>,
    /// Semantic class per pixel (index into CLASS_NAMES).
    pub class: Vec<u8>,
    /// Instance id per pixel (0 = background).
    pub instance: Vec<u16>,
}

/// Why the renderer cannot start or a frame cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Vulkan finds no adapter (no GPU driver, no Mesa).
    #[error(
        "no graphics adapter found: sim_node renders with Vulkan; on a machine without a GPU install Mesa's software \
         renderer (`s2r setup` does; Debian/Ubuntu: apt install mesa-vulkan-drivers libvulkan1)"
    )]
    NoAdapter,
    /// The adapter refused a device.
    #[error("the graphics adapter {adapter} refused a device: {reason}")]
    Device {
        /// The adapter.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },
    /// The adapter refused the render pipeline.
    #[error("the render pipeline was refused by {adapter}: {reason}")]
    Pipeline {
        /// The adapter.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },
    /// A frame failed on the GPU (what wgpu said).
    #[error("rendering failed: {0}")]
    Render(String),
    /// The read-back of a frame never completed.
    #[error("the read-back never completed")]
    ReadbackLost,
    /// The read-back of a frame failed (what wgpu said).
    #[error("reading the rendered images back failed: {0}")]
    Readback(String),
    /// Images asked of a simulation that does not render.
    #[error("rendering is off")]
    Off,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Vertex {
    position: [f32; 3],
    normal: [f32; 3],
}

/// A corner of a user mesh's triangle as the mesh pipeline reads it.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MeshVertexGpu {
    position: [f32; 3],
    normal: [f32; 3],
    uv: [f32; 2],
    color: [f32; 4],
    layer: u32,
}

/// One drawn part: pose, scale, colour and ids.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
pub(crate) struct Instance {
    pub translation: [f32; 3],
    pub rotation: [f32; 4],
    pub scale: [f32; 3],
    pub color: [f32; 3],
    pub ids: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CameraUniform {
    rot0: [f32; 4],
    rot1: [f32; 4],
    rot2: [f32; 4],
    trans: [f32; 4],
    intr: [f32; 4],
    size: [f32; 4],
    eye: [f32; 4],
}

/// Lighting of one frame, in the shader's layout.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct SceneUniform {
    pub sun_dir: [f32; 4],
    pub sun_color: [f32; 4],
    pub ambient: [f32; 4],
    pub fog_color: [f32; 4],
    pub head_pos_l: [f32; 4],
    pub head_pos_r: [f32; 4],
    pub head_dir: [f32; 4],
    pub lamp_count: [u32; 4],
    pub lamps: [[f32; 4]; 16],
}

const CAMERA_STRIDE: u64 = 256;

const COLOR: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
const DEPTH: wgpu::TextureFormat = wgpu::TextureFormat::R32Float;
const CLASS: wgpu::TextureFormat = wgpu::TextureFormat::R8Uint;
const INSTANCE: wgpu::TextureFormat = wgpu::TextureFormat::R16Uint;
const ZBUF: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;

/// Bytes per texel of the four read-back targets.
const TEXEL: [u32; 4] = [4, 4, 1, 2];

fn padded(row: u32) -> u32 {
    row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT
}

struct Target {
    model: CameraModel,
    views: [wgpu::TextureView; 4],
    textures: [wgpu::Texture; 4],
    zbuf: wgpu::TextureView,
    /// Offsets of the four images in the read-back buffer.
    offsets: [u64; 4],
}

struct Mesh {
    vertices: wgpu::Buffer,
    count: u32,
}

impl Mesh {
    /// A vertex buffer holding `v`, a triangle list.
    fn new<V: Pod>(device: &wgpu::Device, v: &[V]) -> Mesh {
        use wgpu::util::DeviceExt;
        let vertices = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(v),
            usage: wgpu::BufferUsages::VERTEX,
        });
        Mesh { vertices, count: v.len() as u32 }
    }
}

/// The second pipeline, for user meshes: their vertex buffers and their
/// textures as the layers of one array (layer 0 white).
struct MeshPipeline {
    pipeline: wgpu::RenderPipeline,
    bind_group: wgpu::BindGroup,
    meshes: Vec<Mesh>,
}

/// The GPU side of a run: one pipeline (and one for user meshes), and per camera four colour targets
/// and a z-buffer, read back through one buffer.
pub(crate) struct Renderer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::RenderPipeline,
    bind_group: wgpu::BindGroup,
    camera_buf: wgpu::Buffer,
    scene_buf: wgpu::Buffer,
    instance_buf: wgpu::Buffer,
    instance_capacity: usize,
    box_mesh: Mesh,
    cylinder_mesh: Mesh,
    /// User meshes (glTF), when the world has any.
    meshes: Option<MeshPipeline>,
    targets: Vec<Target>,
    readback: wgpu::Buffer,
    /// The first error wgpu reported outside an error scope.
    failure: Arc<Mutex<Option<String>>>,
    /// What wgpu runs on, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)".
    pub adapter: String,
    /// Whether that is a hardware GPU.
    hardware: bool,
}

fn box_vertices() -> Vec<Vertex> {
    let mut v = Vec::with_capacity(36);
    // For each axis and sign: a face of two triangles, counter-clockwise seen from outside.
    for axis in 0..3 {
        for sign in [1.0f32, -1.0] {
            let mut n = [0.0; 3];
            n[axis] = sign;
            let (u, w) = ((axis + 1) % 3, (axis + 2) % 3);
            let corner = |a: f32, b: f32| {
                let mut p = [0.0; 3];
                p[axis] = 0.5 * sign;
                p[u] = 0.5 * a;
                p[w] = 0.5 * b * sign;
                Vertex { position: p, normal: n }
            };
            let quad = [corner(-1.0, -1.0), corner(1.0, -1.0), corner(1.0, 1.0), corner(-1.0, 1.0)];
            v.extend_from_slice(&[quad[0], quad[1], quad[2], quad[0], quad[2], quad[3]]);
        }
    }
    v
}

/// Segments of a cylinder's side.
const CYLINDER_SEGMENTS: usize = 24;

/// Unit cylinder (diameter 1, height 1, axis z) vertices of the side and caps.
pub(crate) fn cylinder_points() -> Vec<[f32; 3]> {
    let mut pts = Vec::new();
    for i in 0..CYLINDER_SEGMENTS {
        let a = i as f32 / CYLINDER_SEGMENTS as f32 * std::f32::consts::TAU;
        for z in [-0.5, 0.5] {
            pts.push([0.5 * a.cos(), 0.5 * a.sin(), z]);
        }
    }
    pts
}

fn cylinder_vertices() -> Vec<Vertex> {
    let mut v = Vec::new();
    let seg = CYLINDER_SEGMENTS;
    let at = |i: usize| {
        let a = (i % seg) as f32 / seg as f32 * std::f32::consts::TAU;
        (0.5 * a.cos(), 0.5 * a.sin(), ((i % seg) as f32 + 0.5) / seg as f32 * std::f32::consts::TAU)
    };
    for i in 0..seg {
        let (x0, y0, _) = at(i);
        let (x1, y1, mid) = at(i + 1);
        let n = [mid.cos(), mid.sin(), 0.0];
        let p = |x: f32, y: f32, z: f32| Vertex { position: [x, y, z], normal: n };
        v.extend_from_slice(&[p(x0, y0, -0.5), p(x1, y1, -0.5), p(x1, y1, 0.5), p(x0, y0, -0.5), p(x1, y1, 0.5), p(x0, y0, 0.5)]);
        let top = |x: f32, y: f32| Vertex { position: [x, y, 0.5], normal: [0.0, 0.0, 1.0] };
        v.extend_from_slice(&[top(0.0, 0.0), top(x0, y0), top(x1, y1)]);
        let bottom = |x: f32, y: f32| Vertex { position: [x, y, -0.5], normal: [0.0, 0.0, -1.0] };
        v.extend_from_slice(&[bottom(0.0, 0.0), bottom(x1, y1), bottom(x0, y0)]);
    }
    v
}

/// Objects smaller than this (bounding radius, m) are not drawn beyond
/// [`SMALL_OBJECT_RANGE`] of every camera: a few pixels at most there, and
/// on a long street hundreds of posts, trees and people the rasterizer
/// would otherwise transform every frame.
const SMALL_OBJECT: f32 = 5.0;
/// Metres (a 1 m object is under a pixel at 640 px and 90° there).
const SMALL_OBJECT_RANGE: f32 = 400.0;

/// What the renderer draws of a world: every part of every object at the
/// objects' current poses, limbs turned by each object's gait, grouped by
/// what they are drawn with: boxes, cylinders, then each of the world's
/// meshes (`groups`: how many instances of each, in that order); small
/// objects far from every camera in `cameras` (positions, world frame) are
/// left out.
pub(crate) fn instances(world: &World, poses: &[Isometry3<f32>], gaits: &[Gait], cameras: &[Point3<f32>]) -> (Vec<Instance>, Vec<usize>) {
    let mut lists: Vec<Vec<Instance>> = vec![Vec::new(); 2 + world.meshes.len()];
    for ((o, pose), gait) in world.objects.iter().zip(poses).zip(gaits.iter().chain(std::iter::repeat(&Gait::default()))) {
        let radius = o.half.norm();
        if radius < SMALL_OBJECT
            && !cameras.is_empty()
            && cameras.iter().all(|c| (c.coords - pose.translation.vector).norm() > SMALL_OBJECT_RANGE + radius)
        {
            continue;
        }
        for part in &o.parts {
            let p = pose * posed(part, *gait);
            let q = p.rotation.coords;
            let (scale, group) = match part.shape {
                Shape::Box(s) => (s, 0),
                Shape::Cylinder { diameter, height } => ([diameter, diameter, height], 1),
                Shape::Mesh { asset, size } => (size, 2 + asset as usize),
            };
            lists[group].push(Instance {
                translation: p.translation.vector.into(),
                rotation: [q.x, q.y, q.z, q.w],
                scale,
                color: part.color,
                ids: [o.class as u32, o.instance as u32],
            });
        }
    }
    let groups = lists.iter().map(Vec::len).collect();
    (lists.concat(), groups)
}

/// The wgpu instance the renderer opens its adapter from.
fn instance() -> wgpu::Instance {
    wgpu::Instance::new(&wgpu::InstanceDescriptor { backends: wgpu::Backends::PRIMARY, ..Default::default() })
}

/// The adapters the renderer can open here ("name (backend, device type)"):
/// none means sim_node cannot render (no Vulkan driver).
pub fn adapters() -> Vec<String> {
    instance().enumerate_adapters(wgpu::Backends::PRIMARY).into_iter().map(|a| describe(&a.get_info())).collect()
}

/// What the renderer asks of the device: the downlevel defaults at the
/// adapter's resolution, and (where the adapter has them) the storage
/// buffers a compute consumer sharing the device needs (the transfer's GPU
/// path: 8 per stage, bindings as large as the adapter allows).
fn shared_limits(have: &wgpu::Limits) -> wgpu::Limits {
    let base = wgpu::Limits::downlevel_defaults().using_resolution(have.clone());
    wgpu::Limits {
        max_storage_buffers_per_shader_stage: have
            .max_storage_buffers_per_shader_stage
            .min(8)
            .max(base.max_storage_buffers_per_shader_stage),
        max_storage_buffer_binding_size: have.max_storage_buffer_binding_size.max(base.max_storage_buffer_binding_size),
        max_buffer_size: have.max_buffer_size.max(base.max_buffer_size),
        ..base
    }
}

/// The renderer's device, for a consumer that works on its images in place.
#[derive(Clone, Debug)]
pub struct SharedGpu {
    /// The device the cameras render on.
    pub device: wgpu::Device,
    /// Its queue: work submitted here runs after the cameras' draws.
    pub queue: wgpu::Queue,
    /// The adapter, "name (backend, device type)".
    pub adapter: String,
    /// Whether it is a hardware GPU (not a software rasteriser such as lavapipe).
    pub hardware: bool,
}

/// One camera's render targets after a tick: the colour image (Rgba8Unorm),
/// depth along the optical axis in metres (R32Float; not finite or ≤ 0 for
/// sky) and class ids (R8Uint): what the tick's camera messages carry,
/// still on the device.
#[derive(Clone, Debug)]
pub struct Targets {
    /// Colour, Rgba8Unorm.
    pub color: wgpu::Texture,
    /// Depth in metres, R32Float.
    pub depth: wgpu::Texture,
    /// Class ids, R8Uint.
    pub class: wgpu::Texture,
}

/// "name (backend, device type)", as logs and errors name an adapter.
fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

impl Renderer {
    /// Opens the first adapter wgpu finds (no window, no surface) and makes the
    /// targets of every camera, and the mesh pipeline when `meshes` has any.
    pub fn new(cameras: &[CameraModel], features: Features, meshes: &[Arc<MeshAsset>]) -> Result<Renderer, RenderError> {
        let instance = instance();
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .ok_or(RenderError::NoAdapter)?;
        let adapter_name = describe(&adapter.get_info());
        let hardware = adapter.get_info().device_type != wgpu::DeviceType::Cpu;
        let (device, queue) = pollster::block_on(adapter.request_device(
            &wgpu::DeviceDescriptor {
                label: Some("sim_node"),
                required_features: wgpu::Features::empty(),
                required_limits: shared_limits(&adapter.limits()),
                memory_hints: wgpu::MemoryHints::Performance,
            },
            None,
        ))
        .map_err(|e| RenderError::Device { adapter: adapter_name.clone(), reason: e.to_string() })?;
        // wgpu's default for errors nobody catches is a panic; a node reports them instead.
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = failure.clone();
        device.on_uncaptured_error(Box::new(move |e| {
            let mut f = sink.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(e.to_string());
            }
        }));
        device.push_error_scope(wgpu::ErrorFilter::Validation);

        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sim shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shader.wgsl").into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(size_of::<CameraUniform>() as u64),
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let camera_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cameras"),
            size: CAMERA_STRIDE * cameras.len().max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let scene_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("scene"),
            size: size_of::<SceneUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &camera_buf,
                        offset: 0,
                        size: wgpu::BufferSize::new(size_of::<CameraUniform>() as u64),
                    }),
                },
                wgpu::BindGroupEntry { binding: 1, resource: scene_buf.as_entire_binding() },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[&layout],
            push_constant_ranges: &[],
        });
        let vertex_layout = wgpu::VertexBufferLayout {
            array_stride: size_of::<Vertex>() as u64,
            step_mode: wgpu::VertexStepMode::Vertex,
            attributes: &wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3],
        };
        let instance_layout = wgpu::VertexBufferLayout {
            array_stride: size_of::<Instance>() as u64,
            step_mode: wgpu::VertexStepMode::Instance,
            attributes: &wgpu::vertex_attr_array![2 => Float32x3, 3 => Float32x4, 4 => Float32x3, 5 => Float32x3, 6 => Uint32x2],
        };
        let constants: std::collections::HashMap<String, f64> = [
            ("POINT_LIGHTS".to_string(), if features.point_lights { 1.0 } else { 0.0 }),
            ("FOG".to_string(), if features.fog { 1.0 } else { 0.0 }),
        ]
        .into_iter()
        .collect();
        let stage = Stage { shader: &shader, vertex: "vs_main", fragment: "fs_main", constants: &constants };
        let pipeline =
            label_pipeline(&device, "sim", &pipeline_layout, stage, &[vertex_layout, instance_layout.clone()], Some(wgpu::Face::Back));

        let mesh_pipeline = if meshes.is_empty() {
            None
        } else {
            let made = mesh_pipeline(&device, &queue, &shader, &layout, instance_layout.clone(), meshes, &constants);
            Some(made.map_err(|reason| RenderError::Pipeline { adapter: adapter_name.clone(), reason })?)
        };
        if let Some(e) = pollster::block_on(device.pop_error_scope()) {
            return Err(RenderError::Pipeline { adapter: adapter_name, reason: e.to_string() });
        }
        let box_mesh = Mesh::new(&device, &box_vertices());
        let cylinder_mesh = Mesh::new(&device, &cylinder_vertices());

        let mut targets = Vec::new();
        let mut offset = 0u64;
        for model in cameras {
            let size = wgpu::Extent3d { width: model.width, height: model.height, depth_or_array_layers: 1 };
            let make = |format, usage| {
                device.create_texture(&wgpu::TextureDescriptor {
                    label: Some(&model.name),
                    size,
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format,
                    usage,
                    view_formats: &[],
                })
            };
            // TEXTURE_BINDING: a consumer on the same device (the transfer's GPU path) reads them in place.
            let usage = wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::TEXTURE_BINDING;
            let textures = [make(COLOR, usage), make(DEPTH, usage), make(CLASS, usage), make(INSTANCE, usage)];
            let views = [0, 1, 2, 3].map(|i| textures[i].create_view(&Default::default()));
            let zbuf = make(ZBUF, wgpu::TextureUsages::RENDER_ATTACHMENT).create_view(&Default::default());
            let mut offsets = [0u64; 4];
            for (i, texel) in TEXEL.iter().enumerate() {
                offsets[i] = offset;
                offset += padded(model.width * texel) as u64 * model.height as u64;
            }
            targets.push(Target { model: model.clone(), views, textures, zbuf, offsets });
        }
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: offset.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let instance_capacity = 256;
        let instance_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("instances"),
            size: (instance_capacity * size_of::<Instance>()) as u64,
            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Renderer {
            device,
            queue,
            pipeline,
            bind_group,
            camera_buf,
            scene_buf,
            instance_buf,
            instance_capacity,
            box_mesh,
            cylinder_mesh,
            meshes: mesh_pipeline,
            targets,
            readback,
            failure,
            adapter: adapter_name,
            hardware,
        })
    }

    /// Submits the drawing of every camera (poses: optical frame in the world)
    /// and copies the targets into the read-back buffer. `read` waits for it.
    /// `groups` are the instance counts [`instances`] returns.
    pub fn draw(&mut self, instances: &[Instance], groups: &[usize], camera_poses: &[Isometry3<f32>], scene: &SceneUniform, sky: [f32; 3]) {
        assert_eq!(camera_poses.len(), self.targets.len(), "one pose per camera");
        if instances.len() > self.instance_capacity {
            self.instance_capacity = instances.len().next_power_of_two();
            self.instance_buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("instances"),
                size: (self.instance_capacity * size_of::<Instance>()) as u64,
                usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
        }
        if !instances.is_empty() {
            self.queue.write_buffer(&self.instance_buf, 0, bytemuck::cast_slice(instances));
        }
        self.queue.write_buffer(&self.scene_buf, 0, bytemuck::bytes_of(scene));
        let mut cams = vec![0u8; CAMERA_STRIDE as usize * self.targets.len()];
        for (i, (t, pose)) in self.targets.iter().zip(camera_poses).enumerate() {
            let inv = pose.inverse();
            let r = inv.rotation.to_rotation_matrix();
            let m = r.matrix();
            let tr = inv.translation.vector;
            let eye = pose.translation.vector;
            let u = CameraUniform {
                rot0: [m[(0, 0)], m[(1, 0)], m[(2, 0)], 0.0],
                rot1: [m[(0, 1)], m[(1, 1)], m[(2, 1)], 0.0],
                rot2: [m[(0, 2)], m[(1, 2)], m[(2, 2)], 0.0],
                trans: [tr.x, tr.y, tr.z, 0.0],
                intr: [t.model.fx as f32, t.model.fy as f32, (t.model.cx + 0.5) as f32, (t.model.cy + 0.5) as f32],
                size: [t.model.width as f32, t.model.height as f32, NEAR, FAR],
                eye: [eye.x, eye.y, eye.z, 0.0],
            };
            let at = i * CAMERA_STRIDE as usize;
            cams[at..at + size_of::<CameraUniform>()].copy_from_slice(bytemuck::bytes_of(&u));
        }
        self.queue.write_buffer(&self.camera_buf, 0, &cams);

        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        let sky_color = wgpu::Color { r: sky[0] as f64, g: sky[1] as f64, b: sky[2] as f64, a: 1.0 };
        let clears =
            [sky_color, wgpu::Color { r: f64::INFINITY, g: 0.0, b: 0.0, a: 0.0 }, wgpu::Color::TRANSPARENT, wgpu::Color::TRANSPARENT];
        let stride = size_of::<Instance>() as u64;
        for (i, t) in self.targets.iter().enumerate() {
            let attachments: Vec<Option<wgpu::RenderPassColorAttachment>> = (0..4)
                .map(|k| {
                    Some(wgpu::RenderPassColorAttachment {
                        view: &t.views[k],
                        resolve_target: None,
                        ops: wgpu::Operations { load: wgpu::LoadOp::Clear(clears[k]), store: wgpu::StoreOp::Store },
                    })
                })
                .collect();
            let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some(&t.model.name),
                color_attachments: &attachments,
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &t.zbuf,
                    depth_ops: Some(wgpu::Operations { load: wgpu::LoadOp::Clear(1.0), store: wgpu::StoreOp::Discard }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[(i as u64 * CAMERA_STRIDE) as u32]);
            let mut start = 0u64;
            for (g, &count) in groups.iter().enumerate() {
                let end = start + count as u64;
                let mesh = match g {
                    0 => &self.box_mesh,
                    1 => &self.cylinder_mesh,
                    _ => {
                        let Some(mp) = &self.meshes else { break };
                        if g == 2 {
                            pass.set_pipeline(&mp.pipeline);
                            pass.set_bind_group(1, &mp.bind_group, &[]);
                        }
                        &mp.meshes[g - 2]
                    }
                };
                if count > 0 {
                    pass.set_vertex_buffer(0, mesh.vertices.slice(..));
                    pass.set_vertex_buffer(1, self.instance_buf.slice(start * stride..end * stride));
                    pass.draw(0..mesh.count, 0..count as u32);
                }
                start = end;
            }
        }
        for t in &self.targets {
            for (k, texture) in t.textures.iter().enumerate() {
                enc.copy_texture_to_buffer(
                    wgpu::TexelCopyTextureInfo { texture, mip_level: 0, origin: wgpu::Origin3d::ZERO, aspect: wgpu::TextureAspect::All },
                    wgpu::TexelCopyBufferInfo {
                        buffer: &self.readback,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset: t.offsets[k],
                            bytes_per_row: Some(padded(t.model.width * TEXEL[k])),
                            rows_per_image: Some(t.model.height),
                        },
                    },
                    wgpu::Extent3d { width: t.model.width, height: t.model.height, depth_or_array_layers: 1 },
                );
            }
        }
        self.queue.submit([enc.finish()]);
    }

    /// The device and queue, for consumers on the same GPU.
    pub fn shared(&self) -> SharedGpu {
        SharedGpu { device: self.device.clone(), queue: self.queue.clone(), adapter: self.adapter.clone(), hardware: self.hardware }
    }

    /// Camera `i`'s render targets (its last draw), if it exists.
    pub fn targets(&self, i: usize) -> Option<Targets> {
        self.targets.get(i).map(|t| Targets { color: t.textures[0].clone(), depth: t.textures[1].clone(), class: t.textures[2].clone() })
    }

    /// Waits for the last `draw` and returns every camera's images.
    pub fn read(&mut self) -> Result<Vec<Images>, RenderError> {
        let slice = self.readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::Maintain::Wait);
        if let Some(e) = self.failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(RenderError::Render(e));
        }
        rx.recv().map_err(|_| RenderError::ReadbackLost)?.map_err(|e| RenderError::Readback(e.to_string()))?;
        let out = {
            let data = slice.get_mapped_range();
            self.targets
                .iter()
                .map(|t| {
                    let (w, h) = (t.model.width as usize, t.model.height as usize);
                    let rows = |k: usize| {
                        let pitch = padded(t.model.width * TEXEL[k]) as usize;
                        let start = t.offsets[k] as usize;
                        let row = w * TEXEL[k] as usize;
                        (0..h).map(move |y| start + y * pitch..start + y * pitch + row)
                    };
                    let mut rgb = Vec::with_capacity(w * h * 3);
                    for r in rows(0) {
                        for px in data[r].chunks_exact(4) {
                            rgb.extend_from_slice(&px[..3]);
                        }
                    }
                    let mut depth = Vec::with_capacity(w * h);
                    for r in rows(1) {
                        depth.extend(data[r].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                    }
                    let mut class = Vec::with_capacity(w * h);
                    for r in rows(2) {
                        class.extend_from_slice(&data[r]);
                    }
                    let mut instance = Vec::with_capacity(w * h);
                    for r in rows(3) {
                        instance.extend(data[r].chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])));
                    }
                    Images { width: t.model.width, height: t.model.height, rgb, depth, class, instance }
                })
                .collect()
        };
        self.readback.unmap();
        Ok(out)
    }
}

/// The shader entry points of a pipeline and its override constants.
struct Stage<'a> {
    shader: &'a wgpu::ShaderModule,
    vertex: &'a str,
    fragment: &'a str,
    constants: &'a std::collections::HashMap<String, f64>,
}

/// A pipeline writing the four targets (colour, depth, class, instance)
/// with a z-buffer, culling `cull` faces.
fn label_pipeline(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::PipelineLayout,
    stage: Stage<'_>,
    buffers: &[wgpu::VertexBufferLayout<'_>],
    cull: Option<wgpu::Face>,
) -> wgpu::RenderPipeline {
    let target = |format| Some(wgpu::ColorTargetState { format, blend: None, write_mask: wgpu::ColorWrites::ALL });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module: stage.shader,
            entry_point: Some(stage.vertex),
            buffers,
            compilation_options: Default::default(),
        },
        fragment: Some(wgpu::FragmentState {
            module: stage.shader,
            entry_point: Some(stage.fragment),
            targets: &[target(COLOR), target(DEPTH), target(CLASS), target(INSTANCE)],
            compilation_options: wgpu::PipelineCompilationOptions { constants: stage.constants, zero_initialize_workgroup_memory: false },
        }),
        primitive: wgpu::PrimitiveState { cull_mode: cull, front_face: wgpu::FrontFace::Ccw, ..Default::default() },
        depth_stencil: Some(wgpu::DepthStencilState {
            format: ZBUF,
            depth_write_enabled: true,
            depth_compare: wgpu::CompareFunction::Less,
            stencil: Default::default(),
            bias: Default::default(),
        }),
        multisample: Default::default(),
        multiview: None,
        cache: None,
    })
}

/// The pipeline, vertex buffers and texture array of the world's meshes;
/// fails when their textures are more than the adapter's array takes.
fn mesh_pipeline(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    shader: &wgpu::ShaderModule,
    layout0: &wgpu::BindGroupLayout,
    instance_layout: wgpu::VertexBufferLayout<'_>,
    meshes: &[Arc<MeshAsset>],
    constants: &std::collections::HashMap<String, f64>,
) -> Result<MeshPipeline, String> {
    use wgpu::util::DeviceExt;
    let layers = 1 + meshes.iter().map(|m| m.textures.len() as u32).sum::<u32>();
    let max = device.limits().max_texture_array_layers;
    if layers > max {
        return Err(format!("the scenario's meshes have {} textures; this adapter takes {}", layers - 1, max - 1));
    }
    let texel_bytes = (TEXTURE_SIZE * TEXTURE_SIZE * 4) as usize;
    let mut texels = vec![255u8; texel_bytes];
    for m in meshes {
        for t in &m.textures {
            texels.extend_from_slice(t);
        }
    }
    let texture = device.create_texture_with_data(
        queue,
        &wgpu::TextureDescriptor {
            label: Some("mesh textures"),
            size: wgpu::Extent3d { width: TEXTURE_SIZE, height: TEXTURE_SIZE, depth_or_array_layers: layers },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        },
        wgpu::util::TextureDataOrder::LayerMajor,
        &texels,
    );
    let view =
        texture.create_view(&wgpu::TextureViewDescriptor { dimension: Some(wgpu::TextureViewDimension::D2Array), ..Default::default() });
    let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
        label: Some("mesh textures"),
        address_mode_u: wgpu::AddressMode::Repeat,
        address_mode_v: wgpu::AddressMode::Repeat,
        mag_filter: wgpu::FilterMode::Linear,
        min_filter: wgpu::FilterMode::Linear,
        ..Default::default()
    });
    let layout1 = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("mesh textures"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: true },
                    view_dimension: wgpu::TextureViewDimension::D2Array,
                    multisampled: false,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                count: None,
            },
        ],
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("mesh textures"),
        layout: &layout1,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&view) },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(&sampler) },
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("meshes"),
        bind_group_layouts: &[layout0, &layout1],
        push_constant_ranges: &[],
    });
    let vertex_layout = wgpu::VertexBufferLayout {
        array_stride: size_of::<MeshVertexGpu>() as u64,
        step_mode: wgpu::VertexStepMode::Vertex,
        attributes: &wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3, 7 => Float32x2, 8 => Float32x4, 9 => Uint32],
    };
    // Both faces: user meshes are often open or wound either way.
    let stage = Stage { shader, vertex: "vs_mesh", fragment: "fs_mesh", constants };
    let pipeline = label_pipeline(device, "meshes", &pipeline_layout, stage, &[vertex_layout, instance_layout], None);
    let mut base = 1u32;
    let meshes = meshes
        .iter()
        .map(|m| {
            let v: Vec<MeshVertexGpu> = m
                .vertices
                .iter()
                .map(|v| MeshVertexGpu {
                    position: v.position,
                    normal: v.normal,
                    uv: v.uv,
                    color: v.color,
                    layer: if v.texture == 0 { 0 } else { base + v.texture - 1 },
                })
                .collect();
            base += m.textures.len() as u32;
            Mesh::new(device, &v)
        })
        .collect();
    Ok(MeshPipeline { pipeline, bind_group, meshes })
}

/// The lighting uniform of a world, with the headlights of a vehicle at `ego`
/// (pose and half extents) when they are on.
pub(crate) fn scene_uniform(world: &World, ego: Option<(Isometry3<f32>, Vector3<f32>)>) -> SceneUniform {
    let l = &world.light;
    let mut s = SceneUniform::zeroed();
    s.sun_dir = [l.sun_dir[0], l.sun_dir[1], l.sun_dir[2], 0.0];
    s.sun_color = [l.sun_color[0], l.sun_color[1], l.sun_color[2], 0.0];
    s.ambient = [l.ambient[0], l.ambient[1], l.ambient[2], 0.0];
    s.fog_color = [l.fog_color[0], l.fog_color[1], l.fog_color[2], l.fog];
    if let (true, Some((pose, half))) = (l.headlights, ego) {
        let left = pose * Point3::new(half.x + 0.05, half.y * 0.7, -half.z * 0.3);
        let right = pose * Point3::new(half.x + 0.05, -half.y * 0.7, -half.z * 0.3);
        let dir = pose.rotation * Vector3::new(1.0, 0.0, -0.06).normalize();
        s.head_pos_l = [left.x, left.y, left.z, 1.0];
        s.head_pos_r = [right.x, right.y, right.z, 1.0];
        s.head_dir = [dir.x, dir.y, dir.z, 0.0];
    }
    // The lamps nearest the ego (or the origin).
    let centre = ego.map(|(p, _)| p.translation.vector).unwrap_or_else(Vector3::zeros);
    let mut lamps: Vec<&[f32; 3]> = l.lamps.iter().collect();
    lamps.sort_by(|a, b| {
        let d = |p: &[f32; 3]| (Vector3::new(p[0], p[1], p[2]) - centre).norm_squared();
        d(a).total_cmp(&d(b))
    });
    for (i, p) in lamps.iter().take(16).enumerate() {
        s.lamps[i] = [p[0], p[1], p[2], 1.0];
    }
    s.lamp_count = [lamps.len().min(16) as u32, 0, 0, 0];
    s
}
