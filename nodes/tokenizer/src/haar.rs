//! The 2-D Haar wavelet as a patchify step: every 2×2 block of each channel
//! becomes four channels (average, horizontal, vertical and diagonal detail)
//! at half the resolution; exactly invertible. Applied twice it is a 4×4
//! patchify that keeps the image's energy sorted by frequency, which lets a
//! small network spend its capacity on the low bands (after Cosmos Tokenizer).

use candle_core::{Result, Tensor};

/// [N, C, H, W] → [N, 4C, H/2, W/2] (channel blocks: LL, LH, HL, HH).
pub(crate) fn forward(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    // [N, C, H/2, 2, W/2, 2]
    let x = x.reshape((n, c, h / 2, 2, w / 2, 2))?;
    let a = x.narrow(3, 0, 1)?.narrow(5, 0, 1)?;
    let b = x.narrow(3, 0, 1)?.narrow(5, 1, 1)?;
    let cc = x.narrow(3, 1, 1)?.narrow(5, 0, 1)?;
    let d = x.narrow(3, 1, 1)?.narrow(5, 1, 1)?;
    let ll = ((&a + &b)? + (&cc + &d)?)? * 0.5;
    let lh = ((&a - &b)? + (&cc - &d)?)? * 0.5;
    let hl = ((&a + &b)? - (&cc + &d)?)? * 0.5;
    let hh = ((&a - &b)? - (&cc - &d)?)? * 0.5;
    let shape = (n, c, h / 2, w / 2);
    Tensor::cat(&[ll?.reshape(shape)?, lh?.reshape(shape)?, hl?.reshape(shape)?, hh?.reshape(shape)?], 1)
}

/// The inverse of [`forward`]: [N, 4C, H, W] → [N, C, 2H, 2W].
pub(crate) fn inverse(y: &Tensor) -> Result<Tensor> {
    let (n, c4, h, w) = y.dims4()?;
    let c = c4 / 4;
    let part = |i: usize| y.narrow(1, i * c, c)?.reshape((n, c, h, 1, w, 1));
    let (ll, lh, hl, hh) = (part(0)?, part(1)?, part(2)?, part(3)?);
    let a = ((&ll + &lh)? + (&hl + &hh)?)? * 0.5;
    let b = ((&ll - &lh)? + (&hl - &hh)?)? * 0.5;
    let cc = ((&ll + &lh)? - (&hl + &hh)?)? * 0.5;
    let d = ((&ll - &lh)? - (&hl - &hh)?)? * 0.5;
    let top = Tensor::cat(&[a?, b?], 5)?;
    let bottom = Tensor::cat(&[cc?, d?], 5)?;
    Tensor::cat(&[top, bottom], 3)?.reshape((n, c, 2 * h, 2 * w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    #[test]
    fn haar_is_invertible_and_keeps_energy() -> Result<()> {
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 12), &Device::Cpu)?;
        let y = forward(&x)?;
        assert_eq!(y.dims(), &[2, 12, 4, 6]);
        let back = inverse(&y)?;
        let err = (back - &x)?.abs()?.max_keepdim(D::Minus1)?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(err < 1e-5, "{err}");
        // Orthonormal: the same energy.
        let e = |t: &Tensor| t.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((e(&x) - e(&y)).abs() / e(&x) < 1e-5);
        // A constant image has only the average band.
        let flat = Tensor::ones((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu)?;
        let f = forward(&flat)?;
        assert_eq!(f.narrow(1, 1, 3)?.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
