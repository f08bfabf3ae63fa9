//! The `--ros-args` command line of ROS 2 nodes (rcl's grammar):
//! `-r from:=to`, `-r node:from:=to`, `-r __ns:=/x`, `-r __node:=y`,
//! `-p name:=value`, `-p node:name:=value`, `--params-file f.yaml`,
//! `--log-level [logger:=]level`, `--enable/--disable-{rosout,stdout}-logs`.
//! ROS arguments run from `--ros-args` to `--` or the end; the rest are the
//! program's own.

use std::path::PathBuf;

use crate::log::LogLevel;
use crate::names::{normalize_namespace, validate_node_name, NameError, Remap};
use crate::params::{parse_value_literal, ParamError, ParameterValue, ParamsFile};

/// A `--ros-args` command line that rcl would refuse; every variant names
/// the argument.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// A flag at the end of the line without its value.
    #[error("--ros-args: '{0}' needs a value")]
    MissingValue(String),
    /// An argument `--ros-args` does not know.
    #[error("--ros-args: unknown argument '{0}'")]
    Unknown(String),
    /// A params file that does not load.
    #[error("--params-file: {0}")]
    ParamsFile(#[source] ParamError),
    /// A log level that is not one of rcl's.
    #[error("--log-level: '{0}' is not one of debug, info, warn, error, fatal")]
    LogLevel(String),
    /// A remap rule that is not `from:=to` or `node:from:=to`.
    #[error("-r '{0}': a remap rule is from:=to or node:from:=to")]
    RemapRule(String),
    /// A remap with a name that is not a ROS name.
    #[error("-r '{rule}': {source}")]
    RemapName {
        /// The rule.
        rule: String,
        /// What is wrong with the name.
        source: NameError,
    },
    /// A special name (`__x`) rcl does not have.
    #[error("-r '{rule}': unknown special name '{name}'")]
    SpecialName {
        /// The rule.
        rule: String,
        /// The special name.
        name: String,
    },
    /// A `-p` that is not `name:=value`.
    #[error("-p '{0}': a parameter is name:=value")]
    ParamRule(String),
    /// A `-p` with an empty name.
    #[error("-p '{0}': the parameter name is empty")]
    EmptyName(String),
    /// A `-p` value that is not a parameter value.
    #[error("-p '{rule}': {source}")]
    ParamValue {
        /// The rule.
        rule: String,
        /// What is wrong with the value.
        source: ParamError,
    },
}

/// `-p [node:]name:=value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamOverride {
    pub node: Option<String>,
    pub name: String,
    pub value: ParameterValue,
}

/// A process's ROS arguments, checked: what a [`Node`](crate::Node) takes its
/// name, namespace, parameters, remaps and log settings from. Several nodes
/// may share one; rules written `node:…` apply to that node only. `Default`
/// is a command line without ROS arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RosArgs {
    pub(crate) remaps: Vec<Remap>,
    pub(crate) params: Vec<ParamOverride>,
    pub(crate) params_files: Vec<ParamsFile>,
    /// `-r __node:=name` (or `__name`), optionally for one node.
    pub(crate) node_name: Vec<(Option<String>, String)>,
    /// `-r __ns:=/ns`, optionally for one node.
    pub(crate) namespace: Vec<(Option<String>, String)>,
    /// `--log-level level` (None) or `--log-level logger:=level`.
    pub(crate) log_levels: Vec<(Option<String>, LogLevel)>,
    pub(crate) rosout_logs: Option<bool>,
    pub(crate) stdout_logs: Option<bool>,
    /// The program's own arguments, those outside `--ros-args` sections,
    /// program name first.
    pub unparsed: Vec<String>,
}

impl RosArgs {
    /// Parses this process's command line. Panics, as [`std::env::args`]
    /// does, when an argument is not valid Unicode.
    pub fn from_env() -> Result<RosArgs, ArgsError> {
        Self::parse(std::env::args())
    }

