//! The privileged driving expert in closed loop with the simulator: on ice at
//! night it stops for the child that runs out (where the scripted 50 km/h
//! drive hits it), and on a dry day it keeps going.

use std::path::Path;

use s2r_sim::expert::{drive, DrivingView};
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};
use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios").join(format!("{name}.yaml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `seconds` with the expert driving at 20 Hz (or the scenario's own
/// constant speed); returns the classes the ego hit and the distance it drove.
fn run(name: &str, seed: u64, seconds: f64, expert: bool) -> (Vec<String>, f32) {
    let mut sim = Sim::new(shipped(name).on_route(), &SimOptions { seed, image_scale: 1.0, render: false }).unwrap();
    let ego = sim.world.ego.unwrap();
    let ego_instance = sim.world.objects[ego].instance;
    let start = sim.base_pose().translation.vector;
    let mut hits = Vec::new();
    let mut k = 0u64;
    while sim.seconds() < seconds {
        if expert && k.is_multiple_of(10) {
            let d = drive(&DrivingView::of(&sim).unwrap());
            let cmd = Twist {
                linear: Vector3 { x: d.speed as f64, ..Default::default() },
                angular: Vector3 { z: d.yaw_rate as f64, ..Default::default() },
            };
            sim.command_velocity(&cmd);
        }
        k += 1;
        let t = sim.tick().unwrap();
        for c in t.collisions {
            if c.instance_a == ego_instance {
                hits.push(c.class_b);
            } else if c.instance_b == ego_instance {
                hits.push(c.class_a);
            }
        }
    }
    (hits, (sim.base_pose().translation.vector - start).norm())
}

#[test]
fn the_expert_stops_for_the_child_on_ice_where_the_scripted_drive_hits_it() {
    for seed in [1, 2, 3] {
        let (hits, _) = run("icy_night_crossing", seed, 20.0, false);
        println!("seed {seed} scripted: {hits:?}");
        let (hits, dist) = run("icy_night_crossing", seed, 50.0, true);
        println!("seed {seed} expert: {hits:?} after {dist:.1} m");
        assert!(hits.is_empty(), "seed {seed}: the expert hit {hits:?}");
        assert!(dist > 60.0, "seed {seed}: the expert drove only {dist:.1} m in 30 s");
    }
}

#[test]
fn hazards_name_the_parked_car_hiding_the_child_and_what_steps_into_the_path() {
    use s2r_sim::expert::hazards;
    // The route's start: 160 m before the parked cars, nothing in the lane.
    let mut sim = Sim::new(shipped("icy_night_crossing").on_route(), &SimOptions { seed: 1, image_scale: 1.0, render: false }).unwrap();
    let v = DrivingView::of(&sim).unwrap();
    let h = hazards(&v);
    let (s_ego, _) = v.to_lane(v.position);
    let front = s_ego + v.half.x;
    // The first parked car (x ≈ 5, 4.5 m long) ends ≈ 7.25 m along the road: its far end.
    let (d, id) = h.occlusion.expect("the parked cars are ahead");
    let car = v.actors.iter().find(|a| a.instance == id).unwrap();
    assert!(car.parked);
    let far = v.to_lane(car.position).0 + car.half.x - front;
    assert!((d - far).abs() < 1e-3 && d > 140.0 && d < 180.0, "{d} vs {far}");
    assert_eq!(h.obstacle.map(|o| o.1).filter(|i| *i == id), None, "a parked car by the kerb is not in the path");
    // Driving on at the scenario's speed, the child runs out: it becomes an obstacle ahead before the car reaches it.
    let child = v.actors.iter().find(|a| a.class == s2r_sim::world::class::CHILD).unwrap().instance;
    let mut saw = None;
    while sim.seconds() < 20.0 && saw.is_none() {
        sim.tick().unwrap();
        let v = DrivingView::of(&sim).unwrap();
        if let Some((d, i)) = hazards(&v).obstacle {
            if i == child {
                saw = Some(d);
            }
        }
    }
    let d = saw.expect("the child enters the path");
    println!("the child is in the path {d:.1} m ahead at {:.2} s", sim.seconds());
    assert!(d > 0.0 && d < 40.0, "the child is first in the path {d:.1} m ahead");
}
