//! CDR (XCDR1, as ROS 2 middlewares use) for [`Value`]s: serialization through
//! serde, so the bytes are those of the generated types, and decoding through a
//! [`DeserializeSeed`] that walks the type definition.

use std::fmt;
use std::sync::Arc;

use byteorder::{BigEndian, LittleEndian};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};

use super::value::{sequence_value, Value};
use crate::parse::{Array, BaseType, FieldType, Primitive, TypeName};
use crate::registry::Registry;
use crate::types::{Bytes, WString};

/// Encapsulation header of little-endian plain CDR (`CDR_LE`, no options): the
/// first 4 bytes of every serialized message a little-endian ROS 2 node sends.
pub const CDR_LE_HEADER: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(v) => s.serialize_bool(*v),
            Value::I8(v) => s.serialize_i8(*v),
            Value::U8(v) => s.serialize_u8(*v),
            Value::I16(v) => s.serialize_i16(*v),
            Value::U16(v) => s.serialize_u16(*v),
            Value::I32(v) => s.serialize_i32(*v),
            Value::U32(v) => s.serialize_u32(*v),
            Value::I64(v) => s.serialize_i64(*v),
            Value::U64(v) => s.serialize_u64(*v),
            Value::F32(v) => s.serialize_f32(*v),
            Value::F64(v) => s.serialize_f64(*v),
            Value::String(v) => s.serialize_str(v),
            Value::WString(v) => WString(v.clone()).serialize(s),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(items) => {
                let mut t = s.serialize_tuple(items.len())?;
                for i in items {
                    t.serialize_element(i)?;
                }
                t.end()
            }
            Value::Seq(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    q.serialize_element(i)?;
                }
                q.end()
            }
            Value::Struct(fields) => {
                let mut t = s.serialize_tuple(fields.len())?;
                for (_, v) in fields {
                    t.serialize_element(v)?;
                }
                t.end()
            }
        }
    }
}

/// A serialized message that does not decode, or a value that does not encode.
#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    /// Fewer bytes than the 4-byte encapsulation header.
    #[error("{len} bytes is too short for a CDR encapsulation header")]
    TooShort {
        /// Bytes there are.
        len: usize,
    },
    /// An encapsulation other than plain CDR (big or little endian).
    #[error("unsupported encapsulation {0:#04x}{1:02x} (only plain CDR)")]
    Encapsulation(u8, u8),
    /// CDR that does not hold a message of the type (truncated, bad lengths, …).
    #[error("malformed {type_name}: {source}")]
    Malformed {
        /// The type it was read as.
        type_name: String,
        /// What the CDR decoder said.
        source: cdr_encoding::Error,
    },
    /// A value the CDR encoder refused.
    #[error("cannot encode as CDR: {0}")]
    Encode(cdr_encoding::Error),
}

/// The byte order of a serialized message and its CDR body (after the
/// encapsulation header).
pub enum Body<'a> {
    /// Little-endian CDR.
    Little(&'a [u8]),
    /// Big-endian CDR.
    Big(&'a [u8]),
}

/// Splits a serialized message into its byte order and CDR body. Fails on
/// fewer than 4 bytes or an encapsulation other than plain CDR (XCDR2, PL_CDR).
pub fn body(data: &[u8]) -> Result<Body<'_>, CdrError> {
    if data.len() < 4 {
        return Err(CdrError::TooShort { len: data.len() });
    }
    match (data[0], data[1]) {
        (0x00, 0x01) => Ok(Body::Little(&data[4..])),
        (0x00, 0x00) => Ok(Body::Big(&data[4..])),
        (a, b) => Err(CdrError::Encapsulation(a, b)),
    }
}

/// Serializes any serde value (a generated message, a [`Value`]) as
/// little-endian CDR after the 4-byte encapsulation header.
pub fn serialize<T: Serialize>(value: &T) -> Result<Vec<u8>, CdrError> {
    let mut out = CDR_LE_HEADER.to_vec();
    cdr_encoding::to_writer::<T, LittleEndian, _>(&mut out, value).map_err(CdrError::Encode)?;
    Ok(out)
}

/// Serializes a dynamic value (see [`serialize`]).
pub fn encode(value: &Value) -> Result<Vec<u8>, CdrError> {
    serialize(value)
}

/// Decodes a serialized message (encapsulation header included, either byte
/// order) of type `ty`. Fails when the header is not plain CDR, `ty` or a type it
/// uses is not in `reg`, or the bytes do not hold a whole `ty` (bounds included).
/// Bytes left over after the message (alignment padding) are ignored.
pub fn decode(reg: &Registry, ty: &TypeName, data: &[u8]) -> Result<Value, CdrError> {
    let seed = TypeSeed::new(Arc::new(reg.clone()), ty.clone());
    let result = match body(data)? {
        Body::Little(b) => seed.deserialize(&mut cdr_encoding::CdrDeserializer::<LittleEndian>::new(b)),
        Body::Big(b) => seed.deserialize(&mut cdr_encoding::CdrDeserializer::<BigEndian>::new(b)),
    };
    result.map_err(|source| CdrError::Malformed { type_name: ty.full(), source })
}

