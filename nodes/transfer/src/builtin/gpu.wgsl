// The built-in backend's per-pixel stages on the GPU (wgpu compute).
//
// Each entry point is one stage of builtin/mod.rs's restyle_at and follows
// the Rust reference (geometry.rs, materials.rs, lights.rs, reflect.rs,
// weather.rs, sensor.rs) operation for operation: the same hashes, the same
// noise lattice and tone-mapping table (uploaded from the Rust side), the same
// order of blending. Where the CPU scatters (reflection splats, particles),
// the GPU either resolves with atomics (nearest mirror point, lowest pixel
// index on ties, as the CPU's scan order) or gathers per pixel in the CPU's
// drawing order, so that the two agree to rounding.
//
// Conventions: a sky pixel's distance is -1 (the CPU's +inf); colours are
// vec4 with the reflecting fraction ("mirror") in w of the HDR image.

struct Params {
    dims: vec4<u32>,    // width, height, light tiles x, light tiles y
    dims2: vec4<u32>,   // bloom image width, height, downscale factor, flags
    dims3: vec4<u32>,   // mirror image width, height
    counts: vec4<u32>,  // lights, sprites, particles, particles per cell
    grid: vec4<i32>,    // first particle cell i, j, k
    grid2: vec4<u32>,   // particle cells along i, j, k
    seeds: vec4<u32>,   // material seed, frame (noise) seed, texture octaves
    radii: vec4<u32>,   // bloom blur radius, glare streak radius; pack stride
    off: vec4<u32>,     // px: hdr, motion-blurred, mirror colours, particles
    off2: vec4<u32>,    // px: bright, blur scratch, bloom, streak
    off3: vec4<u32>,    // px: glow; words: light tiles, block lists, output
    off4: vec4<u32>,    // words: ground partial sums, ground; px: light-source records; words: splats
    k: vec4<f32>,       // fx, fy, cx, cy
    kinv: vec4<f32>,    // 1/fx, 1/fy
    cam0: vec4<f32>,    // camera-to-world rotation rows, translation in w
    cam1: vec4<f32>,
    cam2: vec4<f32>,
    bef0: vec4<f32>,    // the same one shutter interval earlier
    bef1: vec4<f32>,
    bef2: vec4<f32>,
    mat: vec4<f32>,     // seg, vis, snow cover, wet
    mat2: vec4<f32>,    // icy, reflections, dark, input gain
    mat3: vec4<f32>,    // depth strength, seg strength
    sun_dir: vec4<f32>, // w: exposure
    sun: vec4<f32>,
    ambient: vec4<f32>,
    zenith: vec4<f32>,
    horizon: vec4<f32>,
    airlight: vec4<f32>,
    fog: vec4<f32>,     // extinction, sky fog, motion blur amount, bloom threshold
    fin: vec4<f32>,     // aberration, vignette, shot noise, read noise
    fin2: vec4<f32>,    // edge strength, bloom gain, glare gain, lens dirt
    part: vec4<f32>,    // seconds (mod 3600), fall speed, reach, snow (1) or rain (0)
}

@group(0) @binding(0) var<uniform> P: Params;
// [0, n): r | g << 8 | b << 16 | cls << 24; [n, 2n): depth bits.
@group(0) @binding(1) var<storage, read_write> inp: array<u32>;
// Class kinds [256], sRGB-to-linear [256] (f32 bits), palettes [128] (f32 bits),
// tone map [65536].
@group(0) @binding(2) var<storage, read> tables: array<u32>;
// Lights (4 × vec4 each), then sprites (2 × vec4 each).
@group(0) @binding(3) var<storage, read> scene: array<vec4<f32>>;
// Per pixel: world position (w: distance, -1 sky), normal, view direction.
@group(0) @binding(4) var<storage, read_write> geo: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> px: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> words: array<u32>;
// Mirror image: [0, n2) nearest depth, [n2, 2 n2) the pixel that put it there
// (complemented, see `splat`); then the block counters of the draw and streak
// lists. Cleared to zero before every frame.
@group(0) @binding(7) var<storage, read_write> atom: array<atomic<u32>>;

const KINDS: u32 = 0u;
const LIN: u32 = 256u;
const PAL: u32 = 512u;
const LUT: u32 = 640u;

const HAS_DEPTH: u32 = 1u;
const HAS_SEG: u32 = 2u;
const FAST: u32 = 4u;
const SRC_BLURRED: u32 = 8u;
const EDGES: u32 = 16u;
const GLARE: u32 = 32u;
const PARTICLES: u32 = 64u;

const TILE: u32 = 16u;
const NONE: u32 = 0xffffffffu;
const CELL: f32 = 2.0;

// Material kinds, in the order of materials.rs's Kind.
const SKY: u32 = 0u;
const ROAD: u32 = 1u;
const LANE: u32 = 2u;
const SIDEWALK: u32 = 3u;
const BUILDING: u32 = 4u;
const TERRAIN: u32 = 5u;
const VEHICLE: u32 = 6u;
const PEDESTRIAN: u32 = 7u;
const CHILD: u32 = 8u;
const FLOOR: u32 = 9u;
const TABLE: u32 = 10u;
const ARM: u32 = 11u;
const CUP: u32 = 12u;
const GENERIC: u32 = 13u;

// The palettes of materials.rs, from the tables: car paints [8], trousers
// [5], tops [8], skin [6], hair [4], as rgb triples.
fn palette(i: u32) -> vec3<f32> {
    let o = PAL + 3u * i;
    return vec3<f32>(bitcast<f32>(tables[o]), bitcast<f32>(tables[o + 1u]), bitcast<f32>(tables[o + 2u]));
}

// ---- small helpers (noise.rs, geometry.rs) ----

