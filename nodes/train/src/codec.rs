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

/// Where each digit's rows start in one table of every digit's levels (as the
/// token models embed and predict digits), and the table's size (Σ levels).
pub fn digit_offsets(levels: &[u32]) -> (Vec<u32>, usize) {
    let mut offsets = Vec::with_capacity(levels.len());
    let mut at = 0u32;
    for &l in levels {
        offsets.push(at);
        at += l;
    }
    (offsets, at as usize)
}

/// The digits of `code` (mixed radix, the first level most significant).
pub fn digits(levels: &[u32], code: u16) -> Vec<u32> {
    let mut c = code as u32;
    let mut d = vec![0u32; levels.len()];
    for (i, &l) in levels.iter().enumerate().rev() {
        d[i] = c % l;
        c /= l;
    }
    d
}

/// The code of `digits` (each clamped to its level).
pub fn code(levels: &[u32], digits: &[u32]) -> u16 {
    digits.iter().zip(levels).fold(0u32, |c, (&d, &l)| c * l + d.min(l - 1)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_digits_round_trip() {
        let levels = [8, 8, 8, 5, 5, 5];
        for c in [0u16, 1, 5, 124, 125, 31_337, 63_999] {
            assert_eq!(code(&levels, &digits(&levels, c)), c);
        }
        assert_eq!(digits(&levels, 63_999), vec![7, 7, 7, 4, 4, 4]);
        assert_eq!(digit_offsets(&levels), (vec![0, 8, 16, 24, 29, 34], 39));
        assert_eq!(digit_value(0.0, 8), -1.0);
        assert_eq!(digit_value(4.0, 5), 1.0);
    }
}
