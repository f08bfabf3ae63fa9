//! The nodes this program can run in-process (`s2r run`, `s2r launch --compose`).

use s2r_runtime::component::Component;

/// sim2real's ROS package name.
pub const PACKAGE: &str = "sim2real";

pub fn all() -> Vec<&'static Component> {
    vec![
        &s2r_demo::TALKER,
        &s2r_demo::LISTENER,
        &s2r_sim::node::SIM_NODE,
        &s2r_transfer::node::TRANSFER_NODE,
        &s2r_curator::node::CURATOR_NODE,
        &s2r_tokenizer::node::TOKENIZER_NODE,
    ]
}

pub fn find(exec: &str) -> Option<&'static Component> {
    all().into_iter().find(|c| c.exec == exec)
}

/// Where `sim2real` is: installed (AMENT_PREFIX_PATH), or this source tree.
pub fn find_package(name: &str) -> Option<s2r_launch::Package> {
    let source = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let source = source.canonicalize().ok().filter(|p| p.join("package.xml").exists());
    s2r_launch::find_package(name, std::env::var("AMENT_PREFIX_PATH").ok().as_deref(), source.map(|s| (PACKAGE, s)))
}