/// Decodes a message of a run-time type from a serde deserializer (CDR).
#[derive(Clone)]
struct TypeSeed {
    reg: Arc<Registry>,
    ty: TypeName,
}

impl TypeSeed {
    fn new(reg: Arc<Registry>, ty: TypeName) -> Self {
        TypeSeed { reg, ty }
    }
}

impl<'de> DeserializeSeed<'de> for TypeSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StructSeed { reg: &self.reg, ty: &self.ty }.deserialize(d)
    }
}

struct StructSeed<'a> {
    reg: &'a Registry,
    ty: &'a TypeName,
}

impl<'de> DeserializeSeed<'de> for StructSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let spec = self.reg.get(self.ty).ok_or_else(|| de::Error::custom(format!("unknown type {}", self.ty)))?;
        let n = spec.fields.len().max(1);
        d.deserialize_tuple(n, self)
    }
}

impl<'de> Visitor<'de> for StructSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {}", self.ty)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let spec = self.reg.get(self.ty).expect("checked by the seed");
        if spec.fields.is_empty() {
            let b: u8 = seq.next_element()?.ok_or_else(|| de::Error::custom("missing placeholder byte"))?;
            return Ok(Value::Struct(vec![("structure_needs_at_least_one_member".into(), Value::U8(b))]));
        }
        let mut fields = Vec::with_capacity(spec.fields.len());
        for f in &spec.fields {
            let v = seq
                .next_element_seed(FieldSeed { reg: self.reg, ty: &f.ty })
                .map_err(|e| de::Error::custom(format!("field '{}': {e}", f.name)))?
                .ok_or_else(|| de::Error::custom(format!("field '{}' missing", f.name)))?;
            fields.push((f.name.clone(), v));
        }
        Ok(Value::Struct(fields))
    }
}

struct FieldSeed<'a> {
    reg: &'a Registry,
    ty: &'a FieldType,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let element = ElementSeed { reg: self.reg, base: &self.ty.base };
        match self.ty.array {
            Array::Scalar => element.deserialize(d),
            Array::Fixed(n) => d.deserialize_tuple(n, ArrayVisitor { element, fixed: Some(n), bound: None }),
            Array::Bounded(_) | Array::Unbounded => {
                let bound = if let Array::Bounded(b) = self.ty.array { Some(b) } else { None };
                if matches!(self.ty.base, BaseType::Primitive(p) if p.is_byte_like()) {
                    let b = Bytes::deserialize(d)?;
                    if let Some(max) = bound {
                        if b.len() > max {
                            return Err(de::Error::custom(format!("{} bytes exceed the bound {max}", b.len())));
                        }
                    }
                    return Ok(Value::Bytes(b));
                }
                d.deserialize_seq(ArrayVisitor { element, fixed: None, bound })
            }
        }
    }
}

struct ArrayVisitor<'a> {
    element: ElementSeed<'a>,
    fixed: Option<usize>,
    bound: Option<usize>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        if let Some(max) = self.bound {
            if hint > max {
                return Err(de::Error::custom(format!("{hint} elements exceed the bound {max}")));
            }
        }
        // The length came off the wire: do not trust it for the allocation.
        let mut items = Vec::with_capacity(hint.min(4096));
        while let Some(v) = seq.next_element_seed(self.element.clone())? {
            items.push(v);
        }
        Ok(match self.fixed {
            Some(_) => Value::Array(items),
            None => sequence_value(self.element.base, items),
        })
    }
}

#[derive(Clone)]
struct ElementSeed<'a> {
    reg: &'a Registry,
    base: &'a BaseType,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let p = match self.base {
            BaseType::Nested(t) => return StructSeed { reg: self.reg, ty: t }.deserialize(d),
            BaseType::Primitive(p) => *p,
        };
        Ok(match p {
            Primitive::Bool => Value::Bool(bool::deserialize(d)?),
            Primitive::Byte | Primitive::Char | Primitive::UInt8 => Value::U8(u8::deserialize(d)?),
            Primitive::Int8 => Value::I8(i8::deserialize(d)?),
            Primitive::Int16 => Value::I16(i16::deserialize(d)?),
            Primitive::UInt16 => Value::U16(u16::deserialize(d)?),
            Primitive::Int32 => Value::I32(i32::deserialize(d)?),
            Primitive::UInt32 => Value::U32(u32::deserialize(d)?),
            Primitive::Int64 => Value::I64(i64::deserialize(d)?),
            Primitive::UInt64 => Value::U64(u64::deserialize(d)?),
            Primitive::Float32 => Value::F32(f32::deserialize(d)?),
            Primitive::Float64 => Value::F64(f64::deserialize(d)?),
            Primitive::String(bound) => {
                let s = String::deserialize(d)?;
                check_string_bound(&s, bound)?;
                Value::String(s)
            }
            Primitive::WString(bound) => {
                let s = WString::deserialize(d)?.0;
                check_string_bound(&s, bound)?;
                Value::WString(s)
            }
        })
    }
}

fn check_string_bound<E: de::Error>(s: &str, bound: Option<usize>) -> Result<(), E> {
    match bound {
        Some(max) if s.chars().count() > max => Err(E::custom(format!("string of {} exceeds the bound {max}", s.len()))),
        _ => Ok(()),
    }
}
