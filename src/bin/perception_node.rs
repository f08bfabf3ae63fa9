//! `ros2 run sim2real perception_node --ros-args -p checkpoint:=perception.safetensors -p cameras:=front`
fn main() {
    s2r_runtime::component::run_main(&s2r_perception::node::PERCEPTION_NODE)
}
