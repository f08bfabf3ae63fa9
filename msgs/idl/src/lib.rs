//! ROS 2 interface definitions for sim2real.
//!
//! - [`parse`]: the `.msg` grammar.
//! - [`registry`]: sets of definitions, RIHS01 type hashes, `ros2msg` schemas.
//! - [`codegen`]: Rust types from `.msg` and `.srv` files (used by `sim2real-msgs`' build script).
//! - [`types`]: what generated types are made of ([`Message`], [`Bytes`], …).
//! - [`dynamic`]: messages of types known only at run time: CDR and YAML.

#![warn(missing_docs)]

pub mod codegen;
pub mod dynamic;
pub mod parse;
pub mod registry;
pub mod types;

pub use parse::{Kind, MsgSpec, TypeName};
pub use registry::{Registry, RegistryError};
pub use types::{fixed_array, Bytes, Message, Service, WString};

/// Something that wants to be called once per compiled-in message type.
pub trait MessageVisitor {
    /// Called by `sim2real_msgs::visit_all` with each generated type in turn, sorted
    /// by package, then name: a way to run generic code over every type without
    /// naming them.
    fn visit<M: Message>(&mut self);
}
