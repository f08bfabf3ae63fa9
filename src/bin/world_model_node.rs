//! `ros2 run sim2real world_model_node --ros-args -p checkpoint:=world.safetensors`
fn main() {
    s2r_runtime::component::run_main(&s2r_cli::WORLD_MODEL_NODE)
}
