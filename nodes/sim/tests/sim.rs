//! The simulator against physics, its own pixels and itself: braking distance
//! on dry asphalt and ice, the cup off the table's edge, the arm's limits,
//! labels that agree with the images, depth at a known distance, cameras of a
//! rig that agree with one another, and byte-identical reruns. Renders with
//! whatever Vulkan adapter there is (lavapipe on CPU machines) and writes a
//! PNG of every output to target/test-artifacts/sim/ to look at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nalgebra::{Isometry3, Point3};
use s2r_image::Rgb;
use s2r_sim::labels::mask_boxes;
use s2r_sim::physics::GRAVITY;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{CameraFrame, Sim, SimOptions, Tick};
use s2r_sim::world::{class, CLASS_NAMES};
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios")
}

fn shipped(name: &str) -> Scenario {
    Scenario::load(&scenarios_dir().join(format!("{name}.yaml"))).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(text: &str) -> Scenario {
    Scenario::parse(Path::new("test.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn sim(s: Scenario, seed: u64, image_scale: f64, render: bool) -> Sim {
    s2r_sim::render::quiet_headless_vulkan();
    Sim::new(s, &SimOptions { seed, image_scale, render }).unwrap_or_else(|e| panic!("{e}"))
}

/// Ticks until the next camera frame.
fn next_frame(sim: &mut Sim) -> Tick {
    loop {
        let t = sim.tick().unwrap();
        if t.detections3d.is_some() {
            return t;
        }
    }
}

fn artifacts(sub: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/sim").join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_png(path: &Path, w: u32, h: u32, rgb: Vec<u8>) {
    s2r_image::write_png(path, &Rgb { width: w as usize, height: h as usize, data: rgb }).unwrap();
}

/// A distinct colour per id (0 black).
fn palette(id: u32) -> [u8; 3] {
    if id == 0 {
        return [0, 0, 0];
    }
    let h = id.wrapping_mul(2654435761);
    [(h >> 24) as u8 | 0x40, (h >> 16) as u8 | 0x40, (h >> 8) as u8 | 0x40]
}

fn depth_of(img: &Image) -> Vec<f32> {
    assert_eq!(img.encoding, "32FC1");
    img.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn instances_of(img: &Image) -> Vec<u16> {
    assert_eq!(img.encoding, "mono16");
    img.data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()
}

/// One PNG per output of a camera frame: colour, depth (near bright), class
/// and instance ids in false colours, and the colour image with the 2-D boxes.
fn save_frame(dir: &Path, tag: &str, f: &CameraFrame) {
    let (w, h) = (f.image.width, f.image.height);
    write_png(&dir.join(format!("{tag}_{}_rgb.png", f.name)), w, h, f.image.data.to_vec());
    let depth: Vec<u8> =
        depth_of(&f.depth).iter().map(|z| if z.is_finite() { (255.0 * (1.0 - (z / 60.0).min(1.0))) as u8 } else { 0 }).collect();
    write_png(&dir.join(format!("{tag}_{}_depth.png", f.name)), w, h, Rgb::from_gray(w as usize, h as usize, &depth).data);
    let seg: Vec<u8> = f.segmentation.data.iter().flat_map(|c| palette(*c as u32 * 7919)).collect();
    write_png(&dir.join(format!("{tag}_{}_segmentation.png", f.name)), w, h, seg);
    let inst: Vec<u8> = instances_of(&f.instances).iter().flat_map(|i| palette(*i as u32)).collect();
    write_png(&dir.join(format!("{tag}_{}_instances.png", f.name)), w, h, inst);
    let mut boxed = f.image.data.to_vec();
    for d in &f.detections.detections {
        let c = palette(d.id.parse().unwrap());
        let x0 = (d.bbox.center.position.x - (d.bbox.size_x - 1.0) / 2.0).round() as i64;
        let x1 = (d.bbox.center.position.x + (d.bbox.size_x - 1.0) / 2.0).round() as i64;
        let y0 = (d.bbox.center.position.y - (d.bbox.size_y - 1.0) / 2.0).round() as i64;
        let y1 = (d.bbox.center.position.y + (d.bbox.size_y - 1.0) / 2.0).round() as i64;
        let mut put = |x: i64, y: i64| {
            if x >= 0 && y >= 0 && x < w as i64 && y < h as i64 {
                let i = (y as usize * w as usize + x as usize) * 3;
                boxed[i..i + 3].copy_from_slice(&c);
            }
        };
        for x in x0..=x1 {
            put(x, y0);
            put(x, y1);
        }
        for y in y0..=y1 {
            put(x0, y);
            put(x1, y);
        }
    }
    write_png(&dir.join(format!("{tag}_{}_boxes.png", f.name)), w, h, boxed);
}

// ---------------------------------------------------------------- physics

fn braking_scenario(mu: f64) -> Scenario {
    parse(&format!(
        "scenario: brake\n\
         world: {{kind: road, lanes: 2, length: 400, buildings: 0}}\n\
         environment: {{friction: {{road: {mu}}}}}\n\
         ego: {{kind: vehicle, start: {{x: -180, y: -1.75}}, speed: 13.8889}}\n\
         sensors: {{cameras: [{{name: front, width: 32, height: 24}}]}}\n"
    ))
}

/// Brakes from 50 km/h and returns (distance travelled, v²/(2μg)).
fn braking_distance(mu: f64) -> (f64, f64) {
    let mut s = sim(braking_scenario(mu), 0, 1.0, false);
    // Settle on the road at cruise speed.
    for _ in 0..40 {
        s.tick().unwrap();
    }
    let ego = s.world.ego.unwrap();
    let x0 = s.physics.pose(&s.world, ego).translation.x as f64;
    let v0 = s.physics.velocity(ego).0.x as f64;
    assert!((v0 - 13.8889).abs() < 0.05, "cruising at {v0} m/s");
    s.command_velocity(&Twist::default());
    let mut steps = 0;
    while s.physics.velocity(ego).0.norm() > 0.01 {
        s.tick().unwrap();
        steps += 1;
        assert!(steps < 200 * 40, "still moving after 40 s");
    }
    let x1 = s.physics.pose(&s.world, ego).translation.x as f64;
    (x1 - x0, v0 * v0 / (2.0 * mu * GRAVITY as f64))
}

#[test]
fn braking_distance_follows_the_road_friction() {
    for (surface, mu) in [("dry asphalt", 0.8), ("ice", 0.1)] {
        let (d, expected) = braking_distance(mu);
        eprintln!("{surface} (mu {mu}): braked in {d:.2} m, v²/(2μg) = {expected:.2} m");
        assert!((d - expected).abs() / expected < 0.10, "{surface}: {d:.2} m vs {expected:.2} m");
    }
}

fn table_scenario(cup_y: f64) -> Scenario {
    parse(&format!(
        "scenario: cup\n\
         world: {{kind: table, table_size: [1.2, 0.8, 0.75]}}\n\
         environment: {{friction: {{table: 0.5}}}}\n\
         ego: {{kind: arm, base: [-0.45, 0, 0], initial: [0, 0, 0, 0, 0, 0]}}\n\
         actors: [{{type: cup, start: {{x: 0.3, y: {cup_y}}}}}]\n\
         sensors: {{cameras: [{{name: front, width: 32, height: 24}}]}}\n"
    ))
}

fn cup_after(push: f32, seconds: f64) -> (f32, Vec<(String, String)>) {
    let mut s = sim(table_scenario(0.28), 0, 1.0, false);
    let cup = s.world.objects.iter().position(|o| o.class == class::CUP).unwrap();
    for _ in 0..20 {
        s.tick().unwrap();
    }
    s.physics.push(cup, nalgebra::Vector3::new(0.0, push, 0.0));
    let mut events = Vec::new();
    while s.seconds() < seconds {
        for c in s.tick().unwrap().collisions {
            events.push((c.class_a, c.class_b));
        }
    }
    (s.physics.pose(&s.world, cup).translation.z, events)
}

#[test]
fn a_cup_pushed_off_the_edge_falls_to_the_floor() {
    // A nudge: it slides a little and stays on the table.
    let (z, events) = cup_after(0.3, 2.0);
    assert!((z - 0.80).abs() < 0.01, "the nudged cup should stand on the table top (z 0.80), is at {z}");
    assert!(events.is_empty(), "{events:?}");
    // A push towards the edge 12 cm away: over it goes.
    let (z, events) = cup_after(1.5, 2.0);
    assert!(z < 0.1, "the pushed cup should lie on the floor, is at z {z}");
    assert!(events.iter().any(|(a, b)| (a == "floor" && b == "cup") || (a == "cup" && b == "floor")), "{events:?}");
}

#[test]
fn the_arm_sweeps_the_cup_off_in_cup_near_edge() {
    let mut s = sim(shipped("cup_near_edge"), 0, 1.0, false);
    let mut fell = false;
    while s.seconds() < 5.0 {
        for c in s.tick().unwrap().collisions {
            fell |= [c.class_a.as_str(), c.class_b.as_str()] == ["floor", "cup"]
                || [c.class_a.as_str(), c.class_b.as_str()] == ["cup", "floor"];
        }
    }
    assert!(fell, "the scripted reach should knock the cup near the edge onto the floor");
}

#[test]
fn joint_commands_are_clamped_to_the_limits_and_followed() {
    let mut s = sim(table_scenario(-0.2), 0, 1.0, false);
    let cmd =
        JointState { name: vec!["joint1".into(), "joint2".into(), "gripper".into()], position: vec![0.5, 5.0, 0.5], ..Default::default() };
    let notes = s.command_joints(&cmd).unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("gripper") && notes[0].contains("clamped to 0.12"), "{notes:?}");
    assert!(notes[1].contains("joint2") && notes[1].contains("clamped to 1.9"), "{notes:?}");
    let mut last = None;
    while s.seconds() < 2.0 {
        if let Some(j) = s.tick().unwrap().joint_states {
            last = Some(j);
        }
    }
    let j = last.take().unwrap();
    assert_eq!(j.name, ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]);
    assert!((j.position[6] - 0.12).abs() < 0.003, "the gripper stays wide open: {:?}", j.position);
    assert!((j.position[0] - 0.5).abs() < 0.02, "{:?}", j.position);
    assert!((j.position[1] - 1.9).abs() < 0.03, "{:?}", j.position);
    assert!(j.position[1] <= 1.9 + 0.02);
    // Refused outright: an unknown joint, a length mismatch.
    assert!(s
        .command_joints(&JointState { name: vec!["elbow".into()], position: vec![0.0], ..Default::default() })
        .unwrap_err()
        .to_string()
        .contains("elbow"));
    assert!(s.command_joints(&JointState { position: vec![0.0; 3], ..Default::default() }).is_err());
    assert!(s
        .command_joints(&JointState { name: vec!["gripper".into()], position: vec![f64::NAN], ..Default::default() })
        .unwrap_err()
        .to_string()
        .contains("gripper"));
    // Seven unnamed positions: the gripper closes.
    s.command_joints(&JointState { position: vec![0.5, 1.0, 0.5, 0.0, 0.0, 0.0, 0.02], ..Default::default() }).unwrap();
    while s.seconds() < 3.5 {
        if let Some(j) = s.tick().unwrap().joint_states {
            last = Some(j);
        }
    }
    let j = last.unwrap();
    assert!((j.position[6] - 0.02).abs() < 0.003, "the gripper closes to 0.02 m: {:?}", j.position);
}

#[test]
fn cmd_vel_outside_the_limits_is_clamped_and_reported() {
    let mut s = sim(braking_scenario(0.8), 0, 1.0, false);
    let mut cmd = Twist::default();
    cmd.linear.x = 100.0;
    cmd.angular.z = -3.0;
    let notes = s.command_velocity(&cmd);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("clamped to 30"), "{notes:?}");
    assert!(notes[1].contains("clamped to -0.8"), "{notes:?}");
    cmd.linear.x = 10.0;
    cmd.angular.z = 0.1;
    assert!(s.command_velocity(&cmd).is_empty());
}

// ---------------------------------------------------------------- labels

#[test]
fn labels_agree_with_pixels() {
    let mut s = sim(shipped("dry_day_urban"), 3, 0.5, true);
    let dir = artifacts("dry_day_urban");
    let mut checked = 0;
    for k in 0..2 {
        let tick = next_frame(&mut s);
        assert_eq!(tick.cameras.len(), 8);
        let stamp = &tick.cameras[0].image.header.stamp;
        for f in &tick.cameras {
            // One instant for every image of every camera.
            for img in [&f.image, &f.depth, &f.segmentation, &f.instances] {
                assert_eq!(&img.header.stamp, stamp);
                assert_eq!(img.header.frame_id, format!("{}_optical_frame", f.name));
            }
            assert_eq!(f.info.header.stamp, *stamp);
            let (w, h) = (f.image.width as usize, f.image.height as usize);
            let inst = instances_of(&f.instances);
            let class_img = &f.segmentation.data;
            // Independent bounds of every instance mask.
            let mut masks: BTreeMap<u16, (usize, usize, usize, usize, u8)> = BTreeMap::new();
            for y in 0..h {
                for x in 0..w {
                    let id = inst[y * w + x];
                    if id == 0 {
                        continue;
                    }
                    let c = class_img[y * w + x];
                    let e = masks.entry(id).or_insert((x, y, x, y, c));
                    e.0 = e.0.min(x);
                    e.1 = e.1.min(y);
                    e.2 = e.2.max(x);
                    e.3 = e.3.max(y);
                    assert_eq!(e.4, c, "{}: instance {id} has pixels of two classes", f.name);
                }
            }
            let ego = s.world.objects[s.world.ego.unwrap()].instance;
            masks.remove(&ego);
            let mut seen: Vec<u16> = Vec::new();
            for d in &f.detections.detections {
                let id: u16 = d.id.parse().unwrap();
                seen.push(id);
                let (x0, y0, x1, y1, c) = masks[&id];
                let bx0 = d.bbox.center.position.x - (d.bbox.size_x - 1.0) / 2.0;
                let by0 = d.bbox.center.position.y - (d.bbox.size_y - 1.0) / 2.0;
                assert_eq!(
                    (bx0, by0, d.bbox.size_x, d.bbox.size_y),
                    (x0 as f64, y0 as f64, (x1 - x0 + 1) as f64, (y1 - y0 + 1) as f64),
                    "{}: box of {id}",
                    f.name
                );
                assert_eq!(d.results[0].hypothesis.class_id, CLASS_NAMES[c as usize]);
                let vis = d.results[0].hypothesis.score;
                assert!((0.0..=1.0).contains(&vis) && vis > 0.0, "visible fraction {vis}");
                // The object's centre, in the camera frame, projects into its box
                // when the object is mostly unhidden and its centre in the image.
                let p = &d.results[0].pose.pose.position;
                if vis > 0.9 && p.z > 1.0 {
                    let m = s.mounts.iter().find(|m| m.model.name == f.name).unwrap();
                    let (u, v) = m.model.project(&Point3::new(p.x, p.y, p.z)).unwrap();
                    let (cx, cy) = (d.bbox.center.position.x, d.bbox.center.position.y);
                    let inside = u >= 0.0 && v >= 0.0 && u < w as f64 && v < h as f64;
                    assert!(
                        !inside || (u - cx).abs() <= d.bbox.size_x / 2.0 + 1.0 && (v - cy).abs() <= d.bbox.size_y / 2.0 + 1.0,
                        "{}: {id} centre ({u:.1},{v:.1}) outside its box",
                        f.name
                    );
                }
                checked += 1;
            }
            seen.sort_unstable();
            assert_eq!(seen, masks.keys().copied().collect::<Vec<_>>(), "{}: every visible instance has one detection", f.name);
            if k == 1 {
                save_frame(&dir, "t", f);
            }
        }
        // 3-D ground truth: every actor within range, in base_link.
        let d3 = tick.detections3d.unwrap();
        assert_eq!(d3.header.frame_id, "base_link");
        assert!(d3.detections.len() >= 10, "{}", d3.detections.len());
    }
    assert!(checked > 20, "only {checked} boxes checked");
}

#[test]
fn depth_at_a_known_object_is_its_distance() {
    let text = "scenario: depth\n\
                world: {kind: road, lanes: 2, length: 200, buildings: 0}\n\
                environment: {time_of_day: day}\n\
                ego: {kind: vehicle, start: {x: 0, y: -1.75}, speed: 0}\n\
                actors: [{type: vehicle, start: {x: 20, y: -1.75}, size: [4, 1.8, 1.5]}]\n\
                sensors: {cameras: [{name: front, width: 160, height: 120, fov: 60, position: [2.4, 0, 0.5]}]}\n";
    let mut s = sim(parse(text), 0, 1.0, true);
    let f = next_frame(&mut s).cameras.remove(0);
    save_frame(&artifacts("depth"), "t", &f);
    let depth = depth_of(&f.depth);
    let inst = instances_of(&f.instances);
    let target = s.world.objects.iter().find(|o| o.class == class::VEHICLE).unwrap();
    // The rear face is 2 m behind the centre at x 20; the camera is 2.4 m ahead of base_link.
    let expected = 20.0 - 2.0 - 2.4 - s.base_pose().translation.x;
    let (w, h) = (160usize, 120usize);
    let centre = (h / 2) * w + w / 2;
    assert_eq!(inst[centre], target.instance, "the centre pixel sees the vehicle ahead");
    assert!((depth[centre] - expected).abs() < 0.01, "depth {} vs {expected}", depth[centre]);
    // Every pixel of its rear face (the nearest: the body below the windows) has that depth.
    let face: Vec<f32> =
        inst.iter().zip(&depth).filter(|(i, d)| **i == target.instance && **d < expected + 0.05).map(|(_, d)| *d).collect();
    assert!(face.len() > 60, "{} pixels", face.len());
    assert!(face.iter().all(|d| (d - expected).abs() < 0.01));
    // Sky: no return, +inf, class 0.
    assert!(depth[w / 2].is_infinite() && depth[w / 2] > 0.0);
    assert_eq!(f.segmentation.data[w / 2], 0);
    // The road below the horizon is road.
    assert_eq!(f.segmentation.data[(h - 1) * w + w / 2], class::ROAD);
    let boxes = mask_boxes(&s2r_sim::render::Images {
        width: 160,
        height: 120,
        rgb: vec![],
        depth: depth.clone(),
        class: f.segmentation.data.to_vec(),
        instance: inst.clone(),
    });
    assert!(boxes.iter().any(|b| b.instance == target.instance));
}

/// Back-projects a pixel with its depth into the world.
fn world_point(s: &Sim, cam: usize, u: f64, v: f64, z: f64) -> Point3<f32> {
    let m = &s.mounts[cam];
    let p = Point3::new((u - m.model.cx) / m.model.fx * z, (v - m.model.cy) / m.model.fy * z, z);
    (s.base_pose() * m.optical_in_base) * p.cast::<f32>()
}

#[test]
fn surround_cameras_agree_with_one_another() {
    let mut s = sim(shipped("dry_day_urban"), 5, 0.25, true);
    let tick = next_frame(&mut s);
    let names: Vec<&str> = s.mounts.iter().map(|m| m.model.name.as_str()).collect();
    assert_eq!(names, ["front", "front_left", "front_right", "left", "right", "rear_left", "rear_right", "rear"]);
    let base = s.base_pose();
    let mut agree = 0;
    let mut total = 0;
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7), (6, 7)] {
        let (fa, fb) = (&tick.cameras[a], &tick.cameras[b]);
        let (da, db) = (depth_of(&fa.depth), depth_of(&fb.depth));
        let (ia, ib) = (instances_of(&fa.instances), instances_of(&fb.instances));
        let (wa, wb) = (fa.image.width as usize, fb.image.width as usize);
        let to_b: Isometry3<f32> = (base * s.mounts[b].optical_in_base).inverse();
        for (k, z) in da.iter().enumerate().step_by(3) {
            if !z.is_finite() || *z > 80.0 {
                continue;
            }
            let (u, v) = ((k % wa) as f64, (k / wa) as f64);
            let p = to_b * world_point(&s, a, u, v, *z as f64);
            let Some((ub, vb)) = s.mounts[b].model.project(&p.cast()) else { continue };
            let (ub, vb) = (ub.round(), vb.round());
            if ub < 0.0 || vb < 0.0 || ub >= wb as f64 || vb >= fb.image.height as f64 {
                continue;
            }
            let kb = vb as usize * wb + ub as usize;
            // Seen by both (not hidden in b): the same surface, the same labels.
            if (db[kb] - p.z).abs() > 0.02 * p.z + 0.05 {
                continue;
            }
            total += 1;
            if ib[kb] == ia[k] && fb.segmentation.data[kb] == fa.segmentation.data[k] {
                agree += 1;
            }
        }
    }
    eprintln!("{agree} of {total} shared points carry the same labels in both cameras");
    assert!(total > 500, "only {total} points seen by two cameras");
    assert!(agree as f64 >= 0.97 * total as f64, "{agree} of {total}");
}

