//! `ros2 run sim2real listener`: the demo listener node.
fn main() {
    s2r_runtime::component::run_main(&s2r_demo::LISTENER)
}
