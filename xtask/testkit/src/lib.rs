//! What xtask's tests and `cargo xtask bench` share and the `cargo xtask` binary must not carry: a real OCI
//! registry behind a misbehaving front (registry.rs), a real forward proxy, scratch repositories, and the
//! fixtures made once and kept under the target directory (cache.rs).

pub mod cache;
pub mod forward_proxy;
pub mod registry;
pub mod scratch;
// xtask's own tool list, so a missing program fails here with the same install line.
#[path = "../../src/tools.rs"]
#[allow(dead_code)]
pub mod tools;

pub use forward_proxy::ForwardProxy;
pub use scratch::Scratch;

use std::path::PathBuf;

/// The repository's root (fixtures live under xtask/tests/fixtures).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("xtask/testkit sits two levels below the root")
        .to_path_buf()
}
