//! `ros2 run sim2real curator_node --ros-args -p output:=dataset -p params_file:=config/curator.params.yaml`
fn main() {
    s2r_runtime::component::run_main(&s2r_curator::node::CURATOR_NODE)
}
