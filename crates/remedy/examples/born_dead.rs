//! Lu et al. 2019, "Dying ReLU and initialization": the chance that a deep, narrow ReLU
//! network is born dead grows with depth and falls with width. For a grid of depths and
//! widths, this initializes the digits MLP from many seeds (He normal weights, zero biases, as
//! the theory assumes) and counts the networks with a hidden layer dead on every probed input
//! (so their output is the same for all inputs), beside the bound for one fixed input,
//! 1 - (1 - 2^-N)^(L-1) for L-1 hidden layers of width N. A layer dead at one input is
//! necessary, not sufficient, for a layer dead on every input, so the measured rate should
//! sit at or below the bound.
//!
//! `cargo xtask experiments lu` runs it (`cargo run --release -p nd-remedy --example born_dead
//! -- SEEDS`, 200 seeds by default) and prints one row per cell.

use std::path::Path;

use nd_probe::ProbeOptions;
use nd_spec::{Backend, Spec};

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SEEDS is a number"))
        .unwrap_or(200);
    let device = nd_train::device(Backend::Flex).expect("flex is always built");
    let probe = ProbeOptions {
        limit: Some(256),
        grad_batch: 1,
    };
    println!("| hidden layers (L-1) | width N | born dead (measured, {seeds} seeds) | bound 1 - (1 - 2^-N)^(L-1) |");
    println!("|---|---|---|---|");
    for width in [2usize, 3, 4, 8] {
        for depth in [2usize, 5, 10, 20, 30] {
            let hidden = vec![width.to_string(); depth].join(", ");
            let text = format!(
                "[data]\ndataset = \"digits\"\n[model]\nhidden = [{hidden}]\nactivation = \"relu\"\ninit = \"kaiming_normal\"\n[train]\nbackend = \"flex\"\n"
            );
            let spec = Spec::from_toml_str(&text, "lu").unwrap().check().unwrap();
            let data = nd_data::load(&spec.data, Path::new(".")).unwrap();
            let mut dead = 0;
            for seed in 0..seeds {
                let network =
                    nd_train::init_network_with_seed(&spec, &data, seed, &device).unwrap();
                let p = nd_probe::probe(&network, &data.train, &device, &probe);
                if p.sites.iter().any(|s| s.dead_units().len() == s.units) {
                    dead += 1;
                }
            }
            let bound = 1.0 - (1.0 - 0.5f64.powi(width as i32)).powi(depth as i32);
            println!(
                "| {depth} | {width} | {:.1}% ({dead} of {seeds}) | {:.1}% |",
                100.0 * dead as f64 / seeds as f64,
                100.0 * bound
            );
        }
    }
}
