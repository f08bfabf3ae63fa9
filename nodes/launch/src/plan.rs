//! Reads a launch file (and what it includes) into a plan: the nodes to start,
//! each with its name, namespace, parameters, remappings, arguments,
//! environment and restart policy, all substitutions resolved. Every error
//! names the file, the line and the key; nothing starts until the whole plan
//! is known to be good.
//!
//! The format is launch_ros's YAML frontend: `launch:` holding `arg`, `let`,
//! `include`, `group`, `push-ros-namespace`, `node`, `set_env`, `unset_env` and
//! `log` actions, each with optional `if`/`unless`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::subst::{condition, substitute, Package, Scope};
use s2r_runtime::yaml::{self, Yaml};

/// A launch file (or an included one, or a params file it names) that cannot
/// be run: where (file, line, key) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {}{message}", .file.display(), .line, quoted_key(.key))]
pub struct LaunchError {
    /// The launch file, included launch file or params file at fault.
    pub file: PathBuf,
    /// 1-based line; 0 when the file could not be read at all.
    pub line: usize,
    /// The key or action the problem is in, dotted (`node.param.from`), or
    /// a launch argument's name; empty when the whole file is at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn quoted_key(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("'{key}': ")
    }
}

/// A launch argument declared by the top-level file.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgDecl {
    /// Given as `name:=value` on the command line, read as `$(var name)`.
    pub name: String,
    /// As written, substitutions not applied; `None` makes the argument
    /// required.
    pub default: Option<String>,
    /// Empty when the file gives none.
    pub description: String,
    /// The values allowed (`choice: [{value: …}]`); empty allows any.
    pub choices: Vec<String>,
}

/// A parameter of a node, in the order the launch file gives them; each
/// becomes `-p` or `--params-file` on the node's command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// `name:=value`, the value in YAML (the node types it). Nested `param`
    /// lists give dotted names; a quoted value stays quoted, so stays a string.
    Value(String, String),
    /// A params file (ROS 2 params YAML), a relative path taken from the
    /// launch file's folder; [`plan`] has checked that it loads.
    File(PathBuf),
}

/// Where a node's process writes (`output:`, `log` when not given, as in
/// launch_ros). Both streams also go to the process's log file under
/// [`RunOptions::log_dir`](crate::exec::RunOptions::log_dir); a composed
/// node writes where this process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// stdout and stderr to the terminal.
    Screen,
    /// stdout to the log file, stderr to the log file and the terminal.
    Log,
    /// Both to both.
    Both,
}

/// One node to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    /// The ROS package of `exec`; empty when the action names none (then
    /// it is one of this program's components).
    pub pkg: String,
    /// The executable's file name in `lib/<pkg>/`, or a component's name.
    pub exec: String,
    /// Overrides the node's own name (`-r __node:=`).
    pub name: Option<String>,
    /// Absolute namespace, or None for the node's own default.
    pub namespace: Option<String>,
    /// Passed in this order, before the remappings.
    pub params: Vec<Param>,
    /// `(from, to)`, each passed as `-r from:=to`.
    pub remaps: Vec<(String, String)>,
    /// The node's own arguments, before `--ros-args`: `args:` split at
    /// whitespace (no quoting).
    pub args: Vec<String>,
    /// `ros_args:` split at whitespace, after the rules made from the fields.
    pub ros_args: Vec<String>,
    /// Start the node again when it exits, unless `shutdown_on_exit` or the
    /// launch is stopping.
    pub respawn: bool,
    /// Seconds before a respawn: finite, ≥ 0.
    pub respawn_delay: f64,
    /// Ignored for a node composed into this process.
    pub output: Output,
    /// Set on the process, on top of the launcher's environment: the
    /// `set_env`s in effect at the node, then its own `env`. `unset_env`
    /// only cancels an earlier `set_env`, it does not remove an inherited
    /// variable. Not applied to a composed node.
    pub env: Vec<(String, String)>,
    /// `on_exit: shutdown`: the launch ends when this node does.
    pub shutdown_on_exit: bool,
    /// `file:line` of the `node` action.
    pub origin: String,
}

