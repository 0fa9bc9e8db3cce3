//! The Python scripts the browser tests run (tests/web: Playwright driving Debian's Chromium):
//! the Python scripts/test.sh makes for them, where their screenshots go, and the file handshake
//! by which a script asks the test for something (`want-NAME` in a shared directory).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The Python with Playwright that scripts/test.sh makes, named by SAMBUNG_PLAYWRIGHT_PYTHON;
/// without it the test fails and says so (it never skips).
pub fn python() -> PathBuf {
    let Ok(python) = std::env::var("SAMBUNG_PLAYWRIGHT_PYTHON") else {
        panic!(
            "SAMBUNG_PLAYWRIGHT_PYTHON is not set: it names a Python with Playwright and openapi-spec-validator \
             (scripts/test.sh makes one)"
        );
    };
    PathBuf::from(python)
}

/// Where the scripts save screenshots: SAMBUNG_SCREENSHOTS, else `target/web-screenshots`.
pub fn screenshots() -> PathBuf {
    std::env::var_os("SAMBUNG_SCREENSHOTS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots"), PathBuf::from)
}

/// Waits up to two minutes for the script `child` to ask for `name` (the file `name` in
/// `sync`). When the script ends first, its status and output say why.
pub fn asked(child: &mut Child, sync: &Path, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sync.join(name).exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
            }
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            return Err(format!("the browser script ended ({status}) before asking for {name}:\n{out}\n{err}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("the browser script never asked for {name}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
