//! What people and vehicles look like: articulated people (head, hair, neck,
//! torso, pelvis, upper and lower arms, thighs, shins, feet) with adult and
//! child proportions, clothing, skin and hair colours and postures, whose limbs
//! swing with a gait cycle driven by how far they walked; and vehicles of six
//! body types (sedan, hatchback, SUV, van, truck, bus) with wheels, windows,
//! light clusters and mirrors, in colours drawn by their real-world frequency.
//!
//! Every part lies within the object's bounding box (its physics collider and
//! 3-D label); 2-D boxes and masks come from the rendered parts.

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

use crate::rng::Rng;
use crate::world::{Part, Shape};

/// A hinge about the object's lateral (y) axis that a part turns on as its
/// person walks: `rest + amount · swing · s`, radians, with `s = sin(gait +
/// phase)` (or its positive half when `one_way`, for knees and elbows). A
/// positive angle turns what hangs below the pivot backwards (−x) and what
/// stands above it forwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joint {
    /// The hinge, object frame.
    pub pivot: [f32; 3],
    /// The angle at rest (a bent elbow, a head looking down).
    pub rest: f32,
    /// The angle the gait adds at a walking pace.
    pub swing: f32,
    /// Where in the gait cycle it peaks.
    pub phase: f32,
    /// Bends one way only.
    pub one_way: bool,
}

impl Joint {
    fn angle(&self, gait: Gait) -> f32 {
        let s = (gait.phase + self.phase).sin();
        let s = if self.one_way { s.max(0.0) } else { s };
        self.rest + gait.amount * self.swing * s
    }

    fn transform(&self, gait: Gait) -> Isometry3<f32> {
        let p = Vector3::from(self.pivot);
        Translation3::from(p) * UnitQuaternion::from_axis_angle(&Vector3::y_axis(), self.angle(gait)) * Translation3::from(-p)
    }
}

/// Where an object is in its gait cycle: `phase` (radians, 2π per stride)
/// and `amount` (0 standing, 1 walking, up to 2 sprinting).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gait {
    /// Radians.
    pub phase: f32,
    /// Swing scale.
    pub amount: f32,
}

/// A part's pose in the object frame for a gait: its offset turned by its
/// joints, the inner (`joints[1]`) first.
pub(crate) fn posed(part: &Part, gait: Gait) -> Isometry3<f32> {
    let mut m = part.offset;
    for j in part.joints.iter().rev().flatten() {
        m = j.transform(gait) * m;
    }
    m
}

/// Metres per gait cycle (two steps) for a person `height` tall.
pub(crate) fn stride(height: f32) -> f32 {
    0.8 * height
}

/// Gait swing scale at `speed` m/s (1 at an adult's walking pace).
pub(crate) fn gait_amount(speed: f32) -> f32 {
    (speed / 1.3).clamp(0.0, 2.0)
}

const SKIN: &[[f32; 3]] =
    &[[0.92, 0.76, 0.64], [0.85, 0.66, 0.53], [0.72, 0.52, 0.38], [0.55, 0.38, 0.26], [0.38, 0.25, 0.17], [0.26, 0.17, 0.12]];
const HAIR: &[[f32; 3]] =
    &[[0.03, 0.02, 0.02], [0.09, 0.05, 0.03], [0.22, 0.13, 0.06], [0.62, 0.48, 0.25], [0.45, 0.45, 0.46], [0.42, 0.14, 0.05]];
/// Tops of adults' clothing (the scenario's `color` replaces the draw).
pub(crate) const TOPS: &[[f32; 3]] = &[
    [0.20, 0.25, 0.45],
    [0.45, 0.15, 0.15],
    [0.25, 0.35, 0.20],
    [0.35, 0.30, 0.25],
    [0.60, 0.55, 0.20],
    [0.78, 0.78, 0.75],
    [0.05, 0.05, 0.06],
    [0.70, 0.35, 0.10],
    [0.35, 0.15, 0.40],
];
const BOTTOMS: &[[f32; 3]] = &[[0.12, 0.16, 0.30], [0.05, 0.05, 0.06], [0.45, 0.38, 0.25], [0.30, 0.30, 0.32], [0.20, 0.12, 0.08]];
const SHOES: &[[f32; 3]] = &[[0.04, 0.04, 0.04], [0.80, 0.80, 0.78], [0.25, 0.14, 0.07]];

