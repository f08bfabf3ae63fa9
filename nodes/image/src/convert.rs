//! `s2r bag convert`: a bag's camera images compressed (raw → image_transport
//! `compressed`) or decompressed (compressed → raw), every other topic copied
//! as it is, with its times, QoS and type hash. A large simulation bag ships
//! small; a robot's bag feeds tools that want raw frames.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use s2r_bag::{BagError, BagMessage, BagReader, BagWriter, Connection, TopicId, TopicSpec, WriterOptions};
use s2r_runtime::Serialized;
use sim2real_msgs::sensor_msgs::msg::{CompressedImage, Image};

use crate::stored::{COMPRESSED_IMAGE, IMAGE};
use crate::transport::compressed_topic;
use crate::{compress, decompress, Compression, ImageError};

/// Which way images are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Raw camera images to `<topic>/compressed`.
    Compress(Compression),
    /// `<topic>/compressed` to raw `<topic>`.
    Decompress,
}

/// What `s2r bag convert` does.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Which way.
    pub direction: Direction,
    /// The image topics to convert (raw names, or the compressed ones'
    /// names); empty: every camera image topic. When compressing, a camera
    /// image topic is an Image topic whose last name segment starts with
    /// `image` (`image_raw`, `image_rect`, `image_color`…): depth,
    /// segmentation and instance images are labels and stay raw.
    pub topics: Vec<String>,
    /// How the output bag is written (chunk compression, splitting).
    pub writer: WriterOptions,
}

/// One converted or copied topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    /// Its name in the input.
    pub from: String,
    /// Its name in the output.
    pub to: String,
    /// Messages written.
    pub messages: u64,
    /// Payload bytes read.
    pub bytes_in: u64,
    /// Payload bytes written.
    pub bytes_out: u64,
    /// Messages that could not be converted (skipped), and the first reason.
    pub skipped: u64,
    /// Why the first skipped message was skipped, or why the topic was copied unconverted.
    pub note: Option<String>,
}

/// What a conversion did, topic by topic (input order).
#[derive(Clone, Debug, Default)]
pub struct ConvertReport {
    /// Every topic of the input.
    pub topics: Vec<TopicReport>,
    /// Damage found in the input (read up to it).
    pub damage: Vec<String>,
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input or output bag.
    #[error("{}: {source}", path.display())]
    Bag {
        /// The bag.
        path: PathBuf,
        /// What went wrong.
        source: BagError,
    },
    /// A topic named with `--topic` that the input does not have (as a convertible image topic).
    #[error("{}: no image topic '{topic}' to {verb} (image topics: {})", path.display(), have.join(", "))]
    NoTopic {
        /// The input bag.
        path: PathBuf,
        /// The topic asked for.
        topic: String,
        /// compress or decompress.
        verb: &'static str,
        /// What it has.
        have: Vec<String>,
    },
}

/// What happens to one input connection.
enum Plan {
    Copy,
    Compress(Compression),
    Decompress,
}

fn is_camera_image(topic: &str) -> bool {
    topic.rsplit('/').next().is_some_and(|last| last.starts_with("image"))
}