impl NodePlan {
    /// The node's command line after the executable: its own arguments, then
    /// `--ros-args` with name, namespace, parameters and remappings.
    pub fn argv(&self) -> Vec<String> {
        let mut v = self.args.clone();
        v.push("--ros-args".into());
        if let Some(n) = &self.name {
            v.extend(["-r".into(), format!("__node:={n}")]);
        }
        if let Some(ns) = &self.namespace {
            v.extend(["-r".into(), format!("__ns:={ns}")]);
        }
        for p in &self.params {
            match p {
                Param::Value(n, val) => v.extend(["-p".into(), format!("{n}:={val}")]),
                Param::File(f) => v.extend(["--params-file".into(), f.display().to_string()]),
            }
        }
        for (from, to) in &self.remaps {
            v.extend(["-r".into(), format!("{from}:={to}")]);
        }
        v.extend(self.ros_args.iter().cloned());
        v
    }
}

/// A launch file read and checked by [`plan`]: nothing has started yet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchPlan {
    /// The top-level launch file, as given.
    pub file: PathBuf,
    /// Arguments of the top-level file, for `--show-args`.
    pub args: Vec<ArgDecl>,
    /// In file order, includes expanded where they stand; only those whose
    /// `if`/`unless` hold.
    pub nodes: Vec<NodePlan>,
    /// The messages of `log` actions, in order.
    pub messages: Vec<String>,
}

type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;
type PackageLookup = Box<dyn Fn(&str) -> Option<Package>>;

/// Where packages are found and what the environment holds.
pub struct Environment {
    /// An environment variable's value, `None` when unset: for `$(env)` and
    /// `$(find-exec)` (`PATH`).
    pub env: EnvLookup,
    /// A ROS package by name, for `$(find-pkg-share)` and
    /// `$(find-pkg-prefix)`; [`crate::find_package`] is the usual one.
    pub package: PackageLookup,
}

struct State {
    vars: HashMap<String, String>,
    namespace: Vec<String>,
    env: Vec<(String, Option<String>)>,
}

struct Walker<'a> {
    environment: &'a Environment,
    plan: LaunchPlan,
    /// Launch arguments given on the command line.
    given: HashMap<String, String>,
    depth: usize,
    /// Only collect declarations (for --show-args): a missing argument is not an error.
    declarations_only: bool,
}

fn err(file: &Path, line: usize, key: &str, message: impl fmt::Display) -> LaunchError {
    LaunchError { file: file.to_path_buf(), line, key: key.to_string(), message: message.to_string() }
}

/// Reads `file` with the launch arguments `given` (`name:=value` pairs).
///
/// Substitutions are launch_ros's `$(var)`, `$(env)`, `$(find-pkg-share)`,
/// `$(find-pkg-prefix)`, `$(dirname)`, `$(filename)`, `$(anon)`,
/// `$(find-exec)`, `$(not)`, `$(and)`, `$(or)`, `$(equals)` and
/// `$(not-equals)`. Fails on the first problem: a file that cannot be read
/// or is not this format, an unknown action, key or substitution, a required
/// argument not given or a value outside its choices, a given argument that
/// no file declares, an include or params file that is missing or broken.
pub fn plan(file: &Path, given: &HashMap<String, String>, environment: &Environment) -> Result<LaunchPlan, LaunchError> {
    walk_top(file, given, environment, false)
}

/// The arguments a file declares, without requiring values for them:
/// defaults stay unsubstituted and choices unchecked. Includes are still
/// read, so a broken one fails as in [`plan`].
pub fn declared_args(file: &Path, environment: &Environment) -> Result<Vec<ArgDecl>, LaunchError> {
    walk_top(file, &HashMap::new(), environment, true).map(|p| p.args)
}

fn walk_top(
    file: &Path,
    given: &HashMap<String, String>,
    environment: &Environment,
    declarations_only: bool,
) -> Result<LaunchPlan, LaunchError> {
    let mut w = Walker {
        environment,
        plan: LaunchPlan { file: file.to_path_buf(), ..Default::default() },
        given: given.clone(),
        depth: 0,
        declarations_only,
    };
    let mut state = State { vars: HashMap::new(), namespace: Vec::new(), env: Vec::new() };
    w.file(file, &mut state, true)?;
    // Arguments given that no file declared are most likely typos.
    let declared: Vec<&str> = w.plan.args.iter().map(|a| a.name.as_str()).collect();
    if !declarations_only {
        for name in given.keys() {
            if !declared.contains(&name.as_str()) && !state.vars.contains_key(name) {
                return Err(err(
                    file,
                    1,
                    name,
                    format!("launch argument '{name}' is not declared by this file (its arguments: {})", declared.join(", ")),
                ));
            }
        }
    }
    Ok(w.plan)
}

