//! Procedural materials per semantic class, anchored to world coordinates:
//! asphalt with grain, repairs and worn paint, concrete slabs, facades with
//! windows (lit at night), grass, car paint with glass and tyres, clothing and
//! skin variety, floor tiles, wood, ceramic; then snow cover, wetness and ice.

use super::geometry::dot;
use super::noise::{fade, fbm2, frac, hash3, hash32, ifloor, unit, value2};
use s2r_look::{Look, Precipitation, Surface};

/// What a class looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sky,
    Road,
    LaneMarking,
    Sidewalk,
    Building,
    Terrain,
    Vehicle,
    Pedestrian,
    Child,
    Floor,
    Table,
    Arm,
    Cup,
    /// A class this vocabulary does not know: its own colours, lightly textured.
    Generic,
}

impl Kind {
    /// The material of a class name (the names of ScenarioInfo.class_names).
    pub fn of(name: &str) -> Kind {
        match name {
            "unlabeled" | "sky" | "background" => Kind::Sky,
            "road" => Kind::Road,
            "lane_marking" => Kind::LaneMarking,
            "sidewalk" => Kind::Sidewalk,
            "building" => Kind::Building,
            "terrain" | "vegetation" | "grass" => Kind::Terrain,
            "vehicle" | "ego_vehicle" | "car" | "truck" => Kind::Vehicle,
            "pedestrian" | "person" | "cyclist" | "rider" => Kind::Pedestrian,
            "child" => Kind::Child,
            "floor" => Kind::Floor,
            "table" => Kind::Table,
            "robot_arm" => Kind::Arm,
            "cup" => Kind::Cup,
            _ => Kind::Generic,
        }
    }

    /// Flat ground that can hold water, ice and snow, and mirror the scene.
    pub fn is_ground(self) -> bool {
        matches!(self, Kind::Road | Kind::LaneMarking | Kind::Sidewalk)
    }
}

/// A surface's optical parameters at a pixel.
#[derive(Clone, Copy, Debug, Default)]
pub struct Surf {
    /// Diffuse reflectance, linear RGB.
    pub albedo: [f32; 3],
    /// Specular reflectance at normal incidence and Blinn-Phong exponent.
    pub f0: f32,
    pub gloss: f32,
    /// Light the surface emits (lit windows), linear radiance.
    pub emissive: [f32; 3],
    /// How much of a mirror the surface is (water films, ice), 0..1.
    pub mirror: f32,
}

/// What the materials need from the look and the control weights.
#[derive(Clone, Copy, Debug)]
pub struct MaterialParams {
    /// Relative strength of the segmentation control: material vs the flat colour.
    pub seg: f32,
    /// Relative strength of the colour ("vis") control: the flat frame's hues kept.
    pub vis: f32,
    pub snow_cover: f32,
    pub wet: f32,
    pub icy: bool,
    pub reflections: f32,
    pub dark: bool,
    pub seed: u32,
    /// Octaves of the finest textures (fewer in the fast preset).
    pub octaves: u32,
    /// Global gain that brings the flat frame's colours to reflectances.
    pub input_gain: f32,
}

impl MaterialParams {
    pub fn new(look: &Look, seg: f32, vis: f32, seed: u32, fast: bool, input_gain: f32) -> MaterialParams {
        let snow_cover = match (look.surface, look.precipitation) {
            (Surface::Snowy, _) => 0.55 + 0.45 * look.precipitation_intensity.max(0.3),
            (_, Precipitation::Snow) => 0.5 * look.precipitation_intensity,
            _ => 0.0,
        };
        let wet = match look.surface {
            Surface::Wet => 0.6 + 0.4 * look.precipitation_intensity,
            _ => 0.0,
        };
        MaterialParams {
            seg,
            vis,
            snow_cover,
            wet,
            icy: look.surface == Surface::Icy,
            reflections: look.reflections,
            dark: look.time.is_dark(),
            seed,
            octaves: if fast { 2 } else { 4 },
            input_gain,
        }
    }
}