/// Converts the bag at `input` into a new bag at `output` (see the module docs).
pub fn convert(input: &Path, output: &Path, opts: &ConvertOptions) -> Result<ConvertReport, ConvertError> {
    let reader = BagReader::open(input).map_err(|source| ConvertError::Bag { path: input.into(), source })?;
    let plans = plan(&reader, input, opts)?;
    let mut writer = BagWriter::create(output, opts.writer.clone()).map_err(|source| ConvertError::Bag { path: output.into(), source })?;
    let out_err = |source| ConvertError::Bag { path: output.into(), source };
    let mut report = ConvertReport {
        topics: reader
            .connections
            .iter()
            .zip(&plans)
            .map(|(c, p)| TopicReport {
                from: c.topic.clone(),
                to: match p {
                    Plan::Copy => c.topic.clone(),
                    Plan::Compress(_) => compressed_topic(&c.topic),
                    Plan::Decompress => c.topic.trim_end_matches("/compressed").to_string(),
                },
                messages: 0,
                bytes_in: 0,
                bytes_out: 0,
                skipped: 0,
                note: None,
            })
            .collect(),
        damage: reader.damage().iter().map(|d| d.to_string()).chain(reader.problems.iter().cloned()).collect(),
    };
    let mut ids: BTreeMap<usize, TopicId> = BTreeMap::new();
    // Images convert in parallel a batch at a time; the output keeps the input's order.
    let mut batch: Vec<BagMessage> = Vec::with_capacity(32);
    let mut flush = |batch: &mut Vec<BagMessage>, writer: &mut BagWriter, report: &mut ConvertReport| -> Result<(), ConvertError> {
        let converted: Vec<Option<Result<Vec<u8>, ImageError>>> = batch
            .par_iter()
            .map(|m| {
                let c = &reader.connections[m.connection];
                convert_one(&plans[m.connection], c, Serialized(m.data.clone()))
            })
            .collect();
        for (m, out) in batch.drain(..).zip(converted) {
            let r = &mut report.topics[m.connection];
            r.bytes_in += m.data.len() as u64;
            let data = match out {
                None => m.data.to_vec(),
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    r.skipped += 1;
                    r.note.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            let id = match ids.get(&m.connection) {
                Some(id) => *id,
                None => {
                    let c = &reader.connections[m.connection];
                    let spec = spec_for(&plans[m.connection], c, &r.to);
                    let id = writer.add_topic(spec).map_err(out_err)?;
                    ids.insert(m.connection, id);
                    id
                }
            };
            writer.write(id, m.log_time, m.publish_time, &data).map_err(out_err)?;
            r.messages += 1;
            r.bytes_out += data.len() as u64;
        }
        Ok(())
    };
    for m in reader.messages() {
        batch.push(m);
        if batch.len() == batch.capacity() {
            flush(&mut batch, &mut writer, &mut report)?;
        }
    }
    flush(&mut batch, &mut writer, &mut report)?;
    // Topics without a message are kept too, as rosbag2 keeps them.
    for (i, c) in reader.connections.iter().enumerate() {
        if !ids.contains_key(&i) && report.topics[i].skipped == 0 {
            writer.add_topic(spec_for(&plans[i], c, &report.topics[i].to)).map_err(out_err)?;
        }
    }
    writer.finish().map_err(out_err)?;
    Ok(report)
}

/// Decides, per connection of the input, what happens to it.
fn plan(reader: &BagReader, input: &Path, opts: &ConvertOptions) -> Result<Vec<Plan>, ConvertError> {
    let conns = &reader.connections;
    let has_raw = |raw: &str| conns.iter().any(|c| c.topic == raw && c.type_name == IMAGE);
    let wanted = |c: &Connection, raw: &str| {
        if opts.topics.is_empty() {
            true
        } else {
            opts.topics.iter().any(|t| t == &c.topic || t == raw)
        }
    };
    let plans: Vec<Plan> = conns
        .iter()
        .map(|c| match opts.direction {
            Direction::Compress(how) if c.type_name == IMAGE => {
                let chosen = if opts.topics.is_empty() { is_camera_image(&c.topic) } else { wanted(c, &c.topic) };
                let clash = conns.iter().any(|o| o.topic == compressed_topic(&c.topic));
                if chosen && !clash {
                    Plan::Compress(how)
                } else {
                    Plan::Copy
                }
            }
            Direction::Decompress if c.type_name == COMPRESSED_IMAGE => match c.topic.strip_suffix("/compressed") {
                Some(raw) if !raw.is_empty() && !has_raw(raw) && wanted(c, raw) => Plan::Decompress,
                _ => Plan::Copy,
            },
            _ => Plan::Copy,
        })
        .collect();
    // Every topic asked for by name must be converted.
    for t in &opts.topics {
        let converted = conns
            .iter()
            .zip(&plans)
            .any(|(c, p)| !matches!(p, Plan::Copy) && (c.topic == *t || c.topic.strip_suffix("/compressed").is_some_and(|raw| raw == t)));
        if !converted {
            let (ty, verb) = match opts.direction {
                Direction::Compress(_) => (IMAGE, "compress"),
                Direction::Decompress => (COMPRESSED_IMAGE, "decompress"),
            };
            let have = conns.iter().filter(|c| c.type_name == ty).map(|c| c.topic.clone()).collect();
            return Err(ConvertError::NoTopic { path: input.into(), topic: t.clone(), verb, have });
        }
    }
    Ok(plans)
}

/// The converted message, or None for a topic copied as it is.
fn convert_one(plan: &Plan, c: &Connection, msg: Serialized) -> Option<Result<Vec<u8>, ImageError>> {
    let cdr = |source| ImageError::Cdr { topic: c.topic.clone(), source };
    let convert = || -> Result<Vec<u8>, ImageError> {
        let out = match plan {
            Plan::Copy => unreachable!("copied topics are not converted"),
            Plan::Compress(how) => Serialized::encode(&compress(&msg.decode::<Image>().map_err(cdr)?, &c.topic, *how)?),
            Plan::Decompress => Serialized::encode(&decompress(&msg.decode::<CompressedImage>().map_err(cdr)?, &c.topic)?),
        };
        Ok(out.map_err(cdr)?.0.to_vec())
    };
    match plan {
        Plan::Copy => None,
        _ => Some(convert()),
    }
}

fn spec_for(plan: &Plan, c: &Connection, to: &str) -> TopicSpec {
    match plan {
        Plan::Copy => TopicSpec::from(c),
        Plan::Compress(_) => TopicSpec::of::<CompressedImage>(to, c.qos.clone()),
        Plan::Decompress => TopicSpec::of::<Image>(to, c.qos.clone()),
    }
}
