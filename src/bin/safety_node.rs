//! `ros2 run sim2real safety_node --ros-args -r cmd_vel:=/robot/cmd_vel -p required_nodes:="[policy_node]"`
fn main() {
    s2r_runtime::component::run_main(&s2r_safety::node::SAFETY_NODE)
}
