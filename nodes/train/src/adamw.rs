//! AdamW with decoupled weight decay on the weights a predicate picks; its
//! moments are saved with the weights.

use candle_core::{Tensor, Var};
use candle_nn::VarMap;

const BETAS: (f64, f64) = (0.9, 0.999);
const EPS: f64 = 1e-8;

/// The optimiser: per variable its name, the variable, and its two moments.
pub struct AdamW {
    pub(crate) vars: Vec<(String, Var, Tensor, Tensor)>,
    /// Steps taken (bias correction).
    pub t: usize,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    decays: fn(&str) -> bool,
}

/// Convolution and linear weights decay; biases and batch norms do not.
fn weights_only(name: &str) -> bool {
    name.ends_with(".weight") && !name.contains(".bn.")
}

impl AdamW {
    /// An optimiser for every variable of `varmap` (variables without
    /// gradients, such as batch-norm running statistics, are left alone);
    /// weight decay on `*.weight` outside batch norms (`*.bn.*`).
    pub fn new(varmap: &VarMap, lr: f64, weight_decay: f64) -> candle_core::Result<AdamW> {
        AdamW::new_for(varmap, lr, weight_decay, |_| true)
    }

    /// An optimiser for the variables of `varmap` whose names `trains` picks
    /// (the others stay as they are: a frozen base under trained adapters).
    pub fn new_for(varmap: &VarMap, lr: f64, weight_decay: f64, trains: impl Fn(&str) -> bool) -> candle_core::Result<AdamW> {
        let data = varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<(String, Var, Tensor, Tensor)> = data
            .iter()
            .filter(|(k, _)| trains(k))
            .map(|(k, v)| Ok((k.clone(), v.clone(), v.zeros_like()?, v.zeros_like()?)))
            .collect::<candle_core::Result<_>>()?;
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(AdamW { vars, t: 0, lr, weight_decay, decays: weights_only })
    }

    /// Number of scalars it trains.
    pub fn trained(&self) -> usize {
        self.vars.iter().map(|v| v.1.elem_count()).sum()
    }

    /// One step from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.t += 1;
        let (b1, b2) = BETAS;
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (name, var, m, v) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let step = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + EPS)?)?;
            let decay = if (self.decays)(name) { self.weight_decay } else { 0.0 };
            let w = var.as_tensor();
            let next = ((w * (1.0 - self.lr * decay))? - (step * self.lr)?)?;
            var.set(&next)?;
        }
        Ok(())
    }
}
