//! The end-to-end test binaries of `sluice-e2e`, run in two lanes side by side.
//!
//! Most of an end-to-end test's time is waiting (the local Queue's batch
//! window, a dead consumer's lease, retry back-off, Chromium's page loads), so
//! two binaries at a time take far less than twice as long on two cores. The
//! binaries that start Chromium share one lane, so at most one browser runs at
//! a time; the others share the other lane. Each binary runs its tests one at a
//! time (`--test-threads=1`, as before) and its output is printed whole when it
//! ends, so the lanes never interleave. Every binary runs even when one fails.

use crate::proc::{elapsed_s, root};
use crate::test::Outcome;
use crate::Result;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One test binary of the package.
#[derive(Debug)]
pub struct Binary {
    pub name: String,
    pub executable: PathBuf,
    /// Whether it drives Chromium (its source starts a `Browser`).
    pub browser: bool,
}

/// Build every test binary of `package` (without running them) and list them.
pub fn build(package: &str) -> Result<Vec<Binary>> {
    let out = Command::new("cargo")
        .current_dir(root())
        .args([
            "test",
            "-p",
            package,
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the tests of {package} failed"));
    }
    Ok(binaries(&String::from_utf8_lossy(&out.stdout)))
}

/// The test executables in cargo's JSON messages (one per line).
fn binaries(messages: &str) -> Vec<Binary> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| {
            let executable = PathBuf::from(m["executable"].as_str()?);
            let source = m["target"]["src_path"].as_str().unwrap_or_default();
            let browser =
                std::fs::read_to_string(source).is_ok_and(|s| s.contains("Browser::start"));
            let kind = m["target"]["kind"][0].as_str().unwrap_or_default();
            let name = m["target"]["name"].as_str().unwrap_or_default();
            Some(Binary {
                name: if kind == "test" {
                    name.to_owned()
                } else {
                    format!("{name} ({kind})")
                },
                executable,
                browser,
            })
        })
        .collect()
}

/// Run the binaries in two lanes (browser, the rest); print each one's
/// output when it ends; return each one's outcome, in the order they ended.
pub fn run(binaries: Vec<Binary>) -> Vec<Outcome> {
    let (browser, rest): (Vec<Binary>, Vec<Binary>) = binaries.into_iter().partition(|b| b.browser);
    let (tx, rx) = std::sync::mpsc::channel();
    let lanes: Vec<_> = [browser, rest]
        .into_iter()
        .map(|lane| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for b in lane {
                    let _ = tx.send(run_one(&b));
                }
            })
        })
        .collect();
    drop(tx);
    let ran: Vec<Outcome> = rx.iter().collect();
    for lane in lanes {
        let _ = lane.join();
    }
    ran
}

fn run_one(b: &Binary) -> Outcome {
    let t = elapsed_s();
    let out = Command::new(&b.executable)
        .arg("--test-threads=1")
        // Where `cargo test` runs them: the package's directory.
        .current_dir(root().join("tests"))
        .output();
    let secs = elapsed_s() - t;
    let (ok, stdout, stderr) = match out {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (
            false,
            String::new(),
            format!("cannot start {}: {e}\n", b.executable.display()),
        ),
    };
    let (mut passed, mut failed) = (0, 0);
    for (p, f) in stdout.lines().filter_map(crate::test::parse_result_line) {
        passed += p;
        failed += f;
    }
    if !ok && failed == 0 {
        failed = 1;
    }
    eprintln!(
        "\x1b[1m--- {} ({}, {} s): {passed} passed, {failed} failed\x1b[0m",
        b.name,
        if b.browser {
            "browser lane"
        } else {
            "other lane"
        },
        secs
    );
    print!("{stdout}");
    eprint!("{stderr}");
    Outcome {
        name: format!("e2e {}", b.name),
        passed,
        failed,
        ok,
        secs,
    }
}

#[cfg(test)]
mod tests {
    use super::binaries;

    #[test]
    fn reads_the_test_executables_from_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","profile":{"test":true},"target":{"kind":["test"],"name":"sdk","src_path":"/nowhere/sdk.rs"},"executable":"/t/sdk-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","profile":{"test":false},"target":{"kind":["lib"],"name":"x","src_path":"/nowhere/lib.rs"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","profile":{"test":true},"target":{"kind":["lib"],"name":"sluice_e2e","src_path":"/nowhere/lib.rs"},"executable":"/t/lib-2"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        let found = binaries(messages);
        let names: Vec<&str> = found.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["sdk", "sluice_e2e (lib)"]);
        assert!(
            found.iter().all(|b| !b.browser),
            "the sources are not readable"
        );
    }
}
