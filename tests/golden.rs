//! Golden tests: every `.eml` in `tests/fixtures/golden/` is evaluated by the
//! real binary against `rules.yaml` there, and the JSON decision must equal
//! the `.json` beside it. A mismatch writes `NAME.json.new` for review;
//! `MAILWARDEN_BLESS=1` writes the `.json` files instead (review the diff!).

use std::path::{Path, PathBuf};
use std::process::Command;

const NOW: &str = "2026-02-01T00:00:00Z";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

#[test]
fn decisions_match_the_golden_files() {
    let dir = fixtures();
    let mut emls: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    assert!(emls.len() >= 10, "fixtures missing: {emls:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["test", "--format", "json", "--now", NOW, "-c"])
        .arg(dir.join("rules.yaml"))
        .args(&emls)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), emls.len());

    let bless = std::env::var_os("MAILWARDEN_BLESS").is_some();
    let mut failures = Vec::new();
    for (eml, mut got) in emls.iter().zip(lines) {
        // The path differs per checkout; the name is what identifies it.
        got["file"] = eml.file_name().unwrap().to_string_lossy().into();
        let pretty = serde_json::to_string_pretty(&got).unwrap() + "\n";
        let golden = eml.with_extension("json");
        if bless {
            std::fs::write(&golden, &pretty).unwrap();
            continue;
        }
        let want: Option<serde_json::Value> = std::fs::read_to_string(&golden)
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap());
        if want.as_ref() != Some(&got) {
            let new = eml.with_extension("json.new");
            std::fs::write(&new, &pretty).unwrap();
            failures.push(format!(
                "{} differs; see {}",
                golden.display(),
                new.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
