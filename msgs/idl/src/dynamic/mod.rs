//! Messages whose type is known only at run time.

pub mod cdr;
pub mod value;
pub mod yaml;

pub use cdr::{decode, encode, serialize, CdrError, CDR_LE_HEADER};
pub use value::{default_value, sample_value, Value};
pub use yaml::{from_literal, to_yaml, EchoOptions, ValueError};
