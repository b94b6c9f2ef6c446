//! What the tests of the operations scripts (modules/powersync/operations) share: the password no output may
//! contain, the scripts' paths, the JWKS documents.

use std::path::{Path, PathBuf};

/// Every DSN in these tests carries this password; no output may contain it.
pub const PASSWORD: &str = "s3cr3t-Pa55";

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modules/powersync/operations")
        .join(name)
}

pub fn assert_no_secret(what: &str) {
    assert!(!what.contains(PASSWORD), "the password leaked:\n{what}");
}

pub const EC_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
pub const EMPTY_JWKS: &str = r#"{"keys":[]}"#;
