#!/usr/bin/env python3
"""A ROS 2 peer built on Eclipse Cyclone DDS (the `cyclonedds` Python package),
for sim2real's interoperability tests. It knows the ROS 2 types by their DDS
names and lays them out with Cyclone's own IDL machinery, independently of
sim2real's code.

Usage:
  cyclone_peer.py pub TYPE COUNT    publish COUNT samples (10 Hz) once a reader matches
  cyclone_peer.py sub TYPE COUNT    receive COUNT samples, check every field and byte
  cyclone_peer.py slow TOPIC MS      a slow recorder of the Image topic TOPIC: room for
                                    2 unread samples, one taken every MS ms; prints
                                    "STAMP <sec> <nanosec>" per sample, stops 5 s after the last
  cyclone_peer.py train KIND BASE STEPS DATASET... [-- ARG...]
                                    a ROS 2 service client of trainer_node as rmw_cyclonedds
                                    makes one: trainer/train with the 16-byte request header
                                    (client id, sequence number) before the request; prints
                                    "ACCEPTED <id>" or "REFUSED <message>", then for an accepted
                                    job "PROGRESS <state> <step>/<steps>" lines and, at its end,
                                    "MODEL <path> <metric> <value>" or "FAILED <message>"
  cyclone_peer.py robot BAG CAMERA [--silence-after S] [--decel A] [--duration S] [--wait-readers N]
                       [--follow yes]
                                    a robot nobody here wrote: plays the camera topic CAMERA of
                                    the MCAP bag BAG (a file or a rosbag2 folder) on
                                    /camera/image_raw at its recorded rate, publishes odometry of
                                    its own motion on /odom at 50 Hz (starting at the bag's first
                                    odometry speed), and follows the geometry_msgs/Twist on
                                    /cmd_vel (speed limited to change by A m/s^2, 6 by default);
                                    with --silence-after its camera stops after S seconds, the
                                    rest goes on; with --wait-readers it plays once N readers of
                                    its camera matched; with --follow yes its camera shows, at the
                                    recorded frame rate, the frame recorded where the robot now is
                                    (the recording's own distance travelled): slower, the view
                                    moves on slower; stopped, it stays. Prints "PLAYING", "CMD <t> <v>" per
                                    command (t: seconds since it started playing), then "END
                                    <distance> <speed>" and "BAG <collision time or -1>
                                    <recorded distance at it>"; "AT_HIT <distance> <speed>" when
                                    the bag's first collision event is due
TYPE is one of: string, image, odometry, detections.

Samples follow a pattern both sides compute from the sample index k (see
tests/tests/common/mod.rs). `sub` prints "OK <type> <k>" per verified sample
and exits 1 on the first mismatch, naming the field. Traffic stays on loopback:
CYCLONEDDS_URI is set below to the lo interface, unicast discovery only.
"""
import os
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault(
    "CYCLONEDDS_URI",
    "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface name='lo'/></Interfaces>"
    "<AllowMulticast>false</AllowMulticast></General>"
    "<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>60</MaxAutoParticipantIndex>"
    "<Peers><Peer Address='127.0.0.1'/></Peers></Discovery>"
    "<Internal><SocketReceiveBufferSize min='4MB'/></Internal></Domain></CycloneDDS>",
)

from cyclonedds.core import Qos, Policy  # noqa: E402
from cyclonedds.domain import DomainParticipant  # noqa: E402
from cyclonedds.idl import IdlStruct  # noqa: E402
from cyclonedds.idl.types import array, float64, int32, int64, sequence, uint8, uint32, uint64  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str = ""


