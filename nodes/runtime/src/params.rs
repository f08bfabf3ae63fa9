//! Parameters: typed values, the YAML forms of `-p name:=value` and of ROS 2
//! params files (`node: {ros__parameters: {...}}` with `/**` wildcards).

use std::path::{Path, PathBuf};

pub use ros2_client::ParameterValue;
use serde_yaml_ng::Value as Yaml;

/// A parameter value, or a params file, that is not what ROS 2 takes.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// An integer above the range of a 64-bit signed integer.
    #[error("{0} does not fit a 64-bit signed integer")]
    TooLarge(u64),
    /// A list of values of different types.
    #[error("a list must hold values of one type")]
    MixedList,
    /// A null where a value belongs.
    #[error("a parameter needs a value (found null)")]
    Null,
    /// A mapping where a value belongs.
    #[error("a mapping is not a parameter value")]
    Mapping,
    /// A `-p name:=value` value that is not YAML.
    #[error("'{text}' is not a YAML value: {source}")]
    NotYaml {
        /// The value as given.
        text: String,
        /// What the YAML parser said.
        source: serde_yaml_ng::Error,
    },
    /// A parameter the node did not declare.
    #[error("parameter '{0}' is not declared by this node")]
    NotDeclared(String),
    /// A value of another type than the parameter's.
    #[error("parameter '{name}' is {declared}, not {given}")]
    WrongType {
        /// The parameter.
        name: String,
        /// Its type.
        declared: &'static str,
        /// The type of the value given.
        given: &'static str,
    },
    /// A params file that cannot be read.
    #[error("params file {}: cannot read it: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A params file that is not YAML.
    #[error("params file {}: not valid YAML: {source}", .path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What the YAML parser said.
        source: serde_yaml_ng::Error,
    },
    /// A params file whose shape is not `node: {ros__parameters: {...}}`.
    #[error("params file {}: {}{problem}", .path.display(), place(*.line, .key))]
    Shape {
        /// The file.
        path: PathBuf,
        /// The line of the node's key, where known.
        line: Option<usize>,
        /// The node's key (empty at the top level).
        key: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A value in a params file that is not a parameter value.
    #[error("params file {}: {}parameter '{name}': {source}", .path.display(), place(*.line, .key))]
    Value {
        /// The file.
        path: PathBuf,
        /// The line of the node's key, where known.
        line: Option<usize>,
        /// The node's key.
        key: String,
        /// The parameter.
        name: String,
        /// What is wrong with its value.
        source: Box<ParamError>,
    },
}

/// "line 3, key 'talker': " before a params file problem.
fn place(line: Option<usize>, key: &str) -> String {
    match (line, key) {
        (_, "") => String::new(),
        (Some(l), k) => format!("line {l}, key '{k}': "),
        (None, k) => format!("key '{k}': "),
    }
}

/// The name ROS 2 tools give a parameter type.
pub(crate) fn type_name(v: &ParameterValue) -> &'static str {
    match v {
        ParameterValue::NotSet => "not set",
        ParameterValue::Boolean(_) => "bool",
        ParameterValue::Integer(_) => "integer",
        ParameterValue::Double(_) => "double",
        ParameterValue::String(_) => "string",
        ParameterValue::ByteArray(_) => "byte_array",
        ParameterValue::BooleanArray(_) => "bool_array",
        ParameterValue::IntegerArray(_) => "integer_array",
        ParameterValue::DoubleArray(_) => "double_array",
        ParameterValue::StringArray(_) => "string_array",
    }
}

/// A Rust type a parameter can have: `bool`, `i64`, `f64`, `String` and
/// `Vec`s of them (ROS 2 has no other integer or float widths).
pub trait ParamType: Sized + Clone + Send + Sync + 'static {
    /// The ROS value, whose type the parameter then keeps.
    fn to_value(&self) -> ParameterValue;
    /// Converts a value of the same ROS type (integers widen to doubles).
    fn from_value(v: &ParameterValue) -> Option<Self>;
}

macro_rules! param_type {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl ParamType for $t {
            fn to_value(&self) -> ParameterValue {
                #[allow(clippy::redundant_closure_call)]
                ParameterValue::$variant(($to)(self))
            }
            fn from_value(v: &ParameterValue) -> Option<Self> {
                #[allow(clippy::redundant_closure_call)]
                ($from)(v)
            }
        }
    };
}

