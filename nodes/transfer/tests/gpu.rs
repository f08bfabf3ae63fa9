//! The GPU path against the CPU reference, stage by stage, on frames of the
//! real simulator: the two must not drift (PSNR ≥ 40 dB at every stage, the
//! label score within 0.02), for every effect the prompts turn on.

mod common;

use s2r_image::quality::{self, Rgb8};
use s2r_image::{write_png, Rgb};
use s2r_transfer::builtin::gpu::GpuBuiltin;
use s2r_transfer::builtin::{Builtin, Preset, StageImage};
use s2r_transfer::score::score;
use s2r_transfer::{parse, Backend, Weights};

/// PSNR of two rgb8 images of `w × h` pixels (100 dB when equal).
fn psnr(a: &[u8], b: &[u8], w: usize, h: usize) -> f64 {
    quality::psnr(&Rgb8 { width: w, height: h, data: a }, &Rgb8 { width: w, height: h, data: b })
}

const CASES: &[(&str, usize, &str)] = &[
    ("icy_night_crossing", 12, "icy road, night, wet reflections, headlight glare, light snowfall, street lights, motion blur, grain"),
    ("icy_night_crossing", 12, "heavy rain, dusk, street lights, wet road"),
    ("dry_day_urban", 3, "dense fog, morning"),
    ("dry_day_urban", 3, "low sun, dry, dashcam, lens dirt"),
    ("dry_day_urban", 3, "snowy road, overcast, heavy snowfall"),
    ("cup_near_edge", 3, "noon, clear"),
];

#[test]
fn gpu_stages_match_the_cpu_reference() {
    let dir = common::artifacts();
    let mut gpu = GpuBuiltin::new(Preset::Full).unwrap_or_else(|e| panic!("{e}"));
    println!("adapter: {}", gpu.adapter());
    let mut cpu = Builtin::new(Preset::Full);
    let mut worst = f64::MAX;
    for (c, &(scenario, skip, prompt)) in CASES.iter().enumerate() {
        let (scene, frames) = common::sim_frames(scenario, 1, 0, 1, skip);
        let d = &frames[0];
        let f = d.frame(&scene);
        let look = parse(prompt).look;
        let a = cpu.stage_images(&f, &look, &Weights::default(), 7).unwrap();
        let b = gpu.stage_images(&f, &look, &Weights::default(), 7).unwrap();
        let names = |v: &[StageImage]| v.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "the same stages in the same order");
        let mut line = Vec::new();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.width, x.height), (y.width, y.height), "{}", x.name);
            let p = psnr(&x.rgb, &y.rgb, x.width, x.height);
            line.push(format!("{} {p:.1}", x.name));
            if p < 40.0 {
                write_png(
                    &dir.join(format!("gpu_{c}_{}_cpu.png", x.name.replace('+', "_"))),
                    &Rgb { width: x.width, height: x.height, data: x.rgb.clone() },
                )
                .unwrap();
                write_png(
                    &dir.join(format!("gpu_{c}_{}_gpu.png", y.name.replace('+', "_"))),
                    &Rgb { width: y.width, height: y.height, data: y.rgb.clone() },
                )
                .unwrap();
            }
            worst = worst.min(p);
            assert!(p >= 40.0, "{scenario} '{prompt}': stage {} differs, PSNR {p:.1} dB", x.name);
        }
        println!("{scenario} '{prompt}': {}", line.join(", "));
        // The label score of the finished frames.
        let (fa, fb) = (&a.last().unwrap().rgb, &b.last().unwrap().rgb);
        let sa = score(&d.rgb, fa, f.segmentation, f.depth, 0.0, d.width, d.height).boundary_recall;
        let sb = score(&d.rgb, fb, f.segmentation, f.depth, 0.0, d.width, d.height).boundary_recall;
        assert!((sa - sb).abs() <= 0.02, "{scenario} '{prompt}': label score {sa:.3} on the CPU, {sb:.3} on the GPU");
    }
    println!("worst stage PSNR {worst:.1} dB");
}

