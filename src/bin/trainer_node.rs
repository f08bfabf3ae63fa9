//! `ros2 run sim2real trainer_node --ros-args -p jobs_dir:=jobs`
fn main() {
    s2r_runtime::component::run_main(&s2r_cli::TRAINER_NODE)
}
