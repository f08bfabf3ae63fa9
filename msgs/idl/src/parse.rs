//! The ROS 2 `.msg` grammar: fields, constants, defaults, array and string bounds.
//!
//! Follows the rules of `rosidl_adapter` (the reference parser): field names are
//! lower snake case, constants upper case, `Header` means `std_msgs/Header`, a type
//! without a package is in the message's own package, and `#` starts a comment
//! except inside a quoted string or a string constant's value.

use std::fmt;

/// Whether an interface type is a message (`pkg/msg/Name`) or one half of a
/// service (`pkg/srv/Name_Request`, `pkg/srv/Name_Response`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Kind {
    /// From a `.msg` file.
    #[default]
    Msg,
    /// The request or the response of a `.srv` file.
    Srv,
}

impl Kind {
    /// `msg` or `srv`: the middle part of the type's names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Msg => "msg",
            Kind::Srv => "srv",
        }
    }
}

/// A fully qualified interface name, `package/msg/Name` (or `package/srv/Name_Request`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeName {
    /// The ROS package, e.g. `sensor_msgs`.
    pub package: String,
    /// The type within it, e.g. `Image`.
    pub name: String,
    /// A message, or a service's request or response.
    pub kind: Kind,
}

impl TypeName {
    /// A message type, the two parts taken as given, without checking them
    /// (see [`TypeName::parse`] for a checked form).
    pub fn new(package: &str, name: &str) -> Self {
        TypeName { package: package.to_string(), name: name.to_string(), kind: Kind::Msg }
    }

    /// The request (`Name_Request`) or response (`Name_Response`) type of the service `package/srv/name`.
    pub fn service_part(package: &str, name: &str, part: &str) -> Self {
        TypeName { package: package.to_string(), name: format!("{name}_{part}"), kind: Kind::Srv }
    }

    /// Accepts `pkg/msg/Name`, `pkg/Name` and `pkg::msg::dds_::Name_` (the DDS form),
    /// and for services' halves `pkg/srv/Name_Request` and `pkg::srv::dds_::Name_Request_`;
    /// `None` for any other shape, a package that is not lower snake case or a
    /// name that is not CamelCase.
    pub fn parse(s: &str) -> Option<TypeName> {
        let with = |pkg: &str, kind: &str, name: &str| match kind {
            "msg" => Some(TypeName::new(pkg, name)),
            "srv" => Some(TypeName { kind: Kind::Srv, ..TypeName::new(pkg, name) }),
            _ => None,
        };
        if let Some(rest) = s.strip_suffix('_') {
            let parts: Vec<&str> = rest.split("::").collect();
            if parts.len() == 4 && parts[2] == "dds_" {
                return with(parts[0], parts[1], parts[3]).filter(|t| t.is_valid());
            }
        }
        let parts: Vec<&str> = s.split('/').collect();
        let t = match parts.as_slice() {
            [pkg, kind, name] => with(pkg, kind, name)?,
            [pkg, name] => TypeName::new(pkg, name),
            _ => return None,
        };
        t.is_valid().then_some(t)
    }

    fn is_valid(&self) -> bool {
        is_package_name(&self.package)
            && match self.kind {
                Kind::Msg => is_message_name(&self.name),
                Kind::Srv => service_of(&self.name).is_some(),
            }
    }

    /// `pkg/msg/Name`, the form ROS 2 tools print and type descriptions hash.
    pub fn full(&self) -> String {
        format!("{}/{}/{}", self.package, self.kind.as_str(), self.name)
    }

    /// `pkg/Name` (`pkg/srv/Name_Request` for a service's half), the form used
    /// in `MSG:` lines of concatenated schemas.
    pub(crate) fn short(&self) -> String {
        match self.kind {
            Kind::Msg => format!("{}/{}", self.package, self.name),
            Kind::Srv => self.full(),
        }
    }

    /// `pkg::msg::dds_::Name_`, the DDS type name ROS 2 middlewares register.
    pub fn dds(&self) -> String {
        format!("{}::{}::dds_::{}_", self.package, self.kind.as_str(), self.name)
    }
}

