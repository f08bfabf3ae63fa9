//! Messages of types known only at run time (from a registry or a bag's schema):
//! a typed value tree, its default, and field selection by path.

use crate::parse::{Array, BaseType, Literal, Primitive, TypeName};
use crate::registry::{Registry, RegistryError};
use crate::types::Bytes;

/// A value of an interface type. Scalars keep their exact wire type, so a value
/// serializes to the same bytes its generated Rust type would.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `bool`.
    Bool(bool),
    /// `int8`.
    I8(i8),
    /// `uint8`, and single `byte` and `char` values.
    U8(u8),
    /// `int16`.
    I16(i16),
    /// `uint16`.
    U16(u16),
    /// `int32`.
    I32(i32),
    /// `uint32`.
    U32(u32),
    /// `int64`.
    I64(i64),
    /// `uint64`.
    U64(u64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// A `string`, carried as UTF-8 with a length prefix and a NUL.
    String(String),
    /// A `wstring`, carried as UTF-16.
    WString(String),
    /// A byte-like sequence (`uint8[]`, `byte[]`, `char[]`), one block on the wire.
    Bytes(Bytes),
    /// A fixed-size array `T[N]`: no length on the wire.
    Array(Vec<Value>),
    /// A sequence `T[]` or `T[<=N]`: length-prefixed on the wire.
    Seq(Vec<Value>),
    /// A nested message: its fields in declaration order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// Follows a dotted path (`header.stamp.sec`, `data.3`) into nested fields and arrays.
    pub fn select(&self, path: &str) -> Option<&Value> {
        let mut cur = self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = match cur {
                Value::Struct(fields) => &fields.iter().find(|(n, _)| n == part)?.1,
                Value::Array(items) | Value::Seq(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// One field of a [`Value::Struct`]; `None` for other values or an unknown name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The zero value of a primitive type (or its declared default).
pub(crate) fn primitive_value(p: Primitive, lit: Option<&Literal>) -> Value {
    let int = |l: Option<&Literal>| match l {
        Some(Literal::Int(i)) => *i,
        Some(Literal::Bool(b)) => *b as i128,
        _ => 0,
    };
    let float = |l: Option<&Literal>| match l {
        Some(Literal::Float(f)) => *f,
        Some(Literal::Int(i)) => *i as f64,
        _ => 0.0,
    };
    let string = |l: Option<&Literal>| match l {
        Some(Literal::String(s)) => s.clone(),
        _ => String::new(),
    };
    match p {
        Primitive::Bool => Value::Bool(matches!(lit, Some(Literal::Bool(true))) || int(lit) != 0),
        Primitive::Byte | Primitive::Char | Primitive::UInt8 => Value::U8(int(lit) as u8),
        Primitive::Int8 => Value::I8(int(lit) as i8),
        Primitive::Int16 => Value::I16(int(lit) as i16),
        Primitive::UInt16 => Value::U16(int(lit) as u16),
        Primitive::Int32 => Value::I32(int(lit) as i32),
        Primitive::UInt32 => Value::U32(int(lit) as u32),
        Primitive::Int64 => Value::I64(int(lit) as i64),
        Primitive::UInt64 => Value::U64(int(lit) as u64),
        Primitive::Float32 => Value::F32(float(lit) as f32),
        Primitive::Float64 => Value::F64(float(lit)),
        Primitive::String(_) => Value::String(string(lit)),
        Primitive::WString(_) => Value::WString(string(lit)),
    }
}

/// The default value of a message type: declared defaults where given, zeros elsewhere.
/// Serializes to the same bytes as the generated type's `Default`. Fails when `ty`
/// or a type it uses is not in `reg`.
pub fn default_value(reg: &Registry, ty: &TypeName) -> Result<Value, RegistryError> {
    let spec = reg.get(ty).ok_or_else(|| RegistryError::Unknown(ty.full()))?;
    if spec.fields.is_empty() {
        return Ok(Value::Struct(vec![("structure_needs_at_least_one_member".into(), Value::U8(0))]));
    }
    let mut fields = Vec::with_capacity(spec.fields.len());
    for f in &spec.fields {
        let element = |lit: Option<&Literal>| -> Result<Value, RegistryError> {
            match &f.ty.base {
                BaseType::Primitive(p) => Ok(primitive_value(*p, lit)),
                BaseType::Nested(t) => default_value(reg, t),
            }
        };
        let v = match (f.ty.array, &f.default) {
            (Array::Scalar, d) => element(d.as_ref())?,
            (Array::Fixed(n), Some(Literal::Array(items))) => {
                Value::Array(items.iter().take(n).map(|l| element(Some(l))).collect::<Result<_, _>>()?)
            }
            (Array::Fixed(n), _) => Value::Array((0..n).map(|_| element(None)).collect::<Result<_, _>>()?),
            (_, default) => {
                let items: Vec<Value> = match default {
                    Some(Literal::Array(items)) => items.iter().map(|l| element(Some(l))).collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                sequence_value(&f.ty.base, items)
            }
        };
        fields.push((f.name.clone(), v));
    }
    Ok(Value::Struct(fields))
}

/// A sequence of `base` elements: byte-like ones become one [`Value::Bytes`] block.
pub(crate) fn sequence_value(base: &BaseType, items: Vec<Value>) -> Value {
    match base {
        BaseType::Primitive(p) if p.is_byte_like() => {
            Value::Bytes(Bytes::from(items.iter().map(|v| if let Value::U8(b) = v { *b } else { 0 }).collect::<Vec<u8>>()))
        }
        _ => Value::Seq(items),
    }
}

/// A value of type `ty` with every field set to something other than its
/// default, varied by `seed`: for round-trip tests that must see each field.
/// Sequences get two elements (bounded ones at most their bound), strings are cut
/// to their bound. Fails when `ty` or a type it uses is not in `reg`.
pub fn sample_value(reg: &Registry, ty: &TypeName, seed: u64) -> Result<Value, RegistryError> {
    let spec = reg.get(ty).ok_or_else(|| RegistryError::Unknown(ty.full()))?;
    if spec.fields.is_empty() {
        return Ok(Value::Struct(vec![("structure_needs_at_least_one_member".into(), Value::U8(0))]));
    }
    let mut fields = Vec::with_capacity(spec.fields.len());
    for (i, f) in spec.fields.iter().enumerate() {
        let k = seed.wrapping_mul(31).wrapping_add(i as u64 + 1);
        let element = |j: u64| -> Result<Value, RegistryError> {
            let k = k.wrapping_add(j * 7);
            Ok(match &f.ty.base {
                BaseType::Nested(t) => sample_value(reg, t, k)?,
                BaseType::Primitive(p) => match p {
                    Primitive::Bool => Value::Bool(k % 2 == 1),
                    Primitive::Byte | Primitive::Char | Primitive::UInt8 => Value::U8((k % 251) as u8),
                    Primitive::Int8 => Value::I8(-((k % 100) as i8)),
                    Primitive::Int16 => Value::I16(-((k % 30_000) as i16)),
                    Primitive::UInt16 => Value::U16((k % 60_000) as u16),
                    Primitive::Int32 => Value::I32(-((k % 1_000_000) as i32)),
                    Primitive::UInt32 => Value::U32((k % 4_000_000_000) as u32),
                    Primitive::Int64 => Value::I64(-(k as i64 % 1_000_000_000_000)),
                    Primitive::UInt64 => Value::U64(k * 1_000_003),
                    Primitive::Float32 => Value::F32(k as f32 * 0.25 + 0.5),
                    Primitive::Float64 => Value::F64(k as f64 * 0.125 - 3.0),
                    Primitive::String(bound) | Primitive::WString(bound) => {
                        let mut s = format!("{}-{k}", f.name);
                        if let Some(b) = bound {
                            s.truncate(*b);
                        }
                        if matches!(p, Primitive::WString(_)) {
                            Value::WString(s)
                        } else {
                            Value::String(s)
                        }
                    }
                },
            })
        };
        let v = match f.ty.array {
            Array::Scalar => element(0)?,
            Array::Fixed(n) => Value::Array((0..n as u64).map(element).collect::<Result<_, _>>()?),
            Array::Bounded(n) => sequence_value(&f.ty.base, (0..(n as u64).min(2)).map(element).collect::<Result<_, _>>()?),
            Array::Unbounded => sequence_value(&f.ty.base, (0..2).map(element).collect::<Result<_, _>>()?),
        };
        fields.push((f.name.clone(), v));
    }
    Ok(Value::Struct(fields))
}
