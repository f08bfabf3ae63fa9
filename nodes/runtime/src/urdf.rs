//! A robot's description as ROS carries it on `robot_description` (URDF):
//! links and the joints between them, written and read, and the kinematic
//! chain from one link to another that a node needs to know where a joint
//! command puts the robot's tool (robot_state_publisher's forward
//! kinematics, for one chain).
//!
//! Read: joint types, parents, children, origins, axes and limits, and the
//! links' visual boxes (written so that RViz shows the robot); mimic joints,
//! meshes, collision and inertia are left out.

use std::collections::HashMap;

use nalgebra::{Isometry3, Translation3, Unit, UnitQuaternion, Vector3};
use quick_xml::events::{BytesDecl, Event};
use quick_xml::Writer;

/// What was wrong with a robot description.
#[derive(Debug, thiserror::Error)]
pub enum UrdfError {
    /// Not XML, or not a `<robot>`.
    #[error("robot_description: not a URDF robot: {0}")]
    Xml(String),
    /// An element or attribute that could not be read.
    #[error("robot_description: {what}: {problem}")]
    Bad {
        /// The element (a joint or link by name).
        what: String,
        /// What was wrong.
        problem: String,
    },
    /// No chain of joints between two links.
    #[error("robot_description: no chain of joints from link '{root}' to link '{tip}'{known}")]
    NoChain {
        /// The link the chain starts at.
        root: String,
        /// The link it ends at.
        tip: String,
        /// The links there are, when the tip is not one.
        known: String,
    },
    /// Joint positions that do not fit the chain.
    #[error("{0}")]
    Positions(String),
}

/// How a joint moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JointKind {
    /// Turns about its axis within limits.
    Revolute,
    /// Turns about its axis without limits.
    Continuous,
    /// Slides along its axis.
    Prismatic,
    /// Does not move.
    Fixed,
}

impl JointKind {
    fn name(self) -> &'static str {
        match self {
            JointKind::Revolute => "revolute",
            JointKind::Continuous => "continuous",
            JointKind::Prismatic => "prismatic",
            JointKind::Fixed => "fixed",
        }
    }

    /// Whether a joint state moves it.
    pub fn moves(self) -> bool {
        self != JointKind::Fixed
    }
}

/// A box a link is drawn as: its centre's pose in the link's frame and its full size, metres.
#[derive(Clone, Debug, PartialEq)]
pub struct VisualBox {
    /// Pose of the box's centre in the link frame.
    pub origin: Isometry3<f64>,
    /// Edge lengths along x, y, z.
    pub size: [f64; 3],
}

/// A rigid body of the robot.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Its frame's name.
    pub name: String,
    /// How it is drawn (none for a frame only).
    pub visuals: Vec<VisualBox>,
}

/// A joint between two links.
#[derive(Clone, Debug, PartialEq)]
pub struct Joint {
    /// The name joint states use for it.
    pub name: String,
    /// How it moves.
    pub kind: JointKind,
    /// The link it hangs from.
    pub parent: String,
    /// The link it moves.
    pub child: String,
    /// The child's frame in the parent's at position zero.
    pub origin: Isometry3<f64>,
    /// Unit axis it turns about or slides along, in the child's frame.
    pub axis: Unit<Vector3<f64>>,
    /// Lower and upper position (radians or metres), where it has them.
    pub limits: Option<[f64; 2]>,
}

impl Joint {
    /// The child's frame in the parent's at position `q`.
    pub fn transform(&self, q: f64) -> Isometry3<f64> {
        match self.kind {
            JointKind::Fixed => self.origin,
            JointKind::Revolute | JointKind::Continuous => self.origin * UnitQuaternion::from_axis_angle(&self.axis, q),
            JointKind::Prismatic => self.origin * Translation3::from(self.axis.into_inner() * q),
        }
    }
}

/// A robot: its links and joints (URDF's `<robot>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Robot {
    /// The robot's name.
    pub name: String,
    /// Its links.
    pub links: Vec<Link>,
    /// Its joints.
    pub joints: Vec<Joint>,
}

/// Joints from one link to another, in order from the root.
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    joints: Vec<Joint>,
}

impl Chain {
    /// The names of the joints that move, in the order [`Chain::forward`] takes their positions.
    pub fn moving(&self) -> Vec<&str> {
        self.joints.iter().filter(|j| j.kind.moves()).map(|j| j.name.as_str()).collect()
    }

