//! `s2r launch` and `s2r run` as a user runs them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn domain() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    90 + (std::process::id() % 4) as u16 * 8 + NEXT.fetch_add(1, Ordering::Relaxed) % 8
}

fn s2r(domain: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.env("ROS_DOMAIN_ID", domain.to_string())
        .env("ROS_LOCALHOST_ONLY", "1")
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("ROS_LOG_DIR", std::env::temp_dir().join("s2r-launch-test-logs"));
    c
}

fn output(mut c: Command, timeout: Duration) -> Output {
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
            panic!("timed out after {timeout:?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn every_supported_key_reaches_the_node_command_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "cam.params.yaml", "/**:\n  ros__parameters:\n    gain: 2\n");
    write(
        d,
        "inner.launch.yaml",
        r#"launch:
- arg: {name: topic}
- arg: {name: unused, default: x}
- node:
    pkg: sim2real
    exec: listener
    remap:
    - {from: chatter, to: $(var topic)}
"#,
    );
    let top = write(
        d,
        "all.launch.yaml",
        r#"# Every key s2r launch supports.
launch:
- arg:
    name: robot
    default: rover
    description: Robot name
    choice: [{value: rover}, {value: arm}]
- arg: {name: debug, default: "false"}
- let: {name: cam_ns, value: "$(var robot)_cam"}
- set_env: {name: S2R_TEST_A, value: "1"}
- set_env: {name: S2R_TEST_B, value: "2"}
- unset_env: {name: S2R_TEST_B}
- log: {message: "launching $(var robot)"}
- include:
    file: $(dirname)/inner.launch.yaml
    arg:
    - {name: topic, value: /$(var robot)/chatter}
- group:
  - push-ros-namespace: {namespace: $(var robot)}
  - node:
      pkg: sim2real
      exec: talker
      name: speaker
      namespace: $(var cam_ns)
      args: --extra arg
      ros_args: --log-level debug
      respawn: "true"
      respawn_delay: 1.5
      output: both
      on_exit: shutdown
      env: [{name: S2R_TEST_C, value: "$(env S2R_TEST_HOME_IS /x)"}]
      param:
      - {name: rate, value: 5.0}
      - {name: label, value: "'quoted'"}
      - {name: text, value: '007'}
      - {name: list, value: [1, 2]}
      - name: nested
        param:
        - {name: gain, value: 3}
      - from: $(dirname)/cam.params.yaml
      remap:
      - {from: chatter, to: /out}
- group:
    scoped: "false"
    children:
    - let: {name: leaked, value: "yes"}
- group:
    forwarding: "false"
    children:
    - let: {name: fresh, value: "new"}
    - node: {pkg: sim2real, exec: listener, name: "f_$(var fresh)"}
- node: {pkg: sim2real, exec: listener, name: dbg, if: "$(var debug)"}
- node: {pkg: sim2real, exec: listener, name: "l_$(var leaked)", unless: "$(var debug)"}
"#,
    );
    let mut c = s2r(domain());
    c.args(["launch", top.to_str().unwrap(), "--print", "robot:=arm"]);
    let out = output(c, Duration::from_secs(20));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "s2r run listener --ros-args -r chatter:=/arm/chatter", "{o}");
    // set_env before the include applies to the included node too.
    assert_eq!(lines[1], "    env: S2R_TEST_A=1", "{o}");
    let lines = &lines[1..];
    let params = d.join("cam.params.yaml").display().to_string();
    assert_eq!(
        lines[1],
        format!(
            "s2r run talker --extra arg --ros-args -r __node:=speaker -r __ns:=/arm/arm_cam -p rate:=5.0 \
             -p label:='''quoted''' -p text:='007' -p list:=[1, 2] -p nested.gain:=3 --params-file {params} \
             -r chatter:=/out --log-level debug"
        ),
        "{o}"
    );
    assert_eq!(lines[2], "    env: S2R_TEST_A=1 S2R_TEST_C=/x", "{o}");
    assert_eq!(lines[3], "    respawn after 1.5 s", "{o}");
    assert_eq!(lines[4], "    on_exit: shutdown", "{o}");
    assert_eq!(lines[5], "s2r run listener --ros-args -r __node:=f_new", "{o}");
    assert_eq!(lines[6], "    env: S2R_TEST_A=1", "{o}");
    assert_eq!(lines[7], "s2r run listener --ros-args -r __node:=l_yes", "{o}");
    assert_eq!(lines[8], "    env: S2R_TEST_A=1", "{o}");
    assert_eq!(lines.len(), 9, "{o}");

    let mut c = s2r(domain());
    c.args(["launch", top.to_str().unwrap(), "--show-args"]);
    let o = text(&output(c, Duration::from_secs(20)).stdout);
    assert!(
        o.contains("    'robot':\n        Robot name\n        Valid choices are: [\"rover\", \"arm\"]\n        (default: 'rover')"),
        "{o}"
    );
}

fn heard(o: &str) -> BTreeSet<String> {
    o.lines().filter_map(|l| l.split("I heard: [").nth(1)).map(|r| r.trim_end_matches(']').to_string()).collect()
}

#[test]
fn composition_and_processes_give_the_same_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "pair.launch.yaml",
        r#"launch:
- node:
    pkg: sim2real
    exec: talker
    output: screen
    param: [{name: rate, value: 20.0}, {name: count, value: 20}, {name: wait_for_listener, value: true}]
- node:
    pkg: sim2real
    exec: listener
    output: screen
    param: [{name: count, value: 20}]
"#,
    );
    let want: BTreeSet<String> = (1..=20).map(|i| format!("Hello World: {i}")).collect();
    for compose in [false, true] {
        let mut c = s2r(domain());
        c.args(["launch", f.to_str().unwrap()]);
        if compose {
            c.arg("--compose");
        }
        let out = output(c, Duration::from_secs(30));
        assert!(out.status.success(), "compose={compose}: {}", text(&out.stderr));
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(heard(&all), want, "compose={compose}: {all}");
        if !compose {
            assert!(all.contains("[listener-1] [INFO]"), "process output is prefixed: {all}");
        }
    }
}

#[test]
fn a_node_killed_with_sigkill_is_respawned() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "respawn.launch.yaml",
        "launch:\n- node: {pkg: sim2real, exec: listener, respawn: \"true\", respawn_delay: 0.5}\n",
    );
    let mut c = s2r(domain());
    c.args(["launch", f.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let started = |rx: &mpsc::Receiver<String>| -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let l = rx.recv_timeout(deadline - Instant::now()).expect("no 'process started' line");
            if let Some(pid) = l.split("process started with pid [").nth(1) {
                return pid.trim_end_matches(']').parse().unwrap();
            }
        }
    };
    let first = started(&rx);
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill").args(["-KILL", &first.to_string()]).status().unwrap();
    let second = started(&rx);
    assert_ne!(first, second);
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn a_required_node_that_fails_ends_the_launch() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "required.launch.yaml",
        r#"launch:
- node: {pkg: sim2real, exec: listener}
- node:
    pkg: sim2real
    exec: talker
    on_exit: shutdown
    param: [{name: rate, value: -1.0}]
"#,
    );
    for compose in [false, true] {
        let mut c = s2r(domain());
        c.args(["launch", f.to_str().unwrap()]);
        if compose {
            c.arg("--compose");
        }
        let start = Instant::now();
        let out = output(c, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(1), "compose={compose}: {}", text(&out.stderr));
        assert!(start.elapsed() < Duration::from_secs(15));
        assert!(text(&out.stderr).contains("'rate' must be positive"), "{}", text(&out.stderr));
    }
}

#[test]
fn broken_files_are_refused_with_file_line_and_key_and_nothing_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "bad.params.yaml", "talker:\n  ros__parameters:\n    rate: [1, a]\n");
    let cases: Vec<(&str, &str, String)> = vec![
        ("yaml", "launch:\n- node: {pkg: sim2real, exec: talker\n", "yaml.launch.yaml:3: not valid YAML".into()),
        (
            "key",
            "launch:\n- node:\n    pkg: sim2real\n    exec: talker\n    nmae: x\n",
            "key.launch.yaml:5: 'node.nmae': unknown key 'nmae'".into(),
        ),
        (
            "subst",
            "launch:\n- node: {pkg: sim2real, exec: $(eval 1+1)}\n",
            "subst.launch.yaml:2: 'node.exec': unknown substitution '$(eval".into(),
        ),
        (
            "exec",
            "launch:\n- node: {pkg: sim2real, exec: talker}\n- node: {pkg: sim2real, exec: nope}\n",
            "exec.launch.yaml:3: 'node.exec': no executable 'nope' in package 'sim2real'".into(),
        ),
        ("pkg", "launch:\n- node: {pkg: no_such_pkg, exec: x}\n", "executable 'x' of package 'no_such_pkg' not found".into()),
        (
            "include",
            "launch:\n- include: {file: missing.launch.yaml}\n",
            "include.launch.yaml:2: 'include.file': included launch file".into(),
        ),
        (
            "arg",
            "launch:\n- arg: {name: robot}\n",
            "arg.launch.yaml:2: 'robot': launch argument 'robot' has no default and was not given (pass robot:=<value>)".into(),
        ),
        ("action", "launch:\n- nod: {pkg: a, exec: b}\n", "action.launch.yaml:2: 'nod': unknown action 'nod'".into()),
        (
            "forwarding",
            "launch:\n- arg: {name: robot, default: r}\n- group:\n    forwarding: 'false'\n    children:\n    - node: {pkg: sim2real, exec: talker, name: $(var robot)}\n",
            "forwarding.launch.yaml:6: 'node.name': $(var robot): no launch argument or let called 'robot'".into(),
        ),
        (
            "params",
            "launch:\n- node: {pkg: sim2real, exec: talker, param: [{from: bad.params.yaml}]}\n",
            "params.launch.yaml:2: 'node.param.from': params file".into(),
        ),
    ];
    for (name, body, needle) in cases {
        let f = write(d, &format!("{name}.launch.yaml"), body);
        let mut c = s2r(domain());
        c.args(["launch", f.to_str().unwrap()]);
        let out = output(c, Duration::from_secs(20));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{name} started");
        assert!(err.contains(&needle), "{name}: expected '{needle}' in: {err}");
        assert!(!err.contains("process started"), "{name}: something started: {err}");
    }
    // The params file error names its own line and key too.
    let f = d.join("params.launch.yaml");
    let mut c = s2r(domain());
    c.args(["launch", f.to_str().unwrap()]);
    let err = text(&output(c, Duration::from_secs(20)).stderr);
    assert!(err.contains("bad.params.yaml: line 1, key 'talker': parameter 'rate'"), "{err}");
    // An argument no file declares.
    let f = write(d, "ok.launch.yaml", "launch:\n- arg: {name: a, default: '1'}\n");
    let mut c = s2r(domain());
    c.args(["launch", f.to_str().unwrap(), "b:=2"]);
    let err = text(&output(c, Duration::from_secs(20)).stderr);
    assert!(err.contains("launch argument 'b' is not declared by this file (its arguments: a)"), "{err}");
}

#[test]
fn run_starts_one_node_with_ros_args() {
    let mut c = s2r(domain());
    c.args(["run", "sim2real", "talker", "--ros-args", "-p", "rate:=50", "-p", "count:=3", "-r", "__node:=t2"]);
    let out = output(c, Duration::from_secs(20));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(e.contains("[t2]: Publishing: 'Hello World: 3'"), "{e}");
    let mut c = s2r(domain());
    c.args(["run", "talker", "--ros-args", "-p", "rate:=fast"]);
    let out = output(c, Duration::from_secs(20));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("parameter 'rate' (-p rate:=…): expected double, got string"), "{}", text(&out.stderr));
}

/// The shipped train.launch.yaml: one simulator, which leaves the others
/// running when it ends (keep_running); the curator ends its stream when
/// frames stop; the trainer trains on what the curator announces. Without
/// keep_running (curate.launch.yaml) the simulator's end ends the launch.
#[test]
fn the_train_launch_keeps_the_trainer_running_after_the_simulator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = s2r(domain());
    c.args(["launch", root.join("launch/train.launch.yaml").to_str().unwrap(), "kind:=world", "--print"]);
    let o = output(c, Duration::from_secs(30));
    let plan = text(&o.stdout);
    assert!(o.status.success(), "{plan}{}", text(&o.stderr));
    let lines: Vec<&str> = plan.lines().filter(|l| l.starts_with("s2r run ")).collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("s2r run sim_node ")).count(), 1, "{plan}");
    assert!(lines.iter().any(|l| l.starts_with("s2r run curator_node ") && l.contains("-p idle_stop:=3.0")), "{plan}");
    assert!(lines.iter().any(|l| l.starts_with("s2r run trainer_node ") && l.contains("-p auto_kind:=world")), "{plan}");
    assert!(!plan.contains("on_exit: shutdown"), "{plan}");
    let mut c = s2r(domain());
    c.args(["launch", root.join("launch/curate.launch.yaml").to_str().unwrap(), "--print"]);
    let plan = text(&output(c, Duration::from_secs(30)).stdout);
    assert_eq!(plan.matches("s2r run sim_node ").count(), 1, "{plan}");
    assert!(plan.contains("on_exit: shutdown"), "{plan}");
}
