//! A discrete video tokenizer as the token models (the world model, the
//! multiview model) use it. The driver that runs a model supplies one
//! (sim2real's `dv8x16x16`); model crates never decode pixels themselves.

/// Frames in, FSQ codes out and back. Its name is stored with every
/// checkpoint of a model of its codes, so that tokens of another codec are
/// refused.
pub trait FrameCodec {
    /// The codec's name, e.g. `dv8x16x16`.
    fn name(&self) -> String;
    /// The side of the square frame it encodes, pixels (256).
    fn size(&self) -> usize;
    /// Token positions per side of a frame (16).
    fn grid(&self) -> usize;
    /// The FSQ levels of its codes, most significant first.
    fn levels(&self) -> Vec<u32>;
    /// An rgb8 camera frame (`width`×`height`, interleaved) as the codec sees
    /// it: its centre square at `size`×`size`, rgb8.
    fn view(&self, rgb: &[u8], width: usize, height: usize) -> Vec<u8>;
    /// Views ([`FrameCodec::view`]) → one code per position each, row-major.
    fn encode(&self, views: &[Vec<u8>]) -> Result<Vec<Vec<u16>>, String>;
    /// Codes of one frame → its rgb8 view.
    fn decode(&self, codes: &[u16]) -> Result<Vec<u8>, String>;
    /// Latent values of one frame → its rgb8 view: per position one value
    /// per FSQ digit in [−1, 1] (digit d of level L sits at (d − (L−1)/2) /
    /// ((L−1)/2)), row-major. Values between the levels are allowed: a
    /// model's expected digits decode to the mean of what it thinks likely.
    fn decode_values(&self, values: &[Vec<f32>]) -> Result<Vec<u8>, String>;
}

/// The latent value of digit `d` of a level of `l` values: in [−1, 1].
pub fn digit_value(d: f32, l: u32) -> f32 {
    let half = (l as f32 - 1.0) / 2.0;
    (d - half) / half
}
