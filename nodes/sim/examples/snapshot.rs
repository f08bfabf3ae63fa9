//! Renders a scenario's cameras at a few instants into PNGs:
//! `cargo run -p s2r-sim --example snapshot -- config/scenarios/x.yaml out_dir [seconds...]`
use std::path::Path;

use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = Scenario::load(Path::new(&args[1])).unwrap_or_else(|e| panic!("{e}"));
    let out = Path::new(&args[2]);
    std::fs::create_dir_all(out).unwrap();
    let times: Vec<f64> = args[3..].iter().map(|s| s.parse().unwrap()).collect();
    let mut sim = Sim::new(scenario, &SimOptions { seed: 1, ..Default::default() }).unwrap();
    eprintln!("adapter: {:?}", sim.adapter());
    for t in times {
        loop {
            let tick = sim.tick().unwrap();
            for c in &tick.collisions {
                eprintln!("{:.2}s collision {} {} {} {} {:.2}", sim.seconds(), c.class_a, c.instance_a, c.class_b, c.instance_b, c.relative_speed);
            }
            if sim.seconds() >= t && !tick.cameras.is_empty() {
                for f in &tick.cameras {
                    let name = format!("{}_{:04.1}", f.name, t);
                    write_png(&out.join(format!("{name}_rgb.png")), f.image.width, f.image.height, png::ColorType::Rgb, &f.image.data);
                    let d: Vec<u8> = f.depth.data.chunks_exact(4).map(|b| { let z = f32::from_le_bytes([b[0],b[1],b[2],b[3]]); if z.is_finite() { (255.0 * (1.0 - (z / 80.0).min(1.0))) as u8 } else { 0 } }).collect();
                    write_png(&out.join(format!("{name}_depth.png")), f.image.width, f.image.height, png::ColorType::Grayscale, &d);
                    let s: Vec<u8> = f.segmentation.data.iter().map(|c| c.wrapping_mul(18)).collect();
                    write_png(&out.join(format!("{name}_seg.png")), f.image.width, f.image.height, png::ColorType::Grayscale, &s);
                    for d in &f.detections.detections {
                        eprintln!("{name}: id {} {} score {:.2} box {:.1},{:.1} {}x{}", d.id, d.results[0].hypothesis.class_id, d.results[0].hypothesis.score, d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y);
                    }
                }
                if let Some(o) = &tick.odom { eprintln!("odom x {:.2} y {:.2} v {:.2}", o.pose.pose.position.x, o.pose.pose.position.y, o.twist.twist.linear.x); }
                if let Some(j) = &tick.joint_states { eprintln!("joints {:?}", j.position); }
                break;
            }
        }
    }
    eprintln!("{:?}", sim.timings);
}

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    e.set_color(color);
    e.set_depth(png::BitDepth::Eight);
    e.write_header().unwrap().write_image_data(data).unwrap();
}
