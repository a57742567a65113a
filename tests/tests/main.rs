//! Whole-system tests, compiled into one binary.

mod shipped_specs;
mod standalone;
mod swarm;
