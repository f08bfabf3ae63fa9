//! `ros2 run sim2real policy_node --ros-args -p checkpoint:=policy.safetensors -r cmd_vel:=/robot/cmd_vel`
fn main() {
    s2r_runtime::component::run_main(&s2r_policy::node::POLICY_NODE)
}