/// The service and the half a service part's name (`Name_Request`, `Name_Response`) stands for.
fn service_of(name: &str) -> Option<(&str, &str)> {
    let (service, part) = name.rsplit_once('_')?;
    (is_message_name(service) && matches!(part, "Request" | "Response")).then_some((service, part))
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

/// Primitive types of the interface language (after the msg → IDL mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `bool`: one byte, 0 or 1.
    Bool,
    /// `byte`: an opaque octet (IDL `octet`); hashed with its own type id.
    Byte,
    /// `char`: an unsigned 8-bit value, not a character; rosidl maps it to `uint8`.
    Char,
    /// `int8`.
    Int8,
    /// `uint8`.
    UInt8,
    /// `int16`.
    Int16,
    /// `uint16`.
    UInt16,
    /// `int32`.
    Int32,
    /// `uint32`.
    UInt32,
    /// `int64`.
    Int64,
    /// `uint64`.
    UInt64,
    /// `float32`: IEEE 754 single precision.
    Float32,
    /// `float64`: IEEE 754 double precision.
    Float64,
    /// `string` or `string<=N`.
    String(Option<usize>),
    /// `wstring` or `wstring<=N`.
    WString(Option<usize>),
}

impl Primitive {
    fn from_keyword(word: &str) -> Option<Primitive> {
        Some(match word {
            "bool" => Primitive::Bool,
            "byte" => Primitive::Byte,
            "char" => Primitive::Char,
            "int8" => Primitive::Int8,
            "uint8" => Primitive::UInt8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::UInt16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::UInt32,
            "int64" => Primitive::Int64,
            "uint64" => Primitive::UInt64,
            "float32" => Primitive::Float32,
            "float64" => Primitive::Float64,
            "string" => Primitive::String(None),
            "wstring" => Primitive::WString(None),
            _ => return None,
        })
    }

    pub(crate) fn is_string(&self) -> bool {
        matches!(self, Primitive::String(_) | Primitive::WString(_))
    }

    /// Byte-like types whose sequences travel as one block of bytes.
    pub(crate) fn is_byte_like(&self) -> bool {
        matches!(self, Primitive::Byte | Primitive::UInt8 | Primitive::Char)
    }

    /// The type as written in a `.msg` file, bound included (`string<=8`).
    pub(crate) fn keyword(&self) -> String {
        match self {
            Primitive::Bool => "bool".into(),
            Primitive::Byte => "byte".into(),
            Primitive::Char => "char".into(),
            Primitive::Int8 => "int8".into(),
            Primitive::UInt8 => "uint8".into(),
            Primitive::Int16 => "int16".into(),
            Primitive::UInt16 => "uint16".into(),
            Primitive::Int32 => "int32".into(),
            Primitive::UInt32 => "uint32".into(),
            Primitive::Int64 => "int64".into(),
            Primitive::UInt64 => "uint64".into(),
            Primitive::Float32 => "float32".into(),
            Primitive::Float64 => "float64".into(),
            Primitive::String(None) => "string".into(),
            Primitive::String(Some(n)) => format!("string<={n}"),
            Primitive::WString(None) => "wstring".into(),
            Primitive::WString(Some(n)) => format!("wstring<={n}"),
        }
    }
}

/// The element type of a field, whether or not the field is an array.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BaseType {
    /// A built-in type.
    Primitive(Primitive),
    /// Another message, already resolved to its full name (`Header` is
    /// `std_msgs/Header`, a bare `Name` is in the referring package).
    Nested(TypeName),
}

/// Whether a field holds one element or several, and how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Array {
    /// `T`: a single element.
    Scalar,
    /// `T[N]`: exactly N elements, no length on the wire.
    Fixed(usize),
    /// `T[<=N]`: at most N elements, length-prefixed.
    Bounded(usize),
    /// `T[]`: any number of elements, length-prefixed.
    Unbounded,
}

/// The type of a field as declared: `float64[9]` is `Float64` in `Fixed(9)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldType {
    /// The element type.
    pub base: BaseType,
    /// The array shape around it.
    pub array: Array,
}

