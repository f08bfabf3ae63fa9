//! Token bags back into images: what `s2r tokens decode` does with a bag that
//! tokenizer_node recorded, for inspection.

use std::path::Path;

use s2r_bag::BagReader;
use s2r_image::{write_png, Rgb};
use s2r_runtime::Serialized;
use sim2real_msgs::sim2real_msgs::msg::TokenFrame;

use crate::codec::Codec;
use crate::metrics::to_rgb8;
use crate::node::tokens_of;
use crate::TokenizerError;

/// Decodes every sim2real_msgs/TokenFrame of the bag at `bag` with `codec`
/// (loaded from `checkpoint`, the name or file the caller was given, which
/// errors quote) into a PNG per frame in `output`, created if missing, named
/// `<topic>_<sec>.<nanosec>.png` from the stamps the chunk covers. Returns the
/// number of frames written. A message that does not decode is skipped and
/// reported to `log`; tokens of another codec than the checkpoint's stop it.
pub fn decode_bag(
    bag: &Path,
    codec: &Codec,
    checkpoint: &str,
    output: &Path,
    log: &mut dyn FnMut(String),
) -> Result<usize, TokenizerError> {
    let r = BagReader::open(bag).map_err(|source| TokenizerError::Bag { path: bag.into(), source })?;
    std::fs::create_dir_all(output).map_err(|reason| TokenizerError::Output { path: output.into(), reason })?;
    let want = format!("sim2real/{}", codec.cfg.name());
    let mut n = 0;
    for m in r.messages() {
        let c = &r.connections[m.connection];
        if c.type_name != "sim2real_msgs/msg/TokenFrame" {
            continue;
        }
        let tf: TokenFrame = Serialized(m.data.clone()).decode().map_err(|source| TokenizerError::Message {
            path: bag.into(),
            topic: c.topic.clone(),
            source,
        })?;
        if tf.codec != want {
            return Err(TokenizerError::CodecMismatch { path: bag.into(), codec: tf.codec, checkpoint: checkpoint.into(), expected: want });
        }
        let frames = match tokens_of(&tf).and_then(|t| Ok(codec.decode(&t)?)) {
            Ok(f) => f,
            Err(e) => {
                log(format!("{}: {} message at {} ns skipped: {e}", bag.display(), c.topic, m.log_time));
                continue;
            }
        };
        let size = tf.width as usize;
        for (f, stamp) in frames.iter().zip(&tf.stamps) {
            let rgb = to_rgb8(f, size);
            let name = format!("{}_{}.{:09}.png", c.topic.trim_start_matches('/').replace('/', "_"), stamp.sec, stamp.nanosec);
            write_png(&output.join(name), &Rgb { width: size, height: size, data: rgb })?;
            n += 1;
        }
    }
    if n == 0 {
        return Err(TokenizerError::NoTokens { path: bag.into() });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bag_without_tokens_is_named() {
        let codec = Codec::load(&crate::resolve_checkpoint("dv8x16x16")).unwrap();
        let bag = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bags/icy_night_crossing");
        let out = std::env::temp_dir().join(format!("s2r_decode_{}", std::process::id()));
        let e = decode_bag(&bag, &codec, "dv8x16x16", &out, &mut |_| {}).unwrap_err().to_string();
        assert!(e.ends_with("icy_night_crossing: no sim2real_msgs/msg/TokenFrame messages"), "{e}");
        let e = decode_bag(Path::new("/nowhere/bag"), &codec, "dv8x16x16", &out, &mut |_| {}).unwrap_err().to_string();
        // The bag error names the path; the tokenizer's does not repeat it.
        assert!(e.starts_with("/nowhere/bag ") && e.matches("/nowhere/bag").count() == 1, "{e}");
        std::fs::remove_dir_all(&out).ok();
    }
}
