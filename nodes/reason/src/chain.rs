//! The reasoning chain for a car that may have to stop: each step a sentence
//! whose number is a predictor's output (the step's `value`), and the
//! constraints they set (`sim2real_msgs/Reasoning`).

use sim2real_msgs::geometry_msgs::msg::Point;
use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning, ReasoningStep};
use sim2real_msgs::std_msgs::msg::Header;

use crate::questions::surface;
use crate::stopping::StoppingModel;

/// Metres the car should keep between its bumper and what it stops for.
pub const STOP_MARGIN: f32 = 2.5;
/// Share of the estimated grip the speed limit is planned with (the
/// driving expert's): the rest absorbs an estimate on the wrong side, a late
/// step out and the controller's lag while it tracks a falling limit.
pub const PLAN_GRIP: f32 = 0.5;
/// Metres it wants to be able to stop in while creeping past an occlusion.
pub const CREEP_STOP: f32 = 1.0;

/// What the car knows when it reasons about braking.
#[derive(Clone, Debug, PartialEq)]
pub struct Braking {
    /// Its speed, m/s.
    pub speed: f32,
    /// The road's friction as estimated, and how sure of it.
    pub mu: (f32, f32),
    /// Seconds until a command reaches the brakes (its control period).
    pub reaction: f32,
    /// Metres ahead that are known to be free (sight, or the nearest obstacle),
    /// with what bounds them ("a pedestrian", "the headlights' reach").
    pub free: (f32, String),
    /// Metres to the far end of a parked vehicle by the kerb that may hide
    /// someone, when there is one.
    pub occlusion: Option<f32>,
}

fn step(text: String, quantity: &str, value: f32, unit: &str, confidence: f32) -> ReasoningStep {
    ReasoningStep { text, quantity: quantity.into(), value, unit: unit.into(), confidence }
}

/// The chain and its constraints: the surface, the stopping distance from
/// the current speed, whether that stops short of what bounds the free
/// distance (and how fast it would hit it), a parked car that may hide
/// someone and the speed it allows, the speed limit they imply.
pub fn braking(model: &StoppingModel, b: &Braking, header: Header) -> Reasoning {
    let (mu, p) = b.mu;
    let plan = mu * PLAN_GRIP;
    let (free, what) = (&b.free.0, b.free.1.as_str());
    let stop = model.distance(b.speed, mu, b.reaction);
    let room = (free - STOP_MARGIN).max(0.0);
    let mut limit = model.max_speed(room, plan, b.reaction);
    let mut steps = vec![
        step(format!("the road looks like {}: μ ≈ {mu:.2} (p {p:.2})", surface(mu)), "surface_mu", mu, "", p),
        step(format!("stopping from {:.1} m/s needs {stop:.1} m", b.speed, stop = stop), "stopping_distance", stop, "m", p),
    ];
    if stop <= room {
        steps.push(step(
            format!("{what} is {free:.1} m ahead: the car stops {:.1} m short of it", free - stop),
            "stop_margin",
            free - stop,
            "m",
            p,
        ));
    } else {
        let hit = model.speed_at(b.speed, mu, b.reaction, *free);
        steps.push(step(
            format!("{what} is {free:.1} m ahead: braking now, the car would reach it at {hit:.1} m/s"),
            "impact_speed",
            hit,
            "m/s",
            p,
        ));
    }
    let mut creeping = false;
    if let Some(d) = b.occlusion {
        steps.push(step(format!("a pedestrian can step out from behind the parked car {d:.1} m ahead"), "occlusion_distance", d, "m", p));
        let v = model.max_speed(d, plan, b.reaction).max(model.max_speed(CREEP_STOP, plan, b.reaction));
        steps.push(step(format!("to stop before that point with grip to spare: at most {v:.1} m/s"), "occlusion_speed", v, "m/s", p));
        if v < limit {
            limit = v;
            creeping = true;
        }
    }
    steps.push(step(format!("limit speed to {limit:.1} m/s"), "max_speed", limit, "m/s", p));
    let situation = if stop > room {
        format!("braking for {what} on {}", surface(mu))
    } else if creeping {
        format!("creeping past a parked car on {}", surface(mu))
    } else {
        format!("driving on {}", surface(mu))
    };
    Reasoning {
        header,
        situation,
        steps,
        constraints: vec![
            Constraint { name: "max_speed".into(), value: limit, unit: "m/s".into(), confidence: p, ..Default::default() },
            Constraint { name: "stop_distance".into(), value: room, unit: "m".into(), confidence: p, ..Default::default() },
        ],
    }
}

/// Probability of a fall from which a side is kept out of.
pub const KEEP_OUT_P: f32 = 0.5;

/// What the arm knows when it reasons about a cup on a table.
#[derive(Clone, Debug, PartialEq)]
pub struct CupScene {
    /// The table.
    pub table: crate::cup::Table,
    /// The cup as estimated, and how sure of where it is.
    pub cup: (crate::cup::Cup, f32),
    /// Height of the table top in the header's frame, metres (keep-out regions lie on it).
    pub table_top: f32,
}