/// A literal value of a default or a constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `true`/`false` (`1`/`0` are accepted for `bool` too).
    Bool(bool),
    /// Any integer type; i128 holds the whole range of `int64` and `uint64`,
    /// already checked against the declared type's range.
    Int(i128),
    /// `float32` or `float64`, kept at double precision.
    Float(f64),
    /// A `string` or `wstring`, quotes removed and escapes resolved.
    String(String),
    /// An array default, `[a, b, ...]`, one element per item.
    Array(Vec<Literal>),
}

/// A field line of a `.msg` file: `TYPE name [DEFAULT]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Lower snake case.
    pub name: String,
    /// Its declared type.
    pub ty: FieldType,
    /// The default written after the name; `None` means zero/empty. Never set
    /// on fields of a message type.
    pub default: Option<Literal>,
}

/// A constant line of a `.msg` file: `TYPE NAME=VALUE`. Constants take no
/// space in the message; they become associated constants of the generated type.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// Upper case.
    pub name: String,
    /// Always a primitive, never an array.
    pub ty: Primitive,
    /// Checked against `ty`'s range; a string constant is the rest of the line,
    /// `#` included, minus surrounding quotes.
    pub value: Literal,
}

/// One parsed `.msg` file.
#[derive(Clone, Debug, PartialEq)]
pub struct MsgSpec {
    /// Its full name.
    pub name: TypeName,
    /// In declaration order, which is the wire order.
    pub fields: Vec<Field>,
    /// In declaration order.
    pub constants: Vec<Constant>,
    /// The file's text as written, comments included (what schemas carry).
    pub text: String,
}

/// A `.msg` text that does not parse: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{type_name} line {line}: {reason}")]
pub struct ParseError {
    /// The interface being parsed, e.g. `sensor_msgs/msg/Image`.
    pub type_name: String,
    /// 1-based line in the `.msg` text (0: the name itself).
    pub line: usize,
    /// What is wrong.
    pub reason: Syntax,
}

/// What is wrong with a line of a `.msg` text, or with a literal in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Syntax {
    /// Not a ROS package name.
    #[error("'{0}' is not a valid package name")]
    PackageName(String),
    /// Not a ROS message name.
    #[error("'{0}' is not a valid message name")]
    MessageName(String),
    /// A `.srv` text without the `---` line between request and response.
    #[error("a service has a line '---' between its request and its response")]
    ServiceSeparator,
    /// `type[` without its `]`.
    #[error("unterminated array bound in '{0}'")]
    UnterminatedBound(String),
    /// An array or string bound that is not a positive number.
    #[error("bad bound '{bound}' in '{whole}'")]
    Bound {
        /// The bound as written.
        bound: String,
        /// The whole type.
        whole: String,
    },
    /// `<=N` on a type other than a string.
    #[error("only strings take an upper bound, not '{0}'")]
    BoundedNonString(String),
    /// Neither a primitive nor a message name.
    #[error("'{0}' is not a type")]
    NotAType(String),
    /// A type with nothing after it.
    #[error("'{0}' has no field name")]
    NoFieldName(String),
    /// A constant whose name is not upper case.
    #[error("constant name '{0}' must be upper case")]
    ConstantName(String),
    /// A constant of a message or array type.
    #[error("constant '{0}' must have a primitive, non-array type")]
    ConstantType(String),
    /// A constant whose value does not parse.
    #[error("constant '{name}': {reason}")]
    ConstantValue {
        /// The constant.
        name: String,
        /// What is wrong with its value.
        reason: Box<Syntax>,
    },
    /// Two constants of one name.
    #[error("constant '{0}' is defined twice")]
    ConstantTwice(String),
    /// A field name that is not lower snake case.
    #[error("field name '{0}' must be lower snake case")]
    FieldName(String),
    /// A field default that does not parse.
    #[error("default of '{name}': {reason}")]
    DefaultValue {
        /// The field.
        name: String,
        /// What is wrong with its default.
        reason: Box<Syntax>,
    },
    /// Two fields of one name.
    #[error("field '{0}' is defined twice")]
    FieldTwice(String),
    /// A default on a field of a message type.
    #[error("fields of type {0} cannot have a default")]
    NestedDefault(String),
    /// An array default with more (or, fixed, other) values than the array holds.
    #[error("{0} values do not fit the array bound")]
    ArrayLength(usize),
    /// An array default not written `[a, b, ...]`.
    #[error("array default '{0}' must be written [a, b, ...]")]
    ArrayLiteral(String),
    /// A quoted string that ends in a lone backslash.
    #[error("string {0} ends in a backslash")]
    Backslash(String),
    /// Not an integer.
    #[error("'{0}' is not an integer")]
    NotInteger(String),
    /// An integer outside its type's range.
    #[error("{value} is out of range [{lo}, {hi}] for {ty}")]
    OutOfRange {
        /// The value.
        value: i128,
        /// The type's least value.
        lo: i128,
        /// The type's greatest value.
        hi: i128,
        /// The type.
        ty: String,
    },
    /// Not `true`/`false`/`1`/`0`.
    #[error("'{0}' is not a boolean")]
    NotBool(String),
    /// Not a floating-point number.
    #[error("'{0}' is not a number")]
    NotNumber(String),
    /// A string longer than its type's bound.
    #[error("string is longer than its bound {0}")]
    StringBound(usize),
}

