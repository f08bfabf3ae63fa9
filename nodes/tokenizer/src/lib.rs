//! The tokenizer (in progress): Haar patchify, finite scalar quantization.
pub mod fsq;
pub mod haar;
