//! Curation of real simulated frames with planted defects: each is rejected
//! with the right reason, and the clean frames are not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use s2r_curator::clips::{Curator, FrameIn, Reason};
use s2r_curator::embed::Builtin;
use s2r_curator::params::Params;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};

/// `n` frames of a scenario's first camera: (stamp, width, height, rgb, boxes).
fn frames(name: &str, n: usize, scale: f64) -> Vec<(i64, usize, usize, Vec<u8>)> {
    s2r_sim::render::quiet_headless_vulkan();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/scenarios")).join(format!("{name}.yaml"));
    let mut sim = Sim::new(Scenario::load(&path).unwrap(), &SimOptions { seed: 1, image_scale: scale, render: true }).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let t = sim.tick().unwrap();
        if let Some(c) = t.cameras.into_iter().next() {
            let s = c.image.header.stamp;
            out.push((
                s.sec as i64 * 1_000_000_000 + s.nanosec as i64,
                c.image.width as usize,
                c.image.height as usize,
                c.image.data.to_vec(),
            ));
        }
    }
    out
}

fn blur(rgb: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let (mut s, mut n) = (0u32, 0u32);
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        s += rgb[(yy * w + xx) * 3 + c] as u32;
                        n += 1;
                    }
                }
                out[(y * w + x) * 3 + c] = (s / n) as u8;
            }
        }
    }
    out
}

#[test]
fn planted_defects_are_rejected_with_their_reasons() {
    let mut fr = frames("dry_day_urban", 60, 0.5);
    let (w, h) = (fr[0].1, fr[0].2);
    let planted: BTreeMap<usize, Reason> =
        [(15, Reason::Blur), (25, Reason::BrokenConstant), (33, Reason::Frozen), (44, Reason::NearDuplicate), (52, Reason::Torn)]
            .into_iter()
            .collect();
    fr[15].3 = blur(&fr[15].3, w, h, 4);
    fr[25].3 = vec![0u8; w * h * 3];
    fr[33].3 = fr[32].3.clone();
    fr[44].3 = fr[8].3.clone();
    // Torn: the top 40% is still the previous frame, the rest a later one (frames dropped in between).
    let top = fr[51].3[..w * 3 * (h * 4 / 10)].to_vec();
    fr[52].3 = fr[58].3.clone();
    fr[52].3[..top.len()].copy_from_slice(&top);
    let tags: BTreeMap<String, String> = [("weather".to_string(), "clear".to_string())].into_iter().collect();
    let mut cur = Curator::new(Params { min_classes: 0, ..Params::default() }, Box::new(Builtin));
    let mut verdicts = Vec::new();
    for (stamp, w, h, rgb) in fr {
        if let Some(c) = cur.push(FrameIn {
            stamp_ns: stamp,
            width: w,
            height: h,
            rgb,
            boxes: Vec::new(),
            transfer: None,
            tags: tags.clone(),
            source: "test".into(),
        }) {
            verdicts.extend(c.frames);
        }
    }
    let done = cur.finish().unwrap();
    verdicts.extend(done.clips.last().unwrap().frames.clone());
    let sharp: Vec<f32> = verdicts.iter().map(|v| v.metrics.sharpness).collect();
    println!("sharpness of the frames: {:?}", sharp.iter().map(|s| *s as i32).collect::<Vec<_>>());
    for (i, v) in verdicts.iter().enumerate() {
        match planted.get(&i) {
            Some(r) => assert_eq!(v.reasons, vec![*r], "frame {i}: {:?}", v.metrics),
            None => assert!(v.reasons.is_empty(), "clean frame {i} rejected: {:?} {:?}", v.reasons, v.metrics),
        }
    }
    assert_eq!(verdicts.len(), 60);
}
