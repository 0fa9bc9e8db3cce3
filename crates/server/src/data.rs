//! The data directory: state that must survive restarts.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Bytes of the server secret.
const SECRET_LEN: usize = 32;

/// Errors while preparing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot create data directory {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} is not a valid secret file (64 hex digits expected); delete it to make a new one")]
    BadSecret(PathBuf),
}

/// Creates the data directory if it does not exist yet.
pub fn ensure_dir(dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Create { path: dir.to_owned(), source })
}

/// The server secret (keys digest nonces, RFC 7616 §5.4), made on first start and kept in
/// `<dir>/secret` so that nonces stay valid across a restart.
pub fn secret(dir: &Path) -> Result<[u8; SECRET_LEN], DataError> {
    let path = dir.join("secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_hex(text.trim()).ok_or(DataError::BadSecret(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; SECRET_LEN] = rand::random();
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(&path)
                .and_then(|mut f| f.write_all(format!("{hex}\n").as_bytes()))
                .map_err(|source| DataError::Io { path, source })?;
            Ok(secret)
        }
        Err(source) => Err(DataError::Io { path, source }),
    }
}

fn decode_hex(s: &str) -> Option<[u8; SECRET_LEN]> {
    if s.len() != SECRET_LEN * 2 {
        return None;
    }
    let mut out = [0u8; SECRET_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("sambung-data-test-{}", std::process::id()));
        ensure_dir(&dir).unwrap();
        let first = secret(&dir).unwrap();
        assert_eq!(secret(&dir).unwrap(), first);
        std::fs::write(dir.join("secret"), "nothex").unwrap();
        assert!(matches!(secret(&dir), Err(DataError::BadSecret(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
