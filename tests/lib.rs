//! sim2real's end-to-end and interoperability tests live in `tests/`; the peers
//! they run (Cyclone DDS, Fast DDS, rosbags) in `peers/`.