#[test]
fn gpu_backend_restyles_both_presets_deterministically() {
    let (scene, frames) = common::sim_frames("icy_night_crossing", 2, 0, 1, 8);
    let f = frames[0].frame(&scene);
    let look = parse("icy road, night, wet reflections, headlight glare, light snowfall, grain").look;
    for preset in [Preset::Full, Preset::Fast] {
        let mut gpu = GpuBuiltin::new(preset).unwrap_or_else(|e| panic!("{e}"));
        let a = gpu.restyle(&f, &look, &Weights::default(), 5).unwrap();
        let b = gpu.restyle(&f, &look, &Weights::default(), 5).unwrap();
        assert!(a.rgb == b.rgb, "{preset:?}: same frame, prompt and seed must give the same bytes");
        let c = gpu.restyle(&f, &look, &Weights::default(), 6).unwrap();
        assert!(a.rgb != c.rgb, "{preset:?}: another seed, other particles");
        let cpu = Builtin::new(preset).restyle(&f, &look, &Weights::default(), 5).unwrap();
        let p = psnr(&a.rgb, &cpu.rgb, a.width, a.height);
        println!("{preset:?}: GPU against CPU {p:.1} dB; stages {:?}", a.stages);
        assert!(p >= 40.0, "{preset:?}: {p:.1} dB");
        assert_eq!(gpu.name(), if preset == Preset::Full { "builtin:gpu" } else { "builtin:fast:gpu" });
    }
}

/// Frames the simulator never makes: colour only (no depth, no classes, no
/// pose), odd sizes, one pixel, stamps late in an hour and wall-clock stamps;
/// one backend per preset reused across all of them (its buffers grow and
/// are reused); a frame the device cannot take, then a good one.
#[test]
fn gpu_path_matches_on_bare_odd_and_changing_frames() {
    use s2r_transfer::{Frame, Intrinsics};
    let (scene, frames) = common::sim_frames("dry_day_urban", 1, 0, 1, 3);
    let d = &frames[0];
    let full = d.frame(&scene);
    // A crop of w × h pixels at the image's top left, with its controls.
    let crop = |w: usize, h: usize| -> (Vec<u8>, Vec<f32>, Vec<u8>) {
        let mut rgb = Vec::new();
        let (mut depth, mut seg) = (Vec::new(), Vec::new());
        for y in 0..h {
            let i = y * d.width;
            rgb.extend_from_slice(&d.rgb[3 * i..3 * (i + w)]);
            depth.extend_from_slice(&full.depth.unwrap()[i..i + w]);
            seg.extend_from_slice(&full.segmentation.unwrap()[i..i + w]);
        }
        (rgb, depth, seg)
    };
    let looks = [
        parse("heavy rain, dusk, street lights, wet road, lens dirt, grain").look,
        parse("heavy snowfall, night, headlights, street lights, motion blur").look,
    ];
    for preset in [Preset::Full, Preset::Fast] {
        let mut gpu = GpuBuiltin::new(preset).unwrap_or_else(|e| panic!("{e}"));
        let mut cpu = Builtin::new(preset);
        for (w, h, controls, stamp_s) in [
            (640, 480, true, 2.0),
            (33, 17, true, 3000.5),
            (1, 1, true, 0.0),
            (640, 480, false, 1.764e9),
            (97, 61, false, 3599.9),
            (130, 67, true, 1.764e9 + 0.1),
            (320, 240, true, 12.0),
        ] {
            let (rgb, depth, seg) = crop(w, h);
            let mut f = if controls { full.clone() } else { Frame::new(w, h, &rgb, Intrinsics::from_fov(w, h, 90.0)) };
            (f.width, f.height, f.rgb, f.stamp_ns) = (w, h, &rgb, (stamp_s * 1e9) as i64);
            if controls {
                (f.depth, f.segmentation) = (Some(&depth[..]), Some(&seg[..]));
            }
            for (k, look) in looks.iter().enumerate() {
                let a = cpu.restyle(&f, look, &Weights::default(), 3).unwrap();
                let b = gpu.restyle(&f, look, &Weights::default(), 3).unwrap();
                let p = psnr(&a.rgb, &b.rgb, w, h);
                println!("{preset:?} {w}x{h} controls {controls} at {stamp_s} s, look {k}: {p:.1} dB");
                assert!(p >= 40.0, "{preset:?} {w}x{h} (controls {controls}, {stamp_s} s, look {k}): GPU against CPU {p:.1} dB");
            }
        }
        // A bad frame is refused by both, by the same error.
        let short = vec![0u8; 10];
        let f = Frame::new(4, 4, &short, Intrinsics::from_fov(4, 4, 90.0));
        let e = gpu.restyle(&f, &looks[0], &Weights::default(), 3).unwrap_err().to_string();
        assert_eq!(e, cpu.restyle(&f, &looks[0], &Weights::default(), 3).unwrap_err().to_string());
        // A frame wider than the device dispatches is refused, and the next frame is fine.
        let wide = vec![90u8; 3 * 600_000];
        let f = Frame::new(600_000, 1, &wide, Intrinsics::from_fov(600_000, 1, 90.0));
        let e = gpu.restyle(&f, &looks[0], &Weights::default(), 3).unwrap_err().to_string();
        assert!(e.starts_with("GPU ") && e.contains("600000x1"), "{e}");
        let again = gpu.restyle(&full, &looks[0], &Weights::default(), 3).unwrap();
        assert!(psnr(&again.rgb, &cpu.restyle(&full, &looks[0], &Weights::default(), 3).unwrap().rgb, d.width, d.height) >= 40.0);
    }
}

