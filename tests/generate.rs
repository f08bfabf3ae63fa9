//! `s2r generate` and `s2r dataset` as users run them: a sweep gives the same
//! bytes run twice, as shards merged, and interrupted with Ctrl-C then
//! resumed; the dataset splits by seed; bad input is refused by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn s2r(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "s2r {}: {out}", args.join(" "));
    out
}

fn s2r_fails(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap();
    assert!(!o.status.success(), "s2r {} should fail", args.join(" "));
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn sweep(dir: &Path, duration: f64) -> PathBuf {
    let p = dir.join("sweep.yaml");
    let text = format!(
        "name: tiny\nscenarios: [icy_night_crossing, dry_day_urban]\nseeds: [1, 2]\nlooks:\n  prompts: [\"icy road, night, wet reflections\", \"noon, dry\"]\nduration: {duration}\ncameras: [front]\nimage_scale: 0.25\ncuration:\n  camera: front\n  clip_seconds: 0.5\n  min_classes: 0\nsplit: {{val: 0.0, test: 0.5}}\n"
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// Every file under `dir` by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    tree_paths(dir).into_iter().map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap())).collect()
}

fn same_dataset(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    let names = |t: &BTreeMap<PathBuf, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb), "{} and {} hold different files", a.display(), b.display());
    for (k, v) in &ta {
        assert!(tb[k] == *v, "{} differs between {} and {}", k.display(), a.display(), b.display());
    }
}

#[test]
fn a_sweep_gives_the_same_dataset_twice_and_as_merged_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let sw = sweep(tmp.path(), 1.0);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let out = s2r(&["generate", sw.to_str().unwrap(), "-o", a.to_str().unwrap(), "--no-progress"]);
    assert!(out.contains("8 of 8 episode(s) (8 run now), 80 frames"), "{out}");
    // Generated, curated and split in one command.
    assert!(out.contains("split by seed: train 1 seed(s)") && a.join("splits.yaml").exists(), "{out}");
    s2r(&["generate", sw.to_str().unwrap(), "-o", b.to_str().unwrap(), "--no-progress"]);
    same_dataset(&a, &b);

    // Episode bags hold every output, labels beside restyled frames; clips are curated from them.
    let r = s2r_bag::BagReader::open(&a.join("episodes/icy_night_crossing_s1_l0")).unwrap();
    let topics: Vec<&str> = r.connections.iter().map(|c| c.topic.as_str()).collect();
    for t in [
        "/sim/front/image_raw",
        "/front/image_raw",
        "/front/transfer_score",
        "/sim/front/depth",
        "/sim/front/segmentation",
        "/front/detections",
        "/odom",
        "/scenario",
    ] {
        assert!(topics.contains(&t), "{t} missing: {topics:?}");
    }
    let m: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(a.join("manifest.yaml")).unwrap()).unwrap();
    let clips = m["clips"].as_sequence().unwrap();
    assert!(clips.len() >= 8, "{}", clips.len());
    let c = &clips[0]["tags"];
    assert_eq!(
        (c["scenario"].as_str(), c["seed"].as_str(), c["prompt"].as_str()),
        (Some("icy_night_crossing"), Some("1"), Some("icy road, night, wet reflections"))
    );
    assert_eq!(m["sources"][0]["bag"].as_str(), Some("episodes/icy_night_crossing_s1_l0"));

    // Three shards as separate processes, merged: the single run's dataset, byte for byte.
    let shards: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("shard{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        s2r(&["generate", sw.to_str().unwrap(), "-o", d.to_str().unwrap(), "--shard", &format!("{i}/3"), "--no-progress"]);
        assert!(!d.join("splits.yaml").exists(), "a shard is not split; the merge is");
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["dataset", "merge"];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    args.extend(["-o", merged.to_str().unwrap()]);
    s2r(&args);
    same_dataset(&a, &merged);

    // Kubernetes Indexed Jobs and Slurm arrays pick their shard from the environment.
    let k8s = tmp.path().join("k8s");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["generate", sw.to_str().unwrap(), "-o", k8s.to_str().unwrap(), "--shard", "auto/3", "--no-progress"])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tree(&k8s.join("episodes")), tree(&shards[1].join("episodes")));

    // Info, and a split by seed: no seed in two splits, every accepted clip in one.
    let info = s2r(&["dataset", "info", a.to_str().unwrap()]);
    assert!(info.contains("episodes: 8 of 8") && info.contains("seed: 1 ") && info.contains("scenario: dry_day_urban"), "{info}");
    s2r(&["dataset", "split", a.to_str().unwrap(), "--val", "0.0", "--test", "0.5"]);
    let s: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(a.join("splits.yaml")).unwrap()).unwrap();
    let seeds = |k: &str| s[k]["seeds"].as_sequence().unwrap().iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>();
    let (train, test) = (seeds("train"), seeds("test"));
    assert_eq!((train.len(), test.len()), (1, 1));
    assert_ne!(train, test);
    let n_clips: usize = ["train", "val", "test"].iter().map(|k| s[*k]["clips"].as_sequence().unwrap().len()).sum();
    assert_eq!(n_clips as u64, m["clips_accepted"].as_u64().unwrap());
    let test_clips = s["test"]["clips"].as_sequence().unwrap();
    assert!(test_clips.iter().all(|c| c.as_str().unwrap().contains(&format!("_s{}_", test[0]))), "{test_clips:?}");
}