// ---------------------------------------------------------------- determinism

fn run_bytes(seed: u64, seconds: f64) -> Vec<Vec<u8>> {
    let mut s = sim(shipped("icy_night_crossing"), seed, 0.25, true);
    let mut out = Vec::new();
    let enc = |m: &dyn erased::Enc| m.bytes();
    out.push(enc(&s.scenario_info()));
    out.push(enc(&s.tf_static()));
    while s.seconds() < seconds {
        let t = s.tick().unwrap();
        out.push(enc(&t.clock));
        t.odom.iter().for_each(|m| out.push(enc(m)));
        t.imu.iter().for_each(|m| out.push(enc(m)));
        t.tf.iter().for_each(|m| out.push(enc(m)));
        t.detections3d.iter().for_each(|m| out.push(enc(m)));
        t.collisions.iter().for_each(|m| out.push(enc(m)));
        for f in &t.cameras {
            for m in [&f.image, &f.depth, &f.segmentation, &f.instances] {
                out.push(enc(m));
            }
            out.push(enc(&f.info));
            out.push(enc(&f.detections));
        }
    }
    out
}

mod erased {
    pub trait Enc {
        fn bytes(&self) -> Vec<u8>;
    }
    impl<M: serde::Serialize> Enc for M {
        fn bytes(&self) -> Vec<u8> {
            s2r_idl::dynamic::serialize(self).unwrap()
        }
    }
}

