//! The GPU path where there is none (CI's machines): `s2r bench models` on
//! the CPU prints every network's figures; asking a build without the `cuda`
//! feature for CUDA is refused by name, by the commands and by the nodes,
//! before any work. (On a GPU machine, `tools/gpu_check.sh` runs the CUDA
//! build against the CPU's outputs; README "On a GPU".)

use std::process::{Command, Output};
use std::time::Duration;

mod common;
use common::{finish, fresh_domain, loopback_env};

fn s2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn the_models_benchmark_times_each_network_on_the_cpu() {
    let o = s2r(&["bench", "models", "--seconds", "0", "--train-steps", "1", "--only", "policy-vehicle,reason-surface,reason-cup,world"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for model in ["policy-vehicle", "reason-surface", "reason-cup", "world"] {
        let row = out.lines().find(|l| l.starts_with(&format!("| {model} |"))).unwrap_or_else(|| panic!("no row for {model}:\n{out}"));
        // | model | input | p50 | p99 | steps/s | examples/s |
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let figures: Vec<f64> = cells[3..7].iter().map(|c| c.parse().unwrap_or_else(|_| panic!("{c} in {row}"))).collect();
        assert!(figures.iter().all(|f| *f > 0.0 && f.is_finite()), "{row}");
        assert!(figures[0] <= figures[1], "p50 above p99: {row}");
    }
    assert!(!out.contains("| perception |"), "--only keeps to the named models:\n{out}");
    let o = s2r(&["bench", "models", "--only", "lidar"]);
    assert!(!o.status.success() && text(&o).contains("'lidar'") && text(&o).contains("perception, policy-vehicle"), "{}", text(&o));
}

#[test]
fn cuda_in_a_build_without_it_is_refused_by_name() {
    if candle_core::utils::cuda_is_available() {
        return; // a CUDA build: tools/gpu_check.sh is its test
    }
    for args in [
        vec!["bench", "models", "--device", "cuda"],
        vec!["train", "policy", "/nonexistent/demos", "-o", "/nonexistent/p.safetensors", "--device", "cuda:1"],
        vec!["train", "reason", "-o", "/nonexistent/reason.json", "--device", "cuda"],
    ] {
        let o = s2r(&args);
        let e = text(&o);
        assert!(!o.status.success(), "{args:?}: {e}");
        assert!(e.contains("device cuda") && e.contains("--features cuda"), "{args:?}: {e}");
    }
    let o = s2r(&["train", "tokenizer", "/nonexistent/data", "-o", "/nonexistent/t.safetensors", "--device", "tpu"]);
    assert!(!o.status.success() && text(&o).contains("expected cpu, cuda or cuda:N"), "{}", text(&o));

    // A node with `device:=cuda` stops at its start, naming the parameter.
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy_node"));
    loopback_env(&mut c, fresh_domain());
    c.args(["--ros-args", "-p", "device:=cuda"]);
    let (o, _) = finish(c, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("parameter 'device'") && err.contains("--features cuda"), "{err}");
}
