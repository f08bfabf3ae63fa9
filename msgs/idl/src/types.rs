//! Rust-side building blocks of generated message types: the [`Message`] trait,
//! byte sequences that travel as one block and clone without copying, wide
//! strings, and fixed-size arrays of any length.

use std::fmt;
use std::ops::Deref;

use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A ROS 2 message type generated from its `.msg` file.
pub trait Message: Serialize + DeserializeOwned + Clone + Default + fmt::Debug + Send + Sync + 'static {
    /// `pkg/msg/Type`.
    const TYPE_NAME: &'static str;
    /// RIHS01 type hash (REP-2011).
    const TYPE_HASH: &'static str;
    /// The `ros2msg` schema: this type's `.msg` text followed by its dependencies'.
    const SCHEMA: &'static str;

    /// `pkg::msg::dds_::Type_` (`pkg::srv::dds_::Type_Request_` for a service's half), the name on the wire.
    fn dds_type_name() -> String {
        let mut parts = Self::TYPE_NAME.split('/');
        let (pkg, kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or("msg"), parts.next().unwrap_or(""));
        format!("{pkg}::{kind}::dds_::{name}_")
    }
}

/// A ROS 2 service type generated from its `.srv` file: a request answered by a response.
pub trait Service: Send + Sync + 'static {
    /// What a client sends.
    type Request: Message;
    /// What the server answers.
    type Response: Message;
    /// `pkg/srv/Type`.
    const TYPE_NAME: &'static str;

    /// The package and the service's name.
    fn parts() -> (&'static str, &'static str) {
        let mut parts = Self::TYPE_NAME.split('/');
        (parts.next().unwrap_or(""), parts.nth(1).unwrap_or(""))
    }
}

/// A `uint8[]` / `byte[]` field: reference counted, so cloning a message (or
/// handing it to another node in the same process) never copies the bytes.
/// Serialized as one length-prefixed block rather than element by element.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(
    /// The shared buffer; `bytes::Bytes::slice` of it shares too.
    pub bytes::Bytes,
);

impl Bytes {
    /// The address of the first byte: equal for two values that share storage.
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(bytes::Bytes::from(v))
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(bytes::Bytes::copy_from_slice(v))
    }
}

impl From<bytes::Bytes> for Bytes {
    fn from(v: bytes::Bytes) -> Self {
        Bytes(v)
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len() <= 32 {
            write!(f, "{:?}", &self.0[..])
        } else {
            write!(f, "<{} bytes>", self.len())
        }
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte sequence")
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Bytes::from(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A `wstring` field, carried on the wire as UTF-16 code units with a length prefix.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub struct WString(
    /// The text; characters outside the BMP become surrogate pairs on the wire.
    pub String,
);

impl Serialize for WString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let units: Vec<u16> = self.0.encode_utf16().collect();
        let mut seq = s.serialize_seq(Some(units.len()))?;
        for u in &units {
            seq.serialize_element(u)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for WString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let units = Vec::<u16>::deserialize(d)?;
        String::from_utf16(&units).map(WString).map_err(|_| de::Error::custom("wstring is not valid UTF-16"))
    }
}

/// serde helpers for `T[N]` fields: written as N elements with no length, for any N.
pub mod fixed_array {
    use super::*;

    /// Writes the N elements as a tuple, which CDR lays out with no length prefix.
    pub fn serialize<S: Serializer, T: Serialize, const N: usize>(arr: &[T; N], s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(N)?;
        for e in arr {
            t.serialize_element(e)?;
        }
        t.end()
    }

    /// Reads exactly N elements; fails if the input holds fewer.
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(d: D) -> Result<[T; N], D::Error> {
        struct V<T, const N: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = [T; N];
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of {N} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[T; N], A::Error> {
                let mut v = Vec::with_capacity(N);
                for i in 0..N {
                    v.push(seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?);
                }
                v.try_into().map_err(|_| de::Error::custom("array length"))
            }
        }
        d.deserialize_tuple(N, V::<T, N>(std::marker::PhantomData))
    }
}
