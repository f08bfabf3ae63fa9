//! The policy at run time: a frame and the odometry in, a command out, with
//! temporal ensembling over the recent action chunks (each command is the
//! weighted mean of what every chunk still covering this instant predicted
//! for it, newer chunks weighing more), which smooths the commands without
//! delaying them.

use std::collections::VecDeque;
use std::path::Path;

use candle_core::{Device, Tensor};
use sim2real_msgs::sensor_msgs::msg::Image;

use crate::model::{Config, Net, Robot};
use crate::{candle, checkpoint, data, PolicyError};

/// How much less a chunk counts per camera period of age (exp(−k·age)).
const ENSEMBLE_DECAY: f32 = 0.3;

/// A loaded policy and its recent chunks.
pub struct Pilot {
    net: Net,
    device: Device,
    /// (time, chunk) of the recent predictions, newest last.
    history: VecDeque<(f64, Vec<Vec<f32>>)>,
    /// (time in ns, frame at the input size) of the recent frames, for a
    /// policy that reads a past frame too ([`Config::past`]).
    frames: VecDeque<(i64, Vec<u8>)>,
}

impl Pilot {
    /// Loads a checkpoint for inference on the CPU.
    pub fn load(path: &Path) -> Result<Pilot, PolicyError> {
        Pilot::load_on(path, &Device::Cpu)
    }

    /// Loads a checkpoint for inference on `device`.
    pub fn load_on(path: &Path, device: &Device) -> Result<Pilot, PolicyError> {
        let net = checkpoint::read(path)?.net(device)?;
        Ok(Pilot { net, device: device.clone(), history: VecDeque::new(), frames: VecDeque::new() })
    }

    /// The network's config (its camera, input size, chunk).
    pub fn config(&self) -> &Config {
        &self.net.config
    }

    /// Forgets the recent chunks (a new episode, a stale input).
    pub fn reset(&mut self) {
        self.history.clear();
        self.frames.clear();
    }

    /// The network's raw chunk for the frame taken at `time` (seconds) and
    /// the robot's state (see [`Robot::state_scale`] for its entries): one
    /// command per camera period ahead (see [`Robot::action_scale`]; an
    /// arm's joint targets made absolute again). The frame is kept for a
    /// policy that reads a past one too.
    pub fn chunk(&mut self, time: f64, image: &Image, topic: &str, state: &[f32]) -> Result<Vec<Vec<f32>>, PolicyError> {
        let cfg = &self.net.config;
        let scale = cfg.robot.state_scale();
        if state.len() != scale.len() {
            return Err(PolicyError::Frame {
                topic: topic.into(),
                problem: format!("a state of {} entries; this {:?} policy reads {}", state.len(), cfg.robot, scale.len()),
            });
        }
        let rgb = data::frame(image, topic, cfg)?;
        let input = match cfg.past {
            None => rgb,
            Some(past) => {
                let t = (time * 1e9) as i64;
                // Frames from another episode (time went back) are forgotten.
                if self.frames.back().is_some_and(|(s, _)| *s > t) {
                    self.frames.clear();
                }
                self.frames.push_back((t, rgb));
                let keep = t - (f64::from(past) * 1e9) as i64 - 1_000_000_000;
                while self.frames.front().is_some_and(|(s, _)| *s < keep) {
                    self.frames.pop_front();
                }
                let stream = self.frames.make_contiguous();
                let now = &stream[stream.len() - 1].1;
                let before = data::past_frame(stream, t, past).unwrap_or(now);
                data::stack(&[now, before])
            }
        };
        let (w, h) = (cfg.width, cfg.height);
        let x: Vec<f32> = input.iter().map(|v| *v as f32 / 255.0).collect();
        let x = Tensor::from_vec(x, (1, h, w, cfg.channels_in()), &self.device).map_err(candle("the frame"))?;
        let s: Vec<f32> = state.iter().zip(scale).map(|(v, k)| v / k).collect();
        let s = Tensor::from_vec(s, (1, scale.len()), &self.device).map_err(candle("the state"))?;
        let y = self.net.forward(&x, &s).and_then(|y| y.to_vec3::<f32>()).map_err(candle("the policy's forward pass"))?;
        let out = cfg.robot.action_scale();
        let chunk = y[0].iter().map(|a| a.iter().zip(out).map(|(v, k)| v * k).collect::<Vec<f32>>());
        Ok(match cfg.robot {
            Robot::Vehicle => chunk.collect(),
            // An arm's joint commands come relative to its joint angles now.
            Robot::Arm => chunk
                .map(|mut a| {
                    for (x, q) in a.iter_mut().zip(&state[..6]) {
                        *x += q;
                    }
                    a
                })
                .collect(),
        })
    }

