//! tokenizer_node's model (in progress): a learned causal video tokenizer
//! after Cosmos Tokenizer, in candle. Haar patchify, finite scalar
//! quantization, the encoder/decoder, training.
pub mod codec;
pub mod data;
pub mod fsq;
pub mod haar;
pub mod model;
pub mod node;
pub mod train;
