//! A set of interface definitions that refer to one another: lookup by any
//! spelling of a name, transitive dependencies, RIHS01 type hashes (REP-2011) and
//! the concatenated `ros2msg` schema text that rosbag2 stores in MCAP files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::parse::{parse_msg, parse_srv, Array, BaseType, MsgSpec, ParseError, Primitive, TypeName};

/// The line that separates definitions in a concatenated `ros2msg` schema.
const SCHEMA_SEPARATOR: &str = "================================================================================";

/// What is wrong with a set of interface definitions or a lookup in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A name that is not a valid interface name at all.
    #[error("'{0}' is not an interface name (expected pkg/msg/Type)")]
    BadName(String),
    /// A type that is not in the registry.
    #[error("unknown message type '{0}'")]
    Unknown(String),
    /// `referrer` uses `missing`, which is not in the registry.
    #[error("{referrer} uses {missing}, whose definition is missing")]
    MissingDependency {
        /// The type that uses it.
        referrer: String,
        /// The type that is missing.
        missing: String,
    },
    /// A type that contains itself.
    #[error("{0} contains itself")]
    Recursive(String),
    /// A definition that does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A concatenated schema that cannot be split into definitions.
    #[error("schema of {type_name}: {reason}")]
    BadSchema {
        /// The type whose schema it is.
        type_name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parsed definitions by name. Adding one does not check that the types it
/// uses are present: lookups that follow references ([`Registry::dependencies`],
/// hashes, schemas) report what is missing. Cloning shares the parsed specs.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    specs: BTreeMap<TypeName, Arc<MsgSpec>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `text` as `package/msg/name` and adds it, replacing an earlier definition.
    /// Fails, adding nothing, when the text does not parse.
    pub fn add_msg(&mut self, package: &str, name: &str, text: &str) -> Result<Arc<MsgSpec>, ParseError> {
        let spec = Arc::new(parse_msg(package, name, text)?);
        self.specs.insert(spec.name.clone(), spec.clone());
        Ok(spec)
    }

    /// Parses `text` as the service `package/srv/name` and adds its request and
    /// response (`name_Request`, `name_Response`), replacing earlier ones.
    /// Fails, adding nothing, when the text does not parse.
    pub fn add_srv(&mut self, package: &str, name: &str, text: &str) -> Result<(Arc<MsgSpec>, Arc<MsgSpec>), ParseError> {
        let (req, resp) = parse_srv(package, name, text)?;
        let (req, resp) = (Arc::new(req), Arc::new(resp));
        self.specs.insert(req.name.clone(), req.clone());
        self.specs.insert(resp.name.clone(), resp.clone());
        Ok((req, resp))
    }

    /// The definition of exactly this type, if present.
    pub fn get(&self, name: &TypeName) -> Option<&Arc<MsgSpec>> {
        self.specs.get(name)
    }

    /// Looks a type up by `pkg/msg/Type`, `pkg/Type` or its DDS name; fails with
    /// [`RegistryError::BadName`] for none of these, [`RegistryError::Unknown`] when absent.
    pub fn lookup(&self, name: &str) -> Result<&Arc<MsgSpec>, RegistryError> {
        let t = TypeName::parse(name).ok_or_else(|| RegistryError::BadName(name.to_string()))?;
        self.specs.get(&t).ok_or_else(|| RegistryError::Unknown(t.full()))
    }

    /// Every type present, sorted by package, then name.
    pub fn types(&self) -> impl Iterator<Item = &TypeName> {
        self.specs.keys()
    }

    /// Every type `name` uses, directly or not, in order of first use (depth first).
    /// Fails when `name` or a type it uses is missing, or when one contains itself.
    pub fn dependencies(&self, name: &TypeName) -> Result<Vec<TypeName>, RegistryError> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        let mut path = Vec::new();
        self.visit(name, &mut order, &mut seen, &mut path)?;
        order.retain(|t| t != name);
        Ok(order)
    }

    fn visit(
        &self,
        name: &TypeName,
        order: &mut Vec<TypeName>,
        seen: &mut BTreeSet<TypeName>,
        path: &mut Vec<TypeName>,
    ) -> Result<(), RegistryError> {
        if path.contains(name) {
            return Err(RegistryError::Recursive(name.full()));
        }
        if !seen.insert(name.clone()) {
            return Ok(());
        }
        let spec = match self.specs.get(name) {
            Some(s) => s,
            None => match path.last() {
                Some(referrer) => return Err(RegistryError::MissingDependency { referrer: referrer.full(), missing: name.full() }),
                None => return Err(RegistryError::Unknown(name.full())),
            },
        };
        order.push(name.clone());
        path.push(name.clone());
        for f in &spec.fields {
            if let BaseType::Nested(t) = &f.ty.base {
                self.visit(t, order, seen, path)?;
            }
        }
        path.pop();
        Ok(())
    }

    /// Checks that every definition's dependencies are present and not recursive.
    pub(crate) fn validate(&self) -> Result<(), RegistryError> {
        for t in self.specs.keys() {
            self.dependencies(t)?;
        }
        Ok(())
    }

    /// The concatenated `ros2msg` schema: the type's own text, then each dependency
    /// after a separator line and `MSG: pkg/Type`. Fails as [`Registry::dependencies`].
    pub fn schema_text(&self, name: &TypeName) -> Result<String, RegistryError> {
        let deps = self.dependencies(name)?;
        let mut out = self.specs[name].text.trim_end_matches('\n').to_string();
        for d in deps {
            out.push('\n');
            out.push_str(SCHEMA_SEPARATOR);
            out.push_str("\nMSG: ");
            out.push_str(&d.short());
            out.push('\n');
            out.push_str(self.specs[&d].text.trim_end_matches('\n'));
        }
        out.push('\n');
        Ok(out)
    }

    /// Builds a registry from a concatenated `ros2msg` schema whose first
    /// definition is `top` (as found in MCAP schema records). Fails when a
    /// definition does not parse, the separators are not followed by `MSG:`
    /// lines, or `top` uses a type the text does not define.
    pub fn from_schema_text(top: &TypeName, text: &str) -> Result<Registry, RegistryError> {
        let bad = |reason: String| RegistryError::BadSchema { type_name: top.full(), reason };
        let mut reg = Registry::new();
        let mut current = top.clone();
        let mut body = String::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let is_sep = line.len() >= 40 && line.chars().all(|c| c == '=');
            if is_sep {
                reg.add_msg(&current.package, &current.name, &body)?;
                body.clear();
                let header = lines.next().ok_or_else(|| bad("separator without a MSG: line".into()))?;
                let name = header
                    .strip_prefix("MSG:")
                    .map(str::trim)
                    .ok_or_else(|| bad(format!("expected 'MSG: pkg/Type' after a separator, found '{header}'")))?;
                current = TypeName::parse(name).ok_or_else(|| bad(format!("'{name}' is not a type name")))?;
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
        reg.add_msg(&current.package, &current.name, &body)?;
        reg.dependencies(top)?;
        Ok(reg)
    }

    /// The RIHS01 hash of a type (REP-2011): SHA-256 of the JSON type description
    /// of the type and everything it references, defaults left out. Equal to
    /// the hash ROS 2 (Iron and later) advertises for the same definition.
    /// Fails as [`Registry::dependencies`].
    pub fn type_hash(&self, name: &TypeName) -> Result<String, RegistryError> {
        let mut referenced: Vec<TypeName> = self.dependencies(name)?;
        referenced.sort_by_key(|t| t.full());
        let mut json = String::from("{\"type_description\": ");
        self.describe(name, &mut json);
        json.push_str(", \"referenced_type_descriptions\": [");
        for (i, t) in referenced.iter().enumerate() {
            if i > 0 {
                json.push_str(", ");
            }
            self.describe(t, &mut json);
        }
        json.push_str("]}");
        let digest = Sha256::digest(json.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("RIHS01_{hex}"))
    }

    /// Writes one IndividualTypeDescription in the exact form Python's `json.dumps`
    /// gives, which the reference implementation hashes.
    fn describe(&self, name: &TypeName, out: &mut String) {
        let spec = &self.specs[name];
        out.push_str(&format!("{{\"type_name\": \"{}\", \"fields\": [", name.full()));
        let mut first = true;
        let mut field = |fname: &str, type_id: u32, capacity: usize, string_capacity: usize, nested: &str| {
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(&format!(
                "{{\"name\": \"{fname}\", \"type\": {{\"type_id\": {type_id}, \"capacity\": {capacity}, \
                 \"string_capacity\": {string_capacity}, \"nested_type_name\": \"{nested}\"}}}}"
            ));
        };
        if spec.fields.is_empty() {
            // rosidl gives empty structures one placeholder member.
            field("structure_needs_at_least_one_member", 3, 0, 0, "");
        }
        for f in &spec.fields {
            let (offset, capacity) = match f.ty.array {
                Array::Scalar => (0, 0),
                Array::Fixed(n) => (48, n),
                Array::Bounded(n) => (96, n),
                Array::Unbounded => (144, 0),
            };
            let (base_id, string_capacity, nested) = match &f.ty.base {
                BaseType::Nested(t) => (1, 0, t.full()),
                BaseType::Primitive(p) => {
                    let (id, sc) = primitive_type_id(*p);
                    (id, sc, String::new())
                }
            };
            field(&f.name, offset + base_id, capacity, string_capacity, &nested);
        }
        out.push_str("]}");
    }
}