fn is_package_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
}

fn is_message_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_field_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
}

fn is_constant_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
}

/// Parses the text of `package/msg/Name.msg`; nested types are named, not
/// checked (that is [`crate::Registry`]'s job).
pub(crate) fn parse_msg(package: &str, name: &str, text: &str) -> Result<MsgSpec, ParseError> {
    parse_spec(TypeName::new(package, name), text)
}

/// Parses the text of `package/srv/Name.srv`: the request, a line `---`, the
/// response. Nested types are named, not checked.
pub(crate) fn parse_srv(package: &str, name: &str, text: &str) -> Result<(MsgSpec, MsgSpec), ParseError> {
    let request = TypeName::service_part(package, name, "Request");
    let lines: Vec<&str> = text.lines().collect();
    let Some(split) = lines.iter().position(|l| l.trim() == "---") else {
        return Err(ParseError { type_name: format!("{package}/srv/{name}"), line: 0, reason: Syntax::ServiceSeparator });
    };
    let head = lines[..split].iter().map(|l| format!("{l}\n")).collect::<String>();
    let tail = lines[split + 1..].iter().map(|l| format!("{l}\n")).collect::<String>();
    let req = parse_spec(request, &head)?;
    // Line numbers in the response count from the top of the file.
    let resp = parse_spec(TypeName::service_part(package, name, "Response"), &tail).map_err(|mut e| {
        e.line += split + 1;
        e
    })?;
    Ok((req, resp))
}

