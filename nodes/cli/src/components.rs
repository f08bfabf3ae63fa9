//! The nodes this program can run in-process (`s2r run`, `s2r launch --compose`).

use s2r_runtime::component::Component;

/// sim2real's ROS package name.
pub const PACKAGE: &str = "sim2real";

/// Every node of the package: the one list that `s2r run`, launch files,
/// `s2r pkg executables` (and through it the colcon check) go by. Each has an
/// executable of its own in `src/bin/<exec>.rs` (a test checks they agree).
pub fn all() -> Vec<&'static Component> {
    vec![
        &s2r_demo::TALKER,
        &s2r_demo::LISTENER,
        &s2r_sim::node::SIM_NODE,
        &s2r_transfer::node::TRANSFER_NODE,
        &s2r_curator::node::CURATOR_NODE,
        &s2r_tokenizer::node::TOKENIZER_NODE,
        &s2r_perception::node::PERCEPTION_NODE,
        &s2r_policy::node::POLICY_NODE,
        &s2r_reason::node::REASON_NODE,
        &crate::WORLD_MODEL_NODE,
        &crate::MULTIVIEW_NODE,
        &crate::TRAINER_NODE,
        &s2r_safety::node::SAFETY_NODE,
    ]
}

/// The package's executables: every node, then `s2r`.
pub fn executables() -> Vec<&'static str> {
    all().iter().map(|c| c.exec).chain(["s2r"]).collect()
}

/// The node whose executable is `exec`.
pub fn find(exec: &str) -> Option<&'static Component> {
    all().into_iter().find(|c| c.exec == exec)
}

/// Where `sim2real` is: installed (AMENT_PREFIX_PATH), or this source tree.
pub fn find_package(name: &str) -> Option<s2r_launch::Package> {
    let source = s2r_runtime::share::source_tree();
    s2r_launch::find_package(name, std::env::var("AMENT_PREFIX_PATH").ok().as_deref(), source.map(|s| (PACKAGE, s)))
}