/// How one person looks, drawn from its own stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PersonLook {
    pub top: [f32; 3],
    pub skin: [f32; 3],
    pub hair: [f32; 3],
    pub bottom: [f32; 3],
    pub shoes: [f32; 3],
    pub short_sleeves: bool,
    /// Standing, looking down at a phone in the right hand.
    pub phone: bool,
}

impl PersonLook {
    /// A look around the top colour `top` (the scenario's or the palette's);
    /// `standing` people may be looking at a phone.
    pub(crate) fn draw(top: [f32; 3], standing: bool, rng: &mut Rng) -> PersonLook {
        let mut pick = |p: &[[f32; 3]]| p[rng.below(p.len())];
        let (skin, hair, bottom, shoes) = (pick(SKIN), pick(HAIR), pick(BOTTOMS), pick(SHOES));
        PersonLook { top, skin, hair, bottom, shoes, short_sleeves: rng.unit() < 0.4, phone: standing && rng.unit() < 0.35 }
    }
}

fn part(size: [f32; 3], at: [f32; 3], color: [f32; 3], joints: [Option<Joint>; 2]) -> Part {
    Part { shape: Shape::Box(size), offset: Isometry3::translation(at[0], at[1], at[2]), color, joints }
}

/// A person `size` = [depth, width, height] (its bounding box, origin at its
/// centre, facing +x), with adult or child proportions.
pub(crate) fn person_parts(size: [f32; 3], child: bool, look: &PersonLook) -> Vec<Part> {
    let [depth, width, h] = size;
    let z0 = -h / 2.0;
    // Proportions as fractions of stature (children: a larger head, shorter legs).
    let (head_f, hip_f, arm_upper_f, arm_lower_f) = if child { (0.175, 0.47, 0.18, 0.23) } else { (0.13, 0.52, 0.19, 0.24) };
    let head = head_f * h;
    let neck = 0.03 * h;
    let shoulder_z = z0 + h - head - neck;
    let hip_z = z0 + hip_f * h;
    let foot_h = 0.035 * h;
    let thigh = (hip_z - z0 - foot_h) * 0.5;
    let shin = thigh;
    let leg_t = (0.075 * h).min(width * 0.4);
    let arm_t = (0.05 * h).min(width * 0.2);
    let torso_w = width - 2.0 * arm_t - 0.01;
    let torso_d = (0.13 * h).min(depth * 0.55);
    let hip_y = torso_w * 0.24;
    let arm_y = torso_w / 2.0 + arm_t / 2.0;
    let swing_leg = if child { 0.44 } else { 0.4 };
    let sleeve = if look.short_sleeves { look.skin } else { look.top };

    let hip = |side: f32, phase: f32| Joint { pivot: [0.0, side * hip_y, hip_z], rest: 0.0, swing: swing_leg, phase, one_way: false };
    let knee = |side: f32, phase: f32| Joint {
        pivot: [0.0, side * hip_y, hip_z - thigh],
        rest: 0.04,
        swing: 0.6,
        // The knee bends most as the leg swings through, after the hip's extension.
        phase: phase - 1.4,
        one_way: true,
    };
    let shoulder_z_pivot = shoulder_z - 0.01 * h;
    let shoulder = |side: f32, phase: f32, rest: f32, swing: f32| Joint {
        pivot: [0.0, side * arm_y, shoulder_z_pivot],
        rest,
        swing,
        phase,
        one_way: false,
    };
    let elbow = |side: f32, phase: f32, rest: f32| Joint {
        pivot: [0.0, side * arm_y, shoulder_z_pivot - arm_upper_f * h],
        rest,
        swing: -0.35,
        phase,
        one_way: true,
    };
    let neck_joint =
        Joint { pivot: [0.0, 0.0, shoulder_z], rest: if look.phone { 0.45 } else { 0.0 }, swing: 0.0, phase: 0.0, one_way: false };

    let mut parts = vec![
        // Torso, from just below the hips' line to the shoulders.
        part([torso_d, torso_w, shoulder_z - hip_z + 0.02 * h], [0.0, 0.0, (shoulder_z + hip_z - 0.02 * h) / 2.0], look.top, [None, None]),
        // Pelvis.
        part([torso_d * 0.95, torso_w * 0.9, 0.09 * h], [0.0, 0.0, hip_z - 0.02 * h], look.bottom, [None, None]),
        // Neck, head, hair (the head nods on the neck).
        part([neck * 1.6, neck * 1.6, neck + 0.01 * h], [0.0, 0.0, shoulder_z + neck / 2.0], look.skin, [Some(neck_joint), None]),
        part([head * 0.82, head * 0.72, head], [0.0, 0.0, z0 + h - head / 2.0], look.skin, [Some(neck_joint), None]),
        part([head * 0.7, head * 0.76, head * 0.38], [-head * 0.1, 0.0, z0 + h - head * 0.17], look.hair, [Some(neck_joint), None]),
    ];
    for (side, phase) in [(1.0f32, 0.0f32), (-1.0, std::f32::consts::PI)] {
        let y = side * hip_y;
        // Legs: thigh on the hip; shin and foot on the hip and the knee.
        parts.push(part([leg_t, leg_t, thigh], [0.0, y, hip_z - thigh / 2.0], look.bottom, [Some(hip(side, phase)), None]));
        parts.push(part(
            [leg_t * 0.85, leg_t * 0.85, shin],
            [0.0, y, hip_z - thigh - shin / 2.0],
            look.bottom,
            [Some(hip(side, phase)), Some(knee(side, phase))],
        ));
        parts.push(part(
            [0.14 * h, leg_t * 0.9, foot_h],
            [0.035 * h, y, z0 + foot_h / 2.0],
            look.shoes,
            [Some(hip(side, phase)), Some(knee(side, phase))],
        ));
        // Arms swing against the leg of their side; a phone is held in the right hand.
        let holds_phone = look.phone && side < 0.0;
        let (upper_rest, elbow_rest) = if holds_phone { (0.1, -1.55) } else { (0.0, -0.2) };
        let arm_phase = phase + std::f32::consts::PI;
        let sh = shoulder(side, arm_phase, upper_rest, 0.35);
        let el = elbow(side, arm_phase, elbow_rest);
        let ay = side * arm_y;
        let upper = arm_upper_f * h;
        let lower = arm_lower_f * h;
        parts.push(part([arm_t, arm_t, upper], [0.0, ay, shoulder_z_pivot - upper / 2.0], look.top, [Some(sh), None]));
        parts.push(part(
            [arm_t * 0.9, arm_t * 0.9, lower],
            [0.0, ay, shoulder_z_pivot - upper - lower / 2.0],
            sleeve,
            [Some(sh), Some(el)],
        ));
        if holds_phone {
            parts.push(part(
                [0.02 * h, 0.04 * h, 0.085 * h],
                [0.0, ay * 0.8, shoulder_z_pivot - upper - lower * 0.95],
                [0.02, 0.02, 0.03],
                [Some(sh), Some(el)],
            ));
        }
    }
    parts
}