/// The chain for a cup: how far it stands from the table's edge, what a
/// sweep from the side that drops it would do (and with what probability),
/// the side to approach from, and the constraints `approach_side` (the
/// heading to move in towards it, rad in the header's frame) and a
/// `keep_out` region beside it for every side whose sweep likely drops it.
pub fn cup(a: &crate::cup::Assessment, scene: &CupScene, header: Header) -> Reasoning {
    use crate::cup::{FALLS, SIDES};
    let (c, sure) = scene.cup;
    let (edge, which) = scene.table.nearest_edge(c.at);
    let gap = (edge - c.size[0]).max(0.0);
    let worst = a.sides[a.worst][FALLS];
    let best = a.sides[a.best][FALLS];
    let mut steps = vec![step(
        format!("the cup stands {:.0} cm from the table's {which} edge", 100.0 * gap),
        "edge_distance_cm",
        (100.0 * gap).round(),
        "cm",
        sure,
    )];
    if worst >= KEEP_OUT_P {
        steps.push(step(
            format!("a sweep from {} pushes it off the edge: p {worst:.2}", SIDES[a.worst].0),
            "fall_probability",
            worst,
            "",
            sure,
        ));
    } else {
        steps.push(step(
            format!("a sweep from any side keeps it on the table: p falls at most {worst:.2}"),
            "fall_probability",
            worst,
            "",
            sure,
        ));
    }
    steps.push(step(
        format!("approach from {}, where a push keeps it on the table: p falls {best:.2}", SIDES[a.best].0),
        "approach_fall_probability",
        best,
        "",
        sure,
    ));
    let mut constraints = vec![Constraint {
        name: "approach_side".into(),
        value: SIDES[a.best].1,
        unit: "rad".into(),
        confidence: sure * (1.0 - best),
        target: cup_centre(&c, scene.table_top),
        target_radius: c.size[0],
        ..Default::default()
    }];
    constraints.extend(keep_outs(&c, &a.sides, sure, scene.table_top));
    let situation = if worst >= KEEP_OUT_P {
        format!("a cup near the table's {which} edge: keep out of {}", SIDES[a.worst].0)
    } else {
        "a cup on the table, away from its edges".into()
    };
    Reasoning { header, situation, steps, constraints }
}

/// A cup's centre as a point of the header's frame (the table top at `table_top`).
fn cup_centre(c: &crate::cup::Cup, table_top: f32) -> Point {
    Point { x: c.at[0] as f64, y: c.at[1] as f64, z: (table_top + c.size[1] / 2.0) as f64 }
}

