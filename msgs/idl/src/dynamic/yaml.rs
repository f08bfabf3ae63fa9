//! The YAML forms ROS 2 tools use for messages: the literal `ros2 topic pub`
//! takes (`"{linear: {x: 1.0}}"`, missing fields keep their defaults) and the
//! block YAML `ros2 topic echo` prints.

use std::fmt::Write;

use serde_yaml_ng::Value as Yaml;

use super::value::{default_value, primitive_value, sequence_value, Value};
use crate::parse::{Array, BaseType, FieldType, Primitive, TypeName};
use crate::registry::{Registry, RegistryError};

/// A YAML value that does not fit a message type. Every variant names the
/// field path (`twist.linear.x`) and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// The literal is not YAML.
    #[error("'{literal}' is not a YAML literal: {source}")]
    NotYaml {
        /// The literal as given.
        literal: String,
        /// What the YAML parser said.
        source: serde_yaml_ng::Error,
    },
    /// A type the registry cannot build.
    #[error("{}{source}", at(.path))]
    Type {
        /// The field path.
        path: String,
        /// Why.
        source: Box<RegistryError>,
    },
    /// A message given as something other than a mapping.
    #[error("{}expected a mapping of {type_name} fields, found {found}", at(.path))]
    NotMapping {
        /// The field path.
        path: String,
        /// The message type.
        type_name: String,
        /// What was given.
        found: String,
    },
    /// A mapping key that is not a string.
    #[error("{}field names must be strings, found {found}", at(.path))]
    FieldName {
        /// The field path.
        path: String,
        /// The key given.
        found: String,
    },
    /// A field the type does not have.
    #[error("'{field}' is not a field of {type_name} (its fields: {known})")]
    UnknownField {
        /// The field path, with the unknown name last.
        field: String,
        /// The message type.
        type_name: String,
        /// Its fields, comma-separated.
        known: String,
    },
    /// A value of the wrong kind (a list for a number, …).
    #[error("{path}: expected {expected}, found {found}")]
    Expected {
        /// The field path.
        path: String,
        /// What the field takes.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A fixed-size array with another number of values.
    #[error("{path}: expected exactly {n} values, found {found}")]
    FixedLength {
        /// The field path.
        path: String,
        /// Its size.
        n: usize,
        /// Values given.
        found: usize,
    },
    /// A bounded sequence with too many values.
    #[error("{path}: at most {n} values allowed, found {found}")]
    TooMany {
        /// The field path.
        path: String,
        /// Its bound.
        n: usize,
        /// Values given.
        found: usize,
    },
    /// An integer outside its type's range.
    #[error("{path}: {value} is out of range for {type_name}")]
    OutOfRange {
        /// The field path.
        path: String,
        /// The value given.
        value: i128,
        /// The field's type.
        type_name: String,
    },
    /// A string longer than its bound.
    #[error("{path}: string longer than its bound {max}")]
    StringBound {
        /// The field path.
        path: String,
        /// The bound.
        max: usize,
    },
}

/// "path: " before a message, or nothing at the top level.
fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Builds a message of type `ty` from a YAML-style literal, starting from the
/// type's defaults. Errors name the field path and what was wrong.
pub fn from_literal(reg: &Registry, ty: &TypeName, literal: &str) -> Result<Value, ValueError> {
    let text = literal.trim();
    let yaml: Yaml = if text.is_empty() {
        Yaml::Mapping(Default::default())
    } else {
        serde_yaml_ng::from_str(text).map_err(|source| ValueError::NotYaml { literal: literal.into(), source })?
    };
    from_yaml(reg, ty, &yaml)
}