/// Metres a cyclist covers per pedal turn (a 0.68 m wheel, a middle gear).
pub(crate) const CYCLIST_STRIDE: f32 = 5.0;

/// A person riding a bicycle, `size` = [length, width, height] (origin at its
/// centre, facing +x): wheels, frame, saddle and handlebar; the rider leans to
/// the bars, the legs turn the pedals (the gait).
pub(crate) fn cyclist_parts(size: [f32; 3], look: &PersonLook, frame_paint: [f32; 3]) -> Vec<Part> {
    let [l, w, h] = size;
    let z0 = -h / 2.0;
    let wheel = (0.38 * l).min(0.7);
    let axle_x = l / 2.0 - wheel / 2.0 - 0.02;
    let axle_z = z0 + wheel / 2.0;
    let tyre = [0.03, 0.03, 0.03];
    let turn = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f32::consts::FRAC_PI_2);
    let mut parts = Vec::new();
    for x in [axle_x, -axle_x] {
        parts.push(Part {
            shape: Shape::Cylinder { diameter: wheel, height: 0.05 },
            offset: Isometry3::from_parts(Translation3::new(x, 0.0, axle_z), turn),
            color: tyre,
            joints: [None, None],
        });
    }
    let crank = [0.0, 0.0, axle_z];
    let saddle_z = z0 + 0.52 * h;
    // Frame: the top tube and the down tube as one box, the seat post, the fork, the bars.
    parts.push(rigid([2.0 * axle_x * 0.8, 0.05, 0.05], [0.0, 0.0, saddle_z - 0.12], frame_paint));
    parts.push(rigid([0.05, 0.05, saddle_z - axle_z], [-0.08, 0.0, (saddle_z + axle_z) / 2.0], frame_paint));
    parts.push(rigid([0.05, 0.05, saddle_z + 0.1 - axle_z], [axle_x - 0.05, 0.0, (saddle_z + 0.1 + axle_z) / 2.0], frame_paint));
    parts.push(rigid([0.06, 0.5 * w.clamp(0.5, 1.0), 0.04], [axle_x - 0.1, 0.0, saddle_z + 0.12], [0.05, 0.05, 0.05]));
    parts.push(rigid([0.22, 0.1, 0.05], [-0.1, 0.0, saddle_z + 0.02], [0.05, 0.05, 0.05]));
    // The rider: a torso leaning to the bars, head, arms to the bars.
    let torso = 0.3 * h;
    let lean = UnitQuaternion::from_axis_angle(&Vector3::y_axis(), 0.75);
    let torso_c = Vector3::new(0.05, 0.0, saddle_z + 0.05 + torso * 0.4);
    parts.push(Part {
        shape: Shape::Box([0.2, 0.34f32.min(w * 0.9), torso]),
        offset: Isometry3::from_parts(Translation3::from(torso_c), lean),
        color: look.top,
        joints: [None, None],
    });
    let head = 0.13 * h;
    parts.push(rigid([head * 0.82, head * 0.72, head], [0.28, 0.0, saddle_z + 0.05 + torso * 0.75], look.skin));
    parts.push(rigid([head * 0.9, head * 0.8, head * 0.3], [0.26, 0.0, saddle_z + 0.05 + torso * 0.75 + head * 0.45], look.hair));
    let arm_tilt = UnitQuaternion::from_axis_angle(&Vector3::y_axis(), -0.9);
    for side in [-1.0f32, 1.0] {
        parts.push(Part {
            shape: Shape::Box([0.06, 0.06, 0.5]),
            offset: Isometry3::from_parts(Translation3::new((axle_x - 0.1 + 0.15) / 2.0 + 0.02, side * 0.2, saddle_z + 0.22), arm_tilt),
            color: if look.short_sleeves { look.skin } else { look.top },
            joints: [None, None],
        });
    }
    // Legs from the saddle to the pedals, turning with the crank.
    let thigh = saddle_z - crank[2] - 0.05;
    for (side, phase) in [(1.0f32, 0.0f32), (-1.0, std::f32::consts::PI)] {
        let hip = Joint { pivot: [-0.08, side * 0.1, saddle_z], rest: -0.6, swing: 0.45, phase, one_way: false };
        let knee = Joint { pivot: [-0.08, side * 0.1, saddle_z - thigh * 0.5], rest: 0.5, swing: 0.5, phase: phase + 1.0, one_way: true };
        parts.push(part([0.1, 0.1, thigh * 0.5], [-0.08, side * 0.1, saddle_z - thigh * 0.25], look.bottom, [Some(hip), None]));
        parts.push(part([0.09, 0.09, thigh * 0.5], [-0.08, side * 0.1, saddle_z - thigh * 0.75], look.bottom, [Some(hip), Some(knee)]));
    }
    parts
}

