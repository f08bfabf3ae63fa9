//! One camera frame through the transfer stage as messages in, messages out:
//! what transfer_node does per frame, for drivers that run the stage
//! in-process (`s2r generate`) and need the same bytes without DDS.

use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::TransferScore;

use crate::builtin::gpu::DeviceFrame;
use crate::input::{decode, CameraMsgs, Decoded, Scene, Topics};
use crate::{score, Backend, Look, TransferError, Weights};

/// A backend with the settings transfer_node's parameters give it.
pub struct Restyler {
    backend: Box<dyn Backend>,
    /// The prompt, as TransferScore reports it.
    pub prompt: String,
    /// The prompt parsed.
    pub look: Look,
    /// Control weights.
    pub weights: Weights,
    /// The random variation (particles, noise, paint).
    pub seed: u64,
    /// A frame whose boundary recall falls below this is `flagged`.
    pub threshold: f32,
}

/// What one frame gives.
pub struct RestyledMsgs {
    /// The restyled frame: rgb8, the input's header and size.
    pub image: Image,
    /// Its label-preservation score; `processing_ms` is 0 (a driver that
    /// times the frame sets it), so the same input gives the same bytes.
    pub score: TransferScore,
    /// The decoded input (notes on controls dropped, the flat rgb).
    pub input: Decoded,
}

impl Restyler {
    /// A restyler of `prompt` (words outside the vocabulary are ignored; see
    /// [`s2r_look::parse`]) with the default weights and threshold 0.6.
    pub fn new(backend: Box<dyn Backend>, prompt: &str, seed: u64) -> Restyler {
        Restyler { backend, prompt: prompt.to_string(), look: crate::parse(prompt).look, weights: Weights::default(), seed, threshold: 0.6 }
    }

    /// The backend's name (`builtin`, `builtin:fast`, `onnx:…`).
    pub fn backend_name(&self) -> String {
        self.backend.name()
    }

    /// Restyles one camera's messages of one stamp with the scene state.
    pub fn restyle(&mut self, msgs: &CameraMsgs, topics: &Topics, scene: &Scene) -> Result<RestyledMsgs, TransferError> {
        self.restyle_with(msgs, topics, scene, None)
    }

    /// The same, with the frame's images also on the backend's GPU device
    /// (the simulator's render targets, when the backend shares its device):
    /// the same bytes, without uploading them again.
    pub fn restyle_on_device(
        &mut self,
        msgs: &CameraMsgs,
        topics: &Topics,
        scene: &Scene,
        on_device: &DeviceFrame,
    ) -> Result<RestyledMsgs, TransferError> {
        self.restyle_with(msgs, topics, scene, Some(on_device))
    }

    fn restyle_with(
        &mut self,
        msgs: &CameraMsgs,
        topics: &Topics,
        scene: &Scene,
        on_device: Option<&DeviceFrame>,
    ) -> Result<RestyledMsgs, TransferError> {
        let header = msgs.image.as_ref().map(|i| i.header.clone()).unwrap_or_default();
        let d = decode(msgs, topics)?;
        let f = d.frame(scene);
        let r = match on_device {
            Some(dev) => self.backend.restyle_on_device(&f, dev, &self.look, &self.weights, self.seed)?,
            None => self.backend.restyle(&f, &self.look, &self.weights, self.seed)?,
        };
        let sc = score::score(&d.rgb, &r.rgb, f.segmentation, f.depth, r.extinction, d.width, d.height);
        let score = TransferScore {
            header: header.clone(),
            boundary_recall: sc.boundary_recall,
            boundary_pixels: sc.boundary_pixels,
            threshold: self.threshold,
            flagged: sc.boundary_recall < self.threshold,
            prompt: self.prompt.clone(),
            seed: self.seed,
            backend: self.backend.name(),
            controls: Weights::NAMES.iter().map(|n| n.to_string()).collect(),
            weights: r.weights.as_array().to_vec(),
            processing_ms: 0.0,
        };
        let image = s2r_image::rgb8_msg(header, d.width, d.height, r.rgb);
        Ok(RestyledMsgs { image, score, input: d })
    }
}
