//! The arm as a ROS robot description (URDF, published on
//! `robot_description`): its six joints as `sim::JOINT_NAMES` name them, each
//! link drawn as the box the simulator renders, and `tool0`, the flange the
//! gripper's fingers stand on. With robot_state_publisher it puts the arm's
//! links on /tf from `joint_states`; policy_node's safety filter reads its
//! kinematics from it. The gripper's opening (`gripper` in the joint states)
//! is not a URDF joint: two fingers sliding by half of it each are the
//! gripper's own geometry (`world::FINGER_HALF`).

use nalgebra::{Isometry3, Unit, Vector3};
use s2r_runtime::urdf::{Joint, JointKind, Link, Robot, VisualBox};

use crate::scenario::ArmEgo;
use crate::sim::JOINT_NAMES;
use crate::world::ARM_LINK_RADII;

/// The frame the arm is described from: its base, where `base_link` is.
pub const ROOT: &str = "base_link";
/// The flange's frame.
pub const TOOL: &str = "tool0";

/// The arm's description: base_link → link1 … link6 → tool0.
pub fn arm(a: &ArmEgo) -> Robot {
    let link_name = |i: usize| if i == 0 { ROOT.to_string() } else { format!("link{i}") };
    let mut links = vec![Link { name: ROOT.into(), visuals: vec![] }];
    let mut joints = Vec::new();
    let axes = crate::physics::joint_axes();
    for (i, len) in a.links.iter().enumerate() {
        let r = 2.0 * ARM_LINK_RADII[i] as f64;
        links.push(Link {
            name: link_name(i + 1),
            visuals: vec![VisualBox { origin: Isometry3::translation(0.0, 0.0, len / 2.0), size: [r, r, *len] }],
        });
        joints.push(Joint {
            name: JOINT_NAMES[i].into(),
            kind: JointKind::Revolute,
            parent: link_name(i),
            child: link_name(i + 1),
            // Each joint sits at the far end of the link before it.
            origin: Isometry3::translation(0.0, 0.0, if i == 0 { 0.0 } else { a.links[i - 1] }),
            axis: Unit::new_normalize(axes[i].into_inner().cast::<f64>()),
            limits: Some(a.limits[i]),
        });
    }
    links.push(Link { name: TOOL.into(), visuals: vec![] });
    joints.push(Joint {
        name: "flange".into(),
        kind: JointKind::Fixed,
        parent: link_name(6),
        child: TOOL.into(),
        origin: Isometry3::translation(0.0, 0.0, a.links[5]),
        axis: Vector3::x_axis(),
        limits: None,
    });
    Robot { name: "sim2real_arm".into(), links, joints }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm_expert::forward;
    use crate::scenario::Scenario;

    #[test]
    fn the_description_puts_the_flange_where_the_simulated_arm_has_it() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios/cup_near_edge.yaml");
        let s = Scenario::load(&path).unwrap();
        let crate::scenario::EgoSpec::Arm(a) = s.ego.clone() else { panic!("cup_near_edge has an arm") };
        let robot = Robot::from_urdf(&arm(&a).to_urdf().unwrap()).unwrap();
        let chain = robot.chain(ROOT, TOOL).unwrap();
        assert_eq!(chain.moving(), JOINT_NAMES);
        // base_link is the arm's base: the simulator's map-frame kinematics less the base's offset.
        let base = Isometry3::translation(a.base[0] as f32, a.base[1] as f32, a.base[2] as f32);
        for q in [[0.0f32; 6], [0.3, -0.7, 1.1, 0.4, -0.9, 2.0], [-2.5, 1.2, -1.8, -3.0, 1.5, -0.2]] {
            let sim = base.inverse() * forward(&a, &q)[5];
            let urdf = chain.forward(&q.map(|x| x as f64)).unwrap();
            let d = (urdf.to_homogeneous() - sim.cast::<f64>().to_homogeneous()).norm();
            assert!(d < 1e-5, "{q:?}: {d}\n{urdf}\n{sim}");
        }
    }
}
