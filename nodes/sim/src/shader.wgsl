// sim_node's one render pass: flat-shaded colour, z-depth in metres, semantic
// class and instance id, written together (multiple render targets) so that
// every label lines up with every pixel.

struct Camera {
    // World -> optical frame (x right, y down, z forward): rotation columns and translation.
    rot0: vec4<f32>,
    rot1: vec4<f32>,
    rot2: vec4<f32>,
    trans: vec4<f32>,
    // fx, fy, cx + 0.5, cy + 0.5 (pixel centres at integers, as in CameraInfo)
    intr: vec4<f32>,
    // width, height, near, far
    size: vec4<f32>,
    // camera position in the world (for fog distance)
    eye: vec4<f32>,
};

struct Lamp {
    pos: vec4<f32>,   // xyz, w = intensity
};

struct Scene {
    sun_dir: vec4<f32>,
    sun_color: vec4<f32>,
    ambient: vec4<f32>,
    fog_color: vec4<f32>,   // w = fog density (1/m)
    head_pos_l: vec4<f32>,  // left headlight, w = on (1) / off (0)
    head_pos_r: vec4<f32>,
    head_dir: vec4<f32>,    // forward, unit
    lamp_count: vec4<u32>,
    lamps: array<Lamp, 16>,
};

// Chosen per world when the pipeline is made: point lights (headlights,
// street lamps) and fog cost per pixel, so scenes without them skip the code.
override POINT_LIGHTS: bool = false;
override FOG: bool = false;

@group(0) @binding(0) var<uniform> cam: Camera;
@group(0) @binding(1) var<uniform> scene: Scene;

struct VertexIn {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
    // instance
    @location(2) translation: vec3<f32>,
    @location(3) rotation: vec4<f32>,   // quaternion x, y, z, w
    @location(4) scale: vec3<f32>,
    @location(5) color: vec3<f32>,
    @location(6) ids: vec2<u32>,         // class, instance
};

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) world: vec3<f32>,
    @location(1) @interpolate(flat) normal: vec3<f32>,
    // Albedo, and the albedo lit by the ambient and the sun (constant per face).
    @location(2) @interpolate(flat) color: vec3<f32>,
    @location(5) @interpolate(flat) lit: vec3<f32>,
    @location(3) @interpolate(flat) ids: vec2<u32>,
    @location(4) view_z: f32,
};

fn rotate(q: vec4<f32>, v: vec3<f32>) -> vec3<f32> {
    let t = 2.0 * cross(q.xyz, v);
    return v + q.w * t + cross(q.xyz, t);
}

// A vertex of a part moved into the world and projected by the camera.
struct Placed {
    clip: vec4<f32>,
    world: vec3<f32>,
    normal: vec3<f32>,
    view_z: f32,
};

fn place(position: vec3<f32>, normal: vec3<f32>, translation: vec3<f32>, rotation: vec4<f32>, scale: vec3<f32>) -> Placed {
    var out: Placed;
    let world = translation + rotate(rotation, position * scale);
    let p = cam.rot0.xyz * world.x + cam.rot1.xyz * world.y + cam.rot2.xyz * world.z + cam.trans.xyz;
    let z = p.z;
    let w = cam.size.x;
    let h = cam.size.y;
    let near = cam.size.z;
    let far = cam.size.w;
    // Pixel coordinates times z, then clip space (y up, depth 0..1).
    let uz = cam.intr.x * p.x + cam.intr.z * z;
    let vz = cam.intr.y * p.y + cam.intr.w * z;
    out.clip = vec4<f32>(2.0 * uz / w - z, z - 2.0 * vz / h, far * (z - near) / (far - near), z);
    out.world = world;
    out.normal = normalize(rotate(rotation, normal / scale));
    out.view_z = z;
    return out;
}

// An albedo lit by the ambient light and the sun.
fn sunlit(albedo: vec3<f32>, n: vec3<f32>) -> vec3<f32> {
    return albedo * (scene.ambient.rgb + scene.sun_color.rgb * max(dot(n, scene.sun_dir.xyz), 0.0));
}

@vertex
fn vs_main(v: VertexIn) -> VertexOut {
    var out: VertexOut;
    let p = place(v.position, v.normal, v.translation, v.rotation, v.scale);
    out.clip = p.clip;
    out.world = p.world;
    out.normal = p.normal;
    out.color = v.color;
    out.lit = sunlit(v.color, out.normal);
    out.ids = v.ids;
    out.view_z = p.view_z;
    return out;
}