#[test]
fn lockstep_runs_are_byte_identical_for_a_seed() {
    let a = run_bytes(11, 1.0);
    let b = run_bytes(11, 1.0);
    assert_eq!(a.len(), b.len());
    assert!(a.len() > 200, "{} messages", a.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(x == y, "message {i} differs between two runs of the same seed");
    }
    let c = run_bytes(12, 1.0);
    assert_ne!(a[0], c[0], "another seed draws another scenario");
}

#[test]
fn shipped_scenarios_render_and_look_right() {
    // Artifacts of each shipped scenario at a telling moment, for a person to look at.
    for (name, at) in [("icy_night_crossing", 3.0), ("dry_day_urban", 1.0), ("cup_near_edge", 2.5)] {
        let mut s = sim(shipped(name), 0, 0.5, true);
        let dir = artifacts(name);
        let mut tick = next_frame(&mut s);
        while s.seconds() < at {
            tick = next_frame(&mut s);
        }
        for f in &tick.cameras {
            save_frame(&dir, &format!("{at:.1}s"), f);
            // A picture, not a blank: several classes and colours in each.
            let classes: std::collections::BTreeSet<u8> = f.segmentation.data.iter().copied().collect();
            assert!(classes.len() >= 3, "{name}/{}: classes {classes:?}", f.name);
            let mean: f64 = f.image.data.iter().map(|b| *b as f64).sum::<f64>() / f.image.data.len() as f64;
            assert!(mean > 2.0 && mean < 250.0, "{name}/{}: mean brightness {mean}", f.name);
        }
        let info = s.scenario_info();
        assert_eq!(info.scenario, name);
        assert_eq!(info.class_names, CLASS_NAMES);
        assert!(!info.actors.is_empty());
    }
}