    /// Parses a command line, program name first. Params files are read and
    /// names checked now, so a bad one fails here rather than at the first
    /// node. `--enclave` and `--{enable,disable}-external-lib-logs` are
    /// accepted and ignored.
    pub fn parse<I, S>(args: I) -> Result<RosArgs, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = RosArgs::default();
        let mut it = args.into_iter().map(Into::into).peekable();
        let mut in_ros = false;
        while let Some(arg) = it.next() {
            if !in_ros {
                if arg == "--ros-args" {
                    in_ros = true;
                } else {
                    out.unparsed.push(arg);
                }
                continue;
            }
            let mut value_of =
                |flag: &str| -> Result<String, ArgsError> { it.next().ok_or_else(|| ArgsError::MissingValue(flag.to_string())) };
            match arg.as_str() {
                "--" => in_ros = false,
                "--ros-args" => {}
                "-r" | "--remap" => {
                    let rule = value_of(&arg)?;
                    out.add_remap(&rule)?;
                }
                "-p" | "--param" => {
                    let rule = value_of(&arg)?;
                    out.params.push(parse_param_rule(&rule)?);
                }
                "--params-file" => {
                    let path = PathBuf::from(value_of(&arg)?);
                    out.params_files.push(ParamsFile::load(&path).map_err(ArgsError::ParamsFile)?);
                }
                "--log-level" => {
                    let v = value_of(&arg)?;
                    let (logger, level) = match v.split_once(":=") {
                        Some((l, lv)) => (Some(l.to_string()), lv),
                        None => (None, v.as_str()),
                    };
                    let level = LogLevel::parse(level).ok_or_else(|| ArgsError::LogLevel(level.to_string()))?;
                    out.log_levels.push((logger, level));
                }
                "--enable-rosout-logs" => out.rosout_logs = Some(true),
                "--disable-rosout-logs" => out.rosout_logs = Some(false),
                "--enable-stdout-logs" => out.stdout_logs = Some(true),
                "--disable-stdout-logs" => out.stdout_logs = Some(false),
                "--enable-external-lib-logs" | "--disable-external-lib-logs" => {}
                "-e" | "--enclave" => {
                    value_of(&arg)?;
                }
                other => return Err(ArgsError::Unknown(other.to_string())),
            }
        }
        Ok(out)
    }

    fn add_remap(&mut self, rule: &str) -> Result<(), ArgsError> {
        let bad_name = |source| ArgsError::RemapName { rule: rule.into(), source };
        let r = Remap::parse(rule).ok_or_else(|| ArgsError::RemapRule(rule.into()))?;
        match r.from.as_str() {
            "__node" | "__name" => {
                validate_node_name(&r.to).map_err(bad_name)?;
                self.node_name.push((r.node, r.to));
            }
            "__ns" => {
                let ns = normalize_namespace(&r.to).map_err(bad_name)?;
                self.namespace.push((r.node, ns));
            }
            f if f.starts_with("__") => return Err(ArgsError::SpecialName { rule: rule.into(), name: f.into() }),
            _ => {
                crate::names::expand(&r.from, "/", "n").map_err(bad_name)?;
                crate::names::expand(&r.to, "/", "n").map_err(bad_name)?;
                self.remaps.push(r)
            }
        }
        Ok(())
    }

    /// The node name after `__node` remapping (the last matching rule wins).
    pub(crate) fn resolved_node_name(&self, default: &str) -> String {
        self.node_name
            .iter()
            .rfind(|(n, _)| n.as_deref().is_none_or(|n| n == default))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| default.to_string())
    }

    /// The namespace after `__ns` remapping.
    pub(crate) fn resolved_namespace(&self, node: &str, default: &str) -> String {
        self.namespace
            .iter()
            .rfind(|(n, _)| n.as_deref().is_none_or(|n| n == node))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| default.to_string())
    }

    /// The parameter overrides for one node, lowest precedence first:
    /// params files in order, then `-p` arguments in order. Each comes with
    /// where it was given, for error messages.
    pub(crate) fn param_overrides(&self, node: &str, fqn: &str) -> Vec<(String, ParameterValue, String)> {
        let mut out = Vec::new();
        for f in &self.params_files {
            for p in f.for_node(fqn) {
                out.push((p.name.clone(), p.value.clone(), format!("params file {}", f.path.display())));
            }
        }
        for p in self.params.iter().filter(|p| p.node.as_deref().is_none_or(|n| n == node)) {
            out.push((p.name.clone(), p.value.clone(), format!("-p {}:=…", p.name)));
        }
        out
    }

    /// The log level for a logger (the node's name), if one was given.
    pub(crate) fn log_level_for(&self, logger: &str) -> Option<LogLevel> {
        self.log_levels
            .iter()
            .rev()
            .find(|(l, _)| l.as_deref() == Some(logger))
            .or_else(|| self.log_levels.iter().rev().find(|(l, _)| l.is_none()))
            .map(|(_, lv)| *lv)
    }
}

