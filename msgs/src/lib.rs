//! The ROS 2 interfaces sim2real uses, as Rust types generated at build time from
//! the `.msg` files beside this crate (`msgs/<package>/msg/<Type>.msg`), which
//! stay the one source of truth.
//!
//! ```
//! use sim2real_msgs::std_msgs::msg::String as StringMsg;
//! use s2r_idl::Message;
//! assert_eq!(StringMsg::TYPE_NAME, "std_msgs/msg/String");
//! ```

#![warn(missing_docs)]
// The generated types name each other by full path (`crate::pkg::msg::T`), the
// same from every module.
#![allow(unused_qualifications)]

use std::sync::{Arc, OnceLock};

pub use s2r_idl::{Bytes, Message, Registry, Service};

pub mod arm;
pub mod safety;

include!(concat!(env!("OUT_DIR"), "/generated.rs"));

/// Every interface compiled in, parsed: for `interface show`, dynamic decoding
/// and encoding of messages by type name.
pub fn registry() -> &'static Arc<Registry> {
    static REG: OnceLock<Arc<Registry>> = OnceLock::new();
    REG.get_or_init(|| {
        let mut reg = Registry::new();
        for (pkg, name, text) in DEFINITIONS {
            reg.add_msg(pkg, name, text).expect("definitions were checked at build time");
        }
        for (pkg, name, request, response) in SERVICES {
            reg.add_srv(pkg, name, &format!("{request}---\n{response}")).expect("definitions were checked at build time");
        }
        Arc::new(reg)
    })
}
