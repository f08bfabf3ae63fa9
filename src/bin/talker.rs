//! `ros2 run sim2real talker`: the demo talker node.
fn main() {
    s2r_runtime::component::run_main(&s2r_demo::TALKER)
}
