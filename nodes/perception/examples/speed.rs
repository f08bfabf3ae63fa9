use candle_core::{Device, Tensor};
use s2r_perception::checkpoint::{AdamW, Trainable};
use s2r_perception::model::Config;
use std::time::Instant;
fn main() -> candle_core::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (b, w, h) = (args[0], args[1], args[2]);
    let cfg = Config::small((0..8).map(|i| format!("d{i}")).collect(), (0..19).map(|i| format!("s{i}")).collect());
    let t = Trainable::new(cfg, &Device::Cpu)?;
    let mut opt = AdamW::new(&t.varmap, 1e-3, 1e-4)?;
    let x = Tensor::randn(0f32, 1.0, (b, 3, h, w), &Device::Cpu)?;
    for i in 0..4 {
        let t0 = Instant::now();
        let o = t.net.forward(&x, true)?;
        let loss = (o.heat.sqr()?.mean_all()? + o.seg.sqr()?.mean_all()? + o.ltrb.mean_all()? + o.log_depth.sqr()?.mean_all()?)?;
        let t1 = Instant::now();
        opt.backward_step(&loss)?;
        println!("train step {i}: fwd {:?} total {:?} ({:.1} img/s)", t1 - t0, t0.elapsed(), b as f64 / t0.elapsed().as_secs_f64());
    }
    let f = t.net.fold()?;
    for i in 0..3 {
        let t0 = Instant::now();
        let o = f.forward(&x, true)?;
        let loss = (o.heat.sqr()?.mean_all()? + o.seg.sqr()?.mean_all()? + o.ltrb.mean_all()? + o.log_depth.sqr()?.mean_all()?)?;
        let t1 = Instant::now();
        let _g = loss.backward()?;
        println!("no-BN step {i}: fwd {:?} total {:?}", t1 - t0, t0.elapsed());
    }
    let x1 = Tensor::randn(0f32, 1.0, (1, 3, h, w), &Device::Cpu)?;
    for i in 0..5 {
        let t0 = Instant::now();
        let o = f.forward(&x1, false)?;
        let _ = o.seg.to_vec3::<f32>();
        println!("infer {i}: {:?}", t0.elapsed());
    }
    Ok(())
}