#[test]
fn no_shipped_scenario_runs_out_of_world_within_a_minute() {
    // Every camera of every shipped scenario, 60 s at 10 Hz: no frame a uniform
    // field (the world left behind), no driving frame a repeat of the last
    // (the ego moves, so the view does).
    for name in ["icy_night_crossing", "dry_day_urban", "cup_near_edge"] {
        let mut scenario = shipped(name);
        scenario.sensors.cameras.truncate(2);
        let driving = name != "cup_near_edge";
        let mut s = sim(scenario, 0, 0.125, true);
        let mut last: Vec<Vec<u8>> = Vec::new();
        while s.seconds() < 60.0 {
            let tick = next_frame(&mut s);
            for (k, f) in tick.cameras.iter().enumerate() {
                let luma: Vec<f64> =
                    f.image.data.chunks_exact(3).map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).collect();
                let mean = luma.iter().sum::<f64>() / luma.len() as f64;
                let sd = (luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luma.len() as f64).sqrt();
                assert!(sd > 4.0, "{name}/{} at {:.1} s: a uniform frame (luma sd {sd:.2})", f.name, s.seconds());
                if driving && last.len() > k {
                    assert!(last[k] != f.image.data.to_vec(), "{name}/{} at {:.1} s: the same frame again", f.name, s.seconds());
                }
                if last.len() <= k {
                    last.push(Vec::new());
                }
                last[k] = f.image.data.to_vec();
            }
        }
    }
}

