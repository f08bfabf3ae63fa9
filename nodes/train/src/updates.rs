//! Deployed nodes take the checkpoints trainer_node announces on
//! `trainer/models` (sim2real_msgs/ModelUpdate): an update of the node's own
//! kind whose held-out figure passes the node's `update_threshold` parameter
//! becomes the node's checkpoint parameter, which the node's
//! [`crate::CheckpointWatch`] then loads (and refuses, keeping the running
//! model, when it does not fit).

use s2r_runtime::{info, Node, NodeError, Qos, Subscription};
use sim2real_msgs::sim2real_msgs::msg::ModelUpdate;

/// The topic trainer_node announces models on.
pub const TOPIC: &str = "trainer/models";

/// Whether `update` is for a node of `kind` whose threshold is `threshold`
/// (NaN: any value); the reason when not.
pub fn accept(update: &ModelUpdate, kind: &str, threshold: f64) -> Result<(), String> {
    if update.kind != kind {
        return Err(format!("a {} model, not a {kind} one", update.kind));
    }
    if threshold.is_nan() {
        return Ok(());
    }
    let (v, better) = (update.value, if update.higher_is_better { "at least" } else { "at most" });
    let passes = if update.higher_is_better { v >= threshold } else { v <= threshold };
    if passes {
        Ok(())
    } else {
        Err(format!("its held-out {} is {v:.4}; update_threshold asks for {better} {threshold:.4}", update.metric))
    }
}

/// A node's subscription to new models.
pub struct ModelUpdates {
    sub: Subscription<ModelUpdate>,
    kind: &'static str,
    parameter: &'static str,
}

impl ModelUpdates {
    /// Declares `model_updates` (bool, default true: take trainer_node's
    /// models) and `update_threshold` (double, default NaN: any figure) and
    /// subscribes to [`TOPIC`]. Updates announced before the node started are
    /// not taken: a node starts on the checkpoint it is given.
    pub fn new(node: &Node, kind: &'static str, parameter: &'static str) -> Result<ModelUpdates, NodeError> {
        node.declare_parameter("model_updates", true)?;
        node.declare_parameter("update_threshold", f64::NAN)?;
        let sub = node.create_subscription::<ModelUpdate>(TOPIC, Qos::reliable().depth(10))?;
        Ok(ModelUpdates { sub, kind, parameter })
    }

    /// Takes the updates that came since the last call: the newest one that
    /// is accepted becomes the node's checkpoint parameter; each is logged
    /// with what was done with it. Returns the path taken, if any.
    pub fn poll(&self, node: &Node) -> Option<String> {
        let mut taken = None;
        while let Some(u) = self.sub.try_recv() {
            if u.kind != self.kind {
                continue;
            }
            if !node.parameter::<bool>("model_updates").unwrap_or(true) {
                info!(node.logger(), "model update {} (job {}) not taken: model_updates is false", u.path, u.job_id);
                continue;
            }
            let threshold = node.parameter::<f64>("update_threshold").unwrap_or(f64::NAN);
            match accept(&u, self.kind, threshold) {
                Ok(()) => {
                    info!(node.logger(), "model update from job {}: {} ({} {:.4})", u.job_id, u.path, u.metric, u.value);
                    taken = Some(u.path.clone());
                }
                Err(why) => info!(node.logger(), "model update {} (job {}) not taken: {why}", u.path, u.job_id),
            }
        }
        let path = taken?;
        if let Err(e) = node.set_parameter(self.parameter, path.clone()) {
            info!(node.logger(), "model update {path} not taken: {e}");
            return None;
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_goes_the_metric_s_way() {
        let u = |kind: &str, value: f64, higher: bool| ModelUpdate {
            kind: kind.into(),
            metric: "m".into(),
            value,
            higher_is_better: higher,
            ..Default::default()
        };
        assert!(accept(&u("world", 0.3, true), "world", f64::NAN).is_ok());
        assert!(accept(&u("policy", 0.3, true), "world", f64::NAN).unwrap_err().contains("policy"));
        assert!(accept(&u("world", 0.5, true), "world", 0.4).is_ok());
        let e = accept(&u("world", 0.3, true), "world", 0.4).unwrap_err();
        assert!(e.contains("at least 0.4000"), "{e}");
        assert!(accept(&u("policy", 0.3, false), "policy", 0.4).is_ok(), "an error below its ceiling");
        assert!(accept(&u("policy", 0.5, false), "policy", 0.4).is_err());
        assert!(accept(&u("world", f64::NAN, true), "world", 0.4).is_err(), "no figure does not pass a threshold");
    }
}