pub fn srgb_to_linear(c: u8) -> f32 {
    let c = c as f32 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

#[inline]
pub fn luminance(c: [f32; 3]) -> f32 {
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

#[inline]
fn mix3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

#[inline]
fn mul(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

#[inline]
fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

pub(crate) const CAR_PAINTS: [[f32; 3]; 8] = [
    [0.80, 0.80, 0.80],
    [0.03, 0.03, 0.035],
    [0.45, 0.46, 0.48],
    [0.50, 0.04, 0.03],
    [0.05, 0.12, 0.40],
    [0.15, 0.15, 0.16],
    [0.05, 0.15, 0.08],
    [0.55, 0.48, 0.35],
];
pub(crate) const TROUSERS: [[f32; 3]; 5] =
    [[0.06, 0.09, 0.18], [0.02, 0.02, 0.02], [0.30, 0.26, 0.16], [0.12, 0.12, 0.12], [0.12, 0.07, 0.04]];
pub(crate) const TOPS: [[f32; 3]; 8] = [
    [0.45, 0.05, 0.04],
    [0.03, 0.05, 0.15],
    [0.06, 0.20, 0.07],
    [0.025, 0.025, 0.025],
    [0.45, 0.38, 0.26],
    [0.70, 0.55, 0.05],
    [0.60, 0.60, 0.58],
    [0.35, 0.10, 0.30],
];
pub(crate) const SKIN: [[f32; 3]; 6] =
    [[0.55, 0.38, 0.30], [0.45, 0.30, 0.22], [0.30, 0.20, 0.14], [0.18, 0.11, 0.07], [0.62, 0.45, 0.36], [0.38, 0.25, 0.16]];
pub(crate) const HAIR: [[f32; 3]; 4] = [[0.02, 0.015, 0.01], [0.12, 0.07, 0.03], [0.40, 0.30, 0.15], [0.25, 0.25, 0.25]];

/// Everything a material looks at, per pixel.
pub struct Sample {
    pub kind: Kind,
    pub p: [f32; 3],
    pub n: [f32; 3],
    /// Metres per pixel at this surface (the texture filter).
    pub footprint: f32,
    /// The flat frame's colour, linear.
    pub input: [f32; 3],
    /// A per-object key (instance id, or a hash of the object's flat colour).
    pub key: u32,
}

/// The surface at one pixel.
pub fn surface(s: &Sample, m: &MaterialParams) -> Surf {
    let [x, y, z] = s.p;
    let fp = s.footprint;
    let seed = m.seed;
    let lum_in = luminance(s.input).max(1e-4);
    let tint = [(s.input[0] / lum_in).min(3.0), (s.input[1] / lum_in).min(3.0), (s.input[2] / lum_in).min(3.0)];
    let own = mul(s.input, m.input_gain);
    let o = m.octaves;
    let key = hash32(s.key ^ seed);
    let mut surf = Surf { albedo: own, f0: 0.04, gloss: 10.0, emissive: [0.0; 3], mirror: 0.0 };
    let mut albedo = match s.kind {
        Kind::Sky => return Surf { albedo: [0.0; 3], ..surf },
        Kind::Road => {
            let grain = fbm2(x, y, 1.0, o + 1, fp, seed);
            let patch = smoothstep(0.70, 0.74, value2(x / 7.0, y / 7.0, seed ^ 11));
            let a = 0.085 * (0.7 + 0.6 * grain) * (1.0 - 0.3 * patch);
            [a, a, a * 1.04]
        }
        Kind::LaneMarking => {
            let wear = fbm2(x, y, 0.6, o, fp, seed ^ 3);
            let paint = 0.72 * (0.8 + 0.2 * fbm2(x, y, 0.2, o, fp, seed ^ 5));
            let a = 0.085 + (paint - 0.085) * smoothstep(0.30, 0.42, wear);
            [a, a, a * 0.97]
        }
        Kind::Sidewalk => {
            let (gx, gy) = (frac(x / 1.5), frac(y / 1.5));
            let joint = (gx.min(1.0 - gx).min(gy).min(1.0 - gy) < 0.015) as u32 as f32 * fade(0.1, fp);
            let slab = unit(hash3(ifloor(x / 1.5), ifloor(y / 1.5), seed ^ 17));
            let a = 0.28 * (0.85 + 0.3 * fbm2(x, y, 0.8, o, fp, seed ^ 7)) * (0.92 + 0.16 * slab) * (1.0 - 0.45 * joint);
            [a, a * 0.98, a * 0.95]
        }
        Kind::Building => facade(s, m, &mut surf, tint, key),
        Kind::Terrain => {
            let v = fbm2(x, y, 1.5, o + 1, fp, seed ^ 19);
            let clump = smoothstep(0.55, 0.7, value2(x / 0.8, y / 0.8, seed ^ 23)) * fade(0.8, fp);
            mul(mix3([0.06, 0.11, 0.03], [0.13, 0.11, 0.05], v), 1.0 - 0.35 * clump)
        }
        Kind::Vehicle => {
            let paint = CAR_PAINTS[(key % 8) as usize];
            let paint = mix3(paint, mul(tint, luminance(paint)), m.vis);
            let (h, up) = (z, s.n[2]);
            if h < 0.32 && up < 0.5 {
                surf.gloss = 6.0;
                [0.02, 0.02, 0.02]
            } else if (0.85..1.38).contains(&h) && up.abs() < 0.6 {
                surf.f0 = 0.06;
                surf.gloss = 300.0;
                [0.015, 0.017, 0.02]
            } else {
                surf.f0 = 0.05;
                surf.gloss = 120.0;
                paint
            }
        }
        Kind::Pedestrian | Kind::Child => {
            let height = if s.kind == Kind::Child { 1.15 } else { 1.75 };
            let rel = z / height;
            let cloth = 0.85 + 0.3 * fbm2(x + y, z, 0.15, o, fp, seed ^ 29);
            let c = if rel < 0.47 {
                TROUSERS[(key % 5) as usize]
            } else if rel < 0.84 {
                TOPS[((key >> 4) % 8) as usize]
            } else if rel < 0.95 {
                surf.gloss = 20.0;
                SKIN[((key >> 8) % 6) as usize]
            } else {
                HAIR[((key >> 12) % 4) as usize]
            };
            let c = if rel < 0.84 { mix3(c, mul(tint, luminance(c)), m.vis) } else { c };
            mul(c, cloth)
        }
        Kind::Floor => {
            let (gx, gy) = (frac(x / 0.6), frac(y / 0.6));
            let grout = (gx.min(1.0 - gx).min(gy).min(1.0 - gy) < 0.02) as u32 as f32 * fade(0.05, fp);
            let tile = unit(hash3(ifloor(x / 0.6), ifloor(y / 0.6), seed ^ 31));
            surf.gloss = 40.0;
            let a = 0.5 * (0.94 + 0.12 * tile) * (1.0 - 0.5 * grout);
            [a, a * 0.98, a * 0.95]
        }
        Kind::Table => {
            let warp = fbm2(x * 0.5, y * 4.0, 1.0, 2, fp, seed ^ 37);
            let rings = 0.5 + 0.5 * (x * 28.0 + 9.0 * warp).sin();
            surf.gloss = 40.0;
            mul([0.42, 0.26, 0.13], 0.75 + 0.25 * (0.5 + (rings - 0.5) * fade(0.22, fp)))
        }
        Kind::Arm => {
            surf.f0 = 0.05;
            surf.gloss = 60.0;
            mix3([0.75, 0.25, 0.03], mul(tint, 0.3), m.vis)
        }
        Kind::Cup => {
            surf.f0 = 0.05;
            surf.gloss = 150.0;
            mix3([0.80, 0.80, 0.78], mul(tint, 0.7), m.vis)
        }
        Kind::Generic => mul(own, 0.9 + 0.2 * fbm2(x + z, y, 0.5, o, fp, seed ^ 41)),
    };
    // The segmentation control's weight: how far materials replace the flat colour.
    albedo = mix3(own, albedo, m.seg);

    // Weather on surfaces: snow settles on what faces up, water and ice on the ground.
    let up = s.n[2];
    if m.snow_cover > 0.0 && up > 0.55 && s.kind != Kind::Pedestrian && s.kind != Kind::Child {
        let patchy = (0.6 + 1.6 * (fbm2(x, y, 3.0, 3, fp, seed ^ 43) - 0.5)).clamp(0.0, 1.0);
        let mut c = m.snow_cover * smoothstep(0.55, 0.9, up) * patchy;
        if s.kind == Kind::Road || s.kind == Kind::LaneMarking {
            // Traffic keeps wheel tracks clearer than the rest.
            c *= 0.35 + 0.65 * value2(y / 0.9, x / 25.0, seed ^ 47);
        }
        let c = c.clamp(0.0, 1.0);
        albedo = mix3(albedo, [0.80, 0.83, 0.88], c);
        surf.gloss = surf.gloss * (1.0 - c) + 4.0 * c;
    }
    if s.kind.is_ground() {
        let puddles = smoothstep(0.5, 0.62, fbm2(x, y, 4.0, 3, fp, seed ^ 53));
        if m.wet > 0.0 {
            albedo = mul(albedo, 1.0 - 0.45 * m.wet);
            surf.mirror = (0.35 + 0.55 * puddles) * m.wet;
        }
        if m.icy {
            albedo = [albedo[0] * 0.85, albedo[1] * 0.9, albedo[2] * 1.0];
            let black_ice = smoothstep(0.45, 0.6, fbm2(x, y, 6.0, 3, fp, seed ^ 59));
            surf.mirror = surf.mirror.max(0.3 + 0.5 * black_ice);
        }
        surf.mirror = surf.mirror.max(0.7 * m.reflections);
        if surf.mirror > 0.0 {
            surf.gloss = surf.gloss.max(200.0 * surf.mirror);
        }
    } else if m.wet > 0.0 && up > 0.3 {
        surf.gloss = surf.gloss.max(80.0);
    }
    surf.albedo = albedo;
    surf
}

/// A facade: plaster in the building's own colour, a grid of windows (some lit
/// at night), darker roofs.
fn facade(s: &Sample, m: &MaterialParams, surf: &mut Surf, tint: [f32; 3], key: u32) -> [f32; 3] {
    let [x, y, z] = s.p;
    let fp = s.footprint;
    let base = mix3([0.35, 0.32, 0.28], mul(tint, 0.33), m.vis.max(0.6));
    if s.n[2] > 0.7 {
        return mul(base, 0.45);
    }
    let along = if dot(s.n, [1.0, 0.0, 0.0]).abs() > dot(s.n, [0.0, 1.0, 0.0]).abs() { y } else { x };
    let plaster = mul(base, 0.85 + 0.3 * fbm2(along, z, 1.2, m.octaves, fp, m.seed ^ 61));
    let (cx, cz) = (frac(along / 3.0), frac(z / 3.2));
    let storey = ifloor(z / 3.2) as f32;
    let window = if storey < 1.0 {
        (0.12..0.88).contains(&cx) && (0.08..0.78).contains(&cz)
    } else {
        (0.25..0.75).contains(&cx) && (0.28..0.80).contains(&cz)
    };
    let visible = fade(3.0, fp);
    if !window || visible <= 0.0 || z < 0.3 {
        return plaster;
    }
    let cell = hash3(ifloor(along / 3.0), storey as i32, key);
    surf.f0 = 0.08 * visible;
    surf.gloss = 10.0 + 290.0 * visible;
    if m.dark && unit(cell) < 0.35 {
        let warm = 0.6 + 0.8 * unit(hash32(cell));
        surf.emissive = mul([1.0, 0.72, 0.42], 0.12 * warm * visible);
    }
    mix3(plaster, [0.02, 0.025, 0.03], visible)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind, p: [f32; 3], footprint: f32) -> Sample {
        Sample { kind, p, n: [0.0, 0.0, 1.0], footprint, input: [0.1, 0.1, 0.1], key: 7 }
    }

    #[test]
    fn materials_are_anchored_to_the_world() {
        let m = MaterialParams::new(&Look::default(), 1.0, 0.3, 3, false, 1.0);
        // The same world point seen at the same footprint gives the same albedo,
        // whatever pixel it falls on; different points differ.
        let a = surface(&sample(Kind::Road, [12.3, -1.7, 0.0], 0.02), &m).albedo;
        let b = surface(&sample(Kind::Road, [12.3, -1.7, 0.0], 0.02), &m).albedo;
        let c = surface(&sample(Kind::Road, [12.9, -1.2, 0.0], 0.02), &m).albedo;
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Seen from far away, the fine grain averages out to a smooth tone.
        let far: Vec<f32> = (0..50).map(|i| surface(&sample(Kind::Road, [i as f32 * 0.013, 0.0, 0.0], 2.0), &m).albedo[0]).collect();
        let near: Vec<f32> = (0..50).map(|i| surface(&sample(Kind::Road, [i as f32 * 0.013, 0.0, 0.0], 0.005), &m).albedo[0]).collect();
        let spread = |v: &[f32]| v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread(&far) < spread(&near) / 3.0, "far {} near {}", spread(&far), spread(&near));
    }

    #[test]
    fn weather_changes_the_ground() {
        let dry = surface(&sample(Kind::Road, [3.0, 1.0, 0.0], 0.02), &MaterialParams::new(&Look::default(), 1.0, 0.3, 3, false, 1.0));
        let wet_look = s2r_look::parse("heavy rain").look;
        let wet = surface(&sample(Kind::Road, [3.0, 1.0, 0.0], 0.02), &MaterialParams::new(&wet_look, 1.0, 0.3, 3, false, 1.0));
        assert!(wet.mirror > 0.3 && dry.mirror == 0.0);
        assert!(wet.albedo[0] < dry.albedo[0]);
        // Snow lies in patches: on average over a patch of sidewalk it brightens it.
        let mean = |look: &Look| {
            let m = MaterialParams::new(look, 1.0, 0.3, 3, false, 1.0);
            (0..400)
                .map(|i| surface(&sample(Kind::Sidewalk, [(i % 20) as f32 * 0.7, (i / 20) as f32 * 0.7, 0.0], 0.02), &m).albedo[0])
                .sum::<f32>()
                / 400.0
        };
        let (snow, bare) = (mean(&s2r_look::parse("snowy").look), mean(&Look::default()));
        assert!(snow > bare + 0.1, "snow {snow}, bare {bare}");
    }
}