struct FragOut {
    @location(0) color: vec4<f32>,
    @location(1) depth: f32,
    @location(2) semantic: u32,
    @location(3) instance: u32,
};

// A low-beam headlight: wide sideways, cut off above the horizon and fading
// out on the road just in front of the car, so the light lands 8 to 40 m ahead.
fn spot(pos: vec3<f32>, world: vec3<f32>, n: vec3<f32>, dir: vec3<f32>) -> f32 {
    let d = world - pos;
    let dist2 = max(dot(d, d), 0.01);
    let l = d * inverseSqrt(dist2);
    let down = -l.z;
    let vertical = (1.0 - smoothstep(0.05, 0.16, down)) * (1.0 - smoothstep(0.0, 0.06, -down));
    let h = normalize(vec2<f32>(l.x, l.y) + vec2<f32>(1e-6, 0.0));
    let horizontal = smoothstep(0.80, 0.95, dot(h, normalize(dir.xy)));
    let ndl = dot(n, -l);
    let facing = select(0.0, 0.35 + 0.65 * ndl, ndl > 0.0);
    return vertical * horizontal * facing * 150.0 / (dist2 + 1.0);
}

// Point lights and fog over a lit albedo, and the label targets.
fn shade(lit: vec3<f32>, albedo: vec3<f32>, n: vec3<f32>, world: vec3<f32>, view_z: f32, ids: vec2<u32>) -> FragOut {
    var rgb = lit;
    if (POINT_LIGHTS) {
        var light = vec3<f32>(0.0);
        if (scene.head_pos_l.w > 0.5) {
            let hd = scene.head_dir.xyz;
            let k = spot(scene.head_pos_l.xyz, world, n, hd) + spot(scene.head_pos_r.xyz, world, n, hd);
            light += vec3<f32>(1.0, 0.95, 0.85) * k;
        }
        for (var i = 0u; i < scene.lamp_count.x; i++) {
            let lp = scene.lamps[i].pos;
            let d = lp.xyz - world;
            let dist2 = max(dot(d, d), 0.01);
            let l = d * inverseSqrt(dist2);
            light += vec3<f32>(1.0, 0.78, 0.45) * lp.w * max(dot(n, l), 0.0) * 12.0 / (dist2 + 6.0);
        }
        rgb += albedo * light;
    }
    if (FOG) {
        let dist = length(world - cam.eye.xyz);
        rgb = mix(rgb, scene.fog_color.rgb, 1.0 - exp(-scene.fog_color.w * dist));
    }
    var out: FragOut;
    out.color = vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0);
    out.depth = view_z;
    out.semantic = ids.x;
    out.instance = ids.y;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> FragOut {
    return shade(in.lit, in.color, in.normal, in.world, in.view_z, in.ids);
}

// User meshes (glTF): smooth normals, texture coordinates, vertex colours
// and a base-colour texture (a layer of one array; layer 0 is white).

@group(1) @binding(0) var textures: texture_2d_array<f32>;
@group(1) @binding(1) var texture_sampler: sampler;

struct MeshIn {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(7) uv: vec2<f32>,
    @location(8) vcolor: vec4<f32>,
    @location(9) layer: u32,
    // instance
    @location(2) translation: vec3<f32>,
    @location(3) rotation: vec4<f32>,
    @location(4) scale: vec3<f32>,
    @location(5) color: vec3<f32>,
    @location(6) ids: vec2<u32>,
};

struct MeshOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) world: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) uv: vec2<f32>,
    @location(3) color: vec3<f32>,
    @location(4) @interpolate(flat) layer: u32,
    @location(5) @interpolate(flat) ids: vec2<u32>,
    @location(6) view_z: f32,
};

@vertex
fn vs_mesh(v: MeshIn) -> MeshOut {
    let p = place(v.position, v.normal, v.translation, v.rotation, v.scale);
    var out: MeshOut;
    out.clip = p.clip;
    out.world = p.world;
    out.normal = p.normal;
    out.uv = v.uv;
    out.color = v.vcolor.rgb * v.color;
    out.layer = v.layer;
    out.ids = v.ids;
    out.view_z = p.view_z;
    return out;
}

@fragment
fn fs_mesh(in: MeshOut) -> FragOut {
    let texel = textureSample(textures, texture_sampler, in.uv, in.layer);
    let albedo = in.color * texel.rgb;
    let n = normalize(in.normal);
    return shade(sunlit(albedo, n), albedo, n, in.world, in.view_z, in.ids);
}
