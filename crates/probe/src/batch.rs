//! Turning dataset rows into tensors, and the loss both the trainer and the probe use.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use nd_data::{Split, Targets};

/// A tensor's values on the host as `f32`. `to_vec` copies the buffer in one go where
/// `TensorData::iter` converts value by value (about 40 times slower on ndarray).
pub fn host_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    let data = tensor.into_data();
    data.try_to_vec::<f32>()
        .unwrap_or_else(|_| data.iter::<f32>().collect())
}

/// The rows `rows` of a split as a `[rows, features]` tensor.
pub fn features(split: &Split, rows: &[usize], device: &Device) -> Tensor<2> {
    let width = split.features.len() / split.rows.max(1);
    let mut values = Vec::with_capacity(rows.len() * width);
    for &row in rows {
        values.extend_from_slice(&split.features[row * width..(row + 1) * width]);
    }
    Tensor::from_data(TensorData::new(values, [rows.len(), width]), device)
}

/// Cross-entropy (classification) or mean squared error (regression) of `output` against the
/// targets of `rows`, as a one-element tensor.
pub fn loss(output: Tensor<2>, targets: &Targets, rows: &[usize], device: &Device) -> Tensor<1> {
    match targets {
        Targets::Classes(labels) => {
            let labels: Vec<i64> = rows.iter().map(|&r| labels[r] as i64).collect();
            let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows.len()]), device);
            CrossEntropyLossConfig::new()
                .init(device)
                .forward(output, labels)
        }
        Targets::Values(values) => {
            let values: Vec<f32> = rows.iter().map(|&r| values[r]).collect();
            let values = Tensor::<2>::from_data(TensorData::new(values, [rows.len(), 1]), device);
            (output - values).powi_scalar(2).mean()
        }
    }
}