/// A piece of street furniture along a road's sidewalks: a lamp or sign post
/// (class `pole`), a sign plate, a bin or a tree.
pub(crate) struct Furniture {
    pub class: u8,
    pub parts: Vec<Part>,
    /// Footprint centre on the ground, world frame (x, y).
    pub at: [f32; 2],
    /// Bounding box half extents.
    pub half: [f32; 3],
    /// Height of its bottom above the ground (a sign plate on its post).
    pub lift: f32,
}

fn cylinder(d: f32, h: f32, at: [f32; 3], color: [f32; 3]) -> Part {
    Part {
        shape: Shape::Cylinder { diameter: d, height: h },
        offset: Isometry3::translation(at[0], at[1], at[2]),
        color,
        joints: [None, None],
    }
}

/// A lamp post 6 m tall whose arm reaches over the road (`towards` = ±1 in y).
pub(crate) fn lamp_post(at: [f32; 2], towards: f32) -> Furniture {
    let h = 6.2;
    let parts = vec![
        cylinder(0.16, 6.0, [0.0, 0.0, -h / 2.0 + 3.0], [0.25, 0.26, 0.27]),
        rigid([0.1, 1.2, 0.1], [0.0, towards * 0.6, h / 2.0 - 0.25], [0.25, 0.26, 0.27]),
        rigid([0.3, 0.45, 0.1], [0.0, towards * 1.1, h / 2.0 - 0.35], [0.85, 0.85, 0.8]),
    ];
    Furniture { class: crate::world::class::POLE, parts, at, half: [0.2, 1.4, h / 2.0], lift: 0.0 }
}