fn hash32(x0: u32) -> u32 {
    var x = x0;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn hash3(a: i32, b: i32, c: u32) -> u32 {
    return hash32((bitcast<u32>(a) * 0x8da6b343u) ^ (bitcast<u32>(b) * 0xd8163841u) ^ (c * 0xcb1ab31fu));
}

fn unit(h: u32) -> f32 {
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

fn ifloor(x: f32) -> i32 {
    return i32(floor(x));
}

fn frac(x: f32) -> f32 {
    return x - floor(x);
}

fn lattice(ix: i32, iy: i32, seed: u32) -> f32 {
    let i = u32((ix + bitcast<i32>(seed)) & 255) | (u32((iy + bitcast<i32>(seed >> 8u)) & 255) << 8u);
    // noise.rs's LATTICE table, computed rather than looked up (cheaper than a gather).
    return f32((hash32(i ^ 0x51ed270bu) >> 24u) ^ ((seed >> 16u) & 255u)) * (1.0 / 255.0);
}

fn value2(x: f32, y: f32, seed0: u32) -> f32 {
    let seed = hash32(seed0);
    let ix = ifloor(x);
    let iy = ifloor(y);
    let tx = x - f32(ix);
    let ty = y - f32(iy);
    let sx = tx * tx * (3.0 - 2.0 * tx);
    let sy = ty * ty * (3.0 - 2.0 * ty);
    let a = lattice(ix, iy, seed);
    let b = lattice(ix + 1, iy, seed);
    let c = lattice(ix, iy + 1, seed);
    let d = lattice(ix + 1, iy + 1, seed);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    return top + (bottom - top) * sy;
}

fn fade(lambda: f32, footprint: f32) -> f32 {
    return clamp((lambda / max(footprint, 1e-6) - 2.0) * 0.5, 0.0, 1.0);
}

fn fbm2(x: f32, y: f32, lambda: f32, octaves: u32, footprint: f32, seed: u32) -> f32 {
    var sum = 0.0;
    var amp = 0.5;
    var l = lambda;
    var inv_l = 1.0 / lambda;
    let inv_fp = 1.0 / max(footprint, 1e-6);
    var total = 0.0;
    for (var o = 0u; o < octaves; o++) {
        let f = clamp((l * inv_fp - 2.0) * 0.5, 0.0, 1.0);
        var n = 0.5;
        if f > 0.0 {
            n = value2(x * inv_l, y * inv_l, seed + o * 7919u);
        }
        sum += amp * (0.5 + (n - 0.5) * f);
        total += amp;
        amp *= 0.5;
        l *= 0.5;
        inv_l *= 2.0;
    }
    return sum / total;
}

fn mix3(a: vec3<f32>, b: vec3<f32>, t: f32) -> vec3<f32> {
    return a + (b - a) * t;
}

fn sstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = clamp((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3.0 - 2.0 * t);
}

fn luminance(c: vec3<f32>) -> f32 {
    return 0.2126 * c.x + 0.7152 * c.y + 0.0722 * c.z;
}

fn normalize3(a: vec3<f32>) -> vec3<f32> {
    let l = sqrt(dot(a, a));
    if l > 0.0 {
        return a * (1.0 / l);
    }
    return a;
}

fn pow5(x: f32) -> f32 {
    let x2 = x * x;
    return x2 * x2 * x;
}

fn lin(c: u32) -> f32 {
    return bitcast<f32>(tables[LIN + c]);
}

fn rotate(r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, v: vec3<f32>) -> vec3<f32> {
    return vec3<f32>(r0.x * v.x + r0.y * v.y + r0.z * v.z, r1.x * v.x + r1.y * v.y + r1.z * v.z, r2.x * v.x + r2.y * v.y + r2.z * v.z);
}

fn apply_inverse(r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, p: vec3<f32>) -> vec3<f32> {
    let d = p - vec3<f32>(r0.w, r1.w, r2.w);
    return vec3<f32>(
        r0.x * d.x + r1.x * d.y + r2.x * d.z,
        r0.y * d.x + r1.y * d.y + r2.y * d.z,
        r0.z * d.x + r1.z * d.y + r2.z * d.z,
    );
}

fn cam_rotate(v: vec3<f32>) -> vec3<f32> {
    return rotate(P.cam0, P.cam1, P.cam2, v);
}

fn cam_apply(v: vec3<f32>) -> vec3<f32> {
    return cam_rotate(v) + vec3<f32>(P.cam0.w, P.cam1.w, P.cam2.w);
}

fn cam_inverse(p: vec3<f32>) -> vec3<f32> {
    return apply_inverse(P.cam0, P.cam1, P.cam2, p);
}

// Pixel coordinates of a camera-frame point; z < 0 means behind the camera.
fn project(p: vec3<f32>) -> vec3<f32> {
    if p.z <= 0.05 {
        return vec3<f32>(0.0, 0.0, -1.0);
    }
    return vec3<f32>(P.k.x * p.x / p.z + P.k.z, P.k.y * p.y / p.z + P.k.w, 1.0);
}

fn flag(f: u32) -> bool {
    return (P.dims2.w & f) != 0u;
}

fn depth_at(i: u32) -> f32 {
    return bitcast<f32>(inp[P.dims.x * P.dims.y + i]);
}

// ---- a frame already on the device (a renderer's targets) ----

@group(1) @binding(0) var src_color: texture_2d<f32>;
@group(1) @binding(1) var src_depth: texture_2d<f32>;
@group(1) @binding(2) var src_class: texture_2d<u32>;

// The input words from render targets: pixel (x, y) is texel (s x, s y) for
// stride s (2: the fast preset's half resolution, point-sampled as the CPU does).
@compute @workgroup_size(8, 8)
fn pack(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    if g.x >= w || g.y >= P.dims.y {
        return;
    }
    let i = g.y * w + g.x;
    let at = vec2<i32>(g.xy * P.radii.z);
    let c = vec3<u32>(round(textureLoad(src_color, at, 0).xyz * 255.0));
    var cls = 255u;
    if flag(HAS_SEG) {
        cls = textureLoad(src_class, at, 0).x & 255u;
    }
    inp[i] = c.x | (c.y << 8u) | (c.z << 16u) | (cls << 24u);
    if flag(HAS_DEPTH) {
        inp[w * P.dims.y + i] = bitcast<u32>(textureLoad(src_depth, at, 0).x);
    }
}

// ---- geometry.rs ----

fn ray(u: u32, v: u32) -> vec3<f32> {
    return vec3<f32>((f32(u) + 0.5 - P.k.z) * P.kinv.x, (f32(v) + 0.5 - P.k.w) * P.kinv.y, 1.0);
}

// The valid depth at a pixel, or -1.
fn z_at(u: u32, v: u32) -> f32 {
    if !flag(HAS_DEPTH) {
        return -1.0;
    }
    let z = depth_at(v * P.dims.x + u);
    if z > 0.0 && z < 1.0e4 {
        return z;
    }
    return -1.0;
}

// One-sided difference towards the neighbour nearer in depth; w 0 when neither has depth.
fn pick(p: vec3<f32>, a: vec3<f32>, za: f32, b: vec3<f32>, zb: f32) -> vec4<f32> {
    if za > 0.0 && zb > 0.0 {
        if abs(a.z - p.z) <= abs(b.z - p.z) {
            return vec4<f32>(a - p, 1.0);
        }
        return vec4<f32>(p - b, 1.0);
    }
    if za > 0.0 {
        return vec4<f32>(a - p, 1.0);
    }
    if zb > 0.0 {
        return vec4<f32>(p - b, 1.0);
    }
    return vec4<f32>(0.0);
}

@compute @workgroup_size(8, 8)
fn geometry(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    let h = P.dims.y;
    if g.x >= w || g.y >= h {
        return;
    }
    let u = g.x;
    let v = g.y;
    let i = v * w + u;
    let r = ray(u, v);
    let dir_c = normalize3(r);
    let dir = cam_rotate(dir_c);
    geo[3u * i + 2u] = vec4<f32>(dir, 0.0);
    let z = z_at(u, v);
    if z > 0.0 {
        let p = r * z;
        geo[3u * i] = vec4<f32>(cam_apply(p), sqrt(dot(p, p)));
        var za = -1.0;
        var zb = -1.0;
        if u + 1u < w {
            za = z_at(u + 1u, v);
        }
        if u > 0u {
            zb = z_at(u - 1u, v);
        }
        let dx = pick(p, ray(u + 1u, v) * za, za, ray(u - 1u, v) * zb, zb);
        za = -1.0;
        zb = -1.0;
        if v + 1u < h {
            za = z_at(u, v + 1u);
        }
        if v > 0u {
            zb = z_at(u, v - 1u);
        }
        let dy = pick(p, ray(u, v + 1u) * za, za, ray(u, v - 1u) * zb, zb);
        var nc = -dir_c;
        if dx.w > 0.0 && dy.w > 0.0 {
            nc = normalize3(cross(dy.xyz, dx.xyz));
        }
        if dot(nc, dir_c) > 0.0 {
            nc = -nc;
        }
        geo[3u * i + 1u] = vec4<f32>(cam_rotate(nc), 0.0);
    } else {
        geo[3u * i] = vec4<f32>(cam_apply(dir_c * 1.0e4), -1.0);
        geo[3u * i + 1u] = vec4<f32>(-dir, 0.0);
    }
}

// ---- lights.rs ----

fn sky(dir: vec3<f32>) -> vec3<f32> {
    let e = clamp(dir.z, -1.0, 1.0);
    let t = sqrt(max(e, 0.0));
    var c = mix3(P.horizon.xyz, P.zenith.xyz, t);
    if e < 0.0 {
        c = P.horizon.xyz * 0.6;
    }
    let s = max(dot(dir, P.sun_dir.xyz), 0.0);
    if P.sun.x > 0.0 {
        let s2 = s * s;
        let s4 = s2 * s2;
        let s8 = s4 * s4;
        let s64 = s8 * s8 * s8 * s8 * s8 * s8 * s8 * s8;
        let glow = s64 * 4.0 + s8 * 0.25;
        c += P.sun.xyz * glow;
    }
    return c;
}

// Light tiles: one thread per tile of TILE × TILE pixels lists the lights
// whose sphere of influence (and cone) meets the tile's world bounding box.
@compute @workgroup_size(64)
fn cull(@builtin(global_invocation_id) g: vec3<u32>) {
    let tx = P.dims.z;
    let t = g.x;
    if t >= tx * P.dims.w {
        return;
    }
    let w = P.dims.x;
    let h = P.dims.y;
    let ti = t % tx;
    let tj = t / tx;
    var lo = vec3<f32>(3.0e38);
    var hi = vec3<f32>(-3.0e38);
    for (var v = tj * TILE; v < min((tj + 1u) * TILE, h); v++) {
        for (var u = ti * TILE; u < min((ti + 1u) * TILE, w); u++) {
            let p = geo[3u * (v * w + u)];
            if p.w < 0.0 {
                continue;
            }
            lo = min(lo, p.xyz);
            hi = max(hi, p.xyz);
        }
    }
    let nl = P.counts.x;
    let base = P.off3.y + t * (nl + 1u);
    var count = 0u;
    if lo.x <= hi.x {
        for (var l = 0u; l < nl; l++) {
            let l0 = scene[4u * l];
            let l2 = scene[4u * l + 2u];
            let l3 = scene[4u * l + 3u];
            let pos = l0.xyz;
            let e = max(lo - pos, vec3<f32>(0.0)) + max(pos - hi, vec3<f32>(0.0));
            let d2 = e.x * e.x + e.y * e.y + e.z * e.z;
            if d2 >= l0.w * l0.w {
                continue;
            }
            if l3.y > 0.0 {
                let c = (lo + hi) * 0.5;
                let r = 0.5 * sqrt(dot(hi - lo, hi - lo));
                let vv = c - pos;
                let dist = sqrt(dot(vv, vv));
                if dist > r {
                    let half_w = acos(clamp(l3.x, -1.0, 1.0)) + asin(min(r / dist, 1.0));
                    if half_w < 3.14159265 && dot(vv, l2.xyz) / dist < cos(half_w) {
                        continue;
                    }
                }
            }
            words[base + 1u + count] = l;
            count++;
        }
    }
    words[base] = count;
}

fn add_light(l: vec3<f32>, radiance: vec3<f32>, n: vec3<f32>, to_eye: vec3<f32>, f0: f32, gloss: f32, ds: f32,
             diffuse: ptr<function, vec3<f32>>, spec: ptr<function, vec3<f32>>) {
    let ndl_raw = dot(n, l);
    let ndl = max(ndl_raw, 0.0) * ds + (1.0 - ds) * 0.6;
    if ndl <= 0.0 {
        return;
    }
    *diffuse += radiance * ndl;
    if f0 > 0.0 && ndl_raw > 0.0 {
        let hv = normalize3(l + to_eye);
        let x = max(dot(n, hv), 0.0);
        let norm = (gloss + 8.0) / 25.0;
        let s = f0 * norm * (x / (gloss - gloss * x + x)) * ndl_raw;
        *spec += radiance * s;
    }
}

struct Surf {
    albedo: vec3<f32>,
    f0: f32,
    gloss: f32,
    emissive: vec3<f32>,
    mirror: f32,
}

fn shade(surf: Surf, p: vec3<f32>, n: vec3<f32>, to_eye: vec3<f32>, tile: u32, ds: f32) -> vec3<f32> {
    let hemi = 0.55 + 0.45 * n.z;
    let flat_amb = P.ambient.xyz * 0.8;
    var diffuse = mix3(flat_amb, P.ambient.xyz * hemi, ds);
    var spec = vec3<f32>(0.0);
    if P.sun.x > 0.0 {
        add_light(P.sun_dir.xyz, P.sun.xyz, n, to_eye, surf.f0, surf.gloss, ds, &diffuse, &spec);
    }
    let nl = P.counts.x;
    let base = P.off3.y + tile * (nl + 1u);
    let count = words[base];
    for (var k = 0u; k < count; k++) {
        let l = words[base + 1u + k];
        let l0 = scene[4u * l];
        let l1 = scene[4u * l + 1u];
        let l2 = scene[4u * l + 2u];
        let l3 = scene[4u * l + 3u];
        let d = l0.xyz - p;
        let d2 = dot(d, d);
        let r2 = l0.w * l0.w;
        if d2 >= r2 {
            continue;
        }
        let dist = sqrt(d2);
        let dir = d * (1.0 / max(dist, 1e-4));
        let q = d2 / r2;
        let wq = max(1.0 - q * q, 0.0);
        var kk = wq * wq / (d2 + 1.0);
        if l1.w > 0.0 {
            kk *= d2 / (d2 + l1.w * l1.w);
        }
        if l3.y > 0.0 {
            let c = -dot(dir, l2.xyz);
            if c <= l3.x {
                continue;
            }
            let t = clamp((c - l3.x) / (l2.w - l3.x), 0.0, 1.0);
            kk *= t * t;
        }
        add_light(dir, l1.xyz * kk, n, to_eye, surf.f0, surf.gloss, ds, &diffuse, &spec);
    }
    var c = surf.albedo * diffuse + spec;
    if surf.f0 > 0.0 && surf.gloss > 30.0 {
        let ndv = clamp(dot(n, to_eye), 0.0, 1.0);
        let fresnel = surf.f0 + (1.0 - surf.f0) * pow5(1.0 - ndv);
        let r = 2.0 * ndv * n - to_eye;
        let k = fresnel * min((surf.gloss - 30.0) / 200.0, 1.0) * 0.8;
        c += sky(r) * k;
    }
    return c;
}

// ---- materials.rs ----

fn facade(p: vec3<f32>, n: vec3<f32>, fp: f32, tint: vec3<f32>, key: u32, s: ptr<function, Surf>) -> vec3<f32> {
    let base = mix3(vec3<f32>(0.35, 0.32, 0.28), tint * 0.33, max(P.mat.y, 0.6));
    if n.z > 0.7 {
        return base * 0.45;
    }
    var along = p.x;
    if abs(n.x) > abs(n.y) {
        along = p.y;
    }
    let plaster = base * (0.85 + 0.3 * fbm2(along, p.z, 1.2, P.seeds.z, fp, P.seeds.x ^ 61u));
    let cx = frac(along / 3.0);
    let cz = frac(p.z / 3.2);
    let storey = f32(ifloor(p.z / 3.2));
    var window = false;
    if storey < 1.0 {
        window = cx >= 0.12 && cx < 0.88 && cz >= 0.08 && cz < 0.78;
    } else {
        window = cx >= 0.25 && cx < 0.75 && cz >= 0.28 && cz < 0.80;
    }
    let visible = fade(3.0, fp);
    if !window || visible <= 0.0 || p.z < 0.3 {
        return plaster;
    }
    let cell = hash3(ifloor(along / 3.0), i32(storey), key);
    (*s).f0 = 0.08 * visible;
    (*s).gloss = 10.0 + 290.0 * visible;
    if P.mat2.z > 0.0 && unit(cell) < 0.35 {
        let warm = 0.6 + 0.8 * unit(hash32(cell));
        (*s).emissive = vec3<f32>(1.0, 0.72, 0.42) * (0.12 * warm * visible);
    }
    return mix3(plaster, vec3<f32>(0.02, 0.025, 0.03), visible);
}

fn surface(kind: u32, p: vec3<f32>, n: vec3<f32>, fp: f32, input: vec3<f32>, key_in: u32) -> Surf {
    let x = p.x;
    let y = p.y;
    let z = p.z;
    let seed = P.seeds.x;
    let o = P.seeds.z;
    let vis = P.mat.y;
    let lum_in = max(luminance(input), 1e-4);
    let tint = min(input / lum_in, vec3<f32>(3.0));
    let own = input * P.mat2.w;
    let key = hash32(key_in ^ seed);
    var s = Surf(own, 0.04, 10.0, vec3<f32>(0.0), 0.0);
    var albedo = own;
    switch kind {
        case 0u: {
            s.albedo = vec3<f32>(0.0);
            return s;
        }
        case 1u: {
            let grain = fbm2(x, y, 1.0, o + 1u, fp, seed);
            let repair = sstep(0.70, 0.74, value2(x / 7.0, y / 7.0, seed ^ 11u));
            let a = 0.085 * (0.7 + 0.6 * grain) * (1.0 - 0.3 * repair);
            albedo = vec3<f32>(a, a, a * 1.04);
        }
        case 2u: {
            let wear = fbm2(x, y, 0.6, o, fp, seed ^ 3u);
            let paint = 0.72 * (0.8 + 0.2 * fbm2(x, y, 0.2, o, fp, seed ^ 5u));
            let a = 0.085 + (paint - 0.085) * sstep(0.30, 0.42, wear);
            albedo = vec3<f32>(a, a, a * 0.97);
        }
        case 3u: {
            let gx = frac(x / 1.5);
            let gy = frac(y / 1.5);
            var joint = 0.0;
            if min(min(gx, 1.0 - gx), min(gy, 1.0 - gy)) < 0.015 {
                joint = fade(0.1, fp);
            }
            let slab = unit(hash3(ifloor(x / 1.5), ifloor(y / 1.5), seed ^ 17u));
            let a = 0.28 * (0.85 + 0.3 * fbm2(x, y, 0.8, o, fp, seed ^ 7u)) * (0.92 + 0.16 * slab) * (1.0 - 0.45 * joint);
            albedo = vec3<f32>(a, a * 0.98, a * 0.95);
        }
        case 4u: {
            albedo = facade(p, n, fp, tint, key, &s);
        }
        case 5u: {
            let v = fbm2(x, y, 1.5, o + 1u, fp, seed ^ 19u);
            let clump = sstep(0.55, 0.7, value2(x / 0.8, y / 0.8, seed ^ 23u)) * fade(0.8, fp);
            albedo = mix3(vec3<f32>(0.06, 0.11, 0.03), vec3<f32>(0.13, 0.11, 0.05), v) * (1.0 - 0.35 * clump);
        }
        case 6u: {
            var paint = palette(key % 8u);
            paint = mix3(paint, tint * luminance(paint), vis);
            let up = n.z;
            if z < 0.32 && up < 0.5 {
                s.gloss = 6.0;
                albedo = vec3<f32>(0.02, 0.02, 0.02);
            } else if z >= 0.85 && z < 1.38 && abs(up) < 0.6 {
                s.f0 = 0.06;
                s.gloss = 300.0;
                albedo = vec3<f32>(0.015, 0.017, 0.02);
            } else {
                s.f0 = 0.05;
                s.gloss = 120.0;
                albedo = paint;
            }
        }
        case 7u, 8u: {
            var height = 1.75;
            if kind == CHILD {
                height = 1.15;
            }
            let rel = z / height;
            let cloth = 0.85 + 0.3 * fbm2(x + y, z, 0.15, o, fp, seed ^ 29u);
            var c: vec3<f32>;
            if rel < 0.47 {
                c = palette(8u + key % 5u);
            } else if rel < 0.84 {
                c = palette(13u + (key >> 4u) % 8u);
            } else if rel < 0.95 {
                s.gloss = 20.0;
                c = palette(21u + (key >> 8u) % 6u);
            } else {
                c = palette(27u + (key >> 12u) % 4u);
            }
            if rel < 0.84 {
                c = mix3(c, tint * luminance(c), vis);
            }
            albedo = c * cloth;
        }
        case 9u: {
            let gx = frac(x / 0.6);
            let gy = frac(y / 0.6);
            var grout = 0.0;
            if min(min(gx, 1.0 - gx), min(gy, 1.0 - gy)) < 0.02 {
                grout = fade(0.05, fp);
            }
            let tile = unit(hash3(ifloor(x / 0.6), ifloor(y / 0.6), seed ^ 31u));
            s.gloss = 40.0;
            let a = 0.5 * (0.94 + 0.12 * tile) * (1.0 - 0.5 * grout);
            albedo = vec3<f32>(a, a * 0.98, a * 0.95);
        }
        case 10u: {
            let warp = fbm2(x * 0.5, y * 4.0, 1.0, 2u, fp, seed ^ 37u);
            let rings = 0.5 + 0.5 * sin(x * 28.0 + 9.0 * warp);
            s.gloss = 40.0;
            albedo = vec3<f32>(0.42, 0.26, 0.13) * (0.75 + 0.25 * (0.5 + (rings - 0.5) * fade(0.22, fp)));
        }
        case 11u: {
            s.f0 = 0.05;
            s.gloss = 60.0;
            albedo = mix3(vec3<f32>(0.75, 0.25, 0.03), tint * 0.3, vis);
        }
        case 12u: {
            s.f0 = 0.05;
            s.gloss = 150.0;
            albedo = mix3(vec3<f32>(0.80, 0.80, 0.78), tint * 0.7, vis);
        }
        default: {
            albedo = own * (0.9 + 0.2 * fbm2(x + z, y, 0.5, o, fp, seed ^ 41u));
        }
    }
    albedo = mix3(own, albedo, P.mat.x);

    let up = n.z;
    let snow_cover = P.mat.z;
    if snow_cover > 0.0 && up > 0.55 && kind != PEDESTRIAN && kind != CHILD {
        let patchy = clamp(0.6 + 1.6 * (fbm2(x, y, 3.0, 3u, fp, seed ^ 43u) - 0.5), 0.0, 1.0);
        var c = snow_cover * sstep(0.55, 0.9, up) * patchy;
        if kind == ROAD || kind == LANE {
            c *= 0.35 + 0.65 * value2(y / 0.9, x / 25.0, seed ^ 47u);
        }
        c = clamp(c, 0.0, 1.0);
        albedo = mix3(albedo, vec3<f32>(0.80, 0.83, 0.88), c);
        s.gloss = s.gloss * (1.0 - c) + 4.0 * c;
    }
    let wet = P.mat.w;
    if kind == ROAD || kind == LANE || kind == SIDEWALK {
        if wet > 0.0 {
            let puddles = sstep(0.5, 0.62, fbm2(x, y, 4.0, 3u, fp, seed ^ 53u));
            albedo = albedo * (1.0 - 0.45 * wet);
            s.mirror = (0.35 + 0.55 * puddles) * wet;
        }
        if P.mat2.x > 0.0 {
            albedo = vec3<f32>(albedo.x * 0.85, albedo.y * 0.9, albedo.z * 1.0);
            let black_ice = sstep(0.45, 0.6, fbm2(x, y, 6.0, 3u, fp, seed ^ 59u));
            s.mirror = max(s.mirror, 0.3 + 0.5 * black_ice);
        }
        s.mirror = max(s.mirror, 0.7 * P.mat2.y);
        if s.mirror > 0.0 {
            s.gloss = max(s.gloss, 200.0 * s.mirror);
        }
    } else if wet > 0.0 && up > 0.3 {
        s.gloss = max(s.gloss, 80.0);
    }
    s.albedo = albedo;
    return s;
}

// Materials and direct light: the HDR image, its mirror fraction in w.
@compute @workgroup_size(8, 8)
fn materials(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    if g.x >= w || g.y >= P.dims.y {
        return;
    }
    let i = g.y * w + g.x;
    let word = inp[i];
    let input = vec3<f32>(lin(word & 255u), lin((word >> 8u) & 255u), lin((word >> 16u) & 255u));
    let has_seg = flag(HAS_SEG);
    let has_depth = flag(HAS_DEPTH);
    var cls = 255u;
    if has_seg {
        cls = word >> 24u;
    }
    let wp = geo[3u * i];
    let d = wp.w;
    let finite = d >= 0.0;
    var kind = GENERIC;
    if has_seg {
        kind = tables[KINDS + cls];
        if kind == SKY && finite {
            kind = GENERIC;
        }
    }
    let view = geo[3u * i + 2u].xyz;
    let ds = P.mat3.x;
    let hdr = P.off.x;
    if !finite && (kind == SKY || has_depth) {
        let c = mix3(input * P.mat2.w * 0.5, sky(view), max(P.mat3.y, ds));
        px[hdr + i] = vec4<f32>(c, 0.0);
        return;
    }
    let nrm = geo[3u * i + 1u].xyz;
    let to_eye = -view;
    let grazing = max(abs(dot(nrm, to_eye)), 0.15);
    var footprint = 1.0;
    if finite {
        footprint = d * P.kinv.x / grazing;
    }
    let key = (cls << 24u) ^ (u32(input.x * 31.0) << 10u) ^ (u32(input.y * 31.0) << 5u) ^ u32(input.z * 31.0);
    let surf = surface(kind, wp.xyz, nrm, footprint, input, key);
    let tile = (g.y / TILE) * P.dims.z + g.x / TILE;
    let c = shade(surf, wp.xyz, nrm, to_eye, tile, ds);
    var m = 0.0;
    if has_depth {
        m = surf.mirror * ds;
    }
    px[hdr + i] = vec4<f32>(c + surf.emissive, m);
}

// ---- reflect.rs ----

fn blend_mirror(c: vec3<f32>, refl: vec3<f32>, mirror: f32, view: vec3<f32>, normal: vec3<f32>) -> vec3<f32> {
    let cs = clamp(-dot(view, normal), 0.0, 1.0);
    let f = min(mirror * (0.02 + 0.98 * pow5(1.0 - cs)), 1.0);
    return c * (1.0 - f) + refl * f;
}

// The ground plane, part 1: per light tile, the sum and count of reflecting pixels' heights.
@compute @workgroup_size(64)
fn ground_partial(@builtin(global_invocation_id) g: vec3<u32>) {
    let tx = P.dims.z;
    let t = g.x;
    if t >= tx * P.dims.w {
        return;
    }
    let w = P.dims.x;
    let ti = t % tx;
    let tj = t / tx;
    var sum = 0.0;
    var n = 0u;
    for (var v = tj * TILE; v < min((tj + 1u) * TILE, P.dims.y); v++) {
        for (var u = ti * TILE; u < min((ti + 1u) * TILE, w); u++) {
            let i = v * w + u;
            let p = geo[3u * i];
            if px[P.off.x + i].w > 0.0 && p.w >= 0.0 {
                // Heights relative to the camera's: small numbers, so f32 sums stay exact enough.
                sum += p.z - P.cam2.w;
                n++;
            }
        }
    }
    words[P.off4.x + 2u * t] = bitcast<u32>(sum);
    words[P.off4.x + 2u * t + 1u] = n;
}

// Part 2: the mean height (one thread).
@compute @workgroup_size(1)
fn ground(@builtin(global_invocation_id) g: vec3<u32>) {
    var sum = 0.0;
    var n = 0u;
    for (var t = 0u; t < P.dims.z * P.dims.w; t++) {
        sum += bitcast<f32>(words[P.off4.x + 2u * t]);
        n += words[P.off4.x + 2u * t + 1u];
    }
    var mean = 0.0;
    if n > 0u {
        mean = sum / f32(n) + P.cam2.w;
    }
    words[P.off4.y] = bitcast<u32>(mean);
    words[P.off4.y + 1u] = n;
}

// Where pixel i's mirror image falls in the half-resolution mirror image (NONE: nowhere),
// its depth in w of the return's x as bits.
fn mirrored(i: u32) -> vec2<u32> {
    let p = geo[3u * i];
    let ground = bitcast<f32>(words[P.off4.y]);
    if p.w < 0.0 || p.z < ground + 0.05 {
        return vec2<u32>(NONE, 0u);
    }
    let q = cam_inverse(vec3<f32>(p.x, p.y, 2.0 * ground - p.z));
    let xy = project(q);
    if xy.z < 0.0 || xy.x < 0.0 || xy.y < 0.0 {
        return vec2<u32>(NONE, 0u);
    }
    let x2 = u32(xy.x / 2.0);
    let y2 = u32(xy.y / 2.0);
    if x2 >= P.dims3.x || y2 >= P.dims3.y {
        return vec2<u32>(NONE, 0u);
    }
    return vec2<u32>(y2 * P.dims3.x + x2, bitcast<u32>(q.z));
}

// The mirror image holds, per cell, the complement of the nearest depth's
// bits and of its pixel's index (atomicMax of complements: the nearest, then
// the first in scan order, as the CPU); 0, what the buffer is cleared to, is
// "nothing". Each pixel's splat (cell, depth bits) is kept for `resolve`, so
// that both compare the same bits.
@compute @workgroup_size(8, 8)
fn splat(@builtin(global_invocation_id) g: vec3<u32>) {
    if g.x >= P.dims.x || g.y >= P.dims.y || words[P.off4.y + 1u] == 0u {
        return;
    }
    let i = g.y * P.dims.x + g.x;
    let m = mirrored(i);
    words[P.off4.w + 2u * i] = m.x;
    words[P.off4.w + 2u * i + 1u] = m.y;
    if m.x != NONE {
        atomicMax(&atom[m.x], ~m.y);
    }
}

@compute @workgroup_size(8, 8)
fn resolve(@builtin(global_invocation_id) g: vec3<u32>) {
    if g.x >= P.dims.x || g.y >= P.dims.y || words[P.off4.y + 1u] == 0u {
        return;
    }
    let i = g.y * P.dims.x + g.x;
    let cell = words[P.off4.w + 2u * i];
    if cell != NONE && atomicLoad(&atom[cell]) == ~words[P.off4.w + 2u * i + 1u] {
        atomicMax(&atom[P.dims3.x * P.dims3.y + cell], ~i);
    }
}

@compute @workgroup_size(8, 8)
fn gather(@builtin(global_invocation_id) g: vec3<u32>) {
    let w2 = P.dims3.x;
    if g.x >= w2 || g.y >= P.dims3.y || words[P.off4.y + 1u] == 0u {
        return;
    }
    let j = g.y * w2 + g.x;
    let owner = atomicLoad(&atom[w2 * P.dims3.y + j]);
    if owner == 0u {
        px[P.off.z + j] = vec4<f32>(0.0);
    } else {
        px[P.off.z + j] = vec4<f32>(px[P.off.x + ~owner].xyz, 1.0);
    }
}

// Reflections blended in (3×3 mean of the mirror image, else the mirrored
// sky), then the streaks of light sources on the reflecting ground.
@compute @workgroup_size(8, 8)
fn reflections(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    let h = P.dims.y;
    if g.x >= w || g.y >= h || words[P.off4.y + 1u] == 0u {
        return;
    }
    let i = g.y * w + g.x;
    let hdr = px[P.off.x + i];
    let m = hdr.w;
    if m <= 0.0 {
        return;
    }
    let w2 = P.dims3.x;
    let h2 = P.dims3.y;
    let x2 = g.x / 2u;
    let y2 = g.y / 2u;
    var c = vec3<f32>(0.0);
    var cnt = 0.0;
    for (var yy = max(y2, 1u) - 1u; yy < min(y2 + 2u, h2); yy++) {
        for (var xx = max(x2, 1u) - 1u; xx < min(x2 + 2u, w2); xx++) {
            let s = px[P.off.z + yy * w2 + xx];
            if s.w > 0.0 {
                c += s.xyz;
                cnt += 1.0;
            }
        }
    }
    let view = geo[3u * i + 2u].xyz;
    var refl: vec3<f32>;
    if cnt >= 2.0 {
        refl = c / cnt;
    } else {
        refl = sky(vec3<f32>(view.x, view.y, -view.z));
    }
    var out = blend_mirror(hdr.xyz, refl, m, view, geo[3u * i + 1u].xyz);
    let fu = f32(g.x);
    let fv = f32(g.y);
    let items = block_items(g, 1u);
    var count = items.x;
    if count == NONE {
        count = P.counts.y;
    }
    for (var n = 0u; n < count; n++) {
        var k = n;
        if items.x != NONE {
            k = words[items.y + n];
        }
        let a = px[P.off4.z + 4u * k + 2u];
        let b = px[P.off4.z + 4u * k + 3u];
        if b.w == 0.0 {
            continue;
        }
        let x = a.x;
        let y = a.y;
        let top = u32(max(y, 0.0));
        let bottom = min(u32(max(y + a.w, 0.0)), h);
        if g.y < top || g.y >= bottom {
            continue;
        }
        let along = (fv - y) / a.w;
        let fall = max(1.0 - along, 0.0) * max(1.0 - along, 0.0) * 0.06;
        let half_w = a.z * (1.0 + along);
        let left = u32(max(x - half_w, 0.0));
        let right = u32(max(min(x + half_w + 1.0, f32(w)), 0.0));
        if g.x < left || g.x >= right {
            continue;
        }
        let across = 1.0 - min(abs(fu - x) / (half_w + 0.5), 1.0);
        out += b.xyz * (m * fall * across);
    }
    px[P.off.x + i] = vec4<f32>(out, m);
}

// Per light source: where its streak on the reflecting ground starts (x, y),
// its width and length; its colour and whether it is drawn (w 1).
@compute @workgroup_size(64)
fn sprite_streaks(@builtin(global_invocation_id) g: vec3<u32>) {
    let k = g.x;
    if k >= P.counts.y {
        return;
    }
    let out = P.off4.z + 4u * k + 2u;
    px[out + 1u] = vec4<f32>(0.0);
    if words[P.off4.y + 1u] == 0u {
        return;
    }
    let ground = bitcast<f32>(words[P.off4.y]);
    let s0 = scene[4u * P.counts.x + 2u * k];
    let s1 = scene[4u * P.counts.x + 2u * k + 1u];
    let q = cam_inverse(vec3<f32>(s0.x, s0.y, 2.0 * ground - s0.z));
    let xy = project(q);
    let w = f32(P.dims.x);
    let h = f32(P.dims.y);
    if xy.z < 0.0 || xy.x < -2.0 || xy.x > w + 2.0 || xy.y > h {
        return;
    }
    let width = clamp(s0.w * P.k.x / q.z, 0.8, 6.0);
    let len = clamp(0.35 * (h - xy.y), 6.0, 160.0);
    px[out] = vec4<f32>(xy.x, xy.y, width, len);
    px[out + 1u] = vec4<f32>(s1.xyz, 1.0);
}

// The fast preset mirrors only the sky.
@compute @workgroup_size(8, 8)
fn sky_mirror(@builtin(global_invocation_id) g: vec3<u32>) {
    if g.x >= P.dims.x || g.y >= P.dims.y {
        return;
    }
    let i = g.y * P.dims.x + g.x;
    let hdr = px[P.off.x + i];
    if hdr.w > 0.0 {
        let v = geo[3u * i + 2u].xyz;
        px[P.off.x + i] = vec4<f32>(blend_mirror(hdr.xyz, sky(vec3<f32>(v.x, v.y, -v.z)), hdr.w, v, geo[3u * i + 1u].xyz), hdr.w);
    }
}

// ---- weather.rs ----

@compute @workgroup_size(8, 8)
fn fog(@builtin(global_invocation_id) g: vec3<u32>) {
    if g.x >= P.dims.x || g.y >= P.dims.y {
        return;
    }
    let i = g.y * P.dims.x + g.x;
    let d = geo[3u * i].w;
    var t = 1.0 - P.fog.y;
    if d >= 0.0 {
        t = exp(-P.fog.x * d);
    }
    let c = px[P.off.x + i];
    px[P.off.x + i] = vec4<f32>(mix3(P.airlight.xyz, c.xyz, t), c.w);
}

fn light_at(p: vec3<f32>) -> vec3<f32> {
    var c = P.ambient.xyz + P.sun.xyz * 0.3;
    for (var l = 0u; l < P.counts.x; l++) {
        let l0 = scene[4u * l];
        let l1 = scene[4u * l + 1u];
        let l2 = scene[4u * l + 2u];
        let l3 = scene[4u * l + 3u];
        let d = l0.xyz - p;
        let d2 = dot(d, d);
        if d2 > l0.w * l0.w {
            continue;
        }
        var k = 1.0 / (d2 + 1.0);
        if l1.w > 0.0 {
            k *= d2 / (d2 + l1.w * l1.w);
        }
        if l3.y > 0.0 {
            let cs = -dot(d, l2.xyz) / max(sqrt(d2), 1e-4);
            if cs <= l3.x {
                continue;
            }
            let t = clamp((cs - l3.x) / (l2.w - l3.x), 0.0, 1.0);
            k *= t * t;
        }
        c += l1.xyz * k;
    }
    return c;
}

fn occluded(u: i32, v: i32, z: f32) -> bool {
    if u < 0 || v < 0 || u >= i32(P.dims.x) || v >= i32(P.dims.y) || !flag(HAS_DEPTH) {
        return false;
    }
    let d = depth_at(u32(v) * P.dims.x + u32(u));
    return d > 0.0 && d < z && d < 3.0e38;
}

fn rem_euclid(x: f32, m: f32) -> f32 {
    let r = x - m * trunc(x / m);
    if r < 0.0 {
        return r + m;
    }
    return r;
}

// One thread per possible particle (cell i, j, k, number n, in the CPU's
// loop order): where it is on the image and how it is drawn, or not drawn
// (third vec4's z 0). Snow: (u, v, radius, alpha), (colour, depth), (0, 0, 1).
// Rain: (u, v, u0, alpha), (colour, depth), (v0, steps, 2).
@compute @workgroup_size(64)
fn particles(@builtin(global_invocation_id) g: vec3<u32>) {
    let id = g.x;
    if id >= P.counts.z {
        return;
    }
    let base = P.off.w + 3u * id;
    px[base + 2u] = vec4<f32>(0.0);
    let per_cell = P.counts.w;
    let n = id % per_cell;
    let rest = id / per_cell;
    let kz = P.grid.z + i32(rest % P.grid2.z);
    let rest2 = rest / P.grid2.z;
    let j = P.grid.y + i32(rest2 % P.grid2.y);
    let i = P.grid.x + i32(rest2 / P.grid2.y);
    let snow = P.part.w > 0.0;
    let t = P.part.x;
    let cell_seed = hash3(i, j, P.seeds.x ^ (bitcast<u32>(kz) * 0x9e3779b9u));
    let hsh = hash32(cell_seed + n * 0x85ebca6bu);
    let ox = unit(hsh);
    let oy = unit(hash32(hsh ^ 1u));
    let oz = unit(hash32(hsh ^ 2u));
    let speed = P.part.y * (0.8 + 0.4 * unit(hash32(hsh ^ 3u)));
    let phase = unit(hash32(hsh ^ 4u)) * 6.2831855;
    var sway = 0.0;
    if snow {
        sway = 0.25 * sin(t * 1.3 + phase);
    }
    let z_in_cell = rem_euclid(oz * CELL - speed * t, CELL);
    let p = vec3<f32>((f32(i) + ox) * CELL + sway, (f32(j) + oy) * CELL + 0.6 * sway, f32(kz) * CELL + z_in_cell);
    if p.z < -0.2 {
        return;
    }
    let pc = cam_inverse(p);
    let uv = project(pc);
    let w = f32(P.dims.x);
    let h = f32(P.dims.y);
    if uv.z < 0.0 || uv.x < -8.0 || uv.y < -8.0 || uv.x > w + 8.0 || uv.y > h + 8.0 || pc.z > P.part.z {
        return;
    }
    if occluded(i32(uv.x), i32(uv.y), pc.z) {
        return;
    }
    let fog_t = exp(-P.fog.x * pc.z);
    let lit = light_at(p);
    if snow {
        let radius = clamp(0.007 * P.k.x / pc.z, 0.5, 5.0);
        let alpha = (0.85 / max(radius * 0.6, 1.0)) * fog_t;
        px[base] = vec4<f32>(uv.x, uv.y, radius, alpha);
        px[base + 1u] = vec4<f32>(lit.x * 0.9, lit.y * 0.92, lit.z * 0.95, pc.z);
        px[base + 2u] = vec4<f32>(0.0, 0.0, 1.0, 0.0);
    } else {
        let p0 = vec3<f32>(p.x, p.y, p.z + speed * (1.0 / 60.0));
        let uv0 = project(cam_inverse(p0));
        if uv0.z < 0.0 {
            return;
        }
        let du = uv.x - uv0.x;
        let dv = uv.y - uv0.y;
        let len = max(sqrt(du * du + dv * dv), 1.0);
        let steps = min(ceil(len), 80.0);
        let alpha = min(0.22 * fog_t / max(len / 12.0, 1.0), 0.35);
        px[base] = vec4<f32>(uv.x, uv.y, uv0.x, alpha);
        px[base + 1u] = vec4<f32>(lit.x * 0.7 + 0.02, lit.y * 0.72 + 0.02, lit.z * 0.78 + 0.025, pc.z);
        px[base + 2u] = vec4<f32>(uv0.y, steps, 2.0, 0.0);
    }
}

// ---- binning: per 8 × 8 block of pixels, the items that may touch it ----
//
// Items are scattered into the blocks their pixel rectangle meets (atomic
// counters, zeroed before), then each block's list is sorted, so that a
// pixel visits its items in the CPU's drawing order. A block whose list
// overflows (count > BLOCK_CAP) is drawn from the whole item list.

const BLOCK: u32 = 8u;
const BLOCK_CAP: u32 = 63u;

// The pixel rectangle particle k may touch: (x0, y0, x1, y1), inclusive; x1 < x0 when none.
fn particle_box(k: u32) -> vec4<i32> {
    let a = px[P.off.w + 3u * k];
    let c = px[P.off.w + 3u * k + 2u];
    if c.z == 1.0 {
        let r = i32(ceil(a.z));
        let ui = i32(a.x);
        let vi = i32(a.y);
        return vec4<i32>(ui - r, vi - r, ui + r, vi + r);
    }
    if c.z == 2.0 {
        let u0 = i32(a.z);
        let u1 = i32(a.x);
        let v0 = i32(c.x);
        let v1 = i32(a.y);
        // One pixel of margin: a step's position may round past its endpoint's.
        return vec4<i32>(min(u0, u1) - 1, min(v0, v1) - 1, max(u0, u1) + 1, max(v0, v1) + 1);
    }
    return vec4<i32>(0, 0, -1, -1);
}

// Light source k's disc.
fn disc_box(k: u32) -> vec4<i32> {
    let a = px[P.off4.z + 4u * k];
    if px[P.off4.z + 4u * k + 1u].w == 0.0 {
        return vec4<i32>(0, 0, -1, -1);
    }
    let r = i32(ceil(a.z));
    return vec4<i32>(i32(a.x) - r, i32(a.y) - r, i32(a.x) + r, i32(a.y) + r);
}

// Light source k's streak on the ground (its half-width grows to twice the width).
fn streak_box(k: u32) -> vec4<i32> {
    let a = px[P.off4.z + 4u * k + 2u];
    if px[P.off4.z + 4u * k + 3u].w == 0.0 {
        return vec4<i32>(0, 0, -1, -1);
    }
    return vec4<i32>(i32(floor(a.x - 2.0 * a.z)) - 1, i32(max(a.y, 0.0)), i32(ceil(a.x + 2.0 * a.z)) + 1, i32(ceil(a.y + a.w)));
}

// Adds item `item` to the blocks `r` meets, in list `list` (0: draw, 1: streaks).
fn scatter(item: u32, r: vec4<i32>, list: u32) {
    let bx = (P.dims.x + BLOCK - 1u) / BLOCK;
    let by = (P.dims.y + BLOCK - 1u) / BLOCK;
    let x0 = max(r.x, 0);
    let y0 = max(r.y, 0);
    let x1 = min(r.z, i32(P.dims.x) - 1);
    let y1 = min(r.w, i32(P.dims.y) - 1);
    if x1 < x0 || y1 < y0 {
        return;
    }
    let counts = 2u * P.dims3.x * P.dims3.y + list * bx * by;
    let lists = P.off3.z + list * bx * by * BLOCK_CAP;
    for (var y = u32(y0) / BLOCK; y <= u32(y1) / BLOCK; y++) {
        for (var x = u32(x0) / BLOCK; x <= u32(x1) / BLOCK; x++) {
            let b = y * bx + x;
            let slot = atomicAdd(&atom[counts + b], 1u);
            if slot < BLOCK_CAP {
                words[lists + b * BLOCK_CAP + slot] = item;
            }
        }
    }
}

// Draw items: the particles, then the light sources seen directly.
@compute @workgroup_size(64)
fn bin_draw(@builtin(global_invocation_id) g: vec3<u32>) {
    let k = g.x;
    if k < P.counts.z {
        scatter(k, particle_box(k), 0u);
    } else if k < P.counts.z + P.counts.y {
        scatter(k, disc_box(k - P.counts.z), 0u);
    }
}

@compute @workgroup_size(64)
fn bin_streaks(@builtin(global_invocation_id) g: vec3<u32>) {
    if g.x < P.counts.y {
        scatter(g.x, streak_box(g.x), 1u);
    }
}

// Each block's list in item order (insertion sort: the lists are short).
@compute @workgroup_size(64)
fn bin_sort(@builtin(global_invocation_id) g: vec3<u32>) {
    let bx = (P.dims.x + BLOCK - 1u) / BLOCK;
    let nb = bx * ((P.dims.y + BLOCK - 1u) / BLOCK);
    if g.x >= 2u * nb {
        return;
    }
    let list = g.x / nb;
    let b = g.x % nb;
    let n = min(atomicLoad(&atom[2u * P.dims3.x * P.dims3.y + list * nb + b]), BLOCK_CAP + 1u);
    if n > BLOCK_CAP {
        return;
    }
    let base = P.off3.z + list * nb * BLOCK_CAP + b * BLOCK_CAP;
    for (var i = 1u; i < n; i++) {
        let v = words[base + i];
        var j = i;
        while j > 0u && words[base + j - 1u] > v {
            words[base + j] = words[base + j - 1u];
            j--;
        }
        words[base + j] = v;
    }
}

// The items block `b` of list `list` visits: (count, base of its sorted
// list); count NONE when it overflowed (then every item, in order).
fn block_items(g: vec3<u32>, list: u32) -> vec2<u32> {
    let bx = (P.dims.x + BLOCK - 1u) / BLOCK;
    let nb = bx * ((P.dims.y + BLOCK - 1u) / BLOCK);
    let b = (g.y / BLOCK) * bx + g.x / BLOCK;
    let n = atomicLoad(&atom[2u * P.dims3.x * P.dims3.y + list * nb + b]);
    if n > BLOCK_CAP {
        return vec2<u32>(NONE, 0u);
    }
    return vec2<u32>(n, P.off3.z + list * nb * BLOCK_CAP + b * BLOCK_CAP);
}

// Per light source seen directly: its pixel (truncated), radius and
// brightness (fog and energy spread); its colour and whether it is drawn.
@compute @workgroup_size(64)
fn sprite_discs(@builtin(global_invocation_id) g: vec3<u32>) {
    let k = g.x;
    if k >= P.counts.y {
        return;
    }
    let out = P.off4.z + 4u * k;
    px[out + 1u] = vec4<f32>(0.0);
    let w = P.dims.x;
    let h = P.dims.y;
    let s0 = scene[4u * P.counts.x + 2u * k];
    let s1 = scene[4u * P.counts.x + 2u * k + 1u];
    let pc = cam_inverse(s0.xyz);
    let uv = project(pc);
    if uv.z < 0.0 || uv.x < -4.0 || uv.y < -4.0 || uv.x > f32(w) + 4.0 || uv.y > f32(h) + 4.0 || pc.z > 300.0 {
        return;
    }
    let ui = i32(uv.x);
    let vi = i32(uv.y);
    if ui >= 0 && vi >= 0 && ui < i32(w) && vi < i32(h) && flag(HAS_DEPTH) {
        let z = depth_at(u32(vi) * w + u32(ui));
        if z > 0.0 && z < 3.0e38 && z < pc.z - 0.3 {
            return;
        }
    }
    let radius = clamp(s0.w * P.k.x / pc.z, 0.7, 12.0);
    let fog_t = exp(-P.fog.x * pc.z);
    let e = s0.w * P.k.x / pc.z / radius;
    let energy = max(e * e, 0.05);
    px[out] = vec4<f32>(f32(ui), f32(vi), radius, fog_t * energy);
    px[out + 1u] = vec4<f32>(s1.xyz, 1.0);
}

fn over(c: vec3<f32>, col: vec3<f32>, a: f32) -> vec3<f32> {
    if a <= 0.0 {
        return c;
    }
    return mix3(c, col, min(a, 1.0));
}

// Falling snow or rain in the CPU's drawing order, then the light sources the camera sees.
@compute @workgroup_size(8, 8)
fn draw(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    let h = P.dims.y;
    if g.x >= w || g.y >= h {
        return;
    }
    let i = g.y * w + g.x;
    let x = i32(g.x);
    let y = i32(g.y);
    let hdr = px[P.off.x + i];
    var c = hdr.xyz;
    let items = block_items(g, 0u);
    var count = items.x;
    if count == NONE {
        count = P.counts.z + P.counts.y;
    }
    for (var n = 0u; n < count; n++) {
        var k = n;
        if items.x != NONE {
            k = words[items.y + n];
        }
        if k >= P.counts.z {
            // A light source seen directly.
            let ks = k - P.counts.z;
            let a = px[P.off4.z + 4u * ks];
            let b = px[P.off4.z + 4u * ks + 1u];
            if b.w == 0.0 {
                continue;
            }
            let r = i32(ceil(a.z));
            let du = x - i32(a.x);
            let dv = y - i32(a.y);
            if abs(du) > r || abs(dv) > r {
                continue;
            }
            let cov = clamp(a.z + 0.5 - sqrt(f32(du * du + dv * dv)), 0.0, 1.0);
            if cov > 0.0 {
                c += b.xyz * (cov * a.w);
            }
            continue;
        }
        let a = px[P.off.w + 3u * k];
        let col = px[P.off.w + 3u * k + 1u];
        let e = px[P.off.w + 3u * k + 2u];
        if e.z == 1.0 {
            let ui = i32(a.x);
            let vi = i32(a.y);
            let r = i32(ceil(a.z));
            let du = x - ui;
            let dv = y - vi;
            if abs(du) > r || abs(dv) > r {
                continue;
            }
            let fu = a.x - trunc(a.x);
            let fv = a.y - trunc(a.y);
            let ex = f32(du) + 0.5 - fu;
            let ey = f32(dv) + 0.5 - fv;
            let cov = clamp(a.z + 0.5 - sqrt(ex * ex + ey * ey), 0.0, 1.0);
            if cov > 0.0 && !occluded(x, y, col.w) {
                c = over(c, col.xyz, a.w * cov);
            }
        } else if e.z == 2.0 {
            let steps = i32(e.y);
            let occ = occluded(x, y, col.w);
            for (var s = 0; s <= steps; s++) {
                let f = f32(s) / f32(max(steps, 1));
                let uu = i32(a.z + (a.x - a.z) * f);
                let vv = i32(e.x + (a.y - e.x) * f);
                if uu == x && vv == y && !occ {
                    c = over(c, col.xyz, a.w);
                }
            }
        }
    }
    px[P.off.x + i] = vec4<f32>(c, hdr.w);
}

// ---- sensor.rs ----

// The image the camera stages read: the HDR image, or its motion-blurred copy.
fn src_at(i: u32) -> vec3<f32> {
    if flag(SRC_BLURRED) {
        return px[P.off.y + i].xyz;
    }
    return px[P.off.x + i].xyz;
}

@compute @workgroup_size(8, 8)
fn motion_blur(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    let h = P.dims.y;
    if g.x >= w || g.y >= h {
        return;
    }
    let i = g.y * w + g.x;
    let q = apply_inverse(P.bef0, P.bef1, P.bef2, geo[3u * i].xyz);
    let xy = project(q);
    let here = px[P.off.x + i];
    if xy.z < 0.0 {
        px[P.off.y + i] = here;
        return;
    }
    let amount = P.fog.z;
    let du = ((f32(g.x) + 0.5) - xy.x) * amount;
    let dv = ((f32(g.y) + 0.5) - xy.y) * amount;
    if abs(du) + abs(dv) < 0.5 {
        px[P.off.y + i] = here;
        return;
    }
    var c = vec3<f32>(0.0);
    for (var t = 0u; t < 6u; t++) {
        let f = f32(t) / 5.0;
        let x = u32(clamp(f32(g.x) - du * f, 0.0, f32(w - 1u)));
        let y = u32(clamp(f32(g.y) - dv * f, 0.0, f32(h - 1u)));
        c += px[P.off.x + y * w + x].xyz;
    }
    px[P.off.y + i] = vec4<f32>(c / 6.0, here.w);
}

@compute @workgroup_size(8, 8)
fn bright(@builtin(global_invocation_id) g: vec3<u32>) {
    let sw = P.dims2.x;
    if g.x >= sw || g.y >= P.dims2.y {
        return;
    }
    let f = P.dims2.z;
    let w = P.dims.x;
    let threshold = P.fog.w;
    var c = vec3<f32>(0.0);
    var n = 0.0;
    for (var yy = g.y * f; yy < min((g.y + 1u) * f, P.dims.y); yy++) {
        for (var xx = g.x * f; xx < min((g.x + 1u) * f, w); xx++) {
            c += max(src_at(yy * w + xx) - vec3<f32>(threshold), vec3<f32>(0.0));
            n += 1.0;
        }
    }
    px[P.off2.x + g.y * sw + g.x] = vec4<f32>(c / n, 0.0);
}

// A Gaussian blur of sigma radius/2 along one axis of the bloom image.
fn blur_1d(g: vec3<u32>, src_off: u32, dst_off: u32, radius: u32, horizontal: bool) {
    let sw = P.dims2.x;
    let sh = P.dims2.y;
    if g.x >= sw || g.y >= sh {
        return;
    }
    let sigma = f32(radius) / 2.0;
    var norm = 1.0;
    for (var d = 1u; d <= radius; d++) {
        norm += 2.0 * exp(-(f32(d) * f32(d)) / (2.0 * sigma * sigma));
    }
    var c = px[src_off + g.y * sw + g.x].xyz;
    for (var d = 1u; d <= radius; d++) {
        let wt = exp(-(f32(d) * f32(d)) / (2.0 * sigma * sigma));
        var a: u32;
        var b: u32;
        if horizontal {
            a = g.y * sw + u32(max(i32(g.x) - i32(d), 0));
            b = g.y * sw + min(g.x + d, sw - 1u);
        } else {
            a = u32(max(i32(g.y) - i32(d), 0)) * sw + g.x;
            b = min(g.y + d, sh - 1u) * sw + g.x;
        }
        c += px[src_off + a].xyz * wt + px[src_off + b].xyz * wt;
    }
    px[dst_off + g.y * sw + g.x] = vec4<f32>(c / norm, 0.0);
}

@compute @workgroup_size(8, 8)
fn bloom_h(@builtin(global_invocation_id) g: vec3<u32>) {
    blur_1d(g, P.off2.x, P.off2.y, P.radii.x, true);
}

@compute @workgroup_size(8, 8)
fn bloom_v(@builtin(global_invocation_id) g: vec3<u32>) {
    blur_1d(g, P.off2.y, P.off2.z, P.radii.x, false);
}

@compute @workgroup_size(8, 8)
fn streak(@builtin(global_invocation_id) g: vec3<u32>) {
    blur_1d(g, P.off2.x, P.off2.w, P.radii.y, true);
}

fn dirt(u: f32, v: f32, seed: u32) -> f32 {
    var d = 0.15;
    for (var s = 0u; s < 6u; s++) {
        let hh = hash32(seed ^ (s * 0x2545f491u));
        let cx = f32(hh & 0xffffu) / 65535.0;
        let cy = f32(hh >> 16u) / 65535.0;
        let r = 0.08 + 0.1 * (f32(hash32(hh) & 0xffu) / 255.0);
        let dd = sqrt((u - cx) * (u - cx) + (v - cy) * (v - cy));
        d += max(1.0 - dd / r, 0.0) * 0.8;
    }
    return d;
}

@compute @workgroup_size(8, 8)
fn glow(@builtin(global_invocation_id) g: vec3<u32>) {
    let sw = P.dims2.x;
    let sh = P.dims2.y;
    if g.x >= sw || g.y >= sh {
        return;
    }
    let j = g.y * sw + g.x;
    var c = px[P.off2.z + j].xyz * P.fin2.y;
    if flag(GLARE) {
        let s = px[P.off2.w + j].xyz;
        let k = P.fin2.z;
        c = vec3<f32>(c.x + s.x * k, c.y + s.y * k * 0.95, c.z + s.z * k * 1.1);
    }
    if P.fin2.w > 0.0 {
        c *= 1.0 + P.fin2.w * 6.0 * dirt(f32(g.x) / f32(sw), f32(g.y) / f32(sh), P.seeds.x);
    }
    px[P.off3.x + j] = vec4<f32>(c, 0.0);
}

fn glow_at(u: u32, v: u32) -> vec3<f32> {
    let sw = P.dims2.x;
    let sh = P.dims2.y;
    let f = f32(P.dims2.z);
    let x = clamp((f32(u) + 0.5) / f - 0.5, 0.0, f32(sw - 1u));
    let y = clamp((f32(v) + 0.5) / f - 0.5, 0.0, f32(sh - 1u));
    let x0 = u32(x);
    let y0 = u32(y);
    let x1 = min(x0 + 1u, sw - 1u);
    let y1 = min(y0 + 1u, sh - 1u);
    let fx = x - f32(x0);
    let fy = y - f32(y0);
    let o = P.off3.x;
    let a = px[o + y0 * sw + x0].xyz;
    let b = px[o + y0 * sw + x1].xyz;
    let c = px[o + y1 * sw + x0].xyz;
    let d = px[o + y1 * sw + x1].xyz;
    let top = a + (b - a) * fx;
    let bot = c + (d - c) * fx;
    return top + (bot - top) * fy;
}

fn tonemap(v: f32) -> u32 {
    return tables[LUT + u32(min(max(v, 0.0) * 4095.9375, 65535.0))];
}

fn edge_luma(i: u32) -> f32 {
    let word = inp[i];
    return f32(77u * (word & 255u) + 150u * ((word >> 8u) & 255u) + 29u * ((word >> 16u) & 255u)) * (1.0 / (256.0 * 255.0));
}

// Aberration, glow, vignetting, noise, tone mapping and sRGB encoding into rgb8 words.
@compute @workgroup_size(8, 8)
fn finish(@builtin(global_invocation_id) g: vec3<u32>) {
    let w = P.dims.x;
    let h = P.dims.y;
    if g.x >= w || g.y >= h {
        return;
    }
    let u = g.x;
    let v = g.y;
    let i = v * w + u;
    let diag = sqrt(f32(w) * f32(w) + f32(h) * f32(h)) / 2.0;
    let dx = f32(u) + 0.5 - P.k.z;
    let dy = f32(v) + 0.5 - P.k.w;
    let r = sqrt(dx * dx + dy * dy) / diag;
    var c = src_at(i);
    let ab = P.fin.x;
    if ab > 0.0 && r > 0.05 {
        let s = ab * r * r / max(r * diag, 1.0);
        let xr = u32(clamp(f32(u) + dx * s, 0.0, f32(w - 1u)));
        let yr = u32(clamp(f32(v) + dy * s, 0.0, f32(h - 1u)));
        let xb = u32(clamp(f32(u) - dx * s, 0.0, f32(w - 1u)));
        let yb = u32(clamp(f32(v) - dy * s, 0.0, f32(h - 1u)));
        c = vec3<f32>(src_at(yr * w + xr).x, c.y, src_at(yb * w + xb).z);
    }
    let exposure = P.sun_dir.w;
    c *= exposure;
    c += glow_at(u, v) * exposure;
    let vignette = P.fin.y;
    if vignette > 0.0 {
        let t = (dx * dx + dy * dy) / (P.k.x * P.k.x);
        let cos4 = 1.0 / ((1.0 + t) * (1.0 + t));
        c *= 1.0 - vignette * (1.0 - cos4);
    }
    let shot = P.fin.z;
    let read_noise = P.fin.w;
    if shot > 0.0 || read_noise > 0.0 {
        let a = hash32(P.seeds.y ^ (i * 0x9e3779b9u));
        let b = hash32(a);
        let gs = vec3<f32>(
            f32((a & 255u) + (b & 255u)),
            f32(((a >> 8u) & 255u) + ((b >> 8u) & 255u)),
            f32(((a >> 16u) & 255u) + ((b >> 16u) & 255u)),
        ) * (2.449 / 255.0) - vec3<f32>(2.449);
        let sigma = sqrt(shot * max(c.y, 0.0) + read_noise * read_noise);
        c += sigma * gs;
    }
    var rgb: vec3<u32>;
    if flag(EDGES) {
        var le = i;
        if u > 0u {
            le = i - 1u;
        }
        var ri = i;
        if u + 1u < w {
            ri = i + 1u;
        }
        var up = i;
        if v > 0u {
            up = i - w;
        }
        var dn = i;
        if v + 1u < h {
            dn = i + w;
        }
        let e = (edge_luma(i) - 0.25 * (edge_luma(le) + edge_luma(ri) + edge_luma(up) + edge_luma(dn))) * (4.0 / 9.0) * 2.0 * P.fin2.x;
        let d = vec3<f32>(f32(tonemap(c.x)), f32(tonemap(c.y)), f32(tonemap(c.z))) / 255.0;
        rgb = vec3<u32>(clamp(d + vec3<f32>(e), vec3<f32>(0.0), vec3<f32>(1.0)) * 255.0 + vec3<f32>(0.5));
    } else {
        rgb = vec3<u32>(tonemap(c.x), tonemap(c.y), tonemap(c.z));
    }
    words[P.off3.w + i] = rgb.x | (rgb.y << 8u) | (rgb.z << 16u);
}