/// Builds a message from parsed YAML (a mapping of field names to values).
fn from_yaml(reg: &Registry, ty: &TypeName, yaml: &Yaml) -> Result<Value, ValueError> {
    struct_from_yaml(reg, ty, yaml, "")
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn describe(y: &Yaml) -> String {
    match y {
        Yaml::Null => "null".into(),
        Yaml::Mapping(_) => "a mapping".into(),
        Yaml::Sequence(_) => "a list".into(),
        other => format!("'{}'", serde_yaml_ng::to_string(other).unwrap_or_default().trim()),
    }
}

fn now_time() -> Value {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Value::Struct(vec![("sec".into(), Value::I32(d.as_secs() as i32)), ("nanosec".into(), Value::U32(d.subsec_nanos()))])
}

fn struct_from_yaml(reg: &Registry, ty: &TypeName, yaml: &Yaml, path: &str) -> Result<Value, ValueError> {
    // The shorthands of `ros2 topic pub`: a Time of "now", a Header of "auto".
    if let Yaml::String(s) = yaml {
        if s == "now" && ty.package == "builtin_interfaces" && ty.name == "Time" {
            return Ok(now_time());
        }
        if s == "auto" && ty.package == "std_msgs" && ty.name == "Header" {
            return Ok(Value::Struct(vec![("stamp".into(), now_time()), ("frame_id".into(), Value::String(String::new()))]));
        }
    }
    let mut value = default_value(reg, ty).map_err(|e| ValueError::Type { path: path.into(), source: Box::new(e) })?;
    let map = match yaml {
        Yaml::Mapping(m) => m,
        Yaml::Null => return Ok(value),
        other => return Err(ValueError::NotMapping { path: path.into(), type_name: ty.full(), found: describe(other) }),
    };
    let spec = reg.get(ty).expect("default_value checked it");
    let Value::Struct(fields) = &mut value else { unreachable!() };
    for (k, v) in map {
        let key = k.as_str().ok_or_else(|| ValueError::FieldName { path: path.into(), found: describe(k) })?;
        let Some(idx) = spec.fields.iter().position(|f| f.name == key) else {
            let names: Vec<&str> = spec.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(ValueError::UnknownField { field: join(path, key), type_name: ty.full(), known: names.join(", ") });
        };
        let f = &spec.fields[idx];
        fields[idx].1 = field_from_yaml(reg, &f.ty, v, &join(path, key))?;
    }
    Ok(value)
}

fn field_from_yaml(reg: &Registry, ty: &FieldType, y: &Yaml, path: &str) -> Result<Value, ValueError> {
    let element = |y: &Yaml, p: &str| -> Result<Value, ValueError> {
        match &ty.base {
            BaseType::Nested(t) => struct_from_yaml(reg, t, y, p),
            BaseType::Primitive(prim) => scalar_from_yaml(*prim, y, p),
        }
    };
    match ty.array {
        Array::Scalar => element(y, path),
        array => {
            let items = match y {
                Yaml::Sequence(s) => s,
                other => return Err(ValueError::Expected { path: path.into(), expected: "a list".into(), found: describe(other) }),
            };
            match array {
                Array::Fixed(n) if items.len() != n => return Err(ValueError::FixedLength { path: path.into(), n, found: items.len() }),
                Array::Bounded(n) if items.len() > n => return Err(ValueError::TooMany { path: path.into(), n, found: items.len() }),
                _ => {}
            }
            let values = items.iter().enumerate().map(|(i, y)| element(y, &format!("{path}.{i}"))).collect::<Result<Vec<_>, _>>()?;
            Ok(match array {
                Array::Fixed(_) => Value::Array(values),
                _ => sequence_value(&ty.base, values),
            })
        }
    }
}

fn scalar_from_yaml(p: Primitive, y: &Yaml, path: &str) -> Result<Value, ValueError> {
    let bad = |what: &str| ValueError::Expected { path: path.into(), expected: what.into(), found: describe(y) };
    let int = |lo: i128, hi: i128| -> Result<i128, ValueError> {
        let v = match y {
            Yaml::Number(n) if n.is_i64() => n.as_i64().unwrap() as i128,
            Yaml::Number(n) if n.is_u64() => n.as_u64().unwrap() as i128,
            _ => return Err(bad(&format!("an integer ({})", p.keyword()))),
        };
        if v < lo || v > hi {
            return Err(ValueError::OutOfRange { path: path.into(), value: v, type_name: p.keyword() });
        }
        Ok(v)
    };
    Ok(match p {
        Primitive::Bool => match y {
            Yaml::Bool(b) => Value::Bool(*b),
            _ => return Err(bad("true or false")),
        },
        Primitive::Byte | Primitive::Char | Primitive::UInt8 => Value::U8(int(0, u8::MAX as i128)? as u8),
        Primitive::Int8 => Value::I8(int(i8::MIN as i128, i8::MAX as i128)? as i8),
        Primitive::Int16 => Value::I16(int(i16::MIN as i128, i16::MAX as i128)? as i16),
        Primitive::UInt16 => Value::U16(int(0, u16::MAX as i128)? as u16),
        Primitive::Int32 => Value::I32(int(i32::MIN as i128, i32::MAX as i128)? as i32),
        Primitive::UInt32 => Value::U32(int(0, u32::MAX as i128)? as u32),
        Primitive::Int64 => Value::I64(int(i64::MIN as i128, i64::MAX as i128)? as i64),
        Primitive::UInt64 => Value::U64(int(0, u64::MAX as i128)? as u64),
        Primitive::Float32 | Primitive::Float64 => {
            let x = match y {
                Yaml::Number(n) => n.as_f64().ok_or_else(|| bad("a number"))?,
                _ => return Err(bad("a number")),
            };
            if p == Primitive::Float32 {
                Value::F32(x as f32)
            } else {
                Value::F64(x)
            }
        }
        Primitive::String(bound) | Primitive::WString(bound) => {
            let s = match y {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                Yaml::Bool(b) => b.to_string(),
                _ => return Err(bad("a string")),
            };
            if let Some(max) = bound {
                if s.chars().count() > max {
                    return Err(ValueError::StringBound { path: path.into(), max });
                }
            }
            match primitive_value(p, None) {
                Value::WString(_) => Value::WString(s),
                _ => Value::String(s),
            }
        }
    })
}

/// Options of the echo printer.
#[derive(Clone, Debug)]
pub struct EchoOptions {
    /// Arrays and strings longer than this are cut, with `'...'` marking the cut (0: never).
    pub truncate_length: usize,
    /// Print `'<array type: …, length: N>'` instead of array contents.
    pub no_arr: bool,
    /// Print `'<string length: N>'` instead of string contents.
    pub no_str: bool,
}

impl Default for EchoOptions {
    fn default() -> Self {
        EchoOptions { truncate_length: 128, no_arr: false, no_str: false }
    }
}

/// Formats a float the way Python's `repr` does (what `ros2 topic echo` prints).
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return ".nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if ["true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"].contains(&lower.as_str()) {
        return true;
    }
    if s.parse::<f64>().is_ok() || s.starts_with('.') && s[1..].parse::<f64>().is_ok() {
        return true;
    }
    let first = s.chars().next().unwrap();
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return true;
    }
    s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(|c| c.is_control())
}

