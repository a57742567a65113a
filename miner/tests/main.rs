//! Integration tests of the `btminer` binary, compiled into one test binary.

mod cli;