    /// The tip link's frame in the root link's, the moving joints at positions `q`.
    pub fn forward(&self, q: &[f64]) -> Result<Isometry3<f64>, UrdfError> {
        let moving = self.moving();
        if q.len() != moving.len() {
            return Err(UrdfError::Positions(format!(
                "the chain moves {} joints ({}), {} positions given",
                moving.len(),
                moving.join(", "),
                q.len()
            )));
        }
        let mut q = q.iter();
        Ok(self.joints.iter().fold(Isometry3::identity(), |frame, j| {
            let x = if j.kind.moves() { *q.next().expect("one position per moving joint") } else { 0.0 };
            frame * j.transform(x)
        }))
    }
}

/// URDF's roll, pitch and yaw of a rotation (R = Rz(yaw)·Ry(pitch)·Rx(roll)),
/// well conditioned at pitch ±90° (there yaw is taken as 0).
fn rpy(q: &UnitQuaternion<f64>) -> (f64, f64, f64) {
    let m = q.to_rotation_matrix();
    let m = m.matrix();
    let c = m[(0, 0)].hypot(m[(1, 0)]);
    let pitch = (-m[(2, 0)]).atan2(c);
    if c < 1e-9 {
        return ((-m[(1, 2)]).atan2(m[(1, 1)]), pitch, 0.0);
    }
    (m[(2, 1)].atan2(m[(2, 2)]), pitch, m[(1, 0)].atan2(m[(0, 0)]))
}

/// Writes `<origin xyz=… rpy=…/>` of a pose.
fn write_origin<W: std::io::Write>(w: &mut Writer<W>, o: &Isometry3<f64>) -> std::io::Result<()> {
    let t = o.translation.vector;
    let (r, p, y) = rpy(&o.rotation);
    let (xyz, rpy) = (format!("{} {} {}", t.x, t.y, t.z), format!("{r} {p} {y}"));
    w.create_element("origin").with_attributes([("xyz", xyz.as_str()), ("rpy", rpy.as_str())]).write_empty()?;
    Ok(())
}

/// The first child element of `n` named `tag`.
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn xml_error(e: impl std::fmt::Display) -> UrdfError {
    UrdfError::Xml(e.to_string())
}