fn format_string(s: &str, opts: &EchoOptions) -> String {
    if opts.no_str {
        return format!("'<string length: <{}>>'", s.chars().count());
    }
    let s: String = if opts.truncate_length > 0 && s.chars().count() > opts.truncate_length {
        let mut t: String = s.chars().take(opts.truncate_length).collect();
        t.push_str("...");
        t
    } else {
        s.to_string()
    };
    if s.chars().any(|c| c.is_control()) {
        format!("{s:?}")
    } else if needs_quotes(&s) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s
    }
}

fn scalar_text(v: &Value, opts: &EchoOptions) -> Option<String> {
    Some(match v {
        Value::Bool(b) => {
            if *b {
                "true".into()
            } else {
                "false".into()
            }
        }
        Value::I8(x) => x.to_string(),
        Value::U8(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::F32(x) => format_float(*x as f64),
        Value::F64(x) => format_float(*x),
        Value::String(s) | Value::WString(s) => format_string(s, opts),
        _ => return None,
    })
}

/// The items of an array-like value, truncated per the options; `true` when cut.
fn array_items(v: &Value, opts: &EchoOptions) -> Option<(Vec<Value>, bool, usize)> {
    let all: Vec<Value> = match v {
        Value::Bytes(b) => b.iter().map(|x| Value::U8(*x)).take(limit(opts, b.len())).collect(),
        Value::Array(items) | Value::Seq(items) => items.iter().take(limit(opts, items.len())).cloned().collect(),
        _ => return None,
    };
    let len = match v {
        Value::Bytes(b) => b.len(),
        Value::Array(i) | Value::Seq(i) => i.len(),
        _ => 0,
    };
    Some((all, len > limit(opts, len), len))
}

fn limit(opts: &EchoOptions, len: usize) -> usize {
    if opts.truncate_length == 0 {
        len
    } else {
        len.min(opts.truncate_length)
    }
}

/// Block YAML of a value, as `ros2 topic echo` prints one message (without the `---`).
pub fn to_yaml(v: &Value, opts: &EchoOptions) -> String {
    let mut out = String::new();
    match v {
        Value::Struct(fields) => write_struct(fields, 0, opts, &mut out),
        other => {
            if let Some(s) = scalar_text(other, opts) {
                out.push_str(&s);
                out.push('\n');
            } else {
                write_array(other, 0, opts, &mut out);
            }
        }
    }
    out
}

fn write_struct(fields: &[(String, Value)], indent: usize, opts: &EchoOptions, out: &mut String) {
    for (i, (name, v)) in fields.iter().enumerate() {
        // In a list item the first key shares the "- " line.
        let pad = if i == 0 && indent > 0 && out.ends_with("- ") { String::new() } else { " ".repeat(indent) };
        write_entry(&pad, name, v, indent, opts, out);
    }
}

fn write_entry(pad: &str, name: &str, v: &Value, indent: usize, opts: &EchoOptions, out: &mut String) {
    if let Some(s) = scalar_text(v, opts) {
        let _ = writeln!(out, "{pad}{name}: {s}");
        return;
    }
    match v {
        Value::Struct(fields) => {
            let _ = writeln!(out, "{pad}{name}:");
            write_struct(fields, indent + 2, opts, out);
        }
        _ => {
            let (items, _, len) = array_items(v, opts).unwrap();
            if opts.no_arr {
                let _ = writeln!(out, "{pad}{name}: '<sequence length: <{len}>>'");
            } else if items.is_empty() {
                let _ = writeln!(out, "{pad}{name}: []");
            } else {
                let _ = writeln!(out, "{pad}{name}:");
                write_array(v, indent, opts, out);
            }
        }
    }
}

fn write_array(v: &Value, indent: usize, opts: &EchoOptions, out: &mut String) {
    let (items, cut, _) = array_items(v, opts).unwrap_or_default();
    let pad = " ".repeat(indent);
    for item in &items {
        if let Some(s) = scalar_text(item, opts) {
            let _ = writeln!(out, "{pad}- {s}");
        } else if let Value::Struct(fields) = item {
            out.push_str(&pad);
            out.push_str("- ");
            write_struct(fields, indent + 2, opts, out);
        } else {
            let _ = writeln!(out, "{pad}-");
            write_array(item, indent + 2, opts, out);
        }
    }
    if cut {
        let _ = writeln!(out, "{pad}- '...'");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        let mut r = Registry::new();
        r.add_msg("geometry_msgs", "Vector3", "float64 x\nfloat64 y\nfloat64 z\n").unwrap();
        r.add_msg("geometry_msgs", "Twist", "Vector3 linear\nVector3 angular\n").unwrap();
        r.add_msg("p", "List", "geometry_msgs/Vector3[] vs\nuint8[] data\nstring name\nint32[2] pair\nfloat32 f 0.5\n").unwrap();
        r
    }

    #[test]
    fn literal_fills_given_fields_and_keeps_defaults() {
        let r = reg();
        let v = from_literal(&r, &TypeName::new("geometry_msgs", "Twist"), "{linear: {x: 1.5}, angular: {z: -2}}").unwrap();
        assert_eq!(v.select("linear.x"), Some(&Value::F64(1.5)));
        assert_eq!(v.select("angular.z"), Some(&Value::F64(-2.0)));
        assert_eq!(v.select("linear.y"), Some(&Value::F64(0.0)));
        let l = from_literal(&r, &TypeName::new("p", "List"), "{vs: [{x: 1}], data: [1, 2, 255], name: '7'}").unwrap();
        assert_eq!(l.select("f"), Some(&Value::F32(0.5)));
        assert_eq!(l.select("data").map(|d| matches!(d, Value::Bytes(b) if b.len() == 3)), Some(true));
    }

    #[test]
    fn literal_errors_name_the_field() {
        let r = reg();
        let t = TypeName::new("geometry_msgs", "Twist");
        let e = from_literal(&r, &t, "{linear: {w: 1}}").unwrap_err().to_string();
        assert!(e.contains("'linear.w' is not a field of geometry_msgs/msg/Vector3"), "{e}");
        let e = from_literal(&r, &t, "{linear: {x: abc}}").unwrap_err().to_string();
        assert!(e.contains("linear.x: expected a number"), "{e}");
        let e = from_literal(&r, &TypeName::new("p", "List"), "{pair: [1]}").unwrap_err().to_string();
        assert!(e.contains("pair: expected exactly 2 values"), "{e}");
        let e = from_literal(&r, &TypeName::new("p", "List"), "{data: [256]}").unwrap_err().to_string();
        assert!(e.contains("data.0: 256 is out of range for uint8"), "{e}");
        let e = from_literal(&r, &t, "{linear: {x: 1}").unwrap_err().to_string();
        assert!(e.contains("is not a YAML literal"), "{e}");
    }

    #[test]
    fn echo_yaml_looks_like_ros2() {
        let r = reg();
        let v = from_literal(&r, &TypeName::new("p", "List"), "{vs: [{x: 1}, {y: 0.1}], data: [1, 2], name: ''}").unwrap();
        let text = to_yaml(&v, &EchoOptions::default());
        let expected =
            "vs:\n- x: 1.0\n  y: 0.0\n  z: 0.0\n- x: 0.0\n  y: 0.1\n  z: 0.0\ndata:\n- 1\n- 2\nname: ''\npair:\n- 0\n- 0\nf: 0.5\n";
        assert_eq!(text, expected);
        let cut = to_yaml(&v, &EchoOptions { truncate_length: 1, ..Default::default() });
        assert!(cut.contains("data:\n- 1\n- '...'\n"), "{cut}");
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e-5), "1e-05");
        assert_eq!(format_float(1e16), "1e+16");
        assert_eq!(format_float(123456.5), "123456.5");
        assert_eq!(format_float(0.1f32 as f64), "0.10000000149011612");
    }
}
