//! `ros2 run sim2real transfer_node --ros-args -p prompt:="heavy rain, dusk"`
fn main() {
    // The GPU path (device auto or gpu) opens Vulkan; headless, Mesa's device-select layer would complain.
    s2r_sim::render::quiet_headless_vulkan();
    s2r_runtime::component::run_main(&s2r_transfer::node::TRANSFER_NODE)
}
