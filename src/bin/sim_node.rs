//! `ros2 run sim2real sim_node --ros-args -p scenario:=icy_night_crossing -p seed:=3`
fn main() {
    s2r_sim::render::quiet_headless_vulkan();
    s2r_runtime::component::run_main(&s2r_sim::node::SIM_NODE)
}