#[test]
fn ctrl_c_leaves_a_consistent_dataset_and_the_same_command_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sw = sweep(tmp.path(), 6.0);
    let (whole, cut) = (tmp.path().join("whole"), tmp.path().join("cut"));
    s2r(&["generate", sw.to_str().unwrap(), "-o", whole.to_str().unwrap(), "--no-progress"]);
    let child = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["generate", sw.to_str().unwrap(), "-o", cut.to_str().unwrap(), "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first two episodes are finished.
    let t0 = Instant::now();
    while std::fs::read_dir(cut.join("episodes"))
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().ends_with(".partial")).count())
        .unwrap_or(0)
        < 2
    {
        assert!(t0.elapsed() < Duration::from_secs(120), "no episode finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("interrupted:") && err.contains("run the same command to continue"), "{err}");
    // Consistent: what is listed is finished and curated; nothing half-written is left.
    let d: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(cut.join("dataset.yaml")).unwrap()).unwrap();
    let done = d["counts"]["episodes"].as_u64().unwrap();
    assert!((2..8).contains(&done), "{done} episodes finished");
    let names: Vec<String> =
        std::fs::read_dir(cut.join("episodes")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(names.len() as u64, done, "{names:?}");
    let m: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(cut.join("manifest.yaml")).unwrap()).unwrap();
    assert_eq!(m["sources"].as_sequence().unwrap().len() as u64, done);
    // The same command continues where it stopped, to the uninterrupted run's dataset.
    let out = s2r(&["generate", sw.to_str().unwrap(), "-o", cut.to_str().unwrap(), "--no-progress"]);
    assert!(out.contains(&format!("{done} finished before, {} to run", 8 - done)), "{out}");
    same_dataset(&whole, &cut);
}

