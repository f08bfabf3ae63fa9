//! The built-in backend on frames of the real simulator: pictures for a set
//! of prompts (looked at), labels kept, determinism, and the effects that
//! depend on geometry (fog by depth, particles hidden by nearer surfaces).

mod common;

use s2r_image::{grid, write_png, Rgb};
use s2r_transfer::builtin::{Builtin, Preset};
use s2r_transfer::score::score;
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
            let s = score(&d.rgb, &out.rgb, f.segmentation, f.depth, out.extinction, d.width, d.height);
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

use s2r_transfer::builtin::geometry::Pose;
use s2r_transfer::{stats, Frame, Intrinsics};

#[test]
fn same_input_same_output_and_the_seed_matters() {
    let (scene, frames) = common::sim_frames("icy_night_crossing", 2, 0, 1, 8);
    let f = frames[0].frame(&scene);
    let look = parse("icy road, night, wet reflections, headlight glare, light snowfall, grain").look;
    for preset in [Preset::Full, Preset::Fast] {
        let a = Builtin::new(preset).restyle(&f, &look, &Weights::default(), 5).unwrap().rgb;
        let b = Builtin::new(preset).restyle(&f, &look, &Weights::default(), 5).unwrap().rgb;
        assert!(a == b, "{preset:?}: same frame, prompt and seed must give the same bytes");
        let c = Builtin::new(preset).restyle(&f, &look, &Weights::default(), 6).unwrap().rgb;
        assert!(a != c, "{preset:?}: another seed, other particles");
        // A reused backend (scratch buffers from another frame) gives the same bytes too.
        let mut reused = Builtin::new(preset);
        reused.restyle(&f, &parse("noon").look, &Weights::default(), 1).unwrap();
        assert!(reused.restyle(&f, &look, &Weights::default(), 5).unwrap().rgb == a);
    }
}

#[test]
fn the_label_score_fails_outputs_that_moved_or_lost_their_edges() {
    let (scene, frames) = common::sim_frames("dry_day_urban", 1, 0, 1, 3);
    let d = &frames[0];
    let f = d.frame(&scene);
    let (w, h) = (d.width, d.height);
    let out = Builtin::new(Preset::Full).restyle(&f, &parse("overcast, wet road").look, &Weights::default(), 1).unwrap().rgb;
    let sc = |img: &[u8]| score(&d.rgb, img, f.segmentation, f.depth, 0.0, w, h).boundary_recall;
    let good = sc(&out);
    // Shifted by 6 pixels down and right: the geometry no longer matches the labels.
    let mut shifted = vec![0u8; out.len()];
    for v in 0..h {
        for u in 0..w {
            let (su, sv) = (u.saturating_sub(6), v.saturating_sub(6));
            shifted[(v * w + u) * 3..(v * w + u) * 3 + 3].copy_from_slice(&out[(sv * w + su) * 3..(sv * w + su) * 3 + 3]);
        }
    }
    // Blurred away (a 9-pixel box): the boundaries are gone.
    let mut blurred = out.clone();
    for v in 0..h {
        for u in 0..w {
            for c in 0..3 {
                let mut s = 0u32;
                let mut n = 0u32;
                for y in v.saturating_sub(4)..(v + 5).min(h) {
                    for x in u.saturating_sub(4)..(u + 5).min(w) {
                        s += out[(y * w + x) * 3 + c] as u32;
                        n += 1;
                    }
                }
                blurred[(v * w + u) * 3 + c] = (s / n) as u8;
            }
        }
    }
    // Pure noise: edges everywhere, none of them the labels'.
    let noise: Vec<u8> = (0..out.len() as u32).map(|i| (s2r_transfer::builtin::noise::hash32(i) >> 24) as u8).collect();
    let (s, b, n) = (sc(&shifted), sc(&blurred), sc(&noise));
    println!("boundary recall: restyled {good:.3}, shifted {s:.3}, blurred {b:.3}, noise {n:.3}");
    assert!(good >= 0.8, "{good}");
    for (name, v) in [("shifted", s), ("blurred", b), ("noise", n)] {
        assert!(v < 0.6 && v < good - 0.25, "{name}: {v} vs {good}");
    }
}

/// A synthetic frame: a wall of class `building` at `near` metres on the left
/// half, and on the right half the same wall at `far` metres (or sky).
fn halves(w: usize, h: usize, near: f32, far: f32) -> (Vec<u8>, Vec<f32>, Vec<u8>, Vec<String>) {
    let rgb = vec![128u8; w * h * 3];
    let depth: Vec<f32> = (0..w * h).map(|i| if i % w < w / 2 { near } else { far }).collect();
    let seg: Vec<u8> = depth.iter().map(|d| if d.is_finite() { 1 } else { 0 }).collect();
    (rgb, depth, seg, vec!["unlabeled".into(), "building".into()])
}

