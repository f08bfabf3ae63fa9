use candle_core::{Device, Tensor};
use rand::SeedableRng;
use s2r_perception::augment::{example, Augment};
use s2r_perception::checkpoint::{AdamW, Trainable};
use s2r_perception::data::{bags_of, load, Frames, LoadOptions, Split};
use s2r_perception::frame::{normalise, View};
use s2r_perception::loss::Targets;
use s2r_perception::model::Config;
fn main() -> anyhow::Result<()> {
    let bags = bags_of(std::path::Path::new("/tmp/p15/tiny"), Split::Train)?;
    let ds = load(&bags[..6], &LoadOptions { frames: Frames::Flat, cameras: vec![], every: 5, det_classes: None, seg_classes: None })?;
    println!("{} samples, det {:?}", ds.samples.len(), ds.det_classes);
    let cfg = Config::small(ds.det_classes.clone(), ds.seg_classes.clone());
    let t = Trainable::new(cfg.clone(), &Device::Cpu)?;
    let mut opt = AdamW::new(&t.varmap, 2e-3, 1e-4)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let exs: Vec<_> =
        ds.samples.iter().take(8).map(|s| example(s, &View::letterbox(320, 240, 256, 192), &Augment::NONE, &mut rng)).collect();
    for e in &exs {
        println!("objects {:?}", e.objects.iter().map(|o| (o.0, o.1.map(|v| v as i32))).collect::<Vec<_>>());
    }
    let targets = Targets::new(&exs, &ds.det_lut(), cfg.det_classes.len(), cfg.focal, &Device::Cpu)?;
    let input: Vec<f32> = exs.iter().flat_map(|e| normalise(&e.rgb, 256, 192)).collect();
    let x = Tensor::from_vec(input, (exs.len(), 3, 192, 256), &Device::Cpu)?;
    for step in 0..150 {
        let out = t.net.forward(&x, true)?;
        let (loss, p) = targets.loss(&out)?;
        opt.backward_step(&loss)?;
        if step % 10 == 0 {
            println!("{step}: {p:?}");
        }
    }
    Ok(())
}
