//! `ros2 run sim2real reason_node --ros-args -p sight:=60.0 -r front/image_raw:=/camera/image_raw`
fn main() {
    s2r_runtime::component::run_main(&s2r_reason::node::REASON_NODE)
}
