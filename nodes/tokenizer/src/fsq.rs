//! Finite scalar quantization (Mentzer et al. 2023): each latent channel is
//! bounded and rounded to one of a few levels; the code is the tuple of
//! levels, so the vocabulary is their product (8·8·8·5·5·5 = 64,000) and no
//! codebook is learned. Gradients pass the rounding straight through.

use candle_core::{Result, Tensor};

/// Cosmos Tokenizer's discrete levels.
pub const LEVELS: [u32; 6] = [8, 8, 8, 5, 5, 5];

/// How many codes `levels` make (their product): 64,000 for [`LEVELS`], so
/// a code fits in 16 bits.
pub fn vocabulary(levels: &[u32]) -> u64 {
    levels.iter().map(|&l| l as u64).product()
}

/// Bounds `z` ([N, C, …], C = levels.len()) into each channel's range and
/// rounds it, with a straight-through gradient. Values are integers in
/// [-(L-1)/2, (L-1)/2] (shifted by a half for even L), scaled to [-1, 1].
/// Panics unless C is `levels.len()`.
pub fn quantize(z: &Tensor, levels: &[u32]) -> Result<Tensor> {
    let c = z.dim(1)?;
    assert_eq!(c, levels.len(), "one latent channel per FSQ level");
    let mut outs = Vec::with_capacity(c);
    for (i, &l) in levels.iter().enumerate() {
        let zi = z.narrow(1, i, 1)?;
        let half = (l as f64 - 1.0) / 2.0;
        // Even levels sit between integers: shift by a half so that rounding gives L values.
        let offset = if l % 2 == 0 { 0.5 } else { 0.0 };
        let bounded = ((zi.tanh()? * (half - 1e-3))? - offset)?;
        let rounded = bounded.round()?;
        let st = (&bounded + (rounded - &bounded)?.detach())?;
        outs.push(((st + offset)? / half)?);
    }
    Tensor::cat(&outs, 1)
}

/// The code of each position: [N, C, …] quantized values → [N, …] indices
/// (mixed radix, channel 0 the most significant digit), flattened row-major.
pub fn codes(q: &Tensor, levels: &[u32]) -> Result<Vec<u32>> {
    let c = q.dim(1)?;
    let rest: usize = q.dims()[2..].iter().product();
    let n = q.dim(0)?;
    let v = q.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0u32; n * rest];
    for b in 0..n {
        for p in 0..rest {
            let mut code = 0u32;
            for (i, &l) in levels.iter().enumerate().take(c) {
                let half = (l as f32 - 1.0) / 2.0;
                let digit = (v[(b * c + i) * rest + p] * half + half).round().clamp(0.0, (l - 1) as f32) as u32;
                code = code * l + digit;
            }
            out[b * rest + p] = code;
        }
    }
    Ok(out)
}

/// Quantized values back from codes, the inverse of [`codes`]: per code its
/// channels' values in [−1, 1] (at most 6 levels; the rest of the array is 0).
pub fn values(codes: &[u32], levels: &[u32]) -> Vec<[f32; 6]> {
    codes
        .iter()
        .map(|&code| {
            let mut out = [0f32; 6];
            let mut rem = code;
            for (i, &l) in levels.iter().enumerate().rev() {
                let digit = rem % l;
                rem /= l;
                let half = (l as f32 - 1.0) / 2.0;
                out[i] = (digit as f32 - half) / half;
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn fsq_has_the_vocabulary_codes_round_trip_and_gradients_pass() -> Result<()> {
        assert_eq!(vocabulary(&LEVELS), 64_000);
        let z = Var::from_tensor(&Tensor::randn(0f32, 2.0, (3, 6, 4, 4), &Device::Cpu)?)?;
        let q = quantize(z.as_tensor(), &LEVELS)?;
        // Every channel takes at most L distinct values in [-1, 1].
        for (i, &l) in LEVELS.iter().enumerate() {
            let mut v: Vec<i64> = q.narrow(1, i, 1)?.flatten_all()?.to_vec1::<f32>()?.iter().map(|x| (x * 1000.0).round() as i64).collect();
            assert!(v.iter().all(|x| x.abs() <= 1000));
            v.sort();
            v.dedup();
            assert!(v.len() <= l as usize, "channel {i}: {v:?}");
        }
        let c = codes(&q, &LEVELS)?;
        assert!(c.iter().all(|&x| x < 64_000));
        let back = values(&c, &LEVELS);
        let qv = q.flatten_all()?.to_vec1::<f32>()?;
        for (p, vals) in back.iter().enumerate() {
            let (b, pos) = (p / 16, p % 16);
            for (i, v) in vals.iter().enumerate() {
                assert!((qv[(b * 6 + i) * 16 + pos] - v).abs() < 1e-5);
            }
        }
        // Straight-through: the loss reaches z.
        let g = q.sqr()?.sum_all()?.backward()?;
        let gz = g.get(z.as_tensor()).expect("gradient to z");
        assert!(gz.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        Ok(())
    }
}
