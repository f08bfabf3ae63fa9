//! Prediction: from a few true token frames, the model's next frame and
//! state, fed back as its own input, step after step, under the recorded
//! actions or scripted ones (brake, steer, hold).

use candle_core::Tensor;

use crate::data::{SPEED_SCALE, YAW_SCALE};
use crate::model::{Batch, Conditions, Robot, WorldModel, ACTION, STATE_GAIN};
use crate::{candle, WorldError};

/// Which actions a rollout takes from the last context frame on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Actions {
    /// The recording's own.
    Recorded,
    /// A car commanded to stand still (cmd_vel 0); an arm held where it is.
    Brake,
    /// A car keeping its commanded speed and turning left at this yaw rate (rad/s).
    Steer(f32),
    /// An arm commanded to hold its joints (the gripper as recorded).
    Hold,
}

impl std::str::FromStr for Actions {
    type Err = String;
    fn from_str(s: &str) -> Result<Actions, String> {
        match s {
            "recorded" => Ok(Actions::Recorded),
            "brake" => Ok(Actions::Brake),
            "steer-left" => Ok(Actions::Steer(0.3)),
            "steer-right" => Ok(Actions::Steer(-0.3)),
            "hold" => Ok(Actions::Hold),
            other => Err(format!("'{other}': recorded, brake, steer-left, steer-right or hold")),
        }
    }
}

/// `recorded` actions (one per frame, scaled) with those from frame `from` on replaced as `how` says.
pub fn script(how: Actions, robot: Robot, recorded: &[[f32; ACTION]], from: usize) -> Vec<[f32; ACTION]> {
    let mut out = recorded.to_vec();
    for a in out.iter_mut().skip(from) {
        match (how, robot) {
            (Actions::Recorded, _) => {}
            (Actions::Brake, Robot::Vehicle) => *a = [0.0; ACTION],
            (Actions::Steer(rate), Robot::Vehicle) => a[1] = rate / YAW_SCALE,
            (Actions::Brake | Actions::Hold, Robot::Arm) => a[..6].iter_mut().for_each(|x| *x = 0.0),
            (Actions::Hold, Robot::Vehicle) | (Actions::Steer(_), Robot::Arm) => {}
        }
    }
    out
}

/// A rollout's predictions.
#[derive(Clone, Debug, Default)]
pub struct Predicted {
    /// Per predicted frame, its codes.
    pub codes: Vec<Vec<u16>>,
    /// Per predicted frame, the robot's state (scaled).
    pub states: Vec<[f32; ACTION]>,
}

impl Predicted {
    /// A vehicle's predicted speeds, m/s.
    pub fn speeds(&self) -> Vec<f32> {
        self.states.iter().map(|s| s[0] * SPEED_SCALE).collect()
    }
}

/// Predicts `horizon` frames after the context (`codes` and `states` of its
/// frames, oldest first), taking `actions[i]` after frame i (the context's
/// first frame is 0; at least `context + horizon − 1` of them).
pub fn rollout(
    model: &WorldModel,
    codes: &[Vec<u16>],
    states: &[[f32; ACTION]],
    actions: &[[f32; ACTION]],
    conditions: Conditions,
    horizon: usize,
) -> Result<Predicted, WorldError> {
    let cfg = &model.config;
    let n = cfg.tokens();
    if codes.is_empty() || codes.len() != states.len() || actions.len() + 1 < codes.len() + horizon {
        return Err(WorldError::Candle {
            context: "rollout".into(),
            source: candle_core::Error::Msg(format!(
                "{} context frames, {} states, {} actions for {horizon} steps",
                codes.len(),
                states.len(),
                actions.len()
            )),
        });
    }
    if let Some(bad) = codes.iter().find(|c| c.len() != n) {
        return Err(WorldError::Candle {
            context: "rollout".into(),
            source: candle_core::Error::Msg(format!("a frame of {} codes for a {}×{} model", bad.len(), cfg.grid, cfg.grid)),
        });
    }
    let device = model.device().clone();
    let mut frames: Vec<Vec<u16>> = codes.to_vec();
    let mut st: Vec<[f32; ACTION]> = states.to_vec();
    let mut out = Predicted::default();
    let l = cfg.levels.len();
    let rows = conditions.rows();
    for _ in 0..horizon {
        let start = frames.len().saturating_sub(cfg.context);
        let t = frames.len() - start;
        let mut digits = Vec::with_capacity(t * n * l);
        let mut steps = Vec::with_capacity(t * 2 * ACTION);
        for f in start..frames.len() {
            for &c in &frames[f] {
                digits.extend(cfg.digits(c));
            }
            steps.extend_from_slice(&actions[f]);
            steps.extend_from_slice(&st[f]);
        }
        let batch = (|| {
            Ok::<_, candle_core::Error>(Batch {
                digits: model.offset_digits(&Tensor::from_vec(digits, (1, t, n, l), &device)?)?,
                steps: Tensor::from_vec(steps, (1, t, 2 * ACTION), &device)?,
                conditions: Tensor::new(&[rows], &device)?,
            })
        })()
        .map_err(candle("rollout input"))?;
        let (logits, state) = model.forward(&batch).map_err(candle("rollout forward"))?;
        let last = logits.narrow(1, t - 1, 1).map_err(candle("rollout"))?;
        let d = model.argmax_digits(&last).and_then(|p| p.flatten_all()?.to_vec1::<u32>()).map_err(candle("rollout argmax"))?;
        let next: Vec<u16> = d.chunks_exact(l).map(|x| cfg.code(x)).collect();
        let s = state.narrow(1, t - 1, 1).and_then(|s| s.flatten_all()?.to_vec1::<f32>()).map_err(candle("rollout state"))?;
        let now = *st.last().expect("a context frame");
        let next_state: [f32; ACTION] = std::array::from_fn(|k| now[k] + s[k] / STATE_GAIN);
        frames.push(next.clone());
        st.push(next_state);
        out.codes.push(next);
        out.states.push(next_state);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_actions_replace_the_recorded_ones_from_the_last_context_frame() {
        let rec = vec![[0.8, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0]; 5];
        let b = script(Actions::Brake, Robot::Vehicle, &rec, 2);
        assert_eq!(b[1], rec[1]);
        assert_eq!(b[2], [0.0; ACTION]);
        let s = script("steer-left".parse().unwrap(), Robot::Vehicle, &rec, 0);
        assert_eq!((s[0][0], s[0][1]), (0.8, 0.3 / YAW_SCALE));
        let arm = vec![[0.5, -0.5, 0.2, 0.0, 0.1, 0.3, 0.9]; 3];
        let h = script(Actions::Hold, Robot::Arm, &arm, 1);
        assert_eq!(h[1], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9]);
        assert!("fly".parse::<Actions>().unwrap_err().contains("steer-left"));
    }
}
