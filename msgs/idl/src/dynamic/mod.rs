//! Messages whose type is known only at run time.

pub mod cdr;
pub mod value;
pub mod yaml;

pub use cdr::{decode, encode, serialize, CdrError, TypeSeed, CDR_LE_HEADER};
pub use value::{default_value, sample_value, Value};
pub use yaml::{from_literal, from_yaml, to_yaml, EchoOptions, ValueError};