/// The `keep_out` constraints of a cup whose sweeps from the four sides
/// ([`crate::cup::SIDES`]) end as `sides` say: one for every side whose
/// sweep likely drops it (p ≥ [`KEEP_OUT_P`]), the region on the table top
/// a push along `heading` starts from, the cup as `target`.
pub fn keep_outs(c: &crate::cup::Cup, sides: &[[f32; 3]; 4], sure: f32, table_top: f32) -> Vec<Constraint> {
    use crate::cup::{keep_out, FALLS, SIDES};
    SIDES
        .iter()
        .zip(sides)
        .filter(|(_, p)| p[FALLS] >= KEEP_OUT_P)
        .map(|((_, heading), p)| Constraint {
            name: "keep_out".into(),
            value: p[FALLS],
            unit: "".into(),
            confidence: sure * p[FALLS],
            region: keep_out(c, *heading).iter().map(|[x, y]| Point { x: *x as f64, y: *y as f64, z: table_top as f64 }).collect(),
            target: cup_centre(c, table_top),
            target_radius: c.size[0],
            heading: *heading,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::Braking as Trial;

    #[test]
    fn the_cup_chain_keeps_out_of_the_side_that_drops_it() {
        use crate::cup::{Assessment, Cup, Table};
        // Falls if swept from the right (index 2), safe from the near side (index 0).
        let a = Assessment { sides: [[0.9, 0.05, 0.05], [0.7, 0.1, 0.2], [0.02, 0.01, 0.97], [0.95, 0.05, 0.0]], best: 3, worst: 2 };
        let scene = CupScene {
            table: Table { half: [0.6, 0.4], arm: [-0.45, 0.0], reach: 0.75 },
            cup: (Cup { at: [0.25, 0.30], size: [0.04, 0.1] }, 0.9),
            table_top: 0.75,
        };
        let r = cup(&a, &scene, Header::default());
        assert_eq!(r.steps[0].text, "the cup stands 6 cm from the table's left edge");
        assert_eq!(r.steps[0].value, 6.0);
        assert!(r.steps[1].text.contains("from the right") && r.steps[1].text.contains("0.97"), "{}", r.steps[1].text);
        assert!(r.steps[2].text.contains("approach from the left"), "{}", r.steps[2].text);
        let side = r.constraints.iter().find(|c| c.name == "approach_side").unwrap();
        assert_eq!(side.value, -std::f32::consts::FRAC_PI_2);
        let keep: Vec<_> = r.constraints.iter().filter(|c| c.name == "keep_out").collect();
        assert_eq!(keep.len(), 1);
        // The region lies on the cup's −y side, on the table top.
        let (ys, zs): (Vec<f64>, Vec<f64>) = keep[0].region.iter().map(|p| (p.y, p.z)).unzip();
        assert!(ys.iter().all(|y| *y <= 0.30 + 1e-6) && ys.iter().any(|y| *y < 0.2), "{ys:?}");
        assert!(zs.iter().all(|z| *z == 0.75));
        // The cup it protects and the push it keeps out: along +y, from the right.
        let t = &keep[0].target;
        assert!((t.x - 0.25).abs() < 1e-6 && (t.y - 0.30).abs() < 1e-6 && (t.z - 0.80).abs() < 1e-6, "{t:?}");
        assert_eq!((keep[0].target_radius, keep[0].heading), (0.04, std::f32::consts::FRAC_PI_2));
        assert_eq!(side.target, keep[0].target);
        assert!(r.situation.contains("left edge"), "{}", r.situation);
    }

    fn model() -> StoppingModel {
        let trials: Vec<Trial> = (0..30)
            .map(|i| {
                let mu = 0.1 + 0.025 * i as f32;
                let speed = 3.0 + (i % 7) as f32 * 2.5;
                let reaction = 0.1 + 0.02 * (i % 5) as f32;
                Trial { mu, speed, reaction, distance: speed * reaction + speed * speed / (2.0 * mu * 9.81), time: 0.0 }
            })
            .collect();
        StoppingModel::fit(&trials).unwrap()
    }

    /// The numbers of a sentence, in order.
    fn numbers(text: &str) -> Vec<f32> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter_map(|w| w.trim_matches('.').parse().ok()).collect()
    }

    #[test]
    fn every_number_in_the_text_is_the_value_it_states() {
        let m = model();
        let icy = Braking { speed: 13.9, mu: (0.12, 0.81), reaction: 0.1, free: (40.0, "a pedestrian".into()), occlusion: None };
        let r = braking(&m, &icy, Header::default());
        assert_eq!(r.steps.len(), 4);
        for s in &r.steps {
            // The step's value appears in its sentence, at the sentence's precision.
            let shown = numbers(&s.text);
            let precision = if s.quantity == "surface_mu" { 0.005 } else { 0.05 };
            assert!(shown.iter().any(|x| (x - s.value).abs() <= precision + 1e-4), "{}: {} not in {shown:?}", s.text, s.value);
        }
        // On ice from 13.9 m/s the car does not stop within 40 m: it says how fast it hits, and limits speed.
        assert_eq!(r.steps[2].quantity, "impact_speed");
        assert!(r.steps[2].value > 5.0, "{:?}", r.steps[2]);
        let limit = r.constraints.iter().find(|c| c.name == "max_speed").unwrap().value;
        assert!(limit < 13.9 && limit > 3.0, "{limit}");
        // Planned with half the grip: it stops within the room on half the friction.
        assert!((m.distance(limit, 0.12 * PLAN_GRIP, 0.1) - (40.0 - STOP_MARGIN)).abs() < 0.1);
        assert!(r.situation.contains("braking for a pedestrian on ice"), "{}", r.situation);
        // On dry asphalt the same gap is enough.
        let dry = braking(&m, &Braking { mu: (0.8, 0.9), ..icy }, Header::default());
        assert_eq!(dry.steps[2].quantity, "stop_margin");
        assert!(dry.constraints[0].value > 13.9);
    }

    #[test]
    fn a_parked_car_ahead_limits_speed_to_stopping_before_its_far_end_or_a_creep() {
        let m = model();
        let open = Braking { speed: 8.0, mu: (0.1, 0.9), reaction: 0.1, free: (60.0, "the headlights' reach".into()), occlusion: None };
        let free_limit = braking(&m, &open, Header::default()).constraints[0].value;
        let near = braking(&m, &Braking { occlusion: Some(12.0), ..open.clone() }, Header::default());
        let limit = near.constraints[0].value;
        assert!(limit < free_limit, "{limit} vs {free_limit}");
        assert!((m.distance(limit, 0.1 * PLAN_GRIP, 0.1) - 12.0).abs() < 0.1, "stops at the far end: {limit}");
        assert!(near.situation.starts_with("creeping past a parked car"), "{}", near.situation);
        let text: Vec<&str> = near.steps.iter().map(|s| s.quantity.as_str()).collect();
        assert_eq!(text, ["surface_mu", "stopping_distance", "stop_margin", "occlusion_distance", "occlusion_speed", "max_speed"]);
        assert!(near.steps[3].text.contains("12.0 m ahead"), "{}", near.steps[3].text);
        // Right beside it the car still creeps (it may stop within a metre), never stands.
        let beside = braking(&m, &Braking { occlusion: Some(0.1), ..open }, Header::default()).constraints[0].value;
        assert!(beside > 0.3 && (m.distance(beside, 0.1 * PLAN_GRIP, 0.1) - CREEP_STOP).abs() < 0.05, "{beside}");
    }
}