param_type!(bool, Boolean, |v: &bool| *v, |v: &ParameterValue| match v {
    ParameterValue::Boolean(b) => Some(*b),
    _ => None,
});
param_type!(i64, Integer, |v: &i64| *v, |v: &ParameterValue| match v {
    ParameterValue::Integer(i) => Some(*i),
    _ => None,
});
param_type!(f64, Double, |v: &f64| *v, |v: &ParameterValue| match v {
    ParameterValue::Double(d) => Some(*d),
    ParameterValue::Integer(i) => Some(*i as f64),
    _ => None,
});
param_type!(String, String, |v: &String| v.clone(), |v: &ParameterValue| match v {
    ParameterValue::String(s) => Some(s.clone()),
    _ => None,
});
param_type!(Vec<bool>, BooleanArray, |v: &Vec<bool>| v.clone(), |v: &ParameterValue| match v {
    ParameterValue::BooleanArray(a) => Some(a.clone()),
    _ => None,
});
param_type!(Vec<i64>, IntegerArray, |v: &Vec<i64>| v.clone(), |v: &ParameterValue| match v {
    ParameterValue::IntegerArray(a) => Some(a.clone()),
    _ => None,
});
param_type!(Vec<f64>, DoubleArray, |v: &Vec<f64>| v.clone(), |v: &ParameterValue| match v {
    ParameterValue::DoubleArray(a) => Some(a.clone()),
    ParameterValue::IntegerArray(a) => Some(a.iter().map(|i| *i as f64).collect()),
    _ => None,
});
param_type!(Vec<String>, StringArray, |v: &Vec<String>| v.clone(), |v: &ParameterValue| match v {
    ParameterValue::StringArray(a) => Some(a.clone()),
    _ => None,
});

/// A value of the declared type, converting where ROS 2 tools would send the
/// other numeric form (an integer for a double parameter).
pub(crate) fn coerce(declared: &ParameterValue, given: &ParameterValue) -> Option<ParameterValue> {
    if std::mem::discriminant(declared) == std::mem::discriminant(given) {
        return Some(given.clone());
    }
    match (declared, given) {
        (ParameterValue::Double(_), ParameterValue::Integer(i)) => Some(ParameterValue::Double(*i as f64)),
        (ParameterValue::DoubleArray(_), ParameterValue::IntegerArray(a)) => {
            Some(ParameterValue::DoubleArray(a.iter().map(|i| *i as f64).collect()))
        }
        // An empty YAML list has no element type: it fits any array.
        (ParameterValue::BooleanArray(_), ParameterValue::StringArray(a)) if a.is_empty() => Some(ParameterValue::BooleanArray(vec![])),
        (ParameterValue::IntegerArray(_), ParameterValue::StringArray(a)) if a.is_empty() => Some(ParameterValue::IntegerArray(vec![])),
        (ParameterValue::DoubleArray(_), ParameterValue::StringArray(a)) if a.is_empty() => Some(ParameterValue::DoubleArray(vec![])),
        _ => None,
    }
}

/// Converts a YAML value to a parameter value (scalars and homogeneous lists).
pub(crate) fn from_yaml(y: &Yaml) -> Result<ParameterValue, ParamError> {
    Ok(match y {
        Yaml::Bool(b) => ParameterValue::Boolean(*b),
        Yaml::Number(n) if n.is_i64() => ParameterValue::Integer(n.as_i64().unwrap()),
        Yaml::Number(n) if n.is_u64() => return Err(ParamError::TooLarge(n.as_u64().unwrap_or(u64::MAX))),
        Yaml::Number(n) => ParameterValue::Double(n.as_f64().unwrap()),
        Yaml::String(s) => ParameterValue::String(s.clone()),
        Yaml::Sequence(items) => {
            if items.is_empty() {
                return Ok(ParameterValue::StringArray(vec![]));
            }
            let values = items.iter().map(from_yaml).collect::<Result<Vec<_>, _>>()?;
            let all = |f: fn(&ParameterValue) -> bool| values.iter().all(f);
            if all(|v| matches!(v, ParameterValue::Boolean(_))) {
                ParameterValue::BooleanArray(values.iter().map(|v| bool::from_value(v).unwrap()).collect())
            } else if all(|v| matches!(v, ParameterValue::Integer(_))) {
                ParameterValue::IntegerArray(values.iter().map(|v| i64::from_value(v).unwrap()).collect())
            } else if all(|v| matches!(v, ParameterValue::Integer(_) | ParameterValue::Double(_))) {
                ParameterValue::DoubleArray(values.iter().map(|v| f64::from_value(v).unwrap()).collect())
            } else if all(|v| matches!(v, ParameterValue::String(_))) {
                ParameterValue::StringArray(values.iter().map(|v| String::from_value(v).unwrap()).collect())
            } else {
                return Err(ParamError::MixedList);
            }
        }
        Yaml::Null => return Err(ParamError::Null),
        Yaml::Mapping(_) => return Err(ParamError::Mapping),
        Yaml::Tagged(t) => return from_yaml(&t.value),
    })
}

