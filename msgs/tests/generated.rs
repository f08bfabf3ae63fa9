//! The generated types against the dynamic codec and the definitions they came from.

use byteorder::LittleEndian;
use s2r_idl::dynamic::{self, Value};
use s2r_idl::{Message, MessageVisitor, TypeName};
use sim2real_msgs::{geometry_msgs, registry, sensor_msgs, sim2real_msgs as s2r, std_msgs, vision_msgs};

fn typed_bytes<M: Message>(m: &M) -> Vec<u8> {
    let mut out = dynamic::CDR_LE_HEADER.to_vec();
    out.extend(cdr_encoding::to_vec::<M, LittleEndian>(m).unwrap());
    out
}

fn typed_decode<M: Message>(data: &[u8]) -> M {
    cdr_encoding::from_bytes::<M, LittleEndian>(&data[4..]).unwrap().0
}

/// For every type: the default value of the generated struct and of the
/// dynamic codec serialize to the same bytes, which decode back to both.
#[test]
fn every_type_agrees_with_the_dynamic_codec() {
    struct Check(usize);
    impl MessageVisitor for Check {
        fn visit<M: Message>(&mut self) {
            let reg = registry();
            let ty = TypeName::parse(M::TYPE_NAME).unwrap();
            let typed = typed_bytes(&M::default());
            let dynamic_default = dynamic::default_value(reg, &ty).unwrap();
            assert_eq!(dynamic::encode(&dynamic_default).unwrap(), typed, "{}", M::TYPE_NAME);
            let decoded = dynamic::decode(reg, &ty, &typed).unwrap();
            assert_eq!(decoded, dynamic_default, "{}", M::TYPE_NAME);
            let back: M = typed_decode(&typed);
            assert_eq!(format!("{back:?}"), format!("{:?}", M::default()));
            assert_eq!(M::TYPE_HASH, reg.type_hash(&ty).unwrap());
            assert_eq!(M::SCHEMA, reg.schema_text(&ty).unwrap());
            self.0 += 1;
        }
    }
    let mut c = Check(0);
    sim2real_msgs::visit_all(&mut c);
    assert_eq!(c.0, sim2real_msgs::DEFINITIONS.len());
    assert!(c.0 >= 40, "only {} types", c.0);
}

#[test]
fn image_bytes_travel_as_one_block_and_clone_without_copy() {
    let pixels: Vec<u8> = (0..640 * 480 * 3).map(|i| (i % 251) as u8).collect();
    let img = sensor_msgs::msg::Image {
        header: std_msgs::msg::Header { stamp: Default::default(), frame_id: "cam".into() },
        height: 480,
        width: 640,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: 1920,
        data: pixels.clone().into(),
    };
    let copy = img.clone();
    assert_eq!(copy.data.as_ptr(), img.data.as_ptr(), "clone shares the pixel buffer");
    let bytes = typed_bytes(&img);
    // header(4) + stamp(8) + "cam\0" len+4 + h,w + "rgb8\0" + is_bigendian + pad + step + len + pixels
    assert_eq!(bytes.len(), 4 + 8 + 8 + 8 + 9 + 3 + 4 + 4 + pixels.len());
    assert_eq!(&bytes[bytes.len() - pixels.len()..], &pixels[..]);
    let back: sensor_msgs::msg::Image = typed_decode(&bytes);
    assert_eq!(back, img);
    let v = dynamic::decode(registry(), &TypeName::new("sensor_msgs", "Image"), &bytes).unwrap();
    assert!(matches!(v.field("data"), Some(Value::Bytes(b)) if b[..] == pixels[..]));
    assert_eq!(dynamic::encode(&v).unwrap(), bytes);
}

