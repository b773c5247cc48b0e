//! One module per subcommand.

pub mod checkup;
pub mod compare;
pub mod diagnose;
pub mod fix;
pub mod import;
pub mod lr_find;
pub mod train;