fn parse_spec(type_name: TypeName, text: &str) -> Result<MsgSpec, ParseError> {
    let err = |line: usize, reason: Syntax| ParseError { type_name: type_name.full(), line, reason };
    if !is_package_name(&type_name.package) {
        return Err(err(0, Syntax::PackageName(type_name.package.clone())));
    }
    if !type_name.is_valid() {
        return Err(err(0, Syntax::MessageName(type_name.name.clone())));
    }
    let mut fields: Vec<Field> = Vec::new();
    let mut constants: Vec<Constant> = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (type_str, rest) = split_word(line);
        let ty = parse_type(type_str, &type_name.package).map_err(|m| err(lineno, m))?;
        let rest = rest.trim_start();
        if rest.is_empty() {
            return Err(err(lineno, Syntax::NoFieldName(type_str.into())));
        }
        // A constant is `TYPE NAME=VALUE`; the name may be followed by spaces before '='.
        let name_end = rest.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(rest.len());
        let field_name = &rest[..name_end];
        let after = rest[name_end..].trim_start();
        if let Some(value_text) = after.strip_prefix('=') {
            if !is_constant_name(field_name) {
                return Err(err(lineno, Syntax::ConstantName(field_name.into())));
            }
            let prim = match (&ty.base, ty.array) {
                (BaseType::Primitive(p), Array::Scalar) => *p,
                _ => return Err(err(lineno, Syntax::ConstantType(field_name.into()))),
            };
            let value = if prim.is_string() {
                // String constants take the rest of the line verbatim (comments included),
                // minus surrounding quotes.
                Literal::String(unquote(value_text.trim()).map_err(|m| err(lineno, m))?)
            } else {
                let v = strip_comment(value_text).trim();
                parse_scalar(prim, v).map_err(|m| err(lineno, Syntax::ConstantValue { name: field_name.into(), reason: Box::new(m) }))?
            };
            if constants.iter().any(|c| c.name == field_name) {
                return Err(err(lineno, Syntax::ConstantTwice(field_name.into())));
            }
            constants.push(Constant { name: field_name.to_string(), ty: prim, value });
            continue;
        }
        if !is_field_name(field_name) {
            return Err(err(lineno, Syntax::FieldName(field_name.into())));
        }
        let default_text = strip_comment(after).trim();
        let default = if default_text.is_empty() {
            None
        } else {
            Some(
                parse_default(&ty, default_text)
                    .map_err(|m| err(lineno, Syntax::DefaultValue { name: field_name.into(), reason: Box::new(m) }))?,
            )
        };
        if fields.iter().any(|f| f.name == field_name) {
            return Err(err(lineno, Syntax::FieldTwice(field_name.into())));
        }
        fields.push(Field { name: field_name.to_string(), ty, default });
    }
    Ok(MsgSpec { name: type_name, fields, constants, text: text.to_string() })
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Removes a trailing `# comment`, leaving `#` inside quotes alone.
fn strip_comment(s: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"') | (None, '\'') => quote = Some(c),
            (None, '#') => return &s[..i],
            _ => {}
        }
    }
    s
}

fn parse_type(s: &str, own_package: &str) -> Result<FieldType, Syntax> {
    let (base_str, array) = match s.find('[') {
        Some(i) => {
            let inner = s[i + 1..].strip_suffix(']').ok_or_else(|| Syntax::UnterminatedBound(s.into()))?;
            let array = if inner.is_empty() {
                Array::Unbounded
            } else if let Some(n) = inner.strip_prefix("<=") {
                Array::Bounded(parse_bound(n, s)?)
            } else {
                Array::Fixed(parse_bound(inner, s)?)
            };
            (&s[..i], array)
        }
        None => (s, Array::Scalar),
    };
    let base = if let Some((kw, bound)) = base_str.split_once("<=") {
        let n = parse_bound(bound, s)?;
        match kw {
            "string" => BaseType::Primitive(Primitive::String(Some(n))),
            "wstring" => BaseType::Primitive(Primitive::WString(Some(n))),
            _ => return Err(Syntax::BoundedNonString(kw.into())),
        }
    } else if let Some(p) = Primitive::from_keyword(base_str) {
        BaseType::Primitive(p)
    } else {
        BaseType::Nested(resolve_nested(base_str, own_package).ok_or_else(|| Syntax::NotAType(base_str.into()))?)
    };
    Ok(FieldType { base, array })
}

fn resolve_nested(s: &str, own_package: &str) -> Option<TypeName> {
    match s {
        "Header" => return Some(TypeName::new("std_msgs", "Header")),
        "time" => return Some(TypeName::new("builtin_interfaces", "Time")),
        "duration" => return Some(TypeName::new("builtin_interfaces", "Duration")),
        _ => {}
    }
    if s.contains('/') {
        TypeName::parse(s)
    } else if is_message_name(s) {
        Some(TypeName::new(own_package, s))
    } else {
        None
    }
}

fn parse_bound(s: &str, whole: &str) -> Result<usize, Syntax> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Syntax::Bound { bound: s.into(), whole: whole.into() }),
    }
}

