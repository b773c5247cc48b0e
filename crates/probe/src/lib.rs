//! neuron-doctor's eyes: measure every layer of a network, then name what is wrong.
//!
//! placeholder while the probe is written.

pub mod activations;
