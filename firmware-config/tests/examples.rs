//! The configurations the repository shows stay valid: every `examples/*.toml`,
//! `natbox.toml` and the one-armed end-to-end configuration pass `natbox-config check`
//! (what `appliance check` also runs), and so does every configuration in the
//! documentation: each ```` ```toml ```` block of README.md and docs/deploy.md. A part
//! of a configuration is fenced ```` ```toml fragment ```` and not checked.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// `natbox-config check FILE`: its exit status and stderr.
fn check(file: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_natbox-config"))
        .arg("check")
        .arg(file)
        .output()
        .expect("run natbox-config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_configuration_passes_natbox_config_check() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "one-armed-dhcp.toml",
        "two-nic-dhcp.toml",
        "egress-policy.toml",
    ] {
        assert!(names.iter().any(|n| n == expected), "examples/{expected}");
    }
    files.push(repo().join("natbox.toml"));
    files.push(repo().join("tests/e2e/natbox-one-armed.toml"));
    for file in files {
        let (ok, stderr) = check(&file);
        assert!(ok, "{}: {stderr}", file.display());
    }
}

/// The ```` ```toml ```` blocks of markdown `text`, each with the line of its fence
/// (```` ```toml fragment ```` blocks left out).
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match open.as_mut() {
            None if line.trim() == "```toml" => open = Some((n + 1, String::new())),
            None if line.trim().starts_with("```toml") => assert_eq!(
                line.trim(),
                "```toml fragment",
                "line {}: a toml block is ```toml or ```toml fragment",
                n + 1
            ),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(open.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "an unclosed ```toml block");
    blocks
}

#[test]
fn every_configuration_in_the_docs_is_valid() {
    let mut checked = 0;
    for doc in ["README.md", "docs/deploy.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).expect(doc);
        for (line, block) in toml_blocks(&text) {
            checked += 1;
            // Errors name the block's first line as line 1.
            let name = format!("{doc} (block at line {line})");
            if let Err(e) = firmware_config::from_toml_named(&name, &block) {
                panic!("{e}");
            }
        }
    }
    // README's one-armed configuration, deploy.md's user-data.
    assert!(checked >= 4, "only {checked} configurations found");
}

#[test]
fn toml_blocks_are_found_with_their_fence_line_and_fragments_left_out() {
    let text = "a\n```toml\n[outside]\nport = \"eth0\"\n```\n```sh\nls\n```\n\
                ```toml fragment\ny = 2\n```\n```toml\nx = 1\n```\n";
    assert_eq!(
        toml_blocks(text),
        vec![
            (2, "[outside]\nport = \"eth0\"\n".to_string()),
            (12, "x = 1\n".to_string())
        ]
    );
}