fn parse_default(ty: &FieldType, text: &str) -> Result<Literal, Syntax> {
    let prim = match &ty.base {
        BaseType::Primitive(p) => *p,
        BaseType::Nested(t) => return Err(Syntax::NestedDefault(t.to_string())),
    };
    match ty.array {
        Array::Scalar => {
            if prim.is_string() {
                Ok(Literal::String(unquote(text)?))
            } else {
                parse_scalar(prim, text)
            }
        }
        array => {
            let items = split_array_literal(text)?;
            let len_ok = match array {
                Array::Fixed(n) => items.len() == n,
                Array::Bounded(n) => items.len() <= n,
                _ => true,
            };
            if !len_ok {
                return Err(Syntax::ArrayLength(items.len()));
            }
            let values = items
                .iter()
                .map(|item| if prim.is_string() { unquote(item).map(Literal::String) } else { parse_scalar(prim, item) })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Literal::Array(values))
        }
    }
}

/// Splits `[a, "b,c", d]` at top-level commas.
fn split_array_literal(text: &str) -> Result<Vec<String>, Syntax> {
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).ok_or_else(|| Syntax::ArrayLiteral(text.into()))?;
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in inner.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c)
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                cur.push(c)
            }
            (None, ',') => items.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() || !items.is_empty() {
        items.push(cur.trim().to_string());
    }
    Ok(items)
}

fn unquote(s: &str) -> Result<String, Syntax> {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            let inner = &s[1..s.len() - 1];
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(o) => out.push(o),
                        None => return Err(Syntax::Backslash(s.into())),
                    }
                } else {
                    out.push(c);
                }
            }
            return Ok(out);
        }
    }
    Ok(s.to_string())
}

