//! curator_node's logic: frames in, clips out with verdicts.
//!
//! After NeMo Curator's video pipeline: the stream is split into clips (by
//! length, at scene and scenario changes), every frame is measured (blur,
//! exposure, broken, frozen, torn, near-duplicate, labels) and every clip
//! (motion, class coverage); clips are then deduplicated by their embeddings
//! (k-means, then members within a cosine distance of a kept one dropped) and
//! selected to reach a target distribution over tags. Nothing here touches
//! DDS or files: `node` (curator_node) and `offline` (`s2r curate`) feed it
//! and write what it decides.

pub mod balance;
pub mod clips;
pub mod dedup;
pub mod embed;
pub mod metrics;
pub mod node;
pub mod offline;
pub mod params;
pub mod phash;
pub mod report;
