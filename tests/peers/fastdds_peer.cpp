// A ROS 2 peer on eProsima Fast DDS (Debian's libfastrtps-dev, ROS 2's default
// middleware), for sim2real's interoperability tests. Samples are encoded and
// decoded with eProsima Fast CDR by the code below, independently of sim2real.
//
// Usage:
//   fastdds_peer pub TYPE COUNT   publish COUNT samples (10 Hz) once a reader matches
//   fastdds_peer sub TYPE COUNT   receive COUNT samples, check every field and byte
//   fastdds_peer train KIND DATASET  a ROS 2 service client of trainer_node as
//                                 rmw_fastrtps makes one (the request's sample identity
//                                 comes back in the reply's inline QoS): trainer/train for a
//                                 KIND job on DATASET; prints "ACCEPTED <id> <message>" or
//                                 "REFUSED <message>" for the reply to this request
// TYPE: string | image | odometry | detections. The sample pattern is the one
// of tests/tests/common/mod.rs. `sub` prints "OK <type> <k>" per verified
// sample and exits 1 on the first mismatch. Traffic stays on loopback: UDPv4
// only, 127.0.0.1 only, unicast discovery peers on 127.0.0.1.

#include <fastcdr/Cdr.h>
#include <fastcdr/FastBuffer.h>
#include <fastdds/dds/domain/DomainParticipant.hpp>
#include <fastdds/dds/domain/DomainParticipantFactory.hpp>
#include <fastdds/dds/publisher/DataWriter.hpp>
#include <fastdds/dds/publisher/Publisher.hpp>
#include <fastdds/dds/subscriber/DataReader.hpp>
#include <fastdds/dds/subscriber/SampleInfo.hpp>
#include <fastdds/dds/subscriber/Subscriber.hpp>
#include <fastdds/dds/topic/TopicDataType.hpp>
#include <fastdds/dds/topic/TypeSupport.hpp>
#include <fastdds/rtps/transport/UDPv4TransportDescriptor.h>
#include <fastrtps/utils/IPLocator.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace eprosima::fastdds::dds;
using eprosima::fastcdr::Cdr;
using eprosima::fastcdr::FastBuffer;
using eprosima::fastrtps::rtps::InstanceHandle_t;
using eprosima::fastrtps::rtps::IPLocator;
using eprosima::fastrtps::rtps::Locator_t;
using eprosima::fastrtps::rtps::SerializedPayload_t;

// ---------------------------------------------------------------- transport

// A sample as serialized bytes: encapsulation header + CDR body.
struct RawSample {
  std::vector<uint8_t> bytes;
};

class RawType : public TopicDataType {
 public:
  explicit RawType(const std::string& name) {
    setName(name.c_str());
    m_typeSize = 4 * 1024 * 1024;
    m_isGetKeyDefined = false;
  }
  bool serialize(void* data, SerializedPayload_t* payload) override {
    auto* s = static_cast<RawSample*>(data);
    if (payload->max_size < s->bytes.size()) payload->reserve(s->bytes.size());
    std::memcpy(payload->data, s->bytes.data(), s->bytes.size());
    payload->length = static_cast<uint32_t>(s->bytes.size());
    payload->encapsulation = s->bytes.size() > 1 && s->bytes[1] == 1 ? CDR_LE : CDR_BE;
    return true;
  }
  bool deserialize(SerializedPayload_t* payload, void* data) override {
    auto* s = static_cast<RawSample*>(data);
    s->bytes.assign(payload->data, payload->data + payload->length);
    return true;
  }
  std::function<uint32_t()> getSerializedSizeProvider(void* data) override {
    auto* s = static_cast<RawSample*>(data);
    return [s]() { return static_cast<uint32_t>(s->bytes.size()); };
  }
  void* createData() override { return new RawSample(); }
  void deleteData(void* data) override { delete static_cast<RawSample*>(data); }
  bool getKey(void*, InstanceHandle_t*, bool) override { return false; }
};

// ---------------------------------------------------------------- encoding

