//! Puts an rpath to libtorch on this crate's binaries (see build/libtorch.rs).

include!("../build/libtorch.rs");

fn main() {
    link_libtorch();
}