#[test]
fn bad_input_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let sw = sweep(tmp.path(), 1.0);
    let out = tmp.path().join("o");
    let e = s2r_fails(&["generate", sw.to_str().unwrap(), "-o", out.to_str().unwrap(), "--shard", "3/3"]);
    assert!(e.contains("shard '3/3'") && e.contains("out of range"), "{e}");
    let e = s2r_fails(&["generate", sw.to_str().unwrap(), "-o", out.to_str().unwrap(), "--shard", "auto/3"]);
    assert!(e.contains("JOB_COMPLETION_INDEX") && e.contains("SLURM_ARRAY_TASK_ID"), "{e}");
    let text =
        std::fs::read_to_string(&sw).unwrap().replace("cameras: [front]", "cameras: [rear]").replace("camera: front", "camera: rear");
    let bad = tmp.path().join("rear.yaml");
    std::fs::write(&bad, text).unwrap();
    let e = s2r_fails(&["generate", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(e.contains("scenario 'icy_night_crossing' has no camera 'rear' (cameras: front, front_left)"), "{e}");
    let text = std::fs::read_to_string(&sw).unwrap().replace("seeds: [1, 2]", "seeds: [1, 2]\nscenarios: [x]");
    std::fs::write(&bad, text).unwrap();
    let e = s2r_fails(&["generate", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(e.contains(&format!("{}:", bad.display())) && e.contains("duplicate"), "{e}");
    let text = std::fs::read_to_string(&sw).unwrap().replace("test: 0.5", "test: 1.5");
    std::fs::write(&bad, text).unwrap();
    let e = s2r_fails(&["generate", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(e.contains(":13: split: val 0 and test 1.5 must be fractions"), "{e}");
    // A folder made by another sweep is not overwritten.
    s2r(&["generate", sw.to_str().unwrap(), "-o", out.to_str().unwrap(), "--no-progress"]);
    let other = std::fs::read_to_string(&sw).unwrap().replace("seeds: [1, 2]", "seeds: [1, 3]");
    std::fs::write(&bad, other).unwrap();
    let e = s2r_fails(&["generate", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(e.contains("holds a dataset of another sweep"), "{e}");
    let e = s2r_fails(&["dataset", "merge", out.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(e.contains("exists and is not empty"), "{e}");
}

#[test]
fn a_full_disk_keeps_the_finished_episodes_and_says_so() {
    // A 3 MB file system fills during the sweep: the error names the episode
    // and the cause, and what was finished is readable.
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root || !Command::new("unshare").args(["-m", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("skipped: a small file system needs root and a mount namespace");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sw = sweep(tmp.path(), 2.0);
    let disk = tmp.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=3m tmpfs {disk} && {s2r} generate {sw} -o {disk}/out --no-progress; rc=$?; \
         mkdir -p {keep} && cp -r {disk}/out/. {keep}/ 2>/dev/null; exit $rc",
        disk = disk.display(),
        s2r = env!("CARGO_BIN_EXE_s2r"),
        sw = sw.display(),
        keep = tmp.path().join("kept").display()
    );
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the sweep fitted in 3 MB: {err}");
    assert!(err.contains("No space left on device") && err.contains("finished before are kept"), "{err}");
    let kept = tmp.path().join("kept");
    let d: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(kept.join("dataset.yaml")).unwrap()).unwrap();
    let episodes = d["episodes"].as_sequence().unwrap();
    assert!(!episodes.is_empty() && episodes.len() < 8, "{} episodes", episodes.len());
    for e in episodes {
        let bag = kept.join("episodes").join(e["name"].as_str().unwrap());
        let r = s2r_bag::BagReader::open(&bag).unwrap();
        assert!(r.damage().is_empty() && r.message_count() > 0, "{}", bag.display());
    }
    assert!(!std::fs::read_dir(kept.join("episodes")).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial")));
}

/// Files under `dir` by relative path, in order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = tree_paths(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().to_path_buf()).collect();
    out.sort();
    out
}

fn tree_paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The "done when", at full size: the example sweep (3 scenarios ×
/// 20 seeds × 5 looks) generated, curated and split by one command, and the
/// same sweep in 4 shards (separate processes) merged: the same dataset, file
/// for file and byte for byte. About 20 minutes on 2 cores:
/// `cargo test --release --test generate -- --ignored --nocapture`.
#[test]
#[ignore]
fn the_example_sweep_in_one_command_and_in_four_merged_shards() {
    let sw = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sweeps/example.yaml");
    let sw = sw.to_str().unwrap();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let single = tmp.path().join("single");
    let t0 = Instant::now();
    let out = s2r(&["generate", sw, "-o", single.to_str().unwrap(), "--no-progress"]);
    let one = t0.elapsed().as_secs_f64();
    eprintln!("{out}");
    assert!(out.contains("300 of 300 episode(s)") && out.contains("split by seed"), "{out}");
    let t1 = Instant::now();
    let shards: Vec<PathBuf> = (0..4).map(|i| tmp.path().join(format!("shard{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        s2r(&["generate", sw, "-o", d.to_str().unwrap(), "--shard", &format!("{i}/4"), "--no-progress"]);
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["dataset", "merge"];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    args.extend(["-o", merged.to_str().unwrap()]);
    let m = s2r(&args);
    let four = t1.elapsed().as_secs_f64();
    eprintln!("{m}");
    let (fa, fb) = (files(&single), files(&merged));
    assert_eq!(fa, fb, "the single run and the merged shards hold different files");
    let mut bytes = 0u64;
    for f in &fa {
        let (a, b) = (std::fs::read(single.join(f)).unwrap(), std::fs::read(merged.join(f)).unwrap());
        assert!(a == b, "{} differs", f.display());
        bytes += a.len() as u64;
    }
    let info = s2r(&["dataset", "info", single.to_str().unwrap()]);
    eprintln!("{info}");
    let s: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(single.join("splits.yaml")).unwrap()).unwrap();
    let seeds = |k: &str| s[k]["seeds"].as_sequence().unwrap().iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>();
    let (train, val, test) = (seeds("train"), seeds("val"), seeds("test"));
    assert_eq!((train.len(), val.len(), test.len()), (16, 2, 2));
    assert!(val.iter().chain(&test).all(|x| !train.contains(x)) && val.iter().all(|x| !test.contains(x)));
    eprintln!("one command: {one:.0} s; 4 shards + merge: {four:.0} s; {} files, {:.2} GB, identical", fa.len(), bytes as f64 / 1e9);
}

/// `driver: expert`: the privileged expert drives every episode from
/// inside the simulator and its commands are recorded beside the odometry
/// (the data factory's demonstrations): the car's /expert/cmd_vel, the arm's
/// /expert/joint_commands with the gripper.
#[test]
fn an_expert_driven_sweep_records_the_experts_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let sw = tmp.path().join("sweep.yaml");
    std::fs::write(
        &sw,
        "name: expert\nscenarios: [icy_night_crossing, cup_near_edge]\nseeds: [1]\nlooks:\n  prompts: [\"noon, dry\"]\nduration: 5.0\ncameras: [front]\nimage_scale: 0.1\ndriver: expert\nkeep: [flat, restyled, odometry]\ncuration:\n  camera: front\n  clip_seconds: 1.0\n  min_classes: 0\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    s2r(&["generate", sw.to_str().unwrap(), "-o", out.to_str().unwrap(), "--no-progress"]);
    for (episode, topic, n) in [("icy_night_crossing_s1_l0", "/expert/cmd_vel", 2), ("cup_near_edge_s1_l0", "/expert/joint_commands", 7)] {
        let r = s2r_bag::BagReader::open(&out.join("episodes").join(episode)).unwrap();
        let id = r.connections.iter().position(|c| c.topic == topic).unwrap_or_else(|| panic!("{topic} in {episode}"));
        let msgs: Vec<s2r_runtime::Serialized> =
            r.messages().filter(|m| m.connection == id).map(|m| s2r_runtime::Serialized(m.data.clone())).collect();
        assert!(msgs.len() > 200, "the expert decides at the odometry rate: {} in {episode}", msgs.len());
        if n == 7 {
            let j: sim2real_msgs::sensor_msgs::msg::JointState = msgs[100].decode().unwrap();
            assert_eq!(j.name.len(), 7, "{:?}", j.name);
            assert_eq!(j.name[6], "gripper");
        } else {
            // At 50 km/h on ice at night the expert slows down: its commands say so.
            let last: sim2real_msgs::geometry_msgs::msg::Twist = msgs.last().unwrap().decode().unwrap();
            assert!(last.linear.x < 13.0, "{last:?}");
        }
    }
    // The dataset is a demonstration set: a driving policy learns from its car's
    // episodes (the arm's left out), flat and restyled frames alike.
    let ck = tmp.path().join("policy.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["train", "policy", out.to_str().unwrap(), "-o", ck.to_str().unwrap(), "--steps", "2", "--batch", "4", "--frames", "both"])
        .output()
        .unwrap();
    let t = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && t.contains("from 1 episodes of Vehicle demonstrations"), "{t}");
    // 5 s at 10 Hz, flat and restyled.
    let frames: usize = t.split(" training and").next().unwrap().trim().parse().unwrap();
    assert!(frames >= 90, "both kinds of frame: {t}");
    let text = std::fs::read_to_string(&sw).unwrap().replace("driver: expert", "driver: autopilot");
    std::fs::write(&sw, text).unwrap();
    let err = s2r_fails(&["generate", sw.to_str().unwrap(), "-o", tmp.path().join("bad").to_str().unwrap(), "--no-progress"]);
    assert!(err.contains("driver") && err.contains("autopilot"), "{err}");
    // A sweep its scripts drove has nothing to learn from.
    let text = std::fs::read_to_string(&sw).unwrap().replace("driver: autopilot\n", "");
    std::fs::write(&sw, text).unwrap();
    let scripted = tmp.path().join("scripted");
    s2r(&["generate", sw.to_str().unwrap(), "-o", scripted.to_str().unwrap(), "--no-progress"]);
    let err = s2r_fails(&["train", "policy", scripted.to_str().unwrap(), "-o", ck.to_str().unwrap(), "--steps", "1"]);
    assert!(err.contains("dataset.yaml") && err.contains("driver: expert"), "{err}");
}

fn rgb8(i: &sim2real_msgs::sensor_msgs::msg::Image) -> s2r_image::quality::Rgb8<'_> {
    s2r_image::quality::Rgb8 { width: i.width as usize, height: i.height as usize, data: &i.data[..] }
}

#[test]
fn a_sweep_on_the_gpu_restyles_the_simulators_render_targets_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let gpu_sweep = |dir: &Path, device: &str| {
        let p = dir.join(format!("sweep_{device}.yaml"));
        std::fs::write(
            &p,
            format!("name: gpu\nscenarios: [icy_night_crossing]\nseeds: [1]\nlooks:\n  prompts: [\"icy road, night, wet reflections, light snowfall\"]\nduration: 0.5\ncameras: [front]\nimage_scale: 0.25\npreset: full\ntransfer_device: {device}\nkeep: [flat, restyled]\ncuration:\n  camera: front\n  clip_seconds: 0.5\n  min_classes: 0\n"),
        )
        .unwrap();
        p
    };
    let (sw, cpu) = (gpu_sweep(tmp.path(), "gpu"), gpu_sweep(tmp.path(), "cpu"));
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    for (s, d) in [(&sw, &a), (&sw, &b), (&cpu, &c)] {
        s2r(&["generate", s.to_str().unwrap(), "-o", d.to_str().unwrap(), "--no-progress"]);
    }
    same_dataset(&a, &b);
    // The transfer ran on the GPU path, and its frames are the CPU path's to rounding.
    let read = |d: &Path, topic: &str| -> Vec<s2r_runtime::Serialized> {
        let r = s2r_bag::BagReader::open(&d.join("episodes/icy_night_crossing_s1_l0")).unwrap();
        let id = r.connections.iter().position(|c| c.topic == topic).unwrap_or_else(|| panic!("{topic}"));
        r.messages().filter(|m| m.connection == id).map(|m| s2r_runtime::Serialized(m.data.clone())).collect()
    };
    let score: sim2real_msgs::sim2real_msgs::msg::TransferScore = read(&a, "/front/transfer_score")[0].decode().unwrap();
    assert_eq!(score.backend, "builtin:gpu");
    let (on_gpu, on_cpu) = (read(&a, "/front/image_raw"), read(&c, "/front/image_raw"));
    assert_eq!(on_gpu.len(), on_cpu.len());
    assert!(on_gpu.len() >= 5, "{} frames", on_gpu.len());
    for (g, c) in on_gpu.iter().zip(&on_cpu) {
        let (g, c): (sim2real_msgs::sensor_msgs::msg::Image, sim2real_msgs::sensor_msgs::msg::Image) =
            (g.decode().unwrap(), c.decode().unwrap());
        let p = s2r_image::quality::psnr(&rgb8(&g), &rgb8(&c));
        assert!(p >= 40.0, "frame {:?}: GPU path against CPU path {p:.1} dB", g.header.stamp);
    }
}