/// Parses the value part of `-p name:=value` as YAML, like rcl does.
pub fn parse_value_literal(text: &str) -> Result<ParameterValue, ParamError> {
    let y: Yaml = serde_yaml_ng::from_str(text).map_err(|source| ParamError::NotYaml { text: text.into(), source })?;
    from_yaml(&y)
}

/// One parameter value from a params file, for the nodes its key matches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileParam {
    /// Node pattern: a fully qualified node name, possibly with `*` and `**`.
    pub node_pattern: String,
    /// Dotted parameter name (`nested.a` for nested mappings).
    pub name: String,
    pub value: ParameterValue,
}

/// A parsed ROS 2 params file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamsFile {
    pub(crate) path: PathBuf,
    pub(crate) params: Vec<FileParam>,
}

impl ParamsFile {
    /// Reads and checks a params file as `--params-file` does: node keys
    /// (absolute or not, with `*`/`**` wildcards, or nested namespace
    /// levels) each holding `ros__parameters`, nested mappings flattened to
    /// dotted names. An empty file holds nothing. Errors name the file, and
    /// the line and key where known.
    pub fn load(path: &Path) -> Result<ParamsFile, ParamError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamError::Read { path: path.into(), source })?;
        Self::parse(path, &text)
    }

    pub(crate) fn parse(path: &Path, text: &str) -> Result<ParamsFile, ParamError> {
        let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|source| ParamError::Yaml { path: path.into(), source })?;
        let shape = |problem| ParamError::Shape { path: path.into(), line: None, key: String::new(), problem };
        let mut params = Vec::new();
        let top = match &doc {
            Yaml::Mapping(m) => m,
            Yaml::Null => return Ok(ParamsFile { path: path.to_path_buf(), params }),
            _ => return Err(shape("the top level must map node names to 'ros__parameters'")),
        };
        for (node_key, body) in top {
            let node_key = node_key.as_str().ok_or_else(|| shape("node names must be strings"))?;
            Self::collect_node(path, node_key, body, &mut params, line_of(text, node_key))?;
        }
        Ok(ParamsFile { path: path.to_path_buf(), params })
    }

    fn collect_node(path: &Path, node_key: &str, body: &Yaml, params: &mut Vec<FileParam>, line: Option<usize>) -> Result<(), ParamError> {
        let shape = |problem| ParamError::Shape { path: path.into(), line, key: node_key.into(), problem };
        let Yaml::Mapping(m) = body else {
            return Err(shape("expected a mapping with 'ros__parameters'"));
        };
        for (k, v) in m {
            let k = k.as_str().unwrap_or_default();
            if k == "ros__parameters" {
                let pattern = if node_key.starts_with('/') { node_key.to_string() } else { format!("/{node_key}") };
                flatten(&pattern, "", v, params).map_err(|e| match e {
                    Flatten::NotMapping => shape("'ros__parameters' must be a mapping of names to values"),
                    Flatten::Value(name, e) => {
                        ParamError::Value { path: path.into(), line, key: node_key.into(), name, source: Box::new(e) }
                    }
                })?;
            } else {
                // A namespace level: `ns: {node: {ros__parameters: ...}}`.
                let nested = format!("{}/{}", node_key.trim_end_matches('/'), k);
                Self::collect_node(path, &nested, v, params, line)?;
            }
        }
        Ok(())
    }

    /// Values of this file that apply to the node `fqn`, in file order.
    pub(crate) fn for_node<'a>(&'a self, fqn: &'a str) -> impl Iterator<Item = &'a FileParam> + 'a {
        self.params.iter().filter(move |p| node_matches(&p.node_pattern, fqn))
    }
}

fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(key) && t[key.len()..].trim_start().starts_with(':')
                || t.starts_with(&format!("\"{key}\""))
                || t.starts_with(&format!("'{key}'"))
        })
        .map(|i| i + 1)
}

/// Why `ros__parameters` did not flatten.
enum Flatten {
    NotMapping,
    Value(String, ParamError),
}

fn flatten(pattern: &str, prefix: &str, v: &Yaml, out: &mut Vec<FileParam>) -> Result<(), Flatten> {
    let Yaml::Mapping(m) = v else {
        return Err(Flatten::NotMapping);
    };
    for (k, v) in m {
        let k = match k {
            Yaml::String(s) => s.clone(),
            other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
        };
        let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if let Yaml::Mapping(_) = v {
            flatten(pattern, &name, v, out)?;
        } else {
            let value = match from_yaml(v) {
                Ok(value) => value,
                Err(e) => return Err(Flatten::Value(name, e)),
            };
            out.push(FileParam { node_pattern: pattern.to_string(), name, value });
        }
    }
    Ok(())
}

/// Matches a node pattern against a fully qualified node name: `*` matches one
/// token, `**` any number of tokens (including none).
pub(crate) fn node_matches(pattern: &str, fqn: &str) -> bool {
    let p: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let n: Vec<&str> = fqn.trim_start_matches('/').split('/').collect();
    fn go(p: &[&str], n: &[&str]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(&"**"), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_files_match_nodes_and_flatten_names() {
        let text = "/**:\n  ros__parameters:\n    use_sim_time: true\n\
                    talker:\n  ros__parameters:\n    rate: 5\n    nested:\n      gains: [1.0, 2]\n\
                    /robot/*:\n  ros__parameters:\n    names: [a, b]\n";
        let f = ParamsFile::parse(Path::new("p.yaml"), text).unwrap();
        let talker: Vec<_> = f.for_node("/talker").map(|p| (p.name.as_str(), p.value.clone())).collect();
        assert_eq!(
            talker,
            vec![
                ("use_sim_time", ParameterValue::Boolean(true)),
                ("rate", ParameterValue::Integer(5)),
                ("nested.gains", ParameterValue::DoubleArray(vec![1.0, 2.0])),
            ]
        );
        assert_eq!(f.for_node("/robot/cam").count(), 2);
        assert_eq!(f.for_node("/robot/a/cam").count(), 1);
    }

    #[test]
    fn broken_params_files_name_file_line_and_key() {
        let e = ParamsFile::parse(Path::new("bad.yaml"), "talker:\n  ros__parameters:\n    x: [1, a]\n").unwrap_err().to_string();
        assert_eq!(e, "params file bad.yaml: line 1, key 'talker': parameter 'x': a list must hold values of one type");
        let e = ParamsFile::parse(Path::new("bad.yaml"), "talker: [\n").unwrap_err().to_string();
        assert!(e.contains("not valid YAML") && e.contains("line"), "{e}");
        let e = ParamsFile::parse(Path::new("bad.yaml"), "talker:\n  ros__parameters: 3\n").unwrap_err().to_string();
        assert_eq!(e, "params file bad.yaml: line 1, key 'talker': 'ros__parameters' must be a mapping of names to values");
        let e = ParamsFile::parse(Path::new("bad.yaml"), "[1]\n").unwrap_err().to_string();
        assert_eq!(e, "params file bad.yaml: the top level must map node names to 'ros__parameters'");
    }

    #[test]
    fn literals_parse_as_yaml() {
        assert_eq!(parse_value_literal("3").unwrap(), ParameterValue::Integer(3));
        assert_eq!(parse_value_literal("3.5").unwrap(), ParameterValue::Double(3.5));
        assert_eq!(parse_value_literal("true").unwrap(), ParameterValue::Boolean(true));
        assert_eq!(parse_value_literal("hello").unwrap(), ParameterValue::String("hello".into()));
        assert_eq!(parse_value_literal("[1, 2]").unwrap(), ParameterValue::IntegerArray(vec![1, 2]));
        assert!(parse_value_literal("[1, x]").is_err());
        assert_eq!(coerce(&ParameterValue::Double(0.0), &ParameterValue::Integer(2)), Some(ParameterValue::Double(2.0)));
        assert_eq!(coerce(&ParameterValue::Integer(0), &ParameterValue::Double(2.0)), None);
    }
}
