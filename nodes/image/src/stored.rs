//! Camera images as bags store them: `sensor_msgs/Image` on the camera's
//! topic, or `sensor_msgs/CompressedImage` on its `/compressed` sibling (most
//! recordings from real robots keep only those). The offline commands find a
//! camera with [`cameras`] and [`find`] and read its frames with
//! [`StoredCamera::decode`], whichever way they were recorded.

use s2r_runtime::Serialized;
use sim2real_msgs::sensor_msgs::msg::{CompressedImage, Image};

use crate::transport::compressed_topic;
use crate::{decompress, ImageError};

/// The type name of raw images.
pub const IMAGE: &str = "sensor_msgs/msg/Image";
/// The type name of compressed images.
pub const COMPRESSED_IMAGE: &str = "sensor_msgs/msg/CompressedImage";

/// A camera's image topic in a bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCamera {
    /// The raw topic's name (`/front/image_raw`), also when only the compressed one is stored.
    pub raw: String,
    /// The topic the frames are stored on (`raw`, or `raw` + `/compressed`).
    pub topic: String,
    /// Whether they are stored compressed.
    pub compressed: bool,
}

impl StoredCamera {
    /// One stored message of [`StoredCamera::topic`] as an image (decoded when compressed).
    pub fn decode(&self, data: &Serialized) -> Result<Image, ImageError> {
        let cdr = |source| ImageError::Cdr { topic: self.topic.clone(), source };
        if self.compressed {
            decompress(&data.decode::<CompressedImage>().map_err(cdr)?, &self.topic)
        } else {
            data.decode::<Image>().map_err(cdr)
        }
    }
}

/// The camera topics among a bag's `(topic, type)` pairs, by raw name: each
/// `Image` topic, and each `CompressedImage` topic named `<raw>/compressed`
/// whose raw twin is not stored (a raw twin is read instead: it is lossless).
pub fn cameras<'a>(topics: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<StoredCamera> {
    let topics: Vec<(&str, &str)> = topics.into_iter().collect();
    let mut out: Vec<StoredCamera> = Vec::new();
    for &(t, ty) in &topics {
        if ty == IMAGE && !out.iter().any(|c| c.raw == t) {
            out.push(StoredCamera { raw: t.into(), topic: t.into(), compressed: false });
        }
    }
    for &(t, ty) in &topics {
        let Some(raw) = t.strip_suffix("/compressed") else { continue };
        if ty == COMPRESSED_IMAGE && !raw.is_empty() && !out.iter().any(|c| c.raw == raw) {
            out.push(StoredCamera { raw: raw.into(), topic: compressed_topic(raw), compressed: true });
        }
    }
    out
}

/// The first of `candidates` (raw topic names, in order of preference) among `cameras`.
pub fn find(cameras: &[StoredCamera], candidates: &[String]) -> Option<StoredCamera> {
    candidates.iter().find_map(|want| cameras.iter().find(|c| &c.raw == want)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_wins_over_its_compressed_twin_and_compressed_alone_is_found() {
        let topics = [
            ("/front/image_raw/compressed", COMPRESSED_IMAGE),
            ("/front/image_raw", IMAGE),
            ("/sim/front/image_raw/compressed", COMPRESSED_IMAGE),
            ("/odom", "nav_msgs/msg/Odometry"),
            ("/x/compressed", "std_msgs/msg/String"),
        ];
        let cams = cameras(topics);
        assert_eq!(cams.len(), 2, "{cams:?}");
        assert!(!find(&cams, &["/front/image_raw".into()]).unwrap().compressed);
        let sim = find(&cams, &["/left/image_raw".into(), "/sim/front/image_raw".into()]).unwrap();
        assert_eq!((sim.topic.as_str(), sim.compressed), ("/sim/front/image_raw/compressed", true));
        assert!(find(&cams, &["/x".into()]).is_none());
    }

    #[test]
    fn stored_frames_decode_either_way() {
        let raw = crate::rgb8_msg(Default::default(), 2, 2, vec![9; 12]);
        let c = crate::compress(&raw, "/c/image_raw", crate::Compression::Png).unwrap();
        let cams = cameras([("/c/image_raw/compressed", COMPRESSED_IMAGE)]);
        let back = cams[0].decode(&Serialized::encode(&c).unwrap()).unwrap();
        assert_eq!(back.data, raw.data);
        let e = cams[0].decode(&Serialized(vec![0u8; 3].into())).unwrap_err().to_string();
        assert!(e.starts_with("/c/image_raw/compressed"), "{e}");
    }
}