fn entries<'y>(y: &'y Yaml, file: &Path, what: &str) -> Result<&'y [(String, usize, Yaml)], LaunchError> {
    match y {
        Yaml::Map(e, _) => Ok(e),
        other => Err(err(file, other.line(), what, format!("expected a mapping, found {}", other.kind()))),
    }
}

/// The attributes of an action, read one by one; leftovers are unknown keys.
struct Attrs<'y> {
    file: PathBuf,
    action: String,
    line: usize,
    items: Vec<(&'y str, usize, &'y Yaml, bool)>,
}

impl<'y> Attrs<'y> {
    fn new(file: &Path, action: &str, body: &'y Yaml) -> Result<Attrs<'y>, LaunchError> {
        let items = entries(body, file, action)?.iter().map(|(k, l, v)| (k.as_str(), *l, v, false)).collect();
        Ok(Attrs { file: file.to_path_buf(), action: action.to_string(), line: body.line(), items })
    }

    fn take(&mut self, key: &str) -> Option<(usize, &'y Yaml)> {
        self.items.iter_mut().find(|(k, ..)| *k == key).map(|it| {
            it.3 = true;
            (it.1, it.2)
        })
    }

    fn err(&self, line: usize, key: &str, message: impl fmt::Display) -> LaunchError {
        err(&self.file, line, &format!("{}.{key}", self.action), message)
    }

    /// A scalar attribute as text (substitutions not yet applied).
    fn text(&mut self, key: &str) -> Result<Option<(usize, String)>, LaunchError> {
        match self.take(key) {
            None => Ok(None),
            Some((line, Yaml::Scalar(s, _, _))) => Ok(Some((line, s.clone()))),
            Some((line, other)) => Err(self.err(line, key, format!("expected a value, found {}", other.kind()))),
        }
    }

    fn required(&mut self, key: &str) -> Result<(usize, String), LaunchError> {
        let line = self.line;
        self.text(key)?.ok_or_else(|| self.err(line, key, format!("'{}' needs '{key}'", self.action)))
    }

    fn list(&mut self, key: &str) -> Result<Option<(usize, &'y [Yaml])>, LaunchError> {
        match self.take(key) {
            None => Ok(None),
            Some((line, Yaml::Seq(items, _))) => Ok(Some((line, items))),
            Some((line, other)) => Err(self.err(line, key, format!("expected a list, found {}", other.kind()))),
        }
    }

    fn finish(self, known: &[&str]) -> Result<(), LaunchError> {
        if let Some((k, l, _, _)) = self.items.iter().find(|it| !it.3) {
            return Err(err(
                &self.file,
                *l,
                &format!("{}.{k}", self.action),
                format!("unknown key '{k}' in '{}' (known: {})", self.action, known.join(", ")),
            ));
        }
        Ok(())
    }
}

const NODE_KEYS: &[&str] = &[
    "pkg",
    "exec",
    "name",
    "namespace",
    "param",
    "remap",
    "args",
    "ros_args",
    "respawn",
    "respawn_delay",
    "output",
    "env",
    "on_exit",
    "if",
    "unless",
];

impl Walker<'_> {
    fn scope<'s>(&'s self, state: &'s State, file: &'s Path) -> Scope<'s> {
        Scope { vars: &state.vars, file, env: &*self.environment.env, package: &*self.environment.package }
    }

    fn subst(&self, state: &State, file: &Path, line: usize, key: &str, s: &str) -> Result<String, LaunchError> {
        substitute(s, &self.scope(state, file)).map_err(|m| err(file, line, key, m))
    }

    fn file(&mut self, path: &Path, state: &mut State, top: bool) -> Result<(), LaunchError> {
        let text = std::fs::read_to_string(path).map_err(|e| err(path, 0, "", format!("cannot read the launch file: {e}")))?;
        let doc = yaml::parse(&text).map_err(|(line, m)| err(path, line, "", format!("not valid YAML: {m}")))?;
        let top_entries = entries(&doc, path, "launch")?;
        let (_, line, actions) = top_entries
            .iter()
            .find(|(k, ..)| k == "launch")
            .ok_or_else(|| err(path, doc.line(), "launch", "a launch file is a mapping with a 'launch' list"))?;
        if let Some((k, l, _)) = top_entries.iter().find(|(k, ..)| k != "launch") {
            return Err(err(path, *l, k, format!("unknown top-level key '{k}' (only 'launch')")));
        }
        let Yaml::Seq(actions, _) = actions else {
            return Err(err(path, *line, "launch", "'launch' must be a list of actions"));
        };
        self.actions(actions, path, state, top)
    }

    fn actions(&mut self, actions: &[Yaml], file: &Path, state: &mut State, top: bool) -> Result<(), LaunchError> {
        for a in actions {
            let e = entries(a, file, "action")?;
            if e.len() != 1 {
                return Err(err(file, a.line(), "action", "each action is a mapping with exactly one key, its type"));
            }
            let (kind, line, body) = (&e[0].0, e[0].1, &e[0].2);
            self.action(kind, line, body, file, state, top)?;
        }
        Ok(())
    }

    /// `if`/`unless` of an action.
    fn enabled(&self, attrs: &mut Attrs<'_>, state: &State, file: &Path) -> Result<bool, LaunchError> {
        let mut on = true;
        for (key, want) in [("if", true), ("unless", false)] {
            if let Some((l, v)) = attrs.text(key)? {
                let v = self.subst(state, file, l, key, &v)?;
                on &= condition(&v).map_err(|m| attrs.err(l, key, m))? == want;
            }
        }
        Ok(on)
    }

    fn action(&mut self, kind: &str, line: usize, body: &Yaml, file: &Path, state: &mut State, top: bool) -> Result<(), LaunchError> {
        match kind {
            "arg" => self.arg(body, file, state, top),
            "let" => {
                let mut a = Attrs::new(file, "let", body)?;
                let (nl, name) = a.required("name")?;
                let (vl, value) = a.required("value")?;
                let on = self.enabled(&mut a, state, file)?;
                a.finish(&["name", "value", "if", "unless"])?;
                if on {
                    let name = self.subst(state, file, nl, "let.name", &name)?;
                    let value = self.subst(state, file, vl, "let.value", &value)?;
                    state.vars.insert(name, value);
                }
                Ok(())
            }
            "include" => self.include(body, file, state),
            "group" => self.group(line, body, file, state),
            "push-ros-namespace" | "push_ros_namespace" => {
                let mut a = Attrs::new(file, kind, body)?;
                let (l, ns) = a.required("namespace")?;
                let on = self.enabled(&mut a, state, file)?;
                a.finish(&["namespace", "if", "unless"])?;
                if on {
                    let ns = self.subst(state, file, l, "namespace", &ns)?;
                    if ns.starts_with('/') {
                        state.namespace = vec![ns.trim_matches('/').to_string()];
                    } else {
                        state.namespace.push(ns.trim_matches('/').to_string());
                    }
                }
                Ok(())
            }
            "set_env" | "unset_env" => {
                let mut a = Attrs::new(file, kind, body)?;
                let (nl, name) = a.required("name")?;
                let value = if kind == "set_env" { Some(a.required("value")?) } else { None };
                let on = self.enabled(&mut a, state, file)?;
                a.finish(&["name", "value", "if", "unless"])?;
                if on {
                    let name = self.subst(state, file, nl, "name", &name)?;
                    let value = match value {
                        Some((vl, v)) => Some(self.subst(state, file, vl, "value", &v)?),
                        None => None,
                    };
                    state.env.push((name, value));
                }
                Ok(())
            }
            "log" => {
                let mut a = Attrs::new(file, "log", body)?;
                let (l, m) = a.required("message")?;
                let on = self.enabled(&mut a, state, file)?;
                a.finish(&["message", "if", "unless"])?;
                if on {
                    let m = self.subst(state, file, l, "log.message", &m)?;
                    self.plan.messages.push(m);
                }
                Ok(())
            }
            "node" => self.node(line, body, file, state),
            other => Err(err(
                file,
                line,
                other,
                format!(
                    "unknown action '{other}' (supported: arg, let, include, group, push-ros-namespace, node, set_env, unset_env, log)"
                ),
            )),
        }
    }

    fn arg(&mut self, body: &Yaml, file: &Path, state: &mut State, top: bool) -> Result<(), LaunchError> {
        let mut a = Attrs::new(file, "arg", body)?;
        let (nl, name) = a.required("name")?;
        let default = a.text("default")?;
        let description = a.text("description")?.map(|(_, d)| d).unwrap_or_default();
        let choices = match a.list("choice")? {
            Some((l, items)) => items
                .iter()
                .map(|c| match c {
                    Yaml::Map(e, _) => e
                        .iter()
                        .find(|(k, ..)| k == "value")
                        .and_then(|(_, _, v)| if let Yaml::Scalar(s, ..) = v { Some(s.clone()) } else { None })
                        .ok_or_else(|| a.err(l, "choice", "each choice is {value: …}")),
                    _ => Err(a.err(l, "choice", "each choice is {value: …}")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![],
        };
        let on = self.enabled(&mut a, state, file)?;
        a.finish(&["name", "default", "description", "choice", "if", "unless"])?;
        if !on {
            return Ok(());
        }
        let default_value = match &default {
            Some((l, d)) if !self.declarations_only => Some(self.subst(state, file, *l, "arg.default", d)?),
            Some((_, d)) => Some(d.clone()),
            None => None,
        };
        if top {
            self.plan.args.push(ArgDecl { name: name.clone(), default: default.map(|d| d.1), description, choices: choices.clone() });
        }
        let value = match (self.given.get(&name).cloned().or_else(|| state.vars.get(&name).cloned()), default_value) {
            (Some(v), _) => v,
            (None, Some(d)) => d,
            (None, None) if self.declarations_only => String::new(),
            (None, None) => {
                return Err(err(
                    file,
                    nl,
                    &name,
                    format!("launch argument '{name}' has no default and was not given (pass {name}:=<value>)"),
                ))
            }
        };
        if !choices.is_empty() && !self.declarations_only && !choices.contains(&value) {
            return Err(err(file, nl, &name, format!("'{value}' is not one of the choices {}", choices.join(", "))));
        }
        state.vars.insert(name, value);
        Ok(())
    }

    fn include(&mut self, body: &Yaml, file: &Path, state: &mut State) -> Result<(), LaunchError> {
        let mut a = Attrs::new(file, "include", body)?;
        let (fl, target) = a.required("file")?;
        let mut args = Vec::new();
        if let Some((l, items)) = a.list("arg")? {
            for it in items {
                let mut ia = Attrs::new(file, "include.arg", it)?;
                let (nl, n) = ia.required("name")?;
                let (vl, v) = ia.required("value")?;
                ia.finish(&["name", "value"])?;
                let n = self.subst(state, file, nl, "include.arg.name", &n)?;
                let v = self.subst(state, file, vl, "include.arg.value", &v)?;
                args.push((n, v));
                let _ = l;
            }
        }
        let on = self.enabled(&mut a, state, file)?;
        a.finish(&["file", "arg", "if", "unless"])?;
        if !on {
            return Ok(());
        }
        let target = self.subst(state, file, fl, "include.file", &target)?;
        let mut path = PathBuf::from(&target);
        if path.is_relative() {
            // Relative to the including file (then to the working directory).
            let beside = file.parent().unwrap_or(Path::new(".")).join(&path);
            if beside.exists() || !path.exists() {
                path = beside;
            }
        }
        if !path.is_file() {
            return Err(err(file, fl, "include.file", format!("included launch file '{}' not found", path.display())));
        }
        if self.depth >= 32 {
            return Err(err(file, fl, "include.file", "includes nest more than 32 deep (an include loop?)"));
        }
        // The included file sees our configurations plus its arguments; what
        // it sets stays inside it.
        let mut inner = State { vars: state.vars.clone(), namespace: state.namespace.clone(), env: state.env.clone() };
        let saved_given = std::mem::take(&mut self.given);
        self.given = args.into_iter().collect();
        self.depth += 1;
        let r = self.file(&path, &mut inner, false);
        self.depth -= 1;
        self.given = saved_given;
        r
    }

    fn group(&mut self, line: usize, body: &Yaml, file: &Path, state: &mut State) -> Result<(), LaunchError> {
        let (children, scoped, forwarding, on) = match body {
            Yaml::Seq(items, _) => (items.as_slice(), true, true, true),
            Yaml::Map(..) => {
                let mut a = Attrs::new(file, "group", body)?;
                let scoped = match a.text("scoped")? {
                    Some((l, v)) => condition(&self.subst(state, file, l, "group.scoped", &v)?).map_err(|m| a.err(l, "scoped", m))?,
                    None => true,
                };
                // launch_ros: a scoped group that does not forward starts with no
                // launch configurations (arguments and lets) of its parent.
                let forwarding = match a.text("forwarding")? {
                    Some((l, v)) => {
                        condition(&self.subst(state, file, l, "group.forwarding", &v)?).map_err(|m| a.err(l, "forwarding", m))?
                    }
                    None => true,
                };
                let children = a.list("children")?.map(|(_, c)| c).unwrap_or(&[]);
                let on = self.enabled(&mut a, state, file)?;
                a.finish(&["scoped", "forwarding", "children", "if", "unless"])?;
                (children, scoped, forwarding, on)
            }
            other => return Err(err(file, line, "group", format!("expected a list of actions, found {}", other.kind()))),
        };
        if !on {
            return Ok(());
        }
        if scoped {
            let vars = if forwarding { state.vars.clone() } else { Default::default() };
            let mut inner = State { vars, namespace: state.namespace.clone(), env: state.env.clone() };
            self.actions(children, file, &mut inner, false)
        } else {
            self.actions(children, file, state, false)
        }
    }

    fn node(&mut self, line: usize, body: &Yaml, file: &Path, state: &mut State) -> Result<(), LaunchError> {
        let mut a = Attrs::new(file, "node", body)?;
        let sub = |w: &Self, l: usize, key: &str, v: &str| w.subst(state, file, l, &format!("node.{key}"), v);
        let pkg = match a.text("pkg")? {
            Some((l, p)) => sub(self, l, "pkg", &p)?,
            None => String::new(),
        };
        let (el, exec) = a.required("exec")?;
        let exec = sub(self, el, "exec", &exec)?;
        let name = match a.text("name")? {
            Some((l, n)) => Some(sub(self, l, "name", &n)?),
            None => None,
        };
        let own_ns = match a.text("namespace")? {
            Some((l, n)) => Some(sub(self, l, "namespace", &n)?),
            None => None,
        };
        let mut parts: Vec<String> = state.namespace.clone();
        let namespace = match own_ns {
            Some(ns) if ns.starts_with('/') => Some(ns),
            Some(ns) => {
                parts.push(ns.trim_matches('/').to_string());
                Some(format!("/{}", parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join("/")))
            }
            None if parts.iter().any(|p| !p.is_empty()) => {
                Some(format!("/{}", parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join("/")))
            }
            None => None,
        };
        let mut params = Vec::new();
        if let Some((_, items)) = a.list("param")? {
            for it in items {
                self.param(it, "", file, state, &mut params)?;
            }
        }
        let mut remaps = Vec::new();
        if let Some((_, items)) = a.list("remap")? {
            for it in items {
                let mut ra = Attrs::new(file, "node.remap", it)?;
                let (fl, from) = ra.required("from")?;
                let (tl, to) = ra.required("to")?;
                ra.finish(&["from", "to"])?;
                remaps.push((sub(self, fl, "remap.from", &from)?, sub(self, tl, "remap.to", &to)?));
            }
        }
        let split = |s: String| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let args = match a.text("args")? {
            Some((l, v)) => split(sub(self, l, "args", &v)?),
            None => vec![],
        };
        let ros_args = match a.text("ros_args")? {
            Some((l, v)) => split(sub(self, l, "ros_args", &v)?),
            None => vec![],
        };
        let respawn = match a.text("respawn")? {
            Some((l, v)) => condition(&sub(self, l, "respawn", &v)?).map_err(|m| a.err(l, "respawn", m))?,
            None => false,
        };
        let respawn_delay = match a.text("respawn_delay")? {
            Some((l, v)) => {
                let v = sub(self, l, "respawn_delay", &v)?;
                match v.parse::<f64>() {
                    Ok(d) if d >= 0.0 && d.is_finite() => d,
                    _ => return Err(a.err(l, "respawn_delay", format!("'{v}' is not a number of seconds ≥ 0"))),
                }
            }
            None => 0.0,
        };
        let output = match a.text("output")? {
            Some((l, v)) => match sub(self, l, "output", &v)?.as_str() {
                "screen" => Output::Screen,
                "log" => Output::Log,
                "both" => Output::Both,
                other => return Err(a.err(l, "output", format!("'{other}' is not screen, log or both"))),
            },
            None => Output::Log,
        };
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in &state.env {
            env.retain(|(ek, _)| ek != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        if let Some((_, items)) = a.list("env")? {
            for it in items {
                let mut ea = Attrs::new(file, "node.env", it)?;
                let (nl, n) = ea.required("name")?;
                let (vl, v) = ea.required("value")?;
                ea.finish(&["name", "value"])?;
                env.push((sub(self, nl, "env.name", &n)?, sub(self, vl, "env.value", &v)?));
            }
        }
        let shutdown_on_exit = match a.text("on_exit")? {
            Some((l, v)) => match sub(self, l, "on_exit", &v)?.as_str() {
                "shutdown" => true,
                other => return Err(a.err(l, "on_exit", format!("'{other}' is not supported (only 'shutdown')"))),
            },
            None => false,
        };
        let on = self.enabled(&mut a, state, file)?;
        a.finish(NODE_KEYS)?;
        if on {
            self.plan.nodes.push(NodePlan {
                pkg,
                exec,
                name,
                namespace,
                params,
                remaps,
                args,
                ros_args,
                respawn,
                respawn_delay,
                output,
                env,
                shutdown_on_exit,
                origin: format!("{}:{line}", file.display()),
            });
        }
        Ok(())
    }

    /// One `param` entry: `{name, value}`, `{name, param: [...]}` (nested
    /// names) or `{from: file}`.
    fn param(&self, it: &Yaml, prefix: &str, file: &Path, state: &State, out: &mut Vec<Param>) -> Result<(), LaunchError> {
        let mut pa = Attrs::new(file, "node.param", it)?;
        if let Some((l, from)) = pa.text("from")? {
            pa.finish(&["from"])?;
            let p = PathBuf::from(self.subst(state, file, l, "param.from", &from)?);
            let p = if p.is_relative() { file.parent().unwrap_or(Path::new(".")).join(p) } else { p };
            if !p.is_file() {
                return Err(err(file, l, "node.param.from", format!("params file '{}' not found", p.display())));
            }
            // A broken params file is refused now, with its own file, line and key.
            s2r_runtime::params::ParamsFile::load(&p).map_err(|e| err(file, l, "node.param.from", e.to_string()))?;
            out.push(Param::File(p));
            return Ok(());
        }
        let (nl, name) = pa.required("name")?;
        let name = self.subst(state, file, nl, "param.name", &name)?;
        let full = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        if let Some((_, nested)) = pa.list("param")? {
            pa.finish(&["name", "param"])?;
            for n in nested {
                self.param(n, &full, file, state, out)?;
            }
            return Ok(());
        }
        let value = match pa.take("value") {
            Some((l, Yaml::Scalar(s, plain, _))) => {
                let v = self.subst(state, file, l, "param.value", s)?;
                // A quoted value stays a string; a plain one is typed by YAML, as rcl does
                // (one that substitutes to nothing is the empty string, not null).
                if *plain && !v.is_empty() {
                    v
                } else {
                    format!("'{}'", v.replace('\'', "''"))
                }
            }
            Some((l, Yaml::Seq(items, _))) => {
                let vals = items
                    .iter()
                    .map(|i| match i {
                        Yaml::Scalar(s, plain, _) => {
                            let v = self.subst(state, file, l, "param.value", s)?;
                            Ok(if *plain { v } else { format!("'{}'", v.replace('\'', "''")) })
                        }
                        other => Err(pa.err(l, "value", format!("list items must be values, found {}", other.kind()))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                format!("[{}]", vals.join(", "))
            }
            Some((l, other)) => return Err(pa.err(l, "value", format!("expected a value or a list, found {}", other.kind()))),
            None => return Err(pa.err(nl, "value", format!("parameter '{full}' needs 'value', 'param' or 'from'"))),
        };
        pa.finish(&["name", "value", "param", "from"])?;
        out.push(Param::Value(full, value));
        Ok(())
    }
}