#[test]
fn fog_grows_with_distance() {
    let (w, h) = (160, 120);
    let (rgb, depth, seg, names) = halves(w, h, 8.0, 150.0);
    let mut f = Frame::new(w, h, &rgb, Intrinsics::from_fov(w, h, 90.0));
    f.depth = Some(&depth);
    f.segmentation = Some(&seg);
    f.class_names = &names;
    let mean = |img: &[u8], right: bool| {
        let (mut s, mut n) = (0u64, 0u64);
        for v in h / 4..3 * h / 4 {
            for u in 0..w {
                if (u >= w / 2 + 8) == right && (u < w / 2 - 8 || u >= w / 2 + 8) {
                    s += img[(v * w + u) * 3..(v * w + u) * 3 + 3].iter().map(|&x| x as u64).sum::<u64>();
                    n += 3;
                }
            }
        }
        s as f32 / n as f32
    };
    let mut b = Builtin::new(Preset::Full);
    let clear = b.restyle(&f, &parse("noon, clear").look, &Weights::default(), 1).unwrap().rgb;
    let fog = b.restyle(&f, &parse("noon, dense fog").look, &Weights::default(), 1).unwrap().rgb;
    let (near_gain, far_gain) = (mean(&fog, false) - mean(&clear, false), mean(&fog, true) - mean(&clear, true));
    println!(
        "clear: near {:.1} far {:.1}; fog: near {:.1} far {:.1}; fog lifts the near wall by {near_gain:.1} and the far wall by {far_gain:.1} grey levels",
        mean(&clear, false),
        mean(&clear, true),
        mean(&fog, false),
        mean(&fog, true)
    );
    // The same wall, the same light: only the air between differs. Fog lifts
    // both towards the airlight, the far one nearly all the way.
    assert!(mean(&fog, true) > mean(&fog, false) + 25.0, "in fog the far wall fades more");
    assert!(near_gain > 60.0 && far_gain > 60.0, "near {near_gain}, far {far_gain}");
}

#[test]
fn falling_snow_moves_with_time_and_hides_behind_nearer_surfaces() {
    let (w, h) = (160, 120);
    let (rgb, depth, seg, names) = halves(w, h, 1.5, f32::INFINITY);
    let mut f = Frame::new(w, h, &rgb, Intrinsics::from_fov(w, h, 90.0));
    f.depth = Some(&depth);
    f.segmentation = Some(&seg);
    f.class_names = &names;
    // The camera looks along +x (optical z) from 1.5 m up.
    f.camera_to_world = Some(nalgebra::Isometry3::from_parts(
        nalgebra::Translation3::new(0.0, 0.0, 1.5),
        nalgebra::UnitQuaternion::from_matrix(&nalgebra::Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0)),
    ));
    let look = parse("noon, heavy snowfall").look;
    let mut b = Builtin::new(Preset::Fast);
    f.stamp_ns = 1_000_000_000;
    let a = b.restyle(&f, &look, &Weights::default(), 1).unwrap().rgb;
    let same = b.restyle(&f, &look, &Weights::default(), 1).unwrap().rgb;
    assert!(a == same);
    f.stamp_ns = 1_300_000_000;
    let later = b.restyle(&f, &look, &Weights::default(), 1).unwrap().rgb;
    let changed = |left: bool| {
        (0..w * h)
            .filter(|i| ((i % w) < w / 2 - 4) == left && ((i % w) < w / 2 - 4 || (i % w) >= w / 2 + 4))
            .filter(|&i| a[i * 3..i * 3 + 3] != later[i * 3..i * 3 + 3])
            .count()
    };
    let (wall, open) = (changed(true), changed(false));
    println!("pixels changed by falling snow in 0.3 s: {wall} before the wall at 1.5 m, {open} against the sky");
    assert!(open > 200, "snow falls: {open}");
    assert!(open > 4 * wall, "flakes behind the wall are hidden: wall {wall}, open {open}");
}

#[test]
fn textures_stay_on_their_surfaces_as_the_camera_moves() {
    let (scene, frames) = common::sim_frames("dry_day_urban", 1, 0, 4, 2);
    let mut b = Builtin::new(Preset::Full);
    let look = parse("noon, clear").look;
    let outs: Vec<Vec<u8>> = frames.iter().map(|d| b.restyle(&d.frame(&scene), &look, &Weights::default(), 1).unwrap().rgb).collect();
    let (mut fin, mut fout) = (0.0, 0.0);
    for i in 1..frames.len() {
        let (cur, prev) = (&frames[i], &frames[i - 1]);
        let c = Pose::from_isometry(&cur.frame(&scene).camera_to_world.unwrap());
        let p = Pose::from_isometry(&prev.frame(&scene).camera_to_world.unwrap());
        let (w, h) = (cur.width, cur.height);
        fin += stats::reprojection_residual(&prev.rgb, &cur.rgb, cur.depth.as_ref().unwrap(), &cur.intrinsics, &c, &p, w, h);
        fout += stats::reprojection_residual(&outs[i - 1], &outs[i], cur.depth.as_ref().unwrap(), &cur.intrinsics, &c, &p, w, h);
    }
    let n = (frames.len() - 1) as f32;
    println!("change not explained by motion: input {:.4}, output {:.4}", fin / n, fout / n);
    // Textured output would crawl if its patterns were not anchored to the world.
    assert!(fout / n < fin / n + 0.01, "input {}, output {}", fin / n, fout / n);
}