impl Robot {
    /// The description as URDF XML.
    pub fn to_urdf(&self) -> Result<String, UrdfError> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None))).map_err(xml_error)?;
        w.create_element("robot")
            .with_attribute(("name", self.name.as_str()))
            .write_inner_content(|w| {
                for l in &self.links {
                    w.create_element("link").with_attribute(("name", l.name.as_str())).write_inner_content(|w| {
                        for v in &l.visuals {
                            let size = format!("{} {} {}", v.size[0], v.size[1], v.size[2]);
                            w.create_element("visual").write_inner_content(|w| {
                                write_origin(w, &v.origin)?;
                                w.create_element("geometry").write_inner_content(|w| {
                                    w.create_element("box").with_attribute(("size", size.as_str())).write_empty()?;
                                    Ok(())
                                })?;
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })?;
                }
                for j in &self.joints {
                    let axis = format!("{} {} {}", j.axis.x, j.axis.y, j.axis.z);
                    w.create_element("joint").with_attributes([("name", j.name.as_str()), ("type", j.kind.name())]).write_inner_content(
                        |w| {
                            w.create_element("parent").with_attribute(("link", j.parent.as_str())).write_empty()?;
                            w.create_element("child").with_attribute(("link", j.child.as_str())).write_empty()?;
                            write_origin(w, &j.origin)?;
                            if j.kind.moves() {
                                w.create_element("axis").with_attribute(("xyz", axis.as_str())).write_empty()?;
                            }
                            if let Some([lo, hi]) = j.limits {
                                let (lo, hi) = (lo.to_string(), hi.to_string());
                                w.create_element("limit")
                                    .with_attributes([("lower", lo.as_str()), ("upper", hi.as_str()), ("effort", "100"), ("velocity", "2")])
                                    .write_empty()?;
                            }
                            Ok(())
                        },
                    )?;
                }
                Ok(())
            })
            .map_err(xml_error)?;
        String::from_utf8(w.into_inner()).map_err(xml_error)
    }

    /// Reads URDF XML.
    pub fn from_urdf(xml: &str) -> Result<Robot, UrdfError> {
        let doc = roxmltree::Document::parse(xml).map_err(xml_error)?;
        let root = doc.root_element();
        if root.tag_name().name() != "robot" {
            return Err(UrdfError::Xml(format!("the root element is <{}>, not <robot>", root.tag_name().name())));
        }
        let bad = |what: String, problem: String| UrdfError::Bad { what, problem };
        let numbers = |what: &str, text: &str, n: usize| -> Result<Vec<f64>, UrdfError> {
            let v: Vec<f64> = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(what.into(), format!("'{text}': {e}")))?;
            if v.len() != n || v.iter().any(|x| !x.is_finite()) {
                return Err(bad(what.into(), format!("'{text}' is not {n} finite numbers")));
            }
            Ok(v)
        };
        let origin = |what: &str, node: Option<roxmltree::Node>| -> Result<Isometry3<f64>, UrdfError> {
            let Some(o) = node else { return Ok(Isometry3::identity()) };
            let t = numbers(what, o.attribute("xyz").unwrap_or("0 0 0"), 3)?;
            let r = numbers(what, o.attribute("rpy").unwrap_or("0 0 0"), 3)?;
            Ok(Isometry3::from_parts(Translation3::new(t[0], t[1], t[2]), UnitQuaternion::from_euler_angles(r[0], r[1], r[2])))
        };
        let mut links = Vec::new();
        for l in root.children().filter(|n| n.has_tag_name("link")) {
            let name = l.attribute("name").ok_or_else(|| bad("a link".into(), "no name".into()))?;
            let mut visuals = Vec::new();
            for v in l.children().filter(|n| n.has_tag_name("visual")) {
                if let Some(b) = child(v, "geometry").and_then(|g| child(g, "box")) {
                    let what = format!("link '{name}'");
                    let s = numbers(&what, b.attribute("size").unwrap_or(""), 3)?;
                    visuals.push(VisualBox { origin: origin(&what, child(v, "origin"))?, size: [s[0], s[1], s[2]] });
                }
            }
            links.push(Link { name: name.into(), visuals });
        }
        let mut joints = Vec::new();
        for j in root.children().filter(|n| n.has_tag_name("joint")) {
            let name = j.attribute("name").ok_or_else(|| bad("a joint".into(), "no name".into()))?;
            let what = format!("joint '{name}'");
            let kind = match j.attribute("type") {
                Some("revolute") => JointKind::Revolute,
                Some("continuous") => JointKind::Continuous,
                Some("prismatic") => JointKind::Prismatic,
                Some("fixed") => JointKind::Fixed,
                other => return Err(bad(what, format!("type {other:?} is not revolute, continuous, prismatic or fixed"))),
            };
            let link = |tag: &str| {
                child(j, tag)
                    .and_then(|n| n.attribute("link"))
                    .map(String::from)
                    .ok_or_else(|| bad(what.clone(), format!("no <{tag} link=…>")))
            };
            let axis = match child(j, "axis") {
                Some(a) => numbers(&what, a.attribute("xyz").unwrap_or(""), 3)?,
                None => vec![1.0, 0.0, 0.0],
            };
            let axis =
                Unit::try_new(Vector3::new(axis[0], axis[1], axis[2]), 1e-9).ok_or_else(|| bad(what.clone(), "a zero axis".into()))?;
            let limits = match child(j, "limit") {
                Some(l) => match (l.attribute("lower"), l.attribute("upper")) {
                    (Some(lo), Some(hi)) => {
                        let v = numbers(&what, &format!("{lo} {hi}"), 2)?;
                        Some([v[0], v[1]])
                    }
                    _ => None,
                },
                None => None,
            };
            joints.push(Joint {
                name: name.into(),
                kind,
                parent: link("parent")?,
                child: link("child")?,
                origin: origin(&what, child(j, "origin"))?,
                axis,
                limits,
            });
        }
        Ok(Robot { name: root.attribute("name").unwrap_or_default().into(), links, joints })
    }

    /// The link at the top of `link`'s branch: following the joints up from it
    /// to the link no joint hangs from (None: `link` is no link of it, or the
    /// joints loop).
    pub fn root_of(&self, link: &str) -> Option<String> {
        let mut at = self.links.iter().find(|l| l.name == link)?.name.as_str();
        for _ in 0..=self.joints.len() {
            match self.joints.iter().find(|j| j.child == at) {
                Some(j) => at = &j.parent,
                None => return Some(at.to_string()),
            }
        }
        None
    }

    /// The joints from link `root` to link `tip`.
    pub fn chain(&self, root: &str, tip: &str) -> Result<Chain, UrdfError> {
        let by_child: HashMap<&str, &Joint> = self.joints.iter().map(|j| (j.child.as_str(), j)).collect();
        let no_chain = || {
            let known = if self.links.iter().any(|l| l.name == tip) {
                String::new()
            } else {
                format!(" (its links: {})", self.links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", "))
            };
            UrdfError::NoChain { root: root.into(), tip: tip.into(), known }
        };
        let mut joints = Vec::new();
        let mut at = tip;
        while at != root {
            let j = by_child.get(at).ok_or_else(no_chain)?;
            if joints.len() > self.joints.len() {
                return Err(no_chain());
            }
            joints.push((*j).clone());
            at = &j.parent;
        }
        joints.reverse();
        Ok(Chain { joints })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-joint arm: a turntable (about z) and an elbow (about y) 0.3 m up, a tool 0.5 m beyond.
    fn arm() -> Robot {
        let link = |n: &str| Link { name: n.into(), visuals: vec![] };
        let joint = |name: &str, kind, parent: &str, child: &str, z: f64, axis: Vector3<f64>| Joint {
            name: name.into(),
            kind,
            parent: parent.into(),
            child: child.into(),
            origin: Isometry3::translation(0.0, 0.0, z),
            axis: Unit::new_normalize(axis),
            limits: (kind == JointKind::Revolute).then_some([-3.0, 3.0]),
        };
        Robot {
            name: "toy".into(),
            links: vec![
                Link {
                    name: "base_link".into(),
                    visuals: vec![VisualBox { origin: Isometry3::translation(0.0, 0.0, 0.15), size: [0.1, 0.1, 0.3] }],
                },
                link("upper"),
                link("fore"),
                link("tool0"),
            ],
            joints: vec![
                joint("turn", JointKind::Revolute, "base_link", "upper", 0.0, Vector3::z()),
                joint("elbow", JointKind::Continuous, "upper", "fore", 0.3, Vector3::y()),
                joint("flange", JointKind::Fixed, "fore", "tool0", 0.5, Vector3::x()),
            ],
        }
    }

    #[test]
    fn a_robot_round_trips_through_urdf_and_its_chain_places_the_tool() {
        let xml = arm().to_urdf().unwrap();
        assert!(xml.contains("<joint name=\"elbow\" type=\"continuous\">"), "{xml}");
        let back = Robot::from_urdf(&xml).unwrap();
        assert_eq!(back.joints.len(), 3);
        assert_eq!(back.links[0].visuals, arm().links[0].visuals);
        assert_eq!(back.root_of("tool0").as_deref(), Some("base_link"));
        assert_eq!(back.root_of("gripper"), None);
        let chain = back.chain("base_link", "tool0").unwrap();
        assert_eq!(chain.moving(), ["turn", "elbow"]);
        // Upright: the tool 0.8 m above the base; the elbow bent 90° forward (about +y) and turned 90°: along +y, 0.3 m up.
        let up = chain.forward(&[0.0, 0.0]).unwrap().translation.vector;
        assert!((up - Vector3::new(0.0, 0.0, 0.8)).norm() < 1e-9, "{up}");
        let bent = chain.forward(&[std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_2]).unwrap().translation.vector;
        assert!((bent - Vector3::new(0.0, 0.5, 0.3)).norm() < 1e-9, "{bent}");
        // Rotated origins survive the round trip, pitched a quarter turn too (where yaw and roll meet).
        let half_pi = std::f64::consts::FRAC_PI_2;
        for (r0, p0, y0) in [(0.3, -0.2, 1.1), (0.3, -half_pi, 0.0), (1.2, -half_pi, 0.4), (0.5, half_pi, 0.7), (-2.9, 0.1, 3.1)] {
            let mut r = arm();
            r.joints[2].origin = Isometry3::from_parts(Translation3::new(0.1, 0.0, 0.5), UnitQuaternion::from_euler_angles(r0, p0, y0));
            let back = Robot::from_urdf(&r.to_urdf().unwrap()).unwrap();
            let d = (back.joints[2].origin.to_homogeneous() - r.joints[2].origin.to_homogeneous()).norm();
            assert!(d < 1e-9, "rpy ({r0}, {p0}, {y0}): {d}");
        }
    }

    #[test]
    fn a_broken_description_is_named() {
        let e = |xml: &str| Robot::from_urdf(xml).err().unwrap().to_string();
        assert!(e("<robot><joint").contains("not a URDF robot"));
        assert!(e("<sdf/>").contains("not <robot>"));
        assert!(e(r#"<robot><joint name="j" type="floating"/></robot>"#).contains("joint 'j': type"));
        let bad_origin = r#"<robot><joint name="j" type="fixed"><parent link="a"/><child link="b"/><origin xyz="0 x 0"/></joint></robot>"#;
        assert!(e(bad_origin).contains("joint 'j'"), "{}", e(bad_origin));
        let r = arm();
        let missing = r.chain("base_link", "gripper").err().unwrap().to_string();
        assert!(missing.contains("'gripper'") && missing.contains("its links: base_link, upper, fore, tool0"), "{missing}");
        let chain = r.chain("base_link", "tool0").unwrap();
        assert!(chain.forward(&[0.0]).err().unwrap().to_string().contains("moves 2 joints (turn, elbow), 1 positions given"));
    }
}
