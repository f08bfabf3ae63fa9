//! Hashed lattice noise, anchored to world coordinates so that a texture sits
//! on its surface from frame to frame, and filtered by the pixel footprint so
//! that detail finer than a pixel fades out instead of aliasing (crawling).

/// A 32-bit integer hash (two multiply-xorshift rounds): every output bit
/// depends on every input bit, so consecutive inputs give unrelated outputs.
/// The backend's randomness is all hashes of positions, seeds and stamps,
/// which is what makes it reproducible.
#[inline]
pub const fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

#[inline]
pub(crate) fn hash3(a: i32, b: i32, c: u32) -> u32 {
    hash32((a as u32).wrapping_mul(0x8da6_b343) ^ (b as u32).wrapping_mul(0xd816_3841) ^ c.wrapping_mul(0xcb1a_b31f))
}

/// A uniform number in [0, 1) from a hash.
#[inline]
pub(crate) fn unit(h: u32) -> f32 {
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// floor as an integer, without a libm call (the baseline x86-64 target has
/// no rounding instruction, and f32::floor becomes a function call).
#[inline]
pub(crate) fn ifloor(x: f32) -> i32 {
    let t = x as i32;
    t - ((t as f32) > x) as i32
}

/// The fractional part in [0, 1), also for negative numbers.
#[inline]
pub(crate) fn frac(x: f32) -> f32 {
    x - ifloor(x) as f32
}

const fn lattice_table() -> [u8; 65536] {
    let mut t = [0u8; 65536];
    let mut i = 0;
    while i < 65536 {
        t[i] = (hash32(i as u32 ^ 0x51ed_270b) >> 24) as u8;
        i += 1;
    }
    t
}

/// Random values on a 256×256 lattice that repeats: a table lookup is several
/// times cheaper than hashing every lattice point, and per seed the lattice is
/// shifted and its values scrambled.
static LATTICE: [u8; 65536] = lattice_table();

#[inline]
fn lattice(ix: i32, iy: i32, seed: u32) -> f32 {
    let i = ((ix.wrapping_add(seed as i32) & 255) | ((iy.wrapping_add((seed >> 8) as i32) & 255) << 8)) as usize;
    (LATTICE[i] ^ (seed >> 16) as u8) as f32 * (1.0 / 255.0)
}

/// Value noise in [0, 1] on the integer lattice, smooth in between.
#[inline]
pub(crate) fn value2(x: f32, y: f32, seed: u32) -> f32 {
    let seed = hash32(seed);
    let (ix, iy) = (ifloor(x), ifloor(y));
    let (tx, ty) = (x - ix as f32, y - iy as f32);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = lattice(ix, iy, seed);
    let b = lattice(ix + 1, iy, seed);
    let c = lattice(ix, iy + 1, seed);
    let d = lattice(ix + 1, iy + 1, seed);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// How much of a pattern of wavelength `lambda` (metres) survives at a pixel
/// footprint of `footprint` metres: all of it above 4 pixels per period,
/// none below 2.
#[inline]
pub(crate) fn fade(lambda: f32, footprint: f32) -> f32 {
    ((lambda / footprint.max(1e-6) - 2.0) * 0.5).clamp(0.0, 1.0)
}

/// Fractal noise around 0.5 with `octaves` octaves from wavelength `lambda`
/// down by halves; octaves finer than the footprint are replaced by their mean.
#[inline]
pub(crate) fn fbm2(x: f32, y: f32, lambda: f32, octaves: u32, footprint: f32, seed: u32) -> f32 {
    let mut sum = 0.0;
    let mut amp = 0.5;
    let mut l = lambda;
    let mut inv_l = 1.0 / lambda;
    let inv_fp = 1.0 / footprint.max(1e-6);
    let mut total = 0.0;
    for o in 0..octaves {
        let f = ((l * inv_fp - 2.0) * 0.5).clamp(0.0, 1.0);
        let n = if f > 0.0 { value2(x * inv_l, y * inv_l, seed.wrapping_add(o * 7919)) } else { 0.5 };
        sum += amp * (0.5 + (n - 0.5) * f);
        total += amp;
        amp *= 0.5;
        l *= 0.5;
        inv_l *= 2.0;
    }
    sum / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_continuous_and_bounded() {
        let mut prev = value2(0.0, 0.3, 1);
        for i in 1..1000 {
            let v = value2(i as f32 * 0.01, 0.3, 1);
            assert!((0.0..=1.0).contains(&v));
            assert!((v - prev).abs() < 0.05, "jump at {i}");
            prev = v;
        }
        // Detail far below the footprint is averaged out.
        assert_eq!(fbm2(1.3, 2.7, 0.01, 3, 1.0, 5), 0.5);
        assert_ne!(fbm2(1.3, 2.7, 10.0, 3, 0.01, 5), 0.5);
    }
}