/// A sign on a 2.6 m post: the post (pole) and the plate (traffic_sign) as two pieces.
pub(crate) fn sign(at: [f32; 2], facing_x: f32, rng: &mut Rng) -> [Furniture; 2] {
    const PLATES: &[[f32; 3]] = &[[0.75, 0.05, 0.05], [0.05, 0.2, 0.65], [0.85, 0.75, 0.1], [0.85, 0.85, 0.85]];
    let post = Furniture {
        class: crate::world::class::POLE,
        parts: vec![cylinder(0.07, 2.6, [0.0, 0.0, 0.0], [0.55, 0.56, 0.58])],
        at,
        half: [0.05, 0.05, 1.3],
        lift: 0.0,
    };
    let plate = Furniture {
        class: crate::world::class::TRAFFIC_SIGN,
        parts: vec![rigid([0.03, 0.62, 0.62], [facing_x * 0.05, 0.0, 0.0], PLATES[rng.below(PLATES.len())])],
        at,
        half: [0.08, 0.31, 0.31],
        lift: 1.98,
    };
    [post, plate]
}

/// A litter bin.
pub(crate) fn bin(at: [f32; 2], rng: &mut Rng) -> Furniture {
    const BINS: &[[f32; 3]] = &[[0.08, 0.2, 0.1], [0.2, 0.2, 0.22], [0.05, 0.05, 0.06]];
    let color = BINS[rng.below(BINS.len())];
    Furniture {
        class: crate::world::class::BIN,
        parts: vec![cylinder(0.55, 0.95, [0.0, 0.0, 0.0], color)],
        at,
        half: [0.28, 0.28, 0.475],
        lift: 0.0,
    }
}

/// A street tree: a trunk and a crown of a drawn size.
pub(crate) fn tree(at: [f32; 2], rng: &mut Rng) -> Furniture {
    let height = rng.uniform(4.5, 8.0) as f32;
    let crown = (height * rng.uniform(0.35, 0.5) as f32).min(3.5);
    let trunk = height - crown * 0.8;
    let green = [0.08 + 0.06 * rng.unit() as f32, 0.2 + 0.12 * rng.unit() as f32, 0.05 + 0.04 * rng.unit() as f32];
    let parts = vec![
        cylinder(0.28, trunk, [0.0, 0.0, -height / 2.0 + trunk / 2.0], [0.22, 0.15, 0.09]),
        cylinder(crown, crown, [0.0, 0.0, height / 2.0 - crown / 2.0], green),
    ];
    Furniture { class: crate::world::class::VEGETATION, parts, at, half: [crown / 2.0, crown / 2.0, height / 2.0], lift: 0.0 }
}

