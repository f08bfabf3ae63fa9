//! `ros2 run sim2real transfer_node --ros-args -p prompt:="heavy rain, dusk"`
fn main() {
    s2r_runtime::component::run_main(&s2r_transfer::node::TRANSFER_NODE)
}