struct Writer {
  FastBuffer fb;
  Cdr cdr;
  Writer() : cdr(fb, Cdr::DEFAULT_ENDIAN, Cdr::DDS_CDR) { cdr.serialize_encapsulation(); }
  std::vector<uint8_t> bytes() {
    const char* b = fb.getBuffer();
    return std::vector<uint8_t>(b, b + cdr.getSerializedDataLength());
  }
};

static void header(Cdr& c, int32_t k, const std::string& frame) {
  c << k << static_cast<uint32_t>(1000 * k) << frame;
}

static void pose_cov(Cdr& c, double px, double py, double pz, double qz, double qw, const std::array<double, 36>& cov) {
  c << px << py << pz << 0.0 << 0.0 << qz << qw;
  c.serializeArray(cov.data(), cov.size());
}

static const uint32_t W = 640, H = 480;

static std::vector<uint8_t> encode(const std::string& kind, int32_t k) {
  Writer w;
  Cdr& c = w.cdr;
  if (kind == "string") {
    c << ("hello " + std::to_string(k));
  } else if (kind == "image") {
    header(c, k, "camera_optical");
    std::vector<uint8_t> px(W * H * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 7 + k) & 0xFF);
    c << H << W << std::string("rgb8") << static_cast<uint8_t>(0) << (W * 3) << px;
  } else if (kind == "odometry") {
    header(c, k, "odom");
    c << std::string("base_link");
    std::array<double, 36> cov{}, tcov{};
    for (int i = 0; i < 36; ++i) { cov[i] = i * 0.5 + k; tcov[i] = -static_cast<double>(i); }
    pose_cov(c, k, 2.0 * k, 3.5, 0.6, 0.8, cov);
    c << 1.5 << 0.0 << 0.0 << 0.0 << 0.0 << -0.25;
    c.serializeArray(tcov.data(), tcov.size());
  } else if (kind == "detections") {
    header(c, k, "camera_optical");
    c << static_cast<uint32_t>(3);
    for (int j = 0; j < 3; ++j) {
      header(c, k, "camera_optical");
      c << static_cast<uint32_t>(j + 1);
      for (int h = 0; h <= j; ++h) {
        c << ("class-" + std::to_string(h)) << 0.1 * (h + 1);
        std::array<double, 36> cov{};
        cov[35] = j;
        pose_cov(c, h, 0.0, 0.0, 0.0, 1.0, cov);
      }
      c << 10.0 * j + k << 20.0 * j << 0.1 * j << 5.0 + j << 6.0 + j;
      c << ("obj-" + std::to_string(j));
    }
  } else {
    throw std::runtime_error("unknown type " + kind);
  }
  return w.bytes();
}

// ---------------------------------------------------------------- checking

struct Reader {
  std::vector<char> buf;
  FastBuffer fb;
  Cdr cdr;
  explicit Reader(const std::vector<uint8_t>& b)
      : buf(b.begin(), b.end()), fb(buf.data(), buf.size()), cdr(fb, Cdr::DEFAULT_ENDIAN, Cdr::DDS_CDR) {
    cdr.read_encapsulation();
  }
};

struct Mismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
static void expect(const std::string& path, const T& got, const T& want) {
  if (!(got == want)) {
    std::ostringstream o;
    o << path << ": " << got << " != " << want;
    throw Mismatch(o.str());
  }
}

static int32_t check_header(Cdr& c, const std::string& path, const std::string& frame, int32_t k_expected) {
  int32_t sec; uint32_t nsec; std::string f;
  c >> sec >> nsec >> f;
  if (k_expected >= 0) expect(path + ".stamp.sec", sec, k_expected);
  expect(path + ".stamp.nanosec", nsec, static_cast<uint32_t>(1000 * sec));
  expect(path + ".frame_id", f, frame);
  return sec;
}

static void check_pose_cov(Cdr& c, const std::string& path, double px, double py, double pz, double qz, double qw,
                           const std::array<double, 36>& cov) {
  double v[7];
  c >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6];
  const double want[7] = {px, py, pz, 0.0, 0.0, qz, qw};
  for (int i = 0; i < 7; ++i) expect(path + ".pose[" + std::to_string(i) + "]", v[i], want[i]);
  std::array<double, 36> got{};
  c.deserializeArray(got.data(), got.size());
  for (int i = 0; i < 36; ++i) expect(path + ".covariance[" + std::to_string(i) + "]", got[i], cov[i]);
}

