//! Integration tests of the `neuron-doctor` binary: each runs the real command in a fresh
//! temporary directory (see `util`).
//!
//! One test binary with topic modules keeps link time down. The modules live in
//! `<topic>/mod.rs` so that cargo does not also build each of them as a test binary of its
//! own (it auto-discovers every `tests/*.rs`).

mod backend;
mod compare;
mod diagnose;
mod errors;
mod executor;
mod fix;
mod import;
mod safety;
mod train;
mod util;
