//! The built-in backend on frames of the real simulator: pictures for a set
//! of prompts (looked at), labels kept, determinism, and the effects that
//! depend on geometry (fog by depth, particles hidden by nearer surfaces).

mod common;

use s2r_transfer::builtin::{Builtin, Preset};
use s2r_transfer::score::score;
use s2r_transfer::sheet::{grid, write_png, Rgb};
use s2r_transfer::{parse, Backend, Weights};

const PROMPTS: &[&str] = &[
    "icy road, night, wet reflections, headlight glare, light snowfall",
    "heavy rain, dusk, street lights, wet road",
    "dense fog, morning",
    "snowy road, overcast, light snowfall",
    "low sun, dry, dashcam, lens dirt",
    "noon, clear",
];

#[test]
fn prompts_on_simulated_frames_keep_their_labels() {
    let dir = common::artifacts();
    let mut rows = Vec::new();
    for (scenario, cam, skip) in [("icy_night_crossing", 0, 12), ("dry_day_urban", 0, 3), ("cup_near_edge", 0, 3)] {
        let (scene, frames) = common::sim_frames(scenario, 1, cam, 1, skip);
        let d = &frames[0];
        let f = d.frame(&scene);
        assert!(f.camera_to_world.is_some(), "TF places the camera");
        let mut row = vec![Rgb { width: d.width, height: d.height, data: d.rgb.clone() }.shrink(2)];
        write_png(&dir.join(format!("{scenario}_input.png")), &Rgb { width: d.width, height: d.height, data: d.rgb.clone() }).unwrap();
        let mut b = Builtin::new(Preset::Full);
        for (i, p) in PROMPTS.iter().enumerate() {
            let parsed = parse(p);
            assert!(parsed.unknown.is_empty(), "{p}: {:?}", parsed.unknown);
            let out = b.restyle(&f, &parsed.look, &Weights::default(), 7).unwrap();
            let s = score(&d.rgb, &out.rgb, f.segmentation, f.depth, d.width, d.height);
            let stages: Vec<String> = out.stages.iter().map(|(n, ms)| format!("{n} {ms:.1}")).collect();
            println!("{scenario} '{p}': boundary recall {:.3} over {} px; ms: {}", s.boundary_recall, s.boundary_pixels, stages.join(", "));
            let img = Rgb { width: d.width, height: d.height, data: out.rgb };
            write_png(&dir.join(format!("{scenario}_{i}.png")), &img).unwrap();
            row.push(img.shrink(2));
            assert!(s.boundary_pixels > 1000, "{scenario}: too few boundaries to score");
            assert!(s.boundary_recall >= 0.6, "{scenario} '{p}': labels not kept ({:.3})", s.boundary_recall);
        }
        rows.push(row);
    }
    write_png(&dir.join("contact_sheet.png"), &grid(&rows, 4)).unwrap();
}