/// FieldType ids of `type_description_interfaces`, with msg `char` mapped to
/// uint8 as rosidl's msg-to-IDL translation does.
fn primitive_type_id(p: Primitive) -> (u32, usize) {
    match p {
        Primitive::Int8 => (2, 0),
        Primitive::UInt8 | Primitive::Char => (3, 0),
        Primitive::Int16 => (4, 0),
        Primitive::UInt16 => (5, 0),
        Primitive::Int32 => (6, 0),
        Primitive::UInt32 => (7, 0),
        Primitive::Int64 => (8, 0),
        Primitive::UInt64 => (9, 0),
        Primitive::Float32 => (10, 0),
        Primitive::Float64 => (11, 0),
        Primitive::Bool => (15, 0),
        Primitive::Byte => (16, 0),
        Primitive::String(None) => (17, 0),
        Primitive::WString(None) => (18, 0),
        Primitive::String(Some(n)) => (21, n),
        Primitive::WString(Some(n)) => (22, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Registry {
        let mut r = Registry::new();
        r.add_msg("builtin_interfaces", "Time", "int32 sec\nuint32 nanosec\n").unwrap();
        r.add_msg("std_msgs", "Header", "builtin_interfaces/Time stamp\nstring frame_id\n").unwrap();
        r.add_msg("std_msgs", "String", "string data\n").unwrap();
        r
    }

    #[test]
    fn hashes_match_ros2_jazzy() {
        // Published by ROS 2 Jazzy (std_msgs' generated type description).
        let r = small();
        assert_eq!(
            r.type_hash(&TypeName::new("std_msgs", "String")).unwrap(),
            "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        );
    }

    #[test]
    fn schema_text_round_trips() {
        let r = small();
        let h = TypeName::new("std_msgs", "Header");
        let text = r.schema_text(&h).unwrap();
        assert!(text.contains(&format!("{SCHEMA_SEPARATOR}\nMSG: builtin_interfaces/Time\n")));
        let back = Registry::from_schema_text(&h, &text).unwrap();
        assert_eq!(back.type_hash(&h).unwrap(), r.type_hash(&h).unwrap());
    }

    #[test]
    fn missing_and_recursive_types_are_named() {
        let mut r = Registry::new();
        r.add_msg("p", "A", "p/B b\n").unwrap();
        let e = r.dependencies(&TypeName::new("p", "A")).unwrap_err();
        assert_eq!(e.to_string(), "p/msg/A uses p/msg/B, whose definition is missing");
        r.add_msg("p", "B", "p/A a\n").unwrap();
        assert!(matches!(r.validate(), Err(RegistryError::Recursive(_))));
    }
}