#[test]
fn people_and_vehicles_gallery() {
    // Every vehicle body type by its size, and people walking, running and
    // standing, side-on to a camera in daylight; the labels follow the limbs.
    let text = r#"scenario: gallery
world: {kind: road, lanes: 4, lane_width: 3.5, length: 300, sidewalk_width: 2.0, buildings: 6, building_height: [8, 12]}
environment: {time_of_day: day}
ego: {kind: vehicle, start: {x: 0, y: -13}, speed: 0}
actors:
  - {type: vehicle, start: {x: -9.5, y: 1.75, yaw: 0}, size: [4.6, 1.8, 1.45]}
  - {type: vehicle, start: {x: -3.8, y: 1.75, yaw: 0}, size: [4.1, 1.75, 1.5]}
  - {type: vehicle, start: {x: 1.8, y: 1.75, yaw: 0}, size: [4.7, 1.9, 1.75]}
  - {type: vehicle, start: {x: 8, y: 1.75, yaw: 0}, size: [5.1, 2.0, 2.1]}
  - {type: vehicle, start: {x: -9, y: 5.25, yaw: 180}, size: [7.0, 2.4, 3.0]}
  - {type: vehicle, start: {x: 6, y: 5.25, yaw: 180}, size: [11.0, 2.5, 3.1]}
  - {type: adult, start: {x: -6, y: -4.5, yaw: 0}, behaviour: {kind: walk, speed: [1.3, 1.3]}}
  - {type: adult, start: {x: -2, y: -5.2, yaw: 180}, behaviour: {kind: walk, speed: [1.2, 1.2]}}
  - {type: child, start: {x: 1, y: -4.4, yaw: 0}, behaviour: {kind: walk, speed: [2.8, 2.8]}}
  - {type: cyclist, start: {x: -4, y: -1.2, yaw: 0}, behaviour: {kind: drive, speed: [5, 5]}}
  - {type: adult, start: {x: 5, y: -5.0, yaw: 180}}
  - {type: adult, start: {x: 9.5, y: -4.2, yaw: 160}}
  - {type: child, start: {x: 11, y: -5.4, yaw: 200}}
randomize: {colors: true}
sensors: {cameras: [{name: front, width: 640, height: 480, fov: 75, position: [0, 0, 3.0], yaw: 90, pitch: 14}]}
"#;
    let mut s = sim(parse(text), 4, 1.0, true);
    let dir = artifacts("gallery");
    let mut boxes_per_frame = Vec::new();
    for k in 0..6 {
        let tick = next_frame(&mut s);
        let f = &tick.cameras[0];
        if k % 2 == 1 {
            save_frame(&dir, &format!("{k}"), f);
        }
        let people: Vec<_> =
            f.detections.detections.iter().filter(|d| d.results[0].hypothesis.class_id != "vehicle").map(|d| d.bbox.clone()).collect();
        boxes_per_frame.push(people);
    }
    // Six body types and the people in view, every one labelled.
    let last = &tick_classes(&mut s);
    assert!(last.iter().filter(|c| c.as_str() == "vehicle").count() >= 6, "{last:?}");
    assert!(last.iter().any(|c| c == "cyclist"), "{last:?}");
    assert!(last.iter().filter(|c| *c == "pedestrian" || *c == "child").count() >= 4, "{last:?}");
    // Walking people's boxes change shape as their limbs swing.
    let widths: Vec<f64> = boxes_per_frame.iter().filter_map(|b| b.first().map(|b| b.size_x)).collect();
    assert!(widths.windows(2).any(|w| (w[0] - w[1]).abs() > 1.0), "a walker's box never changed width: {widths:?}");
}

