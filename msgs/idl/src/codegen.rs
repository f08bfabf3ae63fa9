//! Rust source for message types, generated from a [`Registry`] at build time so
//! that the `.msg` files stay the one source of truth.
//!
//! Each `pkg/msg/Type` becomes `crate::pkg::msg::Type`, a plain struct whose
//! serde form is the CDR layout (fields in order, fixed arrays without length,
//! byte sequences as one block), with its constants, its defaults and an
//! implementation of [`crate::Message`] carrying name, RIHS01 hash and schema.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::parse::{Array, BaseType, Field, Kind, Literal, MsgSpec, Primitive};
use crate::registry::{Registry, RegistryError};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async",
    "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield",
    "try", "gen",
];

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

fn prim_rust(p: Primitive) -> &'static str {
    match p {
        Primitive::Bool => "bool",
        Primitive::Byte | Primitive::Char | Primitive::UInt8 => "u8",
        Primitive::Int8 => "i8",
        Primitive::Int16 => "i16",
        Primitive::UInt16 => "u16",
        Primitive::Int32 => "i32",
        Primitive::UInt32 => "u32",
        Primitive::Int64 => "i64",
        Primitive::UInt64 => "u64",
        Primitive::Float32 => "f32",
        Primitive::Float64 => "f64",
        Primitive::String(_) => "::std::string::String",
        Primitive::WString(_) => "::s2r_idl::WString",
    }
}

fn base_rust(b: &BaseType) -> String {
    match b {
        BaseType::Primitive(p) => prim_rust(*p).to_string(),
        BaseType::Nested(t) => format!("crate::{}::{}::{}", t.package, t.kind.as_str(), t.name),
    }
}

fn field_rust(f: &Field) -> String {
    let base = base_rust(&f.ty.base);
    let byte_like = matches!(f.ty.base, BaseType::Primitive(p) if p.is_byte_like());
    match f.ty.array {
        Array::Scalar => base,
        Array::Fixed(n) => format!("[{base}; {n}]"),
        Array::Bounded(_) | Array::Unbounded if byte_like => "::s2r_idl::Bytes".to_string(),
        Array::Bounded(_) | Array::Unbounded => format!("::std::vec::Vec<{base}>"),
    }
}

fn scalar_literal(p: Primitive, v: &Literal) -> String {
    match (p, v) {
        (Primitive::Bool, Literal::Bool(b)) => b.to_string(),
        (Primitive::String(_), Literal::String(s)) => format!("::std::string::String::from({s:?})"),
        (Primitive::WString(_), Literal::String(s)) => format!("::s2r_idl::WString(::std::string::String::from({s:?}))"),
        (Primitive::Float32, Literal::Float(x)) => format!("{x:?}_f32"),
        (Primitive::Float64, Literal::Float(x)) => format!("{x:?}_f64"),
        (Primitive::Float32, Literal::Int(x)) => format!("{x}.0_f32"),
        (Primitive::Float64, Literal::Int(x)) => format!("{x}.0_f64"),
        (p, Literal::Int(x)) => format!("{x}_{}", prim_rust(p)),
        (p, v) => panic!("default {v:?} does not fit {}", p.keyword()),
    }
}

fn default_expr(f: &Field) -> String {
    let prim = match &f.ty.base {
        BaseType::Primitive(p) => Some(*p),
        BaseType::Nested(_) => None,
    };
    match (&f.default, f.ty.array, prim) {
        (None, Array::Fixed(_), _) => "::core::array::from_fn(|_| ::core::default::Default::default())".into(),
        (None, _, _) => "::core::default::Default::default()".into(),
        (Some(v), Array::Scalar, Some(p)) => scalar_literal(p, v),
        (Some(Literal::Array(items)), array, Some(p)) => {
            let elems: Vec<String> = items.iter().map(|v| scalar_literal(p, v)).collect();
            match array {
                Array::Fixed(_) => format!("[{}]", elems.join(", ")),
                _ if p.is_byte_like() => format!("::s2r_idl::Bytes::from(::std::vec![{}])", elems.join(", ")),
                _ => format!("::std::vec![{}]", elems.join(", ")),
            }
        }
        (Some(v), _, _) => panic!("default {v:?} of {} does not fit its type", f.name),
    }
}

fn const_rust(p: Primitive) -> &'static str {
    match p {
        Primitive::String(_) | Primitive::WString(_) => "&'static str",
        p => prim_rust(p),
    }
}

fn const_literal(p: Primitive, v: &Literal) -> String {
    match (p, v) {
        (Primitive::String(_) | Primitive::WString(_), Literal::String(s)) => format!("{s:?}"),
        _ => scalar_literal(p, v),
    }
}

