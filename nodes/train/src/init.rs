//! Initial weights drawn from a seed: candle's layers draw theirs from an
//! unseeded generator, so the same command would give different runs.

use candle_core::Tensor;
use candle_nn::VarMap;

/// Redraws the weights of `varmap` from `seed` with candle's distributions:
/// convolution and linear weights (`*.weight` of rank ≥ 2) Kaiming normal
/// (std √(2 / fan-in)), their biases uniform in ±1/√fan-in; batch norms
/// (`*.bn.*`) and everything else are left as they are.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let vars = varmap.data().lock().expect("the variables' lock").clone();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let fan_in = |w: &str| vars.get(w).filter(|v| v.rank() >= 2).map(|v| v.dims()[1..].iter().product::<usize>());
    for name in names {
        let v = &vars[name];
        let n = v.elem_count();
        let values: Vec<f32> = if let (Some(f), false) = (fan_in(name), name.contains(".bn.")) {
            let normal = Normal::new(0.0, (2.0 / f as f64).sqrt()).expect("a positive std");
            (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
        } else if let Some(f) =
            name.strip_suffix(".bias").and_then(|layer| fan_in(&format!("{layer}.weight"))).filter(|_| !name.contains(".bn."))
        {
            let b = 1.0 / (f as f64).sqrt();
            (0..n).map(|_| rng.random_range(-b..b) as f32).collect()
        } else {
            continue;
        };
        v.set(&Tensor::from_vec(values, v.shape(), v.device())?)?;
    }
    Ok(())
}
