//! `btvalidator`: the Sliver validator.
//!
//! A validator publishes and checks the run spec, spot-checks miners by
//! recomputing their work, attributes loss to the miners on each sample's
//! path, writes score tables and sets weights on chain.
//!
//! Built so far: [`spec`], which validates a run spec and shows what it asks
//! of miners (stages, parameters, bytes on the wire) before a run starts.

pub mod cli;
pub mod spec;
