//! `ros2 run sim2real multiview_node --ros-args -p checkpoint:=multiview.safetensors`
fn main() {
    s2r_runtime::component::run_main(&s2r_cli::MULTIVIEW_NODE)
}