// Decodes one sample, checks every field against the pattern, returns k.
static int32_t check(const std::string& kind, const std::vector<uint8_t>& bytes) {
  Reader r(bytes);
  Cdr& c = r.cdr;
  if (kind == "string") {
    std::string s;
    c >> s;
    if (s.rfind("hello ", 0) != 0) throw Mismatch("data: '" + s + "'");
    return std::atoi(s.c_str() + 6);
  }
  if (kind == "image") {
    int32_t k = check_header(c, "header", "camera_optical", -1);
    uint32_t h, w, step; std::string enc; uint8_t be; std::vector<uint8_t> px;
    c >> h >> w >> enc >> be >> step >> px;
    expect("height", h, H); expect("width", w, W); expect<std::string>("encoding", enc, "rgb8");
    expect("is_bigendian", static_cast<int>(be), 0); expect("step", step, W * 3);
    expect("data.size", px.size(), static_cast<size_t>(W * H * 3));
    for (size_t i = 0; i < px.size(); ++i)
      if (px[i] != static_cast<uint8_t>((i * 7 + k) & 0xFF))
        throw Mismatch("data[" + std::to_string(i) + "]: " + std::to_string(px[i]));
    return k;
  }
  if (kind == "odometry") {
    int32_t k = check_header(c, "header", "odom", -1);
    std::string child;
    c >> child;
    expect<std::string>("child_frame_id", child, "base_link");
    std::array<double, 36> cov{}, tcov{};
    for (int i = 0; i < 36; ++i) { cov[i] = i * 0.5 + k; tcov[i] = -static_cast<double>(i); }
    check_pose_cov(c, "pose", k, 2.0 * k, 3.5, 0.6, 0.8, cov);
    double t[6];
    c >> t[0] >> t[1] >> t[2] >> t[3] >> t[4] >> t[5];
    const double want[6] = {1.5, 0, 0, 0, 0, -0.25};
    for (int i = 0; i < 6; ++i) expect("twist.twist[" + std::to_string(i) + "]", t[i], want[i]);
    std::array<double, 36> got{};
    c.deserializeArray(got.data(), got.size());
    for (int i = 0; i < 36; ++i) expect("twist.covariance[" + std::to_string(i) + "]", got[i], tcov[i]);
    return k;
  }
  if (kind == "detections") {
    int32_t k = check_header(c, "header", "camera_optical", -1);
    uint32_t n;
    c >> n;
    expect("detections.size", n, 3u);
    for (int j = 0; j < 3; ++j) {
      std::string p = "detections[" + std::to_string(j) + "]";
      check_header(c, p + ".header", "camera_optical", k);
      uint32_t nr;
      c >> nr;
      expect(p + ".results.size", nr, static_cast<uint32_t>(j + 1));
      for (int h = 0; h <= j; ++h) {
        std::string q = p + ".results[" + std::to_string(h) + "]";
        std::string cls; double score;
        c >> cls >> score;
        expect(q + ".class_id", cls, "class-" + std::to_string(h));
        expect(q + ".score", score, 0.1 * (h + 1));
        std::array<double, 36> cov{};
        cov[35] = j;
        check_pose_cov(c, q + ".pose", h, 0, 0, 0, 1.0, cov);
      }
      double b[5];
      c >> b[0] >> b[1] >> b[2] >> b[3] >> b[4];
      const double want[5] = {10.0 * j + k, 20.0 * j, 0.1 * j, 5.0 + j, 6.0 + j};
      for (int i = 0; i < 5; ++i) expect(p + ".bbox[" + std::to_string(i) + "]", b[i], want[i]);
      std::string id;
      c >> id;
      expect(p + ".id", id, "obj-" + std::to_string(j));
    }
    return k;
  }
  throw std::runtime_error("unknown type " + kind);
}

static std::string dds_type(const std::string& kind) {
  if (kind == "string") return "std_msgs::msg::dds_::String_";
  if (kind == "image") return "sensor_msgs::msg::dds_::Image_";
  if (kind == "odometry") return "nav_msgs::msg::dds_::Odometry_";
  if (kind == "detections") return "vision_msgs::msg::dds_::Detection2DArray_";
  throw std::runtime_error("unknown type " + kind);
}