/// Parses one scalar of a primitive type, checking its range.
fn parse_scalar(prim: Primitive, text: &str) -> Result<Literal, Syntax> {
    let text = text.trim();
    let int = |lo: i128, hi: i128| -> Result<Literal, Syntax> {
        let v = parse_int(text).ok_or_else(|| Syntax::NotInteger(text.into()))?;
        if v < lo || v > hi {
            return Err(Syntax::OutOfRange { value: v, lo, hi, ty: prim.keyword() });
        }
        Ok(Literal::Int(v))
    };
    match prim {
        Primitive::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Literal::Bool(true)),
            "false" | "0" => Ok(Literal::Bool(false)),
            _ => Err(Syntax::NotBool(text.into())),
        },
        Primitive::Byte | Primitive::Char | Primitive::UInt8 => int(0, u8::MAX as i128),
        Primitive::Int8 => int(i8::MIN as i128, i8::MAX as i128),
        Primitive::Int16 => int(i16::MIN as i128, i16::MAX as i128),
        Primitive::UInt16 => int(0, u16::MAX as i128),
        Primitive::Int32 => int(i32::MIN as i128, i32::MAX as i128),
        Primitive::UInt32 => int(0, u32::MAX as i128),
        Primitive::Int64 => int(i64::MIN as i128, i64::MAX as i128),
        Primitive::UInt64 => int(0, u64::MAX as i128),
        Primitive::Float32 | Primitive::Float64 => text.parse::<f64>().map(Literal::Float).map_err(|_| Syntax::NotNumber(text.into())),
        Primitive::String(bound) | Primitive::WString(bound) => {
            let s = unquote(text)?;
            if let Some(n) = bound {
                if s.chars().count() > n {
                    return Err(Syntax::StringBound(n));
                }
            }
            Ok(Literal::String(s))
        }
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(b) = body.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else {
        body.parse::<i128>().ok()?
    };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_line() {
        let text = "# comment\n\
            int32 FOO=3 # trailing\n\
            string GREETING=\"hi # there\"\n\
            Header header\n\
            uint8[] data\n\
            float64[9] k\n\
            int16[<=4] few [1, 2]\n\
            string<=10 short \"abc\"\n\
            Pose2D center\n\
            geometry_msgs/Point p\n\
            bool flag true\n\
            float32 x 1.5  # comment\n";
        let spec = parse_msg("vision_msgs", "Thing", text).unwrap();
        assert_eq!(spec.constants.len(), 2);
        assert_eq!(spec.constants[0].value, Literal::Int(3));
        assert_eq!(spec.constants[1].value, Literal::String("hi # there".into()));
        let names: Vec<_> = spec.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["header", "data", "k", "few", "short", "center", "p", "flag", "x"]);
        assert_eq!(spec.fields[0].ty.base, BaseType::Nested(TypeName::new("std_msgs", "Header")));
        assert_eq!(spec.fields[1].ty.array, Array::Unbounded);
        assert_eq!(spec.fields[2].ty.array, Array::Fixed(9));
        assert_eq!(spec.fields[3].ty.array, Array::Bounded(4));
        assert_eq!(spec.fields[3].default, Some(Literal::Array(vec![Literal::Int(1), Literal::Int(2)])));
        assert_eq!(spec.fields[4].ty.base, BaseType::Primitive(Primitive::String(Some(10))));
        assert_eq!(spec.fields[4].default, Some(Literal::String("abc".into())));
        assert_eq!(spec.fields[5].ty.base, BaseType::Nested(TypeName::new("vision_msgs", "Pose2D")));
        assert_eq!(spec.fields[6].ty.base, BaseType::Nested(TypeName::new("geometry_msgs", "Point")));
        assert_eq!(spec.fields[7].default, Some(Literal::Bool(true)));
        assert_eq!(spec.fields[8].default, Some(Literal::Float(1.5)));
    }

    #[test]
    fn refuses_bad_lines_with_their_line_number() {
        let e = parse_msg("p", "T", "int32 a\nfloat99 b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.to_string().contains("float99"), "{e}");
        let e = parse_msg("p", "T", "uint8 X=300\n").unwrap_err();
        assert!(e.reason.to_string().contains("out of range"), "{e}");
        let e = parse_msg("p", "T", "int32 BadName\n").unwrap_err();
        assert!(e.reason.to_string().contains("lower snake case"), "{e}");
        let e = parse_msg("p", "T", "int32[3] a [1, 2]\n").unwrap_err();
        assert!(e.reason.to_string().contains("bound"), "{e}");
        let e = parse_msg("p", "T", "int32 a\nint32 a\n").unwrap_err();
        assert!(e.reason.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn type_names_in_all_three_spellings() {
        let t = TypeName::new("std_msgs", "String");
        assert_eq!(TypeName::parse("std_msgs/msg/String"), Some(t.clone()));
        assert_eq!(TypeName::parse("std_msgs/String"), Some(t.clone()));
        assert_eq!(TypeName::parse("std_msgs::msg::dds_::String_"), Some(t.clone()));
        assert_eq!(t.dds(), "std_msgs::msg::dds_::String_");
        assert_eq!(TypeName::parse("Std/x"), None);
        let r = TypeName::service_part("sim2real_msgs", "Train", "Request");
        assert_eq!(r.full(), "sim2real_msgs/srv/Train_Request");
        assert_eq!(r.dds(), "sim2real_msgs::srv::dds_::Train_Request_");
        assert_eq!(TypeName::parse("sim2real_msgs/srv/Train_Request"), Some(r.clone()));
        assert_eq!(TypeName::parse("sim2real_msgs::srv::dds_::Train_Request_"), Some(r));
        assert_eq!(TypeName::parse("sim2real_msgs/srv/Train"), None, "a service part is Name_Request or Name_Response");
    }

    #[test]
    fn a_service_is_a_request_and_a_response() {
        let (req, resp) = parse_srv("p", "Add", "# sum\nint32 a\nint32 b\n---\nint64 sum # a + b\n").unwrap();
        assert_eq!(req.name.full(), "p/srv/Add_Request");
        assert_eq!(req.fields.len(), 2);
        assert_eq!(resp.name.full(), "p/srv/Add_Response");
        assert_eq!(resp.fields[0].name, "sum");
        let e = parse_srv("p", "Add", "int32 a\n").unwrap_err();
        assert!(e.to_string().contains("---"), "{e}");
        let e = parse_srv("p", "Add", "int32 a\n---\nint64 sum\nfloat99 x\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
    }
}
