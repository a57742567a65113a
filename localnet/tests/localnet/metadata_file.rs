//! `metadata/local.scale` at the workspace root is the local chain's metadata exactly as the code
//! builds it. Regenerate it with `SLIVER_BLESS_METADATA=1 cargo test -p sliver-localnet --test
//! localnet metadata_file` after a deliberate change.

use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(sliver_chain::testing::LOCAL_PATH)
}

#[test]
fn metadata_file_matches_what_the_code_builds() {
    let built = sliver_localnet::metadata::metadata_bytes();
    let path = path();
    if std::env::var_os("SLIVER_BLESS_METADATA").is_some() {
        let tmp = path.with_extension("scale.tmp");
        std::fs::write(&tmp, &built).expect("write metadata/local.scale.tmp");
        std::fs::rename(&tmp, &path).expect("rename into metadata/local.scale");
        return;
    }
    let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with SLIVER_BLESS_METADATA=1",
            path.display()
        )
    });
    assert!(
        on_disk == built,
        "{} ({} bytes) differs from the metadata the code builds ({} bytes); if the change is \
         deliberate, regenerate it with SLIVER_BLESS_METADATA=1 cargo test -p sliver-localnet \
         --test localnet metadata_file",
        path.display(),
        on_disk.len(),
        built.len()
    );
}
