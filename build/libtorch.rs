// Shared by the build scripts of every crate that links libtorch
// (`include!`d, so there is one copy of this logic).
//
// torch-sys links libtorch but puts no rpath on final binaries, so without
// this, binaries and test executables only run with LD_LIBRARY_PATH set.
// torch-sys exports the library directory it linked against as
// DEP_TCH_LIBTORCH_LIB to crates that depend on it directly.
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!(
            "torch-sys did not report where libtorch lives (DEP_TCH_LIBTORCH_LIB is unset); \
             run scripts/setup.sh or set LIBTORCH to a libtorch 2.13.0 directory"
        );
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // The CPU wheel's libtorch_cpu finds libcudart/libcupti through its own
    // RPATH. A CUDA build must also force-link libtorch_cuda, which nothing
    // references by symbol and the linker would otherwise drop.
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