// ---------------------------------------------------------------- a service client

// trainer/train (sim2real_msgs/srv/Train) once: the request, then the reply whose
// related sample identity is this request's.
static int train(DomainParticipant* dp, const std::string& kind, const std::string& dataset) {
  TypeSupport req_type(new RawType("sim2real_msgs::srv::dds_::Train_Request_"));
  TypeSupport rep_type(new RawType("sim2real_msgs::srv::dds_::Train_Response_"));
  req_type.register_type(dp);
  rep_type.register_type(dp);
  // Service topics: rq/<name>Request and rr/<name>Reply.
  Topic* rq = dp->create_topic("rq/trainer/trainRequest", req_type.get_type_name(), TOPIC_QOS_DEFAULT);
  Topic* rr = dp->create_topic("rr/trainer/trainReply", rep_type.get_type_name(), TOPIC_QOS_DEFAULT);
  DataWriterQos wq = DATAWRITER_QOS_DEFAULT;
  wq.reliability().kind = RELIABLE_RELIABILITY_QOS;
  wq.history().kind = KEEP_LAST_HISTORY_QOS;
  wq.history().depth = 10;
  wq.data_sharing().off();
  wq.endpoint().history_memory_policy = eprosima::fastrtps::rtps::DYNAMIC_RESERVE_MEMORY_MODE;
  DataReaderQos rq_qos = DATAREADER_QOS_DEFAULT;
  rq_qos.reliability().kind = RELIABLE_RELIABILITY_QOS;
  rq_qos.history().kind = KEEP_LAST_HISTORY_QOS;
  rq_qos.history().depth = 10;
  rq_qos.data_sharing().off();
  rq_qos.endpoint().history_memory_policy = eprosima::fastrtps::rtps::DYNAMIC_RESERVE_MEMORY_MODE;
  DataWriter* w = dp->create_publisher(PUBLISHER_QOS_DEFAULT)->create_datawriter(rq, wq);
  DataReader* r = dp->create_subscriber(SUBSCRIBER_QOS_DEFAULT)->create_datareader(rr, rq_qos);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  PublicationMatchedStatus pst;
  SubscriptionMatchedStatus sst;
  do {
    w->get_publication_matched_status(pst);
    r->get_subscription_matched_status(sst);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while ((pst.current_count == 0 || sst.current_count == 0) && std::chrono::steady_clock::now() < deadline);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  Writer enc;
  Cdr& c = enc.cdr;
  c << kind << static_cast<uint32_t>(1) << dataset;  // kind, datasets
  c << std::string("") << static_cast<uint32_t>(0) << std::string("") << static_cast<uint32_t>(0);  // base, steps, output, args
  RawSample s{enc.bytes()};
  eprosima::fastrtps::rtps::WriteParams params;
  if (!w->write(&s, params)) {
    std::cout << "WRITE FAILED" << std::endl;
    return 1;
  }
  const auto id = params.sample_identity();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!r->wait_for_unread_message(eprosima::fastrtps::Duration_t(0, 100000000))) continue;
    RawSample rep;
    SampleInfo info;
    while (r->take_next_sample(&rep, &info) == ReturnCode_t::RETCODE_OK) {
      if (!info.valid_data) continue;
      if (!(info.related_sample_identity == id)) {
        std::cout << "UNMATCHED reply (another request's)" << std::endl;
        continue;
      }
      Reader rd(rep.bytes);
      bool accepted;
      uint64_t job;
      std::string message;
      rd.cdr >> accepted >> job >> message;
      if (accepted)
        std::cout << "ACCEPTED " << job << " " << message << std::endl;
      else
        std::cout << "REFUSED " << message << std::endl;
      return 0;
    }
  }
  std::cout << "TIMEOUT no reply" << std::endl;
  return 2;
}

