//! The gripper and the manipulation expert in closed loop with the
//! simulator: the arm's kinematics match the physics, the fingers hold a cup
//! by friction, and the expert picks the cup by the edge up and puts it down
//! upright at the task's spot (where the scripted sweep knocks it off).

use std::path::Path;

use nalgebra::{Point3, Vector3};
use s2r_sim::arm_expert::{forward, ArmExpert, ArmView};
use s2r_sim::autopilot::joint_command;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios").join(format!("{name}.yaml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the expert at 20 Hz for up to `seconds`; returns the run and
/// whether the gripper held the cup at some point.
fn run_expert(seed: u64, seconds: f64) -> (Sim, bool, ArmExpert) {
    let mut sim = Sim::new(shipped("cup_near_edge"), &SimOptions { seed, image_scale: 1.0, render: false }).unwrap();
    let mut expert = ArmExpert::default();
    let mut held = false;
    let mut k = 0u64;
    while sim.seconds() < seconds {
        if k.is_multiple_of(10) {
            let v = ArmView::of(&sim).unwrap();
            held |= v.grasped == v.target().map(|c| c.object);
            let before = expert.phase();
            let c = expert.act(&v);
            if expert.phase() != before {
                let cup = v.target().unwrap().pose.translation.vector;
                println!(
                    "{:.2} s: {} → {} (cup at {:.3} {:.3} {:.3}, opening {:.3})",
                    v.time,
                    before,
                    expert.phase(),
                    cup.x,
                    cup.y,
                    cup.z,
                    v.opening
                );
            }
            sim.command_joints(&joint_command(&c.q, c.gripper)).unwrap();
        }
        k += 1;
        sim.tick().unwrap();
    }
    (sim, held, expert)
}

#[test]
fn forward_kinematics_match_the_physics() {
    let mut sim = Sim::new(shipped("cup_near_edge"), &SimOptions { seed: 0, image_scale: 1.0, render: false }).unwrap();
    let q = [0.4f32, 0.7, 1.1, 0.0, 1.0, 1.2];
    sim.command_joints(&joint_command(&q, 0.05)).unwrap();
    while sim.seconds() < 3.0 {
        sim.tick().unwrap();
    }
    let v = ArmView::of(&sim).unwrap();
    for (j, (got, want)) in v.q.iter().zip(&q).enumerate() {
        assert!((got - want).abs() < 0.02, "joint {j}: {got} for {want}");
    }
    assert!((v.opening - 0.05).abs() < 0.003, "gripper opening {}", v.opening);
    let flange = forward(&v.arm, &v.q)[5];
    let link6 = sim.world.objects.iter().position(|o| o.name == "arm_link6").unwrap();
    let half = sim.world.objects[link6].half.z;
    let physics_flange = sim.physics.pose(&sim.world, link6) * Point3::new(0.0, 0.0, half);
    assert!(
        (flange * Point3::origin() - physics_flange).norm() < 0.005,
        "flange {} vs physics {physics_flange}",
        flange * Point3::origin()
    );
}

#[test]
fn the_expert_picks_the_cup_by_the_edge_and_places_it_upright() {
    for seed in [1, 2] {
        let (sim, held, expert) = run_expert(seed, 15.0);
        let v = ArmView::of(&sim).unwrap();
        let cup = v.target().unwrap();
        let p = cup.pose.translation.vector;
        let up = cup.pose.rotation * Vector3::z();
        let miss = ((p.x - v.task.place[0] as f32).powi(2) + (p.y - v.task.place[1] as f32).powi(2)).sqrt();
        println!("seed {seed}: cup at {p:?}, {miss:.3} m from the spot, up {up:?}, held {held}, done {}", expert.done());
        assert!(held, "seed {seed}: the gripper never held the cup");
        assert!(expert.done(), "seed {seed}: the expert did not finish in 15 s");
        assert!(miss < v.task.tolerance as f32, "seed {seed}: the cup is {miss:.3} m from the spot");
        assert!(up.z > 0.95, "seed {seed}: the cup is not upright ({up:?})");
        assert!((p.z - v.table_top - cup.half.z).abs() < 0.01, "seed {seed}: the cup is not on the table (z {})", p.z);
        assert!(v.grasped.is_none(), "seed {seed}: the gripper still holds the cup");
        // Every cup is still on the table.
        for c in &v.cups {
            assert!(c.pose.translation.z > v.table_top, "seed {seed}: a cup fell off");
        }
    }
}
