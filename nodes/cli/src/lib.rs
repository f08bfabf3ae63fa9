//! `s2r`: the ROS 2 command-line tools sim2real users need, for machines without
//! ROS 2 installed. Same verbs and output style as the `ros2` CLI. The `s2r`
//! executable of the `sim2real` package calls [`main`].

#![warn(missing_docs)]

mod bag_cmd;
mod closedloop_cmd;
mod components;
mod curate_cmd;
mod cycle_cmd;
mod discovery;
mod eval_cmd;
mod export_cmd;
mod generate_cmd;
mod interface;
mod job_report;
mod keyboard;
mod label_cmd;
mod launch_cmd;
mod multiview_cmd;
mod node_cmd;
mod param_cmd;
mod pkg_cmd;
mod reason_cmd;
mod service_cmd;
mod setup_cmd;
mod tokens_cmd;
mod topic;
mod train_cmd;
mod train_policy_cmd;
mod trainer;
mod transfer_cmd;
mod world_cmd;

pub use multiview_cmd::MULTIVIEW_NODE;
pub use trainer::TRAINER_NODE;
pub use world_cmd::WORLD_MODEL_NODE;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "s2r", version, about = "sim2real: ROS 2 tools that speak DDS themselves", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the nodes of a launch file (like ros2 launch).
    Launch(launch_cmd::LaunchArgs),
    /// Run one node (like ros2 run): s2r run [sim2real] talker [--ros-args …].
    Run(launch_cmd::RunArgs),
    /// Topics: list, info, echo, pub, hz, bw.
    #[command(subcommand)]
    Topic(topic::TopicCmd),
    /// Nodes: list, info.
    #[command(subcommand)]
    Node(node_cmd::NodeCmd),
    /// Packages: executables, prefix.
    #[command(subcommand)]
    Pkg(pkg_cmd::PkgCmd),
    /// Services: call one (the trainer's).
    #[command(subcommand)]
    Service(service_cmd::ServiceCmd),
    /// Parameters of a running node: list, get, set.
    #[command(subcommand)]
    Param(param_cmd::ParamCmd),
    /// Interfaces compiled into sim2real: list, show.
    #[command(subcommand)]
    Interface(interface::InterfaceCmd),
    /// Bags: record, play, info (rosbag2 MCAP).
    #[command(subcommand)]
    Bag(bag_cmd::BagCmd),
    /// Benchmarks that print their figures beside a peer's.
    #[command(subcommand)]
    Bench(s2r_bench::BenchCmd),
    /// Restyle a recorded simulation for a set of prompts into before/after contact sheets.
    Transfer(transfer_cmd::TransferArgs),
    /// Curate recorded bags into a dataset: clips, filters, deduplication, balance, report.
    Curate(curate_cmd::CurateArgs),
    /// Generate a dataset from a sweep: sim → transfer → curator in one process, sharded, resumable.
    Generate(generate_cmd::GenerateArgs),
    /// Record demonstrations: the privileged expert driving a scenario's seeds, one bag per episode, with a manifest.
    Demos(closedloop_cmd::DemosArgs),
    /// Generated datasets: info, split by seed, merge shards.
    #[command(subcommand)]
    Dataset(generate_cmd::DatasetCmd),
    /// One turn of the virtuous cycle: a robot's recordings labelled, restyled, trained on, gated, announced.
    Cycle(cycle_cmd::CycleArgs),
    /// Pseudo-label a robot's recordings with a perception model into a dataset to train on.
    Label(label_cmd::LabelArgs),
    /// Export trained models for other runtimes: perception, policy, reason, world model and tokenizer as ONNX.
    #[command(subcommand)]
    Export(export_cmd::ExportCmd),
    /// Train models: tokenizer, perception (on curated data), policy (on demonstrations), reasoning, world model, multiview.
    #[command(subcommand)]
    Train(train_cmd::TrainCmd),
    /// Tokens: decode a tokenized recording back into images.
    #[command(subcommand)]
    Tokens(tokens_cmd::TokensCmd),
    /// Install what the nodes need from the system (a Vulkan driver), as package.xml declares it.
    Setup(setup_cmd::SetupArgs),
    /// Predict a recording's next frames with a world model: PNGs, a contact sheet, a video and a bag.
    Predict(world_cmd::PredictArgs),
    /// Generate a rig's other cameras from one camera of a recording: a bag of every camera, a contact sheet and a video.
    Multiview(multiview_cmd::MultiviewArgs),
    /// Evaluate on held-out data: tokenizer (beside x264 and JPEG), perception (COCO AP, depth, mIoU), drivers in closed loop.
    #[command(subcommand)]
    Eval(eval_cmd::EvalCmd),
}

/// Runs the command line of this process and exits.
pub fn main() {
    s2r_sim::render::quiet_headless_vulkan();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Interface(c) => interface::run(c),
        Command::Launch(a) => runtime().block_on(launch_cmd::launch(a)),
        Command::Run(a) => launch_cmd::run_node(a),
        Command::Topic(c) => runtime().block_on(topic::run(c)),
        Command::Node(c) => runtime().block_on(node_cmd::run(c)),
        Command::Pkg(c) => pkg_cmd::run(c),
        Command::Param(c) => runtime().block_on(param_cmd::run(c)),
        Command::Service(c) => runtime().block_on(service_cmd::run(c)),
        Command::Bench(c) => runtime().block_on(s2r_bench::run(c)),
        Command::Bag(c) => runtime().block_on(bag_cmd::run(c)),
        Command::Transfer(a) => transfer_cmd::run(a),
        Command::Curate(a) => curate_cmd::run(a),
        Command::Generate(a) => generate_cmd::generate(a),
        Command::Dataset(c) => generate_cmd::dataset(c),
        Command::Demos(a) => closedloop_cmd::demos(a),
        Command::Train(c) => train_cmd::run(c),
        Command::Label(a) => label_cmd::run(a),
        Command::Cycle(a) => cycle_cmd::run(a),
        Command::Export(c) => export_cmd::run(c),
        Command::Tokens(c) => tokens_cmd::run(c),
        Command::Eval(c) => eval_cmd::run(c),
        Command::Setup(a) => setup_cmd::run(a),
        Command::Predict(a) => world_cmd::predict(a),
        Command::Multiview(a) => multiview_cmd::multiview(a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", report(&e));
        std::process::exit(1);
    }
}

/// An error and its causes on one line, each cause once: the library errors
/// already name their cause in their message, where `{:#}` would repeat it.
fn report(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line = format!("{line}: {c}");
        }
    }
    line
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("start tokio")
}

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn causes_are_reported_once() {
        // The bag error says its cause and returns it as its source too.
        let named = s2r_bag::BagError::Io { path: "out.mcap".into(), source: std::io::Error::other("disk full") };
        let e = anyhow::Error::new(named).context("recording");
        assert_eq!(format!("{e:#}"), "recording: out.mcap: disk full: disk full");
        assert_eq!(report(&e), "recording: out.mcap: disk full");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(report(&e), "outer: inner");
    }
}