@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = field(default_factory=list)


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose = field(default_factory=Pose)
    covariance: array[float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist = field(default_factory=Twist)
    covariance: array[float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class Odometry(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)
    twist: TwistWithCovariance = field(default_factory=TwistWithCovariance)


@dataclass
class Point2D(IdlStruct, typename="vision_msgs::msg::dds_::Point2D_"):
    x: float64 = 0.0
    y: float64 = 0.0


@dataclass
class Pose2D(IdlStruct, typename="vision_msgs::msg::dds_::Pose2D_"):
    position: Point2D = field(default_factory=Point2D)
    theta: float64 = 0.0


@dataclass
class BoundingBox2D(IdlStruct, typename="vision_msgs::msg::dds_::BoundingBox2D_"):
    center: Pose2D = field(default_factory=Pose2D)
    size_x: float64 = 0.0
    size_y: float64 = 0.0


@dataclass
class ObjectHypothesis(IdlStruct, typename="vision_msgs::msg::dds_::ObjectHypothesis_"):
    class_id: str = ""
    score: float64 = 0.0


@dataclass
class ObjectHypothesisWithPose(IdlStruct, typename="vision_msgs::msg::dds_::ObjectHypothesisWithPose_"):
    hypothesis: ObjectHypothesis = field(default_factory=ObjectHypothesis)
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)


@dataclass
class Detection2D(IdlStruct, typename="vision_msgs::msg::dds_::Detection2D_"):
    header: Header = field(default_factory=Header)
    results: sequence[ObjectHypothesisWithPose] = field(default_factory=list)
    bbox: BoundingBox2D = field(default_factory=BoundingBox2D)
    id: str = ""


@dataclass
class Detection2DArray(IdlStruct, typename="vision_msgs::msg::dds_::Detection2DArray_"):
    header: Header = field(default_factory=Header)
    detections: sequence[Detection2D] = field(default_factory=list)


# ---- trainer_node's interfaces (sim2real_msgs/srv/Train, msg/TrainProgress, msg/ModelUpdate)


@dataclass
class TrainRequest(IdlStruct, typename="sim2real_msgs::srv::dds_::Train_Request_"):
    # rmw_cyclonedds's request header: the client's id and the request's sequence number.
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    kind: str = ""
    datasets: sequence[str] = field(default_factory=list)
    base: str = ""
    steps: uint32 = 0
    output: str = ""
    args: sequence[str] = field(default_factory=list)


@dataclass
class TrainResponse(IdlStruct, typename="sim2real_msgs::srv::dds_::Train_Response_"):
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    accepted: bool = False
    job_id: uint64 = 0
    message: str = ""


@dataclass
class TrainProgress(IdlStruct, typename="sim2real_msgs::msg::dds_::TrainProgress_"):
    stamp: Time = field(default_factory=Time)
    job_id: uint64 = 0
    kind: str = ""
    state: str = ""
    step: uint64 = 0
    steps: uint64 = 0
    loss: float64 = 0.0
    metric: str = ""
    value: float64 = 0.0
    eta_s: float64 = 0.0
    message: str = ""


@dataclass
class ModelUpdate(IdlStruct, typename="sim2real_msgs::msg::dds_::ModelUpdate_"):
    stamp: Time = field(default_factory=Time)
    job_id: uint64 = 0
    kind: str = ""
    path: str = ""
    parent: str = ""
    datasets: sequence[str] = field(default_factory=list)
    metric: str = ""
    value: float64 = 0.0
    higher_is_better: bool = False


def train(kind, base, steps, rest):
    """Calls trainer/train once a server is matched, then follows the job."""
    datasets, args = (rest[:rest.index("--")], rest[rest.index("--") + 1:]) if "--" in rest else (rest, [])
    dp = DomainParticipant(int(os.environ.get("ROS_DOMAIN_ID", "0")))
    service = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(10),
                  Policy.DataRepresentation(use_cdrv0_representation=True))
    latched = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(10),
                  Policy.Durability.TransientLocal, Policy.DataRepresentation(use_cdrv0_representation=True))
    # Service topics: rq/<name>Request and rr/<name>Reply.
    requests = DataWriter(dp, Topic(dp, "rq/trainer/trainRequest", TrainRequest, qos=service), qos=service)
    replies = DataReader(dp, Topic(dp, "rr/trainer/trainReply", TrainResponse, qos=service), qos=service)
    progress = DataReader(dp, Topic(dp, "rt/trainer/progress", TrainProgress, qos=service), qos=service)
    models = DataReader(dp, Topic(dp, "rt/trainer/models", ModelUpdate, qos=latched), qos=latched)
    deadline = time.time() + 30
    while not (requests.get_matched_subscriptions() and replies.get_matched_publications()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    guid, seq = int.from_bytes(os.urandom(8), "little"), 1
    requests.write(TrainRequest(client_guid=guid, sequence_number=seq, kind=kind, datasets=datasets, base=base,
                                steps=int(steps), args=args))
    job = None
    deadline = time.time() + 20
    while job is None and time.time() < deadline:
        for r in replies.take(N=10):
            if getattr(r, "client_guid", None) != guid or r.sequence_number != seq:
                continue  # another client's answer
            if not r.accepted:
                print(f"REFUSED {r.message}", flush=True)
                return
            job = r.job_id
            print(f"ACCEPTED {job}", flush=True)
        time.sleep(0.02)
    if job is None:
        print("TIMEOUT no response", flush=True)
        sys.exit(2)
    deadline = time.time() + 600
    while time.time() < deadline:
        for p in progress.take(N=20):
            if getattr(p, "job_id", None) == job:
                print(f"PROGRESS {p.state} {p.step}/{p.steps}", flush=True)
                if p.state in ("failed", "cancelled"):
                    print(f"FAILED {p.message}", flush=True)
                    return
        for m in models.take(N=10):
            if getattr(m, "job_id", None) == job:
                print(f"MODEL {m.path} {m.metric} {m.value}", flush=True)
                return
        time.sleep(0.05)
    print("TIMEOUT job did not end", flush=True)
    sys.exit(2)


# ---- the shared sample pattern (mirrors tests/tests/common/mod.rs) ----

W, H = 640, 480


def header(k, frame):
    return Header(stamp=Time(sec=k, nanosec=1000 * k), frame_id=frame)


def make(kind, k):
    if kind == "string":
        return String(data=f"hello {k}")
    if kind == "image":
        n = W * H * 3
        data = bytes((i * 7 + k) & 0xFF for i in range(n))
        return Image(header=header(k, "camera_optical"), height=H, width=W, encoding="rgb8",
                     is_bigendian=0, step=W * 3, data=list(data))
    if kind == "odometry":
        return Odometry(
            header=header(k, "odom"), child_frame_id="base_link",
            pose=PoseWithCovariance(
                pose=Pose(position=Point(x=float(k), y=2.0 * k, z=3.5),
                          orientation=Quaternion(x=0.0, y=0.0, z=0.6, w=0.8)),
                covariance=[i * 0.5 + k for i in range(36)]),
            twist=TwistWithCovariance(
                twist=Twist(linear=Vector3(x=1.5), angular=Vector3(z=-0.25)),
                covariance=[-float(i) for i in range(36)]))
    if kind == "detections":
        dets = []
        for j in range(3):
            results = [ObjectHypothesisWithPose(
                hypothesis=ObjectHypothesis(class_id=f"class-{h}", score=0.1 * (h + 1)),
                pose=PoseWithCovariance(pose=Pose(position=Point(x=float(h))),
                                        covariance=[float(j) if i == 35 else 0.0 for i in range(36)]))
                for h in range(j + 1)]
            dets.append(Detection2D(
                header=header(k, "camera_optical"), results=results,
                bbox=BoundingBox2D(center=Pose2D(position=Point2D(x=10.0 * j + k, y=20.0 * j), theta=0.1 * j),
                                   size_x=5.0 + j, size_y=6.0 + j),
                id=f"obj-{j}"))
        return Detection2DArray(header=header(k, "camera_optical"), detections=dets)
    raise SystemExit(f"unknown type {kind}")


TYPES = {"string": String, "image": Image, "odometry": Odometry, "detections": Detection2DArray}


def compare(path, got, want):
    """Field-by-field comparison; returns the path of the first difference."""
    if hasattr(want, "__dataclass_fields__"):
        for name in want.__dataclass_fields__:
            d = compare(f"{path}.{name}", getattr(got, name), getattr(want, name))
            if d:
                return d
        return None
    if isinstance(want, (list, bytes)):
        got_l, want_l = list(got), list(want)
        if len(got_l) != len(want_l):
            return f"{path}: length {len(got_l)} != {len(want_l)}"
        if want_l and not hasattr(want_l[0], "__dataclass_fields__"):
            if got_l != want_l:
                i = next(i for i, (a, b) in enumerate(zip(got_l, want_l)) if a != b)
                return f"{path}[{i}]: {got_l[i]!r} != {want_l[i]!r}"
            return None
        for i, (a, b) in enumerate(zip(got_l, want_l)):
            d = compare(f"{path}[{i}]", a, b)
            if d:
                return d
        return None
    if isinstance(want, float):
        return None if abs(got - want) <= 1e-12 * max(1.0, abs(want)) else f"{path}: {got!r} != {want!r}"
    return None if got == want else f"{path}: {got!r} != {want!r}"


def slow(topic_name, period):
    """A reliable keep-all reader with room for two unread samples: the
    writer's samples beyond that wait (unacknowledged) until it takes one."""
    dp = DomainParticipant(int(os.environ.get("ROS_DOMAIN_ID", "0")))
    qos = Qos(
        Policy.Reliability.Reliable(duration(seconds=1)),
        Policy.History.KeepAll,
        Policy.ResourceLimits(max_samples=2),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )
    reader = DataReader(dp, Topic(dp, f"rt{topic_name}", Image, qos=qos), qos=qos)
    print("READY", flush=True)
    last = None
    deadline = time.time() + 60
    while time.time() < deadline and (last is None or time.time() - last < 5):
        for s in reader.take(N=1):
            if not hasattr(s, "header"):  # the writer went away
                continue
            print(f"STAMP {s.header.stamp.sec} {s.header.stamp.nanosec}", flush=True)
            last = time.time()
        time.sleep(period)


def read_bag(path, camera):
    """The camera frames and odometry of an MCAP bag, decoded by the mcap
    package's ROS 2 decoder (not sim2real's), with their log times."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    if os.path.isdir(path):
        path = next(os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".mcap"))
    frames, odom, collisions = [], [], []
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _schema, channel, message, msg in reader.iter_decoded_messages():
            t = message.log_time * 1e-9
            if channel.topic == camera:
                frames.append((t, msg))
            elif _schema.name == "nav_msgs/msg/Odometry":
                odom.append((t, msg.twist.twist.linear.x))
            elif _schema.name == "sim2real_msgs/msg/CollisionEvent":
                collisions.append(t)
    if not frames:
        raise SystemExit(f"{path}: no frames on {camera}")
    return frames, odom, collisions


def robot(args):
    import threading
    bag, camera = args[0], args[1]
    opts = dict(zip(args[2::2], args[3::2]))
    silence = float(opts.get("--silence-after", "inf"))
    decel = float(opts.get("--decel", "6"))
    follow = opts.get("--follow", "no") == "yes"
    frames, odom, collisions = read_bag(bag, camera)
    t0 = frames[0][0]
    length = float(opts.get("--duration", frames[-1][0] - t0))
    # What the recorded robot had travelled when it collided (its odometry integrated).
    hit, recorded = (collisions[0] - t0 if collisions else -1.0), 0.0
    for (ta, va), (tb, _) in zip(odom, odom[1:]):
        if hit >= 0 and ta - t0 >= hit:
            break
        recorded += va * (tb - ta)
    dp = DomainParticipant(int(os.environ.get("ROS_DOMAIN_ID", "0")))
    reliable = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(10),
                   Policy.DataRepresentation(use_cdrv0_representation=True))
    sensor = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5),
                 Policy.DataRepresentation(use_cdrv0_representation=True))
    images = DataWriter(dp, Topic(dp, "rt/camera/image_raw", Image, qos=sensor), qos=sensor)
    odometry = DataWriter(dp, Topic(dp, "rt/odom", Odometry, qos=sensor), qos=sensor)
    commands = DataReader(dp, Topic(dp, "rt/cmd_vel", Twist, qos=reliable), qos=reliable)
    lock = threading.Lock()
    state = {"v": odom[0][1] if odom else 0.0, "x": 0.0, "cmd": None, "done": False}
    # Until the stack's readers of the camera have matched (a robot's camera runs anyway,
    # but a test wants every frame seen).
    wait = int(opts.get("--wait-readers", "0"))
    deadline = time.time() + 90
    while len(images.get_matched_subscriptions()) < wait and time.time() < deadline:
        time.sleep(0.05)
    print(f"PLAYING {len(frames)} frames to {len(images.get_matched_subscriptions())} readers", flush=True)
    start = time.time()

    def stamp(t):
        return Time(sec=int(t), nanosec=int((t % 1) * 1e9))

    def drive():
        last = time.time()
        at_hit = hit < 0
        while not state["done"]:
            if not at_hit and time.time() - start >= hit:
                at_hit = True
                print(f"AT_HIT {state['x']:.3f} {state['v']:.3f}", flush=True)
            for c in commands.take(N=10):
                if hasattr(c, "linear"):
                    with lock:
                        state["cmd"] = c.linear.x
                    print(f"CMD {time.time() - start:.3f} {c.linear.x:.3f}", flush=True)
            now = time.time()
            dt, last = now - last, now
            with lock:
                if state["cmd"] is not None:
                    dv = max(-decel * dt, min(decel * dt, state["cmd"] - state["v"]))
                    state["v"] = max(0.0, state["v"] + dv)
                state["x"] += state["v"] * dt
                v, x = state["v"], state["x"]
            odometry.write(Odometry(header=Header(stamp=stamp(now), frame_id="odom"), child_frame_id="base_link",
                                    pose=PoseWithCovariance(pose=Pose(position=Point(x=x))),
                                    twist=TwistWithCovariance(twist=Twist(linear=Vector3(x=v)))))
            time.sleep(0.02)

    # With --follow: the recorded distance at each frame (odometry integrated).
    where = []
    if follow:
        d, k = 0.0, 0
        for t, _f in frames:
            while k + 1 < len(odom) and odom[k + 1][0] <= t:
                d += odom[k][1] * (odom[k + 1][0] - odom[k][0])
                k += 1
            where.append(d)
    driver = threading.Thread(target=drive)
    driver.start()
    period = (frames[-1][0] - t0) / max(1, len(frames) - 1)
    k = 0
    while True:
        if follow:
            due = start + k * period
            if due - start > min(silence, length):
                break
            with lock:
                x = state["x"]
            f = next((f for (_t, f), d in zip(frames, where) if d >= x), frames[-1][1])
            k += 1
        else:
            if k >= len(frames):
                break
            t, f = frames[k]
            due = start + (t - t0)
            if due - start > min(silence, length):
                break
            k += 1
        time.sleep(max(0.0, due - time.time()))
        images.write(Image(header=Header(stamp=stamp(time.time()), frame_id=f.header.frame_id), height=f.height,
                           width=f.width, encoding=f.encoding, is_bigendian=0, step=f.step, data=list(f.data)))
    time.sleep(max(0.0, start + length - time.time()))
    state["done"] = True
    driver.join()
    print(f"END {state['x']:.3f} {state['v']:.3f}", flush=True)
    print(f"BAG {hit:.3f} {recorded:.3f}", flush=True)


def main():
    if sys.argv[1] == "robot":
        return robot(sys.argv[2:])
    if sys.argv[1] == "slow":
        return slow(sys.argv[2], int(sys.argv[3]) / 1000)
    if sys.argv[1] == "train":
        return train(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    mode, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    dp = DomainParticipant(domain)
    # rmw_cyclonedds pins XCDR1, the representation ROS 2 uses on the wire.
    qos = Qos(
        Policy.Reliability.Reliable(duration(seconds=1)),
        Policy.History.KeepLast(count + 5),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )
    # ROS 2 topic names travel with the "rt/" prefix.
    topic = Topic(dp, f"rt/interop/{kind}", TYPES[kind], qos=qos)
    if mode == "pub":
        writer = DataWriter(dp, topic, qos=qos)
        deadline = time.time() + 30
        while not writer.get_matched_subscriptions() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        for k in range(count):
            writer.write(make(kind, k))
            time.sleep(0.1)
        time.sleep(2.0)
        print(f"SENT {kind} {count}", flush=True)
    else:
        reader = DataReader(dp, topic, qos=qos)
        print("READY", flush=True)
        seen = 0
        deadline = time.time() + 60
        while seen < count and time.time() < deadline:
            for s in reader.take(N=10):
                k = s.header.stamp.sec if hasattr(s, "header") else int(s.data.split()[-1])
                diff = compare(kind, s, make(kind, k))
                if diff:
                    print(f"MISMATCH {diff}", flush=True)
                    sys.exit(1)
                print(f"OK {kind} {k}", flush=True)
                seen += 1
            time.sleep(0.01)
        if seen < count:
            print(f"TIMEOUT after {seen} of {count}", flush=True)
            sys.exit(2)


if __name__ == "__main__":
    main()
