//! The stopping predictor: how far a car travels from the instant it decides
//! to stop, fitted by least squares to the simulator's braking trials.
//!
//! Its form is the physics of braking with its constants left to the data:
//! d = a·v²/μ + b·v·r + c·v + e (v speed, μ the road's friction, r the
//! reaction time before the brakes act). What the trials teach is in the
//! coefficients: 1/(2a) is the deceleration per unit of friction the car
//! reaches (g if the tyres give all their grip), b the share of the reaction
//! time spent at full speed, c and e what the brakes' build-up and the
//! controller's last metre add.

use serde::{Deserialize, Serialize};

use crate::ReasonError;

/// One braking record: a trial of the simulator (`s2r_sim::consequences`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Braking {
    /// Friction under the tyres.
    pub mu: f32,
    /// Speed at the decision, m/s.
    pub speed: f32,
    /// Seconds from the decision to the stop command.
    pub reaction: f32,
    /// Metres from the decision to standstill.
    pub distance: f32,
    /// Seconds from the decision to standstill.
    pub time: f32,
}

/// The fitted predictor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoppingModel {
    /// a, b, c, e of d = a·v²/μ + b·v·r + c·v + e.
    pub coef: [f64; 4],
    /// Training records it was fitted to.
    pub records: usize,
    /// Root-mean-square error of the fit on them, metres.
    pub rms: f64,
}

fn features(speed: f64, mu: f64, reaction: f64) -> [f64; 4] {
    [speed * speed / mu.max(0.01), speed * reaction, speed, 1.0]
}

impl StoppingModel {
    /// Least squares over `records` (at least 8, with μ > 0).
    pub fn fit(records: &[Braking]) -> Result<StoppingModel, ReasonError> {
        let bad = |problem: String| ReasonError::Records { what: "stopping", problem };
        if records.len() < 8 {
            return Err(bad(format!("{} braking trials; at least 8 are needed", records.len())));
        }
        if let Some(r) = records.iter().find(|r| !(r.mu > 0.0 && r.speed >= 0.0 && r.distance.is_finite())) {
            return Err(bad(format!("a trial with μ {}, speed {} m/s, distance {} m", r.mu, r.speed, r.distance)));
        }
        // Normal equations: (XᵀX) β = Xᵀy.
        let mut ata = [[0f64; 4]; 4];
        let mut aty = [0f64; 4];
        for r in records {
            let x = features(r.speed as f64, r.mu as f64, r.reaction as f64);
            for i in 0..4 {
                aty[i] += x[i] * r.distance as f64;
                for j in 0..4 {
                    ata[i][j] += x[i] * x[j];
                }
            }
        }
        let coef = solve(ata, aty)
            .ok_or_else(|| bad("the trials do not vary enough in speed, friction and reaction to tell the terms apart".into()))?;
        let mut m = StoppingModel { coef, records: records.len(), rms: 0.0 };
        let se: f64 = records.iter().map(|r| (m.distance(r.speed, r.mu, r.reaction) - r.distance) as f64).map(|e| e * e).sum();
        m.rms = (se / records.len() as f64).sqrt();
        Ok(m)
    }

    /// Metres travelled from the decision to standstill.
    pub fn distance(&self, speed: f32, mu: f32, reaction: f32) -> f32 {
        let x = features(speed as f64, mu as f64, reaction as f64);
        (x.iter().zip(self.coef).map(|(x, c)| x * c).sum::<f64>()).max(0.0) as f32
    }

    /// The deceleration (m/s²) it learned a car reaches on friction `mu`.
    pub fn deceleration(&self, mu: f32) -> f32 {
        (mu as f64 / (2.0 * self.coef[0]).max(1e-9)) as f32
    }

    /// The highest speed from which the car stops within `free` metres.
    pub fn max_speed(&self, free: f32, mu: f32, reaction: f32) -> f32 {
        // a·v²/μ + (b·r + c)·v + (e − free) = 0, the positive root.
        let qa = self.coef[0] / (mu as f64).max(0.01);
        let qb = self.coef[1] * reaction as f64 + self.coef[2];
        let qc = self.coef[3] - free as f64;
        if qc >= 0.0 {
            return 0.0;
        }
        let disc = qb * qb - 4.0 * qa * qc;
        ((-qb + disc.sqrt()) / (2.0 * qa)).max(0.0) as f32
    }

    /// The speed (m/s) the car still has `at` metres from where it decided to
    /// stop (0 when it stops before): full speed over the reaction, then the
    /// learned deceleration.
    pub fn speed_at(&self, speed: f32, mu: f32, reaction: f32, at: f32) -> f32 {
        let stop = self.distance(speed, mu, reaction);
        if at >= stop {
            return 0.0;
        }
        // v(s)² = 2·a·(stop − s) on the braking part.
        let a = self.deceleration(mu);
        (2.0 * a * (stop - at)).sqrt().min(speed)
    }
}

/// Gaussian elimination with partial pivoting; None when singular.
fn solve(mut a: [[f64; 4]; 4], mut y: [f64; 4]) -> Option<[f64; 4]> {
    let scale = a.iter().flatten().fold(0f64, |m, x| m.max(x.abs())).max(1e-300);
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        y.swap(col, pivot);
        for row in col + 1..4 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            y[row] -= f * y[col];
        }
    }
    let mut x = [0f64; 4];
    for row in (0..4).rev() {
        let s: f64 = (row + 1..4).map(|k| a[row][k] * x[k]).sum();
        x[row] = (y[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of an ideal car (deceleration 0.9·μ·g, 0.3 m of brake build-up).
    fn ideal(n: usize) -> Vec<Braking> {
        (0..n)
            .map(|i| {
                let mu = 0.1 + 0.8 * ((i * 7) % 11) as f32 / 10.0;
                let speed = 2.0 + 18.0 * ((i * 5) % 13) as f32 / 12.0;
                let reaction = 0.05 + 0.45 * ((i * 3) % 7) as f32 / 6.0;
                let distance = speed * reaction + speed * speed / (2.0 * 0.9 * mu * 9.81) + 0.3;
                Braking { mu, speed, reaction, distance, time: 0.0 }
            })
            .collect()
    }

    #[test]
    fn it_recovers_the_physics_it_was_trained_on() {
        let m = StoppingModel::fit(&ideal(60)).unwrap();
        assert!(m.rms < 1e-3, "rms {}", m.rms);
        assert!((m.deceleration(1.0) - 0.9 * 9.81).abs() < 0.01);
        let d = m.distance(14.0, 0.1, 0.1);
        assert!((d - (1.4 + 196.0 / (2.0 * 0.9 * 0.1 * 9.81) + 0.3)).abs() < 0.05, "{d}");
        // max_speed inverts distance; speed_at is the speed left on the way.
        let v = m.max_speed(d, 0.1, 0.1);
        assert!((v - 14.0).abs() < 0.01, "{v}");
        assert_eq!(m.speed_at(14.0, 0.1, 0.1, d + 1.0), 0.0);
        assert!(m.speed_at(14.0, 0.1, 0.1, 0.5 * d) > 5.0);
        assert_eq!(m.max_speed(0.1, 0.8, 0.1), 0.0);
    }

    #[test]
    fn too_few_or_degenerate_records_are_refused_by_name() {
        let e = StoppingModel::fit(&ideal(3)).unwrap_err().to_string();
        assert!(e.contains("3 braking trials"), "{e}");
        let same = vec![ideal(1)[0].clone(); 20];
        let e = StoppingModel::fit(&same).unwrap_err().to_string();
        assert!(e.contains("do not vary enough"), "{e}");
    }
}
