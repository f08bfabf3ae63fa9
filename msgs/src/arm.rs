//! An arm's joints as the simulator names them in `joint_states` and
//! `joint_commands`: what the policy, the world model and the tools read.

use crate::sensor_msgs::msg::JointState;

/// Names of an arm's joints in /joint_states and /joint_commands, in the network's order.
pub const ARM_JOINTS: [&str; 7] = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"];

/// An arm's JointState as the network's seven entries (by name; in order
/// when it names none); None when one is missing or not a finite number.
pub fn arm_joints(j: &JointState) -> Option<[f32; 7]> {
    let mut out = [0f32; 7];
    if j.name.is_empty() {
        if j.position.len() < 7 {
            return None;
        }
        for (o, x) in out.iter_mut().zip(&j.position) {
            *o = *x as f32;
        }
        return out.iter().all(|x| x.is_finite()).then_some(out);
    }
    for (o, want) in out.iter_mut().zip(ARM_JOINTS) {
        let i = j.name.iter().position(|n| n == want)?;
        *o = *j.position.get(i)? as f32;
    }
    out.iter().all(|x| x.is_finite()).then_some(out)
}