/// What the `.msg` text says of each field and constant: the comment at the
/// end of its line, else the comment lines right above it (a blank line ends
/// a block). Members without one are documented by their name and type.
fn member_comments(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut above: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            above.clear();
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            above.push(c.trim());
            continue;
        }
        let mut words = t.split_whitespace();
        let (Some(_), Some(rest)) = (words.next(), words.next()) else { continue };
        let name = rest.split('=').next().unwrap_or(rest).to_string();
        // A string constant's value may hold '#'; its comment is the block above.
        let trailing = if t.contains('=') && t.contains(['"', '\'']) { None } else { t.split_once('#').map(|(_, c)| c.trim()) };
        let doc = match trailing.filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => above.iter().copied().filter(|c| !c.is_empty()).collect::<Vec<_>>().join(" "),
        };
        if !doc.is_empty() {
            out.insert(name, doc);
        }
        above.clear();
    }
    out
}

/// A one-line doc comment (`///`) at `indent`.
fn doc_line(out: &mut String, indent: &str, text: &str) {
    writeln!(out, "{indent}/// {}", text.replace('\n', " ")).unwrap();
}

fn gen_struct(reg: &Registry, spec: &MsgSpec, out: &mut String) -> Result<(), RegistryError> {
    let name = &spec.name.name;
    let comments = member_comments(&spec.text);
    let member_doc = |member: &str, ty: String| comments.get(member).cloned().unwrap_or_else(|| format!("`{member}` ({ty})."));
    let full = spec.name.full();
    writeln!(out, "/// `{full}`, generated from its `.msg` file.").unwrap();
    writeln!(out, "///\n/// ```text").unwrap();
    for line in spec.text.lines() {
        writeln!(out, "/// {line}").unwrap();
    }
    writeln!(out, "/// ```").unwrap();
    writeln!(out, "#[derive(Clone, Debug, PartialEq, ::serde::Serialize, ::serde::Deserialize)]").unwrap();
    writeln!(out, "pub struct {name} {{").unwrap();
    if spec.fields.is_empty() {
        doc_line(out, "    ", "The member ROS 2 gives a message without fields (always 0).");
        writeln!(out, "    pub structure_needs_at_least_one_member: u8,").unwrap();
    }
    for f in &spec.fields {
        doc_line(out, "    ", &member_doc(&f.name, field_rust(f)));
        if matches!(f.ty.array, Array::Fixed(_)) {
            writeln!(out, "    #[serde(with = \"::s2r_idl::fixed_array\")]").unwrap();
        }
        writeln!(out, "    pub {}: {},", ident(&f.name), field_rust(f)).unwrap();
    }
    writeln!(out, "}}\n").unwrap();

    writeln!(out, "impl {name} {{").unwrap();
    for c in &spec.constants {
        doc_line(out, "    ", &member_doc(&c.name, const_rust(c.ty).to_string()));
        writeln!(out, "    pub const {}: {} = {};", c.name, const_rust(c.ty), const_literal(c.ty, &c.value)).unwrap();
    }
    writeln!(out, "}}\n").unwrap();

    writeln!(out, "impl ::core::default::Default for {name} {{\n    fn default() -> Self {{\n        Self {{").unwrap();
    if spec.fields.is_empty() {
        writeln!(out, "            structure_needs_at_least_one_member: 0,").unwrap();
    }
    for f in &spec.fields {
        writeln!(out, "            {}: {},", ident(&f.name), default_expr(f)).unwrap();
    }
    writeln!(out, "        }}\n    }}\n}}\n").unwrap();

    let hash = reg.type_hash(&spec.name)?;
    let schema = reg.schema_text(&spec.name)?;
    writeln!(
        out,
        "impl ::s2r_idl::Message for {name} {{\n    const TYPE_NAME: &'static str = {full:?};\n    \
         const TYPE_HASH: &'static str = {hash:?};\n    const SCHEMA: &'static str = {schema:?};\n}}\n"
    )
    .unwrap();
    Ok(())
}