fn tick_classes(s: &mut Sim) -> Vec<String> {
    next_frame(s).cameras[0].detections.detections.iter().map(|d| d.results[0].hypothesis.class_id.clone()).collect()
}

#[test]
fn walkers_step_around_people_and_parked_cars() {
    // Two walkers heading at a person standing on the sidewalk and at a car
    // parked across their way: they pass without entering either footprint.
    let text = r#"scenario: walkers
world: {kind: road, lanes: 2, lane_width: 3.5, length: 200, sidewalk_width: 4.0, buildings: 0}
environment: {time_of_day: day}
ego: {kind: vehicle, start: {x: -60, y: -1.75}, speed: 0}
actors:
  - {type: adult, start: {x: 0, y: -5.5, yaw: 0}, behaviour: {kind: walk, speed: [1.4, 1.4]}}
  - {type: adult, start: {x: 6, y: -5.5, yaw: 0}}
  - {type: adult, start: {x: 0, y: 5.0, yaw: 0}, behaviour: {kind: walk, speed: [1.2, 1.2]}}
  - {type: vehicle, start: {x: 7, y: 5.2, yaw: 0}, size: [4.4, 1.8, 1.5]}
sensors: {cameras: [{name: front, width: 64, height: 48}]}
"#;
    let mut s = sim(parse(text), 0, 1.0, false);
    let idx = |name: &str| s.world.objects.iter().position(|o| o.name == name).unwrap();
    let (w0, stand, w1, car) = (idx("adult_0"), idx("adult_1"), idx("adult_2"), idx("vehicle_0"));
    let overlap = |s: &Sim, a: usize, b: usize| {
        let (pa, pb) = (s.physics.pose(&s.world, a).translation.vector, s.physics.pose(&s.world, b).translation.vector);
        let (ha, hb) = (s.world.objects[a].half, s.world.objects[b].half);
        (pa.x - pb.x).abs() < ha.x + hb.x - 0.05 && (pa.y - pb.y).abs() < ha.y + hb.y - 0.05
    };
    while s.seconds() < 20.0 {
        s.tick().unwrap();
        assert!(!overlap(&s, w0, stand), "the walker went through the standing person at {:.2} s", s.seconds());
        assert!(!overlap(&s, w1, car), "the walker went through the parked car at {:.2} s", s.seconds());
    }
    // And they got past.
    assert!(s.physics.pose(&s.world, w0).translation.x > 12.0 && s.physics.pose(&s.world, w1).translation.x > 12.0);
}

#[test]
fn joint_commands_are_read_by_name_or_in_order() {
    use s2r_sim::sim::{joint_targets, GRIPPER_JOINT};
    let current = [0.5; 6];
    let named = JointState { name: vec!["joint2".into(), GRIPPER_JOINT.into()], position: vec![1.0, 0.03], ..Default::default() };
    let t = joint_targets(&named, &current).unwrap();
    assert_eq!((t.q, t.gripper), ([0.5, 1.0, 0.5, 0.5, 0.5, 0.5], Some(0.03)));
    assert_eq!(t.set, [false, true, false, false, false, false]);
    let ordered = JointState { position: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], ..Default::default() };
    let t = joint_targets(&ordered, &current).unwrap();
    assert_eq!((t.q, t.gripper), ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], None));
}
