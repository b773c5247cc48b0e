//! Integration tests of the `neuron-doctor` binary: each runs the real command in a fresh
//! temporary directory (see `util`). One test binary with topic modules keeps link time down.

mod diagnose;
mod errors;
mod fix;
mod train;
mod util;
