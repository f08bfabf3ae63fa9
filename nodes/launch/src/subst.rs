//! Launch substitutions: `$(var name)`, `$(env NAME [default])`,
//! `$(find-pkg-share pkg)`, `$(find-pkg-prefix pkg)`, `$(dirname)`,
//! `$(filename)`, `$(anon name)`, `$(find-exec name)` and the boolean ones
//! (`not`, `and`, `or`, `equals`, `not-equals`), nested as in
//! `$(var $(env ROBOT))`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Sub { name: String, args: Vec<Vec<Part>> },
}

/// Named in the error for an unknown substitution.
const SUPPORTED: &[&str] = &[
    "var",
    "env",
    "find-pkg-share",
    "find-pkg-prefix",
    "dirname",
    "filename",
    "anon",
    "find-exec",
    "not",
    "and",
    "or",
    "equals",
    "not-equals",
];

/// Where a ROS package lies on disk, as ament lays out an install space
/// (from a source tree, both paths are the tree itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The install prefix (an `AMENT_PREFIX_PATH` entry): executables are in
    /// `lib/<package>/`; what `$(find-pkg-prefix)` gives.
    pub prefix: PathBuf,
    /// `share/<package>` under the prefix, holding `package.xml`, launch and
    /// config files; what `$(find-pkg-share)` gives.
    pub share: PathBuf,
}

/// What substitutions need to know.
pub(crate) struct Scope<'a> {
    /// Launch configurations (arguments and `let`s) visible here.
    pub vars: &'a HashMap<String, String>,
    /// The launch file being read, for `$(dirname)` and `$(filename)`.
    pub file: &'a Path,
    /// The environment, for `$(env)` and `$(find-exec)` (`PATH`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Where a ROS package is: its install prefix and its share folder.
    pub package: &'a dyn Fn(&str) -> Option<Package>,
}

/// A substitution that cannot be read or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubstError {
    /// A `'` without its partner.
    #[error("a quote is not closed")]
    UnclosedQuote,
    /// `$(` followed by nothing.
    #[error("'$(' without a substitution name")]
    NoName,
    /// `$(name …` without `)`.
    #[error("'$({0}' is not closed with ')'")]
    Unclosed(String),
    /// A boolean substitution (or condition) given something else.
    #[error("$({name}): '{value}' is not true or false")]
    NotBool {
        /// The substitution (`if` for a condition).
        name: String,
        /// The value given.
        value: String,
    },
    /// Too few or too many arguments.
    #[error("$({name}) takes {takes} argument(s), got {got}")]
    Arity {
        /// The substitution.
        name: String,
        /// How many it takes ("1", "1 to 2").
        takes: String,
        /// How many it got.
        got: usize,
    },
    /// `$(var x)` of an argument or `let` that does not exist.
    #[error("$(var {0}): no launch argument or let called '{0}'")]
    NoVar(String),
    /// `$(env X)` of an unset variable, without a default.
    #[error("$(env {0}): the environment variable is not set (give a default: $(env {0} value))")]
    NoEnv(String),
    /// `$(find-pkg-share p)` / `$(find-pkg-prefix p)` of a package not found.
    #[error("$({name} {package}): package '{package}' not found (is its install space in AMENT_PREFIX_PATH?)")]
    NoPackage {
        /// The substitution.
        name: String,
        /// The package.
        package: String,
    },
    /// `$(find-exec x)` of a program not on PATH.
    #[error("$(find-exec {0}): not found on PATH")]
    NoExec(String),
    /// A substitution launch_ros has and this does not (or a typo).
    #[error("unknown substitution '$({0} …)' (supported: {supported})", supported = SUPPORTED.join(", "))]
    Unknown(String),
}

fn parse(s: &str) -> Result<Vec<Part>, SubstError> {
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let parts = parse_parts(&chars, &mut pos, false)?;
    Ok(parts)
}

/// Text and substitutions until the end, or (inside a substitution) until an
/// unnested space or ')'.
fn parse_parts(c: &[char], pos: &mut usize, in_arg: bool) -> Result<Vec<Part>, SubstError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut quoted = false;
    while *pos < c.len() {
        let ch = c[*pos];
        if ch == '$' && c.get(*pos + 1) == Some(&'(') {
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            *pos += 2;
            parts.push(parse_sub(c, pos)?);
            continue;
        }
        if in_arg {
            if ch == '\'' {
                quoted = !quoted;
                *pos += 1;
                continue;
            }
            if !quoted && (ch.is_whitespace() || ch == ')') {
                break;
            }
        }
        text.push(ch);
        *pos += 1;
    }
    if quoted {
        return Err(SubstError::UnclosedQuote);
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

fn parse_sub(c: &[char], pos: &mut usize) -> Result<Part, SubstError> {
    let start = *pos;
    while *pos < c.len() && !c[*pos].is_whitespace() && c[*pos] != ')' {
        *pos += 1;
    }
    let name: String = c[start..*pos].iter().collect();
    if name.is_empty() {
        return Err(SubstError::NoName);
    }
    let mut args = Vec::new();
    loop {
        while *pos < c.len() && c[*pos].is_whitespace() {
            *pos += 1;
        }
        match c.get(*pos) {
            None => return Err(SubstError::Unclosed(name)),
            Some(')') => {
                *pos += 1;
                return Ok(Part::Sub { name, args });
            }
            Some(_) => args.push(parse_parts(c, pos, true)?),
        }
    }
}

fn truthy(name: &str, v: &str) -> Result<bool, SubstError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(SubstError::NotBool { name: name.into(), value: other.into() }),
    }
}