/// A vehicle's body type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Three boxes: hood, cabin, trunk.
    Sedan,
    /// A cabin to the rear.
    Hatchback,
    /// Taller, a long cabin.
    Suv,
    /// One box, glass in front.
    Van,
    /// A cab and a cargo box.
    Truck,
    /// A long box with a band of windows.
    Bus,
}

/// Body types with their share of traffic and typical size (length, width, height).
const BODIES: &[(Body, f64, [f64; 3])] = &[
    (Body::Sedan, 0.34, [4.6, 1.8, 1.45]),
    (Body::Hatchback, 0.26, [4.1, 1.75, 1.5]),
    (Body::Suv, 0.24, [4.7, 1.9, 1.75]),
    (Body::Van, 0.10, [5.1, 2.0, 2.1]),
    (Body::Truck, 0.04, [7.0, 2.4, 3.0]),
    (Body::Bus, 0.02, [11.0, 2.5, 3.1]),
];

impl Body {
    /// A body type by its share of traffic, and its size.
    pub(crate) fn draw(rng: &mut Rng) -> (Body, [f64; 3]) {
        let mut x = rng.unit() * BODIES.iter().map(|b| b.1).sum::<f64>();
        for (b, w, size) in BODIES {
            if x < *w {
                return (*b, *size);
            }
            x -= w;
        }
        (Body::Sedan, BODIES[0].2)
    }

    /// The body type a size suggests (for vehicles whose size is given).
    pub(crate) fn of_size(size: [f32; 3]) -> Body {
        let [l, _, h] = size;
        if l > 9.0 {
            Body::Bus
        } else if l > 6.2 {
            Body::Truck
        } else if h > 1.95 {
            Body::Van
        } else if h > 1.62 {
            Body::Suv
        } else if l < 4.3 {
            Body::Hatchback
        } else {
            Body::Sedan
        }
    }
}

/// Paint colours by their share of cars on the road (white, black, grey,
/// silver, blue, red, beige, green, yellow).
const PAINT: &[([f32; 3], f64)] = &[
    ([0.85, 0.85, 0.83], 0.34),
    ([0.02, 0.02, 0.025], 0.19),
    ([0.22, 0.23, 0.24], 0.17),
    ([0.55, 0.57, 0.60], 0.10),
    ([0.05, 0.12, 0.45], 0.08),
    ([0.60, 0.04, 0.04], 0.07),
    ([0.50, 0.40, 0.28], 0.02),
    ([0.06, 0.25, 0.10], 0.01),
    ([0.80, 0.60, 0.05], 0.02),
];

/// A paint colour drawn by frequency.
pub(crate) fn paint(rng: &mut Rng) -> [f32; 3] {
    let mut x = rng.unit() * PAINT.iter().map(|p| p.1).sum::<f64>();
    for (c, w) in PAINT {
        if x < *w {
            return *c;
        }
        x -= w;
    }
    PAINT[0].0
}

fn rigid(size: [f32; 3], at: [f32; 3], color: [f32; 3]) -> Part {
    part(size, at, color, [None, None])
}

