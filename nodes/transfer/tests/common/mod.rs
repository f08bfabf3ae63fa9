//! Frames from the real simulator, for the transfer tests.
#![allow(dead_code)]

use std::path::PathBuf;

use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};
use s2r_transfer::input::{decode, CameraMsgs, Decoded, Scene, Topics};

pub fn artifacts() -> PathBuf {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/test-artifacts/transfer"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The first `frames` frames of camera `camera` of a shipped scenario, with the scene state at the last one.
pub fn sim_frames(name: &str, seed: u64, camera: usize, frames: usize, skip: usize) -> (Scene, Vec<Decoded>) {
    let (_, scene, frames) = sim_and_frames(name, seed, camera, frames, skip);
    (scene, frames)
}

/// The same, with the simulator (its render targets hold the last frame).
pub fn sim_and_frames(name: &str, seed: u64, camera: usize, frames: usize, skip: usize) -> (Sim, Scene, Vec<Decoded>) {
    s2r_sim::render::quiet_headless_vulkan();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/scenarios")).join(format!("{name}.yaml"));
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = Sim::new(scenario, &SimOptions { seed, image_scale: 1.0, render: true }).unwrap_or_else(|e| panic!("{e}"));
    let mut scene = Scene::default();
    scene.tf(&sim.tf_static(), true);
    scene.scenario = Some(sim.scenario_info());
    let mut out = Vec::new();
    let mut seen = 0;
    while out.len() < frames {
        let tick = sim.tick().unwrap();
        if let Some(tf) = &tick.tf {
            scene.tf(tf, false);
        }
        if let Some(d) = tick.detections3d {
            scene.detections3d = Some(d);
        }
        let Some(c) = tick.cameras.into_iter().nth(camera) else { continue };
        seen += 1;
        if seen <= skip {
            continue;
        }
        let name = c.name.clone();
        let m = CameraMsgs { image: Some(c.image), depth: Some(c.depth), segmentation: Some(c.segmentation), info: Some(c.info) };
        let d = decode(&m, &Topics::sim("/sim", &name)).unwrap();
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        out.push(d);
    }
    (sim, scene, out)
}