/// Replaces every substitution in `s`.
pub(crate) fn substitute(s: &str, scope: &Scope<'_>) -> Result<String, SubstError> {
    if !s.contains("$(") {
        return Ok(s.to_string());
    }
    let parts = parse(s)?;
    eval_parts(&parts, scope)
}

fn eval_parts(parts: &[Part], scope: &Scope<'_>) -> Result<String, SubstError> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Sub { name, args } => {
                let args: Vec<String> = args.iter().map(|a| eval_parts(a, scope)).collect::<Result<_, _>>()?;
                out.push_str(&eval_sub(name, &args, scope)?);
            }
        }
    }
    Ok(out)
}

fn eval_sub(name: &str, args: &[String], scope: &Scope<'_>) -> Result<String, SubstError> {
    let want = |n: std::ops::RangeInclusive<usize>| -> Result<(), SubstError> {
        if n.contains(&args.len()) {
            Ok(())
        } else {
            let takes = if n.start() == n.end() { n.start().to_string() } else { format!("{} to {}", n.start(), n.end()) };
            Err(SubstError::Arity { name: name.into(), takes, got: args.len() })
        }
    };
    match name {
        "var" => {
            want(1..=1)?;
            scope.vars.get(&args[0]).cloned().ok_or_else(|| SubstError::NoVar(args[0].clone()))
        }
        "env" => {
            want(1..=2)?;
            match ((scope.env)(&args[0]), args.get(1)) {
                (Some(v), _) => Ok(v),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => Err(SubstError::NoEnv(args[0].clone())),
            }
        }
        "find-pkg-share" | "find-pkg-prefix" => {
            want(1..=1)?;
            let pkg = (scope.package)(&args[0]).ok_or_else(|| SubstError::NoPackage { name: name.into(), package: args[0].clone() })?;
            let p = if name == "find-pkg-share" { pkg.share } else { pkg.prefix };
            Ok(p.display().to_string())
        }
        "dirname" => {
            want(0..=0)?;
            Ok(scope.file.parent().unwrap_or(Path::new(".")).display().to_string())
        }
        "filename" => {
            want(0..=0)?;
            Ok(scope.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())
        }
        "anon" => {
            want(1..=1)?;
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
            Ok(format!("{}_{}_{nanos}", args[0], std::process::id()))
        }
        "find-exec" => {
            want(1..=1)?;
            let path = (scope.env)("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .map(|d| d.join(&args[0]))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string())
                .ok_or_else(|| SubstError::NoExec(args[0].clone()))
        }
        "not" => {
            want(1..=1)?;
            Ok((!truthy(name, &args[0])?).to_string())
        }
        "and" | "or" => {
            want(2..=usize::MAX)?;
            let vals = args.iter().map(|a| truthy(name, a)).collect::<Result<Vec<_>, _>>()?;
            Ok(if name == "and" { vals.iter().all(|v| *v) } else { vals.iter().any(|v| *v) }.to_string())
        }
        "equals" | "not-equals" => {
            want(2..=2)?;
            Ok(((args[0] == args[1]) == (name == "equals")).to_string())
        }
        other => Err(SubstError::Unknown(other.into())),
    }
}

/// Evaluates an `if`/`unless` condition value.
pub(crate) fn condition(value: &str) -> Result<bool, SubstError> {
    truthy("if", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_eval(s: &str) -> Result<String, SubstError> {
        let vars: HashMap<String, String> = [("robot".to_string(), "rover".to_string()), ("rover".to_string(), "x".to_string())].into();
        let env = |k: &str| if k == "HOME" { Some("/home/me".to_string()) } else { None };
        let package = |p: &str| {
            (p == "sim2real").then(|| Package { prefix: PathBuf::from("/opt/s2r"), share: PathBuf::from("/opt/s2r/share/sim2real") })
        };
        let scope = Scope { vars: &vars, file: Path::new("/ws/launch/a.launch.yaml"), env: &env, package: &package };
        substitute(s, &scope)
    }

    #[test]
    fn substitutions_nest_and_fail_with_reasons() {
        assert_eq!(scope_eval("ns/$(var robot)").unwrap(), "ns/rover");
        assert_eq!(scope_eval("$(var $(var robot))").unwrap(), "x");
        assert_eq!(scope_eval("$(env HOME)/x").unwrap(), "/home/me/x");
        assert_eq!(scope_eval("$(env NOPE 'a b')").unwrap(), "a b");
        assert_eq!(scope_eval("$(find-pkg-share sim2real)/config").unwrap(), "/opt/s2r/share/sim2real/config");
        assert_eq!(scope_eval("$(dirname)/b.yaml").unwrap(), "/ws/launch/b.yaml");
        assert_eq!(scope_eval("$(not $(equals $(var robot) rover))").unwrap(), "false");
        assert!(scope_eval("$(var nope)").unwrap_err().to_string().contains("no launch argument or let called 'nope'"));
        assert!(scope_eval("$(eval 1+1)").unwrap_err().to_string().contains("unknown substitution '$(eval"));
        assert!(scope_eval("$(var robot").unwrap_err().to_string().contains("not closed"));
        assert!(scope_eval("$(find-pkg-share nope)").unwrap_err().to_string().contains("package 'nope' not found"));
        assert!(scope_eval("$(env NOPE)").unwrap_err().to_string().contains("not set"));
    }
}