/// A vehicle of `size` = [length, width, height] (its bounding box, origin at
/// its centre, facing +x).
pub(crate) fn vehicle_parts(body: Body, size: [f32; 3], paint: [f32; 3]) -> Vec<Part> {
    let [l, w, h] = size;
    let z0 = -h / 2.0;
    let glass = [paint[0] * 0.15 + 0.03, paint[1] * 0.15 + 0.05, paint[2] * 0.15 + 0.07];
    let tyre = [0.03, 0.03, 0.03];
    let r: f32 = match body {
        Body::Truck | Body::Bus => 0.5f32,
        Body::Van => 0.35,
        _ => 0.31,
    }
    .min(h * 0.3);
    let bottom = z0 + 0.55 * r;
    let mut parts = Vec::new();
    let (glass_top, front_of_cabin) = match body {
        Body::Sedan | Body::Hatchback | Body::Suv => {
            let belt = z0 + 0.57 * h;
            parts.push(rigid([l, w, belt - bottom], [0.0, 0.0, (belt + bottom) / 2.0], paint));
            let (len, x) = match body {
                Body::Sedan => (0.48 * l, -0.04 * l),
                Body::Hatchback => (0.58 * l, -0.12 * l),
                _ => (0.62 * l, -0.1 * l),
            };
            let roof = 0.05;
            let top = -z0 - roof;
            parts.push(rigid([len, 0.88 * w, top - belt], [x, 0.0, (top + belt) / 2.0], glass));
            parts.push(rigid([len * 0.92, 0.86 * w, roof], [x, 0.0, top + roof / 2.0], paint));
            (belt, x + len / 2.0)
        }
        Body::Van | Body::Bus => {
            parts.push(rigid([l, w, -z0 - bottom], [0.0, 0.0, (-z0 + bottom) / 2.0], paint));
            let band = 0.32 * h;
            let z = -z0 - 0.12 * h - band / 2.0;
            if body == Body::Bus {
                parts.push(rigid([l * 0.96, w + 0.004, band], [0.0, 0.0, z], glass));
                parts.push(rigid([0.006, w * 0.9, band * 1.4], [l / 2.0 + 0.002, 0.0, z - band * 0.2], glass));
            } else {
                parts.push(rigid([0.3 * l, w + 0.004, band], [0.32 * l, 0.0, z], glass));
                parts.push(rigid([0.35 * l, w + 0.004, band * 0.8], [-0.15 * l, 0.0, z], glass));
            }
            (z - band / 2.0, l / 2.0 - 0.3 * l)
        }
        Body::Truck => {
            let cab = 0.26 * l;
            let cab_h = 0.8 * h;
            let cx = l / 2.0 - cab / 2.0;
            parts.push(rigid([cab, w, cab_h - (bottom - z0)], [cx, 0.0, bottom + (cab_h - (bottom - z0)) / 2.0], paint));
            parts.push(rigid([0.006, w * 0.85, 0.3 * cab_h], [l / 2.0 + 0.002, 0.0, z0 + 0.75 * cab_h], glass));
            let cargo = l - cab - 0.15;
            parts.push(rigid(
                [cargo, w, h - (bottom - z0) - 0.1],
                [-l / 2.0 + cargo / 2.0, 0.0, (bottom + 0.1 - z0) / 2.0],
                [0.80, 0.80, 0.78],
            ));
            (z0 + 0.6 * cab_h, l / 2.0 - cab)
        }
    };
    // Wheels: cylinders turned to roll about the lateral axis.
    let axle = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f32::consts::FRAC_PI_2);
    let inset = if body == Body::Bus { 2.3 } else { 1.35 * r + 0.25 };
    let mut axles = vec![l / 2.0 - inset, -l / 2.0 + inset];
    if body == Body::Truck {
        axles.push(-l / 2.0 + inset + 2.2 * r + 0.1);
    }
    for x in axles {
        for side in [-1.0f32, 1.0] {
            parts.push(Part {
                shape: Shape::Cylinder { diameter: 2.0 * r, height: 0.24 },
                offset: Isometry3::from_parts(Translation3::new(x, side * (w / 2.0 - 0.13), z0 + r), axle),
                color: tyre,
                joints: [None, None],
            });
        }
    }
    // Lights and mirrors.
    let lamp_z = glass_top - 0.18;
    for side in [-1.0f32, 1.0] {
        parts.push(rigid([0.04, 0.2 * w, 0.1], [l / 2.0 - 0.015, side * 0.36 * w, lamp_z], [0.92, 0.92, 0.86]));
        parts.push(rigid([0.04, 0.16 * w, 0.12], [-l / 2.0 + 0.015, side * 0.38 * w, lamp_z], [0.65, 0.03, 0.03]));
        parts.push(rigid([0.1, 0.1, 0.08], [front_of_cabin - 0.1, side * (w / 2.0 - 0.05), glass_top + 0.08], paint));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(parts: &[Part], size: [f32; 3], gait: Gait) {
        for (i, p) in parts.iter().enumerate() {
            let m = posed(p, gait);
            let half = match p.shape {
                Shape::Box(s) => Vector3::new(s[0], s[1], s[2]) / 2.0,
                Shape::Cylinder { diameter, height } => Vector3::new(diameter, diameter, height) / 2.0,
                Shape::Mesh { size: s, .. } => Vector3::new(s[0], s[1], s[2]) / 2.0,
            };
            for corner in 0..8 {
                let c = Vector3::new(
                    if corner & 1 == 0 { -half.x } else { half.x },
                    if corner & 2 == 0 { -half.y } else { half.y },
                    if corner & 4 == 0 { -half.z } else { half.z },
                );
                let q = m * nalgebra::Point3::from(c);
                for a in 0..3 {
                    assert!(q[a].abs() <= size[a] / 2.0 + 0.08, "part {i} corner {q:?} leaves the box {size:?} (axis {a}, gait {gait:?})");
                }
            }
        }
    }

    #[test]
    fn people_and_vehicles_stay_in_their_boxes() {
        let mut rng = Rng::new(1);
        for child in [false, true] {
            let size = if child { [0.6, 0.3, 1.15] } else { [0.9, 0.42, 1.75] };
            for phone in [false, true] {
                let look = PersonLook { phone, ..PersonLook::draw([0.5; 3], true, &mut rng) };
                let parts = person_parts(size, child, &look);
                assert_eq!(
                    parts.len(),
                    15 + phone as usize,
                    "head, hair, neck, torso, pelvis, two arms and legs of three parts each (and a phone)"
                );
                for k in 0..8 {
                    inside(&parts, size, Gait { phase: k as f32 * 0.8, amount: if phone { 0.0 } else { 1.0 } });
                }
            }
        }
        for (body, _, size) in BODIES {
            let size = [size[0] as f32, size[1] as f32, size[2] as f32];
            assert_eq!(Body::of_size(size), *body);
            inside(&vehicle_parts(*body, size, [0.5; 3]), size, Gait::default());
        }
    }

    #[test]
    fn legs_swing_in_opposition_and_knees_only_bend_back() {
        let look = PersonLook::draw([0.5; 3], false, &mut Rng::new(2));
        let parts = person_parts([0.9, 0.42, 1.75], false, &look);
        // The feet are the shoes-coloured parts, left then right.
        let feet: Vec<&Part> = parts.iter().filter(|p| p.color == look.shoes).collect();
        assert_eq!(feet.len(), 2);
        let x = |p: &Part, g: Gait| posed(p, g).translation.x;
        let g = Gait { phase: std::f32::consts::FRAC_PI_2, amount: 1.0 };
        assert!(x(feet[0], g) * x(feet[1], g) < 0.0, "one foot ahead, one behind");
        let still = Gait { phase: 1.0, amount: 0.0 };
        assert!((x(feet[0], still) - x(feet[1], still)).abs() < 1e-6, "standing: feet side by side");
        for p in &parts {
            if let [_, Some(j)] = p.joints {
                if j.one_way && j.swing > 0.0 {
                    for k in 0..16 {
                        assert!(j.angle(Gait { phase: k as f32 * 0.4, amount: 1.5 }) >= j.rest, "a knee bends forward");
                    }
                }
            }
        }
        // Paint follows its frequency table.
        let mut rng = Rng::new(3);
        let white = (0..2000).filter(|_| paint(&mut rng) == PAINT[0].0).count();
        assert!((550..810).contains(&white), "{white} of 2000 white");
    }
}