/// The simulator's render targets feed the GPU path on the simulator's own
/// device: the same bytes as uploading the frame, for both presets; targets
/// that do not fit the frame are refused by name.
#[test]
fn render_targets_feed_the_gpu_path_in_place() {
    use s2r_transfer::builtin::gpu::DeviceFrame;
    let (sim, scene, frames) = common::sim_and_frames("icy_night_crossing", 1, 0, 1, 12);
    let d = &frames[0];
    let f = d.frame(&scene);
    let look = parse("icy road, night, wet reflections, headlight glare, light snowfall, street lights, motion blur, grain").look;
    let shared = sim.gpu().expect("the simulator renders");
    let t = sim.render_targets(&sim.mounts[0].model.name).expect("the front camera's targets");
    let on = DeviceFrame { color: &t.color, depth: Some(&t.depth), class: Some(&t.class) };
    for preset in [Preset::Full, Preset::Fast] {
        let mut gpu = GpuBuiltin::on_device(shared.device.clone(), shared.queue.clone(), &shared.adapter, preset).unwrap();
        let a = gpu.restyle_on_device(&f, &on, &look, &Weights::default(), 4).unwrap();
        let b = gpu.restyle(&f, &look, &Weights::default(), 4).unwrap();
        assert!(a.rgb == b.rgb, "{preset:?}: the render targets are the frame's pixels, so the same bytes");
        let c = Builtin::new(preset).restyle(&f, &look, &Weights::default(), 4).unwrap();
        let p = psnr(&a.rgb, &c.rgb, a.width, a.height);
        println!("{preset:?}: in place against the CPU path {p:.1} dB; stages {:?}", a.stages);
        assert!(p >= 40.0, "{preset:?}: {p:.1} dB");
    }
    // Targets without the depth the frame has, or of another size, are refused by name.
    let mut gpu = GpuBuiltin::on_device(shared.device.clone(), shared.queue.clone(), &shared.adapter, Preset::Full).unwrap();
    let e = gpu.restyle_on_device(&f, &DeviceFrame { depth: None, ..on }, &look, &Weights::default(), 4).unwrap_err().to_string();
    assert!(e.contains("the frame has depth, the render targets none"), "{e}");
    let mut big = f.clone();
    let (rgb, depth, seg) = (vec![0u8; 3 * 800 * 600], vec![1.0f32; 800 * 600], vec![0u8; 800 * 600]);
    (big.width, big.height, big.rgb, big.depth, big.segmentation) = (800, 600, &rgb, Some(&depth[..]), Some(&seg[..]));
    let e = gpu.restyle_on_device(&big, &on, &look, &Weights::default(), 4).unwrap_err().to_string();
    assert!(e.contains("render target colour is 640x480, not the frame's 800x600"), "{e}");
}
