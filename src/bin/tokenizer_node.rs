//! `ros2 run sim2real tokenizer_node --ros-args -p checkpoint:=models/tokenizer/cv4x8x8.safetensors`
fn main() {
    s2r_runtime::component::run_main(&s2r_tokenizer::node::TOKENIZER_NODE)
}