/// Rust source for every type of `reg`: one `pub mod <pkg> { pub mod msg { … } }`
/// per package (and `pub mod srv { … }` with each service's request, response
/// and a unit type implementing [`crate::Service`]), a `DEFINITIONS` table of
/// the raw `.msg` texts, a `SERVICES` table of the services' halves, and a
/// `visit_all` function that calls a [`crate::MessageVisitor`] once per message type.
/// Fails, writing nothing, when a type uses one that is missing or contains itself.
pub fn generate(reg: &Registry) -> Result<String, RegistryError> {
    reg.validate()?;
    let mut by_pkg: BTreeMap<(&str, Kind), Vec<&MsgSpec>> = BTreeMap::new();
    for t in reg.types() {
        by_pkg.entry((t.package.as_str(), t.kind)).or_default().push(reg.get(t).unwrap());
    }
    let packages: std::collections::BTreeSet<&str> = by_pkg.keys().map(|(p, _)| *p).collect();
    let mut out = String::from("// Generated by s2r_idl::codegen from the .msg and .srv files. Do not edit.\n\n");
    for pkg in &packages {
        writeln!(
            out,
            "/// The interfaces of the ROS package `{pkg}`.\n#[allow(clippy::all, non_snake_case, non_camel_case_types)]\npub mod {pkg} {{"
        )
        .unwrap();
        if let Some(specs) = by_pkg.get(&(*pkg, Kind::Msg)) {
            writeln!(out, "/// Its messages (`{pkg}/msg/*`).\npub mod msg {{").unwrap();
            for spec in specs {
                gen_struct(reg, spec, &mut out)?;
            }
            writeln!(out, "}}").unwrap();
        }
        if let Some(specs) = by_pkg.get(&(*pkg, Kind::Srv)) {
            writeln!(out, "/// Its services (`{pkg}/srv/*`): each one's request, response and the service itself.\npub mod srv {{")
                .unwrap();
            for spec in specs {
                gen_struct(reg, spec, &mut out)?;
                if let Some(service) = spec.name.name.strip_suffix("_Request") {
                    writeln!(
                        out,
                        "/// The service `{pkg}/srv/{service}`: [`{service}_Request`] answered by [`{service}_Response`].\n\
                         #[derive(Clone, Copy, Debug)]\npub struct {service};\n\n\
                         impl ::s2r_idl::Service for {service} {{\n    type Request = {service}_Request;\n    \
                         type Response = {service}_Response;\n    const TYPE_NAME: &'static str = \"{pkg}/srv/{service}\";\n}}\n"
                    )
                    .unwrap();
                }
            }
            writeln!(out, "}}").unwrap();
        }
        writeln!(out, "}}\n").unwrap();
    }
    writeln!(out, "/// `(package, type, .msg text)` of every message type compiled in.").unwrap();
    writeln!(out, "pub const DEFINITIONS: &[(&str, &str, &str)] = &[").unwrap();
    for t in reg.types().filter(|t| t.kind == Kind::Msg) {
        writeln!(out, "    ({:?}, {:?}, {:?}),", t.package, t.name, reg.get(t).unwrap().text).unwrap();
    }
    writeln!(out, "];\n").unwrap();
    writeln!(out, "/// `(package, service, request text, response text)` of every service compiled in.").unwrap();
    writeln!(out, "pub const SERVICES: &[(&str, &str, &str, &str)] = &[").unwrap();
    for t in reg.types().filter(|t| t.kind == Kind::Srv) {
        let Some(service) = t.name.strip_suffix("_Request") else { continue };
        let response = reg.get(&crate::TypeName::service_part(&t.package, service, "Response")).ok_or_else(|| {
            RegistryError::MissingDependency { referrer: t.full(), missing: format!("{}/srv/{service}_Response", t.package) }
        })?;
        writeln!(out, "    ({:?}, {:?}, {:?}, {:?}),", t.package, service, reg.get(t).unwrap().text, response.text).unwrap();
    }
    writeln!(out, "];\n").unwrap();
    writeln!(out, "/// Calls `v.visit::<T>()` for every message type compiled in.").unwrap();
    writeln!(out, "pub fn visit_all<V: ::s2r_idl::MessageVisitor>(v: &mut V) {{").unwrap();
    for t in reg.types().filter(|t| t.kind == Kind::Msg) {
        writeln!(out, "    v.visit::<crate::{}::msg::{}>();", t.package, t.name).unwrap();
    }
    writeln!(out, "}}").unwrap();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::member_comments;

    #[test]
    fn members_take_the_comment_on_their_line_or_above() {
        let text = "# Header\n\n# The stamp.\n# In seconds.\nfloat64 stamp\nuint8 RED=1 # red light\nstring NAME=\"a#b\"\n\nint32 x  # across\nint32 y\n";
        let c = member_comments(text);
        assert_eq!(c["stamp"], "The stamp. In seconds.");
        assert_eq!(c["RED"], "red light");
        assert_eq!(c["x"], "across");
        assert!(!c.contains_key("NAME") && !c.contains_key("y"), "{c:?}");
    }
}