    /// The command for a frame taken at `time` (seconds), ensembled: a
    /// vehicle's speed (m/s, never negative) and yaw rate (rad/s); an arm's
    /// six joint targets (rad) and gripper opening (m, never negative).
    pub fn act(&mut self, time: f64, image: &Image, topic: &str, state: &[f32]) -> Result<Vec<f32>, PolicyError> {
        let chunk = self.chunk(time, image, topic, state)?;
        let period = self.net.config.period as f64;
        let n = self.net.config.chunk;
        let dims = self.net.config.robot.action_scale().len();
        self.history.push_back((time, chunk));
        while self.history.front().is_some_and(|(t, _)| time - t > period * (n as f64 - 0.5)) {
            self.history.pop_front();
        }
        let (mut sum, mut weight) = (vec![0f32; dims], 0f32);
        for (t, c) in &self.history {
            let age = ((time - t) / period).round().max(0.0) as usize;
            if let Some(a) = c.get(age) {
                let w = (-ENSEMBLE_DECAY * age as f32).exp();
                for (s, v) in sum.iter_mut().zip(a) {
                    *s += w * v;
                }
                weight += w;
            }
        }
        let mut out: Vec<f32> = sum.iter().map(|s| s / weight).collect();
        // Speeds and openings are not negative.
        let last = match self.net.config.robot {
            Robot::Vehicle => 0,
            Robot::Arm => 6,
        };
        out[last] = out[last].max(0.0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim2real_msgs::std_msgs::msg::Header;

    fn pilot(dir: &Path) -> Pilot {
        let path = dir.join("p.safetensors");
        checkpoint::save_untrained(&path, Config::small("front", Robot::Vehicle), 1).unwrap();
        Pilot::load(&path).unwrap()
    }

    #[test]
    fn ensembled_commands_mix_the_chunks_covering_this_instant() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pilot(tmp.path());
        let img = s2r_image::rgb8_msg(Header::default(), 320, 240, vec![90; 320 * 240 * 3]);
        let first = p.chunk(0.0, &img, "/front/image_raw", &[5.0, 0.0]).unwrap();
        assert_eq!(first.len(), 10);
        // The first command is the first chunk's first entry.
        let c0 = p.act(0.0, &img, "/front/image_raw", &[5.0, 0.0]).unwrap();
        assert!((c0[0] - first[0][0].max(0.0)).abs() < 1e-5 && (c0[1] - first[0][1]).abs() < 1e-5);
        // A period later: the new chunk's first entry and the old chunk's second, weighted.
        let v1 = p.act(0.1, &img, "/front/image_raw", &[5.0, 0.0]).unwrap()[0];
        let w = (-ENSEMBLE_DECAY).exp();
        let want = (first[0][0] + w * first[1][0]) / (1.0 + w);
        assert!((v1 - want.max(0.0)).abs() < 1e-4, "{v1} vs {want}");
        // A state of the wrong robot is refused.
        assert!(p.act(0.2, &img, "/front/image_raw", &[0.0; 8]).unwrap_err().to_string().contains("8 entries"));
        // Chunks older than the chunk's span drop out; reset forgets them all.
        p.act(5.0, &img, "/front/image_raw", &[5.0, 0.0]).unwrap();
        assert_eq!(p.history.len(), 1);
        p.reset();
        assert!(p.history.is_empty());
    }

    #[test]
    fn a_policy_with_a_past_frame_reads_the_one_before() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.safetensors");
        let mut c = Config::small("front", Robot::Vehicle);
        (c.width, c.height, c.rows, c.past) = (64, 32, [0.25, 0.75], Some(0.2));
        checkpoint::save_untrained(&path, c, 1).unwrap();
        let mut p = Pilot::load(&path).unwrap();
        let dark = s2r_image::rgb8_msg(Header::default(), 320, 240, vec![20; 320 * 240 * 3]);
        let light = s2r_image::rgb8_msg(Header::default(), 320, 240, vec![220; 320 * 240 * 3]);
        let topic = "/front/image_raw";
        // At start the frame reads itself as its past.
        let alone = p.chunk(0.2, &light, topic, &[5.0, 0.0]).unwrap();
        p.reset();
        p.chunk(0.0, &dark, topic, &[5.0, 0.0]).unwrap();
        p.chunk(0.1, &light, topic, &[5.0, 0.0]).unwrap();
        let after_dark = p.chunk(0.2, &light, topic, &[5.0, 0.0]).unwrap();
        assert_ne!(alone, after_dark, "the past frame made no difference");
        // 0.1 s after the light frames, the frame 0.2 s before is light too.
        let after_light = p.chunk(0.3, &light, topic, &[5.0, 0.0]).unwrap();
        assert_eq!(alone, after_light);
        // Time going back (a new episode) forgets the old frames.
        let again = p.chunk(0.2, &light, topic, &[5.0, 0.0]).unwrap();
        assert_eq!(again, alone);
        assert_eq!(p.frames.len(), 1);
    }

    #[test]
    fn frames_it_cannot_read_are_refused_by_topic() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pilot(tmp.path());
        let mut img = s2r_image::rgb8_msg(Header::default(), 64, 48, vec![0; 64 * 48 * 3]);
        img.encoding = "32FC1".into();
        let e = p.act(0.0, &img, "/robot/cam/image_raw", &[0.0, 0.0]).unwrap_err().to_string();
        assert!(e.starts_with("/robot/cam/image_raw"), "{e}");
        let e = Pilot::load(&tmp.path().join("none.safetensors")).err().unwrap().to_string();
        assert!(e.contains("none.safetensors") && e.contains("s2r train policy"), "{e}");
    }
}