#[test]
fn nested_sequences_round_trip() {
    let mut det = vision_msgs::msg::Detection2D { id: "child-1".into(), ..Default::default() };
    det.bbox.center.position.x = 320.5;
    det.bbox.size_x = 40.0;
    let mut hyp = vision_msgs::msg::ObjectHypothesisWithPose::default();
    hyp.hypothesis.class_id = "pedestrian".into();
    hyp.hypothesis.score = 0.9;
    hyp.pose.covariance[35] = 2.5;
    det.results = vec![hyp.clone(), hyp];
    let arr = vision_msgs::msg::Detection2DArray { header: Default::default(), detections: vec![det.clone(), det] };
    let bytes = typed_bytes(&arr);
    let back: vision_msgs::msg::Detection2DArray = typed_decode(&bytes);
    assert_eq!(back, arr);
    let v = dynamic::decode(registry(), &TypeName::new("vision_msgs", "Detection2DArray"), &bytes).unwrap();
    assert_eq!(v.select("detections.1.results.0.hypothesis.class_id"), Some(&Value::String("pedestrian".into())));
    assert_eq!(v.select("detections.0.results.1.pose.covariance.35"), Some(&Value::F64(2.5)));
    assert_eq!(dynamic::encode(&v).unwrap(), bytes);
}

#[test]
fn constants_and_defaults_come_from_the_msg_files() {
    assert_eq!(sim2real_msgs::rcl_interfaces::msg::Log::WARN, 30u8);
    assert_eq!(s2r::msg::ScenarioInfo::TIME_NIGHT, "night");
    let s = s2r::msg::ScenarioInfo::default();
    assert_eq!(s.friction, 0.8);
    assert_eq!(s.weather, "clear");
    assert_eq!(geometry_msgs::msg::Quaternion::default().w, 1.0);
    assert_eq!(std_msgs::msg::Empty::default().structure_needs_at_least_one_member, 0);
}

#[test]
fn malformed_cdr_is_an_error_not_a_panic() {
    let img = sensor_msgs::msg::Image { data: vec![1u8; 100].into(), ..Default::default() };
    let bytes = typed_bytes(&img);
    let ty = TypeName::new("sensor_msgs", "Image");
    for cut in [0, 3, 4, 10, 30, bytes.len() - 1] {
        let e = dynamic::decode(registry(), &ty, &bytes[..cut]);
        assert!(e.is_err(), "truncated at {cut} decoded");
    }
    let mut huge = bytes.clone();
    let n = huge.len();
    huge[n - 104..n - 100].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(dynamic::decode(registry(), &ty, &huge).is_err());
}

/// Where msg `char` matters: rosidl maps it to uint8, and the hashes ROS 2 Jazzy
/// generates for rmw_dds_common (read from its generated C sources) say so.
#[test]
fn char_fields_hash_as_uint8_like_rosidl() {
    use sim2real_msgs::rmw_dds_common::msg as rmw;
    assert_eq!(rmw::Gid::TYPE_HASH, "RIHS01_ab6f21cfbb0a6dbb837161e1110c2051a2850ed9f9c53944d7115d9bcebedf71");
    assert_eq!(rmw::NodeEntitiesInfo::TYPE_HASH, "RIHS01_8ffef65ee2d088c63b1e8fcd31e800ba9fc8dbe0ee15ca60d1676de5218087a7");
}

/// The type camera drivers publish on `<camera>/image_raw/compressed`: its hash
/// must be ROS 2's (Jazzy's, as rosbags' bundled store gives it) for real
/// robots' topics and bags to match ours.
#[test]
fn compressed_image_hashes_as_ros2() {
    assert_eq!(sensor_msgs::msg::CompressedImage::TYPE_HASH, "RIHS01_15640771531571185e2efc8a100baf923961a4d15d5569652e6cb6691e8e371a");
}

#[test]
fn services_have_a_request_and_a_response_named_as_ros_2_names_them() {
    use sim2real_msgs::sim2real_msgs::srv::{Train, Train_Request, Train_Response};
    use sim2real_msgs::Service;
    assert_eq!(Train::TYPE_NAME, "sim2real_msgs/srv/Train");
    assert_eq!(Train::parts(), ("sim2real_msgs", "Train"));
    assert_eq!(Train_Request::TYPE_NAME, "sim2real_msgs/srv/Train_Request");
    assert_eq!(Train_Request::dds_type_name(), "sim2real_msgs::srv::dds_::Train_Request_");
    assert_eq!(Train_Response::dds_type_name(), "sim2real_msgs::srv::dds_::Train_Response_");
    let reg = registry();
    let resp = reg.lookup("sim2real_msgs/srv/Train_Response").unwrap();
    assert_eq!(resp.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["accepted", "job_id", "message"]);
    // Plain messages keep their names.
    assert!(reg.lookup("sim2real_msgs/msg/ModelUpdate").is_ok());
}
