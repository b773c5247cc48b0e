//! Synthetic datasets, generated from a fixed seed so that a spec always means the same data:
//! `spirals` (two interleaved arms, 2 classes) and `sine` (a noisy sine, regression).

use crate::table::Table;
use crate::DataError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

/// The seed of every synthetic set: the data is part of the spec, not of the run's seed.
const SEED: u64 = 7;

/// How far each arm winds, in turns: 1.5 turns leave a gap of a third of the radius between
/// neighbouring arms, which the default noise (0.1) blurs without erasing.
const TURNS: f64 = 1.5;

/// Two spiral arms around the origin, features `x, y` within about [-1, 1] before the noise.
/// Row `i` belongs to class `i % 2`; along each arm the points are evenly spaced from the
/// centre outwards, then each coordinate gets Gaussian noise with standard deviation `noise`.
pub(crate) fn spirals(samples: usize, noise: f64) -> Table {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let per_class = [samples.div_ceil(2), samples / 2];
    let mut features = Vec::with_capacity(samples * 2);
    let mut targets = Vec::with_capacity(samples);
    for i in 0..samples {
        let class = i % 2;
        let position = ((i / 2) as f64 + 0.5) / per_class[class] as f64;
        let angle = position * TURNS * 2.0 * PI + class as f64 * PI;
        let x = position * angle.cos() + noise * gaussian(&mut rng);
        let y = position * angle.sin() + noise * gaussian(&mut rng);
        features.extend([x as f32, y as f32]);
        targets.push(class as f32);
    }
    Table {
        feature_names: vec!["x".into(), "y".into()],
        features,
        targets,
        is_test: None,
    }
}

/// `x` uniform in [-pi, pi], target `(1 - noise) * sin(x) + noise * u` with `u` uniform in
/// [-1, 1], so the targets stay in [-1, 1]; `noise` must be at most 1 for that.
pub(crate) fn sine(samples: usize, noise: f64) -> Result<Table, DataError> {
    if !(0.0..=1.0).contains(&noise) {
        return Err(DataError::Invalid {
            key: "data.noise",
            value: noise.to_string(),
            reason: "dataset \"sine\" mixes sin(x) and uniform noise as (1 - noise) * sin(x) + noise * u, so noise must be in [0, 1]".into(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut features = Vec::with_capacity(samples);
    let mut targets = Vec::with_capacity(samples);
    for _ in 0..samples {
        let x = (2.0 * rng.random::<f64>() - 1.0) * PI;
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let target = ((1.0 - noise) * x.sin() + noise * u).clamp(-1.0, 1.0);
        features.push(x as f32);
        targets.push(target as f32);
    }
    Ok(Table {
        feature_names: vec!["x".into()],
        features,
        targets,
        is_test: None,
    })
}

/// A standard normal draw (Box-Muller), written out so the stream depends on nothing but the
/// generator.
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // in (0, 1], so the log is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spirals_alternate_classes_and_stay_near_the_unit_disc() {
        let table = spirals(101, 0.0);
        assert_eq!(table.targets.len(), 101);
        assert_eq!(table.targets.iter().filter(|&&t| t == 1.0).count(), 50);
        assert_eq!(&table.targets[..4], &[0.0, 1.0, 0.0, 1.0]);
        for point in table.features.chunks(2) {
            let radius = (point[0] * point[0] + point[1] * point[1]).sqrt();
            assert!(radius > 0.0 && radius <= 1.0, "{point:?}");
        }
    }

    #[test]
    fn spiral_arms_are_point_reflections_of_each_other_without_noise() {
        // With no noise, arm 1 is arm 0 turned by half a turn: (x, y) -> (-x, -y).
        let table = spirals(20, 0.0);
        for pair in table.features.chunks(4) {
            assert!(
                (pair[0] + pair[2]).abs() < 1e-6 && (pair[1] + pair[3]).abs() < 1e-6,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn gaussian_draws_have_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<f64> = (0..20_000).map(|_| gaussian(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((variance - 1.0).abs() < 0.05, "{variance}");
    }

    #[test]
    fn sine_without_noise_is_the_sine() {
        let table = sine(50, 0.0).unwrap();
        for (x, y) in table.features.iter().zip(&table.targets) {
            assert!((x.sin() - y).abs() < 1e-6);
            assert!((-std::f32::consts::PI..=std::f32::consts::PI).contains(x));
        }
    }

    #[test]
    fn sine_rejects_noise_above_one() {
        let message = sine(50, 1.5).unwrap_err().to_string();
        assert!(
            message.starts_with("`data.noise` = 1.5 is not allowed"),
            "{message}"
        );
    }
}
