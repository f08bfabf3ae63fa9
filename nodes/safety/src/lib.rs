//! safety_node: the watchdog that stands between a robot's controller and
//! the robot.
//!
//! It is the only node that publishes to the robot's command topic: the
//! controller (policy_node) publishes to the watchdog's input, and the
//! watchdog forwards each command at once unless something holds the robot
//! (an emergency stop, a stale camera, state or controller, a required node
//! gone, perception's confidence collapsed), in which case it commands a
//! stop or holds the arm where it is, logs why and publishes the
//! intervention. [`watch`] is the decision, [`node`] the ROS side.
#![warn(missing_docs)]

pub mod node;
pub mod watch;

/// What can go wrong, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum SafetyError {
    /// A parameter out of its range.
    #[error("parameter '{name}': {problem}")]
    Parameter {
        /// The parameter.
        name: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A subscription, publisher or name the runtime refused.
    #[error(transparent)]
    Node(#[from] s2r_runtime::NodeError),
    /// An image transport parameter the image crate refused.
    #[error(transparent)]
    Image(#[from] s2r_image::ImageError),
}