// ---------------------------------------------------------------- main

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: fastdds_peer pub|sub TYPE COUNT | fastdds_peer train KIND DATASET\n";
    return 64;
  }
  const std::string mode = argv[1], kind = argv[2];
  const int count = std::atoi(argv[3]);
  const char* dom = std::getenv("ROS_DOMAIN_ID");
  const uint32_t domain = dom ? std::atoi(dom) : 0;

  DomainParticipantQos pqos;
  pqos.name("fastdds_peer");
  pqos.transport().use_builtin_transports = false;
  auto udp = std::make_shared<eprosima::fastdds::rtps::UDPv4TransportDescriptor>();
  udp->interfaceWhiteList.push_back("127.0.0.1");
  udp->sendBufferSize = 8 * 1024 * 1024;
  udp->receiveBufferSize = 8 * 1024 * 1024;
  pqos.transport().user_transports.push_back(udp);
  // Unicast discovery of the first participants of this domain on loopback.
  for (uint32_t pid = 0; pid < 20; ++pid) {
    Locator_t loc;
    IPLocator::setIPv4(loc, 127, 0, 0, 1);
    loc.port = 7400 + 250 * domain + 10 + 2 * pid;
    pqos.wire_protocol().builtin.initialPeersList.push_back(loc);
  }
  DomainParticipant* dp = DomainParticipantFactory::get_instance()->create_participant(domain, pqos);
  if (!dp) {
    std::cerr << "cannot create participant\n";
    return 3;
  }
  if (mode == "train") {
    int rc = train(dp, kind, argv[3]);
    dp->delete_contained_entities();
    DomainParticipantFactory::get_instance()->delete_participant(dp);
    return rc;
  }
  TypeSupport type(new RawType(dds_type(kind)));
  type.register_type(dp);
  Topic* topic = dp->create_topic("rt/interop/" + kind, type.get_type_name(), TOPIC_QOS_DEFAULT);

  if (mode == "pub") {
    Publisher* pub = dp->create_publisher(PUBLISHER_QOS_DEFAULT);
    DataWriterQos wq = DATAWRITER_QOS_DEFAULT;
    wq.reliability().kind = RELIABLE_RELIABILITY_QOS;
    wq.history().kind = KEEP_LAST_HISTORY_QOS;
    wq.history().depth = count + 5;
    wq.data_sharing().off();
    wq.endpoint().history_memory_policy = eprosima::fastrtps::rtps::DYNAMIC_RESERVE_MEMORY_MODE;
    wq.publish_mode().kind = ASYNCHRONOUS_PUBLISH_MODE;
    DataWriter* w = pub->create_datawriter(topic, wq);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    PublicationMatchedStatus st;
    do {
      w->get_publication_matched_status(st);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (st.current_count == 0 && std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int k = 0; k < count; ++k) {
      RawSample s{encode(kind, k)};
      w->write(&s);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::cout << "SENT " << kind << " " << count << std::endl;
  } else {
    Subscriber* sub = dp->create_subscriber(SUBSCRIBER_QOS_DEFAULT);
    DataReaderQos rq = DATAREADER_QOS_DEFAULT;
    rq.reliability().kind = RELIABLE_RELIABILITY_QOS;
    rq.history().kind = KEEP_LAST_HISTORY_QOS;
    rq.history().depth = count + 5;
    rq.data_sharing().off();
    rq.endpoint().history_memory_policy = eprosima::fastrtps::rtps::DYNAMIC_RESERVE_MEMORY_MODE;
    DataReader* r = sub->create_datareader(topic, rq);
    std::cout << "READY" << std::endl;
    int seen = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (seen < count && std::chrono::steady_clock::now() < deadline) {
      if (!r->wait_for_unread_message(eprosima::fastrtps::Duration_t(0, 100000000))) continue;
      RawSample s;
      SampleInfo info;
      while (r->take_next_sample(&s, &info) == ReturnCode_t::RETCODE_OK) {
        if (!info.valid_data) continue;
        try {
          int32_t k = check(kind, s.bytes);
          std::cout << "OK " << kind << " " << k << std::endl;
          ++seen;
        } catch (const std::exception& e) {
          std::cout << "MISMATCH " << e.what() << std::endl;
          return 1;
        }
      }
    }
    if (seen < count) {
      std::cout << "TIMEOUT after " << seen << " of " << count << std::endl;
      return 2;
    }
  }
  dp->delete_contained_entities();
  DomainParticipantFactory::get_instance()->delete_participant(dp);
  return 0;
}