fn parse_param_rule(rule: &str) -> Result<ParamOverride, ArgsError> {
    let (lhs, value) = rule.split_once(":=").ok_or_else(|| ArgsError::ParamRule(rule.into()))?;
    let (node, name) = match lhs.split_once(':') {
        Some((n, p)) => (Some(n.to_string()), p),
        None => (None, lhs),
    };
    if name.is_empty() {
        return Err(ArgsError::EmptyName(rule.into()));
    }
    let value = parse_value_literal(value).map_err(|source| ArgsError::ParamValue { rule: rule.into(), source })?;
    Ok(ParamOverride { node, name: name.to_string(), value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rcl_grammar() {
        let a = RosArgs::parse([
            "prog",
            "input.bag",
            "--ros-args",
            "-r",
            "chatter:=/out",
            "-r",
            "__ns:=/robot",
            "-r",
            "talker:__node:=t2",
            "-p",
            "rate:=5.5",
            "-p",
            "talker:names:=[a, b]",
            "--log-level",
            "debug",
            "--log-level",
            "t2:=warn",
            "--",
            "--tail",
        ])
        .unwrap();
        assert_eq!(a.unparsed, vec!["prog", "input.bag", "--tail"]);
        assert_eq!(a.remaps.len(), 1);
        assert_eq!(a.resolved_node_name("talker"), "t2");
        assert_eq!(a.resolved_node_name("other"), "other");
        assert_eq!(a.resolved_namespace("t2", "/"), "/robot");
        let p = a.param_overrides("talker", "/robot/talker");
        assert_eq!(p[0].1, ParameterValue::Double(5.5));
        assert_eq!(p[1].1, ParameterValue::StringArray(vec!["a".into(), "b".into()]));
        assert_eq!(a.param_overrides("x", "/x").len(), 1);
        assert_eq!(a.log_level_for("t2"), Some(LogLevel::Warn));
        assert_eq!(a.log_level_for("x"), Some(LogLevel::Debug));
    }

    #[test]
    fn refuses_bad_arguments_naming_them() {
        let e = |v: &[&str]| RosArgs::parse(v.iter().copied()).unwrap_err().to_string();
        assert!(e(&["p", "--ros-args", "-x"]).contains("unknown argument '-x'"));
        assert!(e(&["p", "--ros-args", "-r", "nope"]).contains("-r 'nope'"));
        assert!(e(&["p", "--ros-args", "-r", "a:=b c"]).contains("-r 'a:=b c'"));
        assert!(e(&["p", "--ros-args", "-p", "x"]).contains("-p 'x'"));
        assert!(e(&["p", "--ros-args", "-p", "x:=[1, a]"]).contains("-p 'x:=[1, a]'"));
        assert!(e(&["p", "--ros-args", "-r"]).contains("'-r' needs a value"));
        assert!(e(&["p", "--ros-args", "--log-level", "loud"]).contains("'loud'"));
        assert!(e(&["p", "--ros-args", "--params-file", "/nonexistent.yaml"]).contains("/nonexistent.yaml"));
        assert!(e(&["p", "--ros-args", "-r", "__node:=a/b"]).contains("__node"));
    }
}
