//! The workspace's own configuration: commands at the root without `-p` cover every crate.

use std::path::Path;

/// `cargo build` / `cargo real-build` at the root build the whole workspace: the root package
/// has only integration tests, so without `default-members` they would build nothing. A new
/// member must be listed in both places.
#[test]
fn default_members_are_the_root_and_every_member() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("Cargo.toml");
    let manifest: toml::Value = toml::from_str(&text).expect("Cargo.toml parses");
    let workspace = &manifest["workspace"];
    let list = |key: &str| -> Vec<String> {
        workspace[key]
            .as_array()
            .unwrap_or_else(|| panic!("workspace.{key} is a list"))
            .iter()
            .map(|v| v.as_str().expect("a path").to_string())
            .collect()
    };
    let mut expected = vec![".".to_string()];
    expected.extend(list("members"));
    assert_eq!(list("default-members"), expected);
}
