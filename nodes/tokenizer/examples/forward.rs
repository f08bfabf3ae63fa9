//! Runs a checkpoint's encoder + decoder on a clip of raw f32 values
//! ([1, T, 3, S, S]) and writes the reconstruction the same way:
//! `cargo run --release -p s2r-tokenizer --example forward CK IN OUT T S`.
//! tools/tokenizer_gpu.py `check` does the same in PyTorch, to compare.
use candle_core::{Device, Tensor};
use s2r_tokenizer::codec::Codec;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (t, s): (usize, usize) = (a[4].parse().unwrap(), a[5].parse().unwrap());
    let codec = Codec::load(std::path::Path::new(&a[1])).unwrap();
    let raw = std::fs::read(&a[2]).unwrap();
    let v: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let video = Tensor::from_vec(v, (1, t, 3, s, s), &Device::Cpu).unwrap();
    let out = codec.model.reconstruct(&video).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    std::fs::write(&a[3], out.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}
