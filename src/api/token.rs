//! The API's bearer token: 32 random bytes, hex, in `<data dir>/api-token` with 0600
//! permissions, made at first start and kept. `atlas api token` prints it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ApiError;

/// The token file in `data_dir`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("api-token")
}

/// The token, made (and written with 0600 permissions) if there is none yet. A file others may
/// read is narrowed to 0600 with a warning.
pub fn load_or_create(data_dir: &Path) -> Result<String, ApiError> {
    let path = token_path(data_dir);
    let err = |source| ApiError::Token {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            let meta = std::fs::metadata(&path).map_err(err)?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "the API token file was readable by others; narrowed to 0600");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(err)?;
            }
            return Ok(text.trim().to_owned());
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    // Written to a temporary file made 0600 at creation, then renamed: never readable by others,
    // never half written.
    let tmp = data_dir.join(format!(".api-token.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(token.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = load_or_create(dir.path()).expect("made");
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(token_path(dir.path()))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(dir.path()).expect("read"), a);
        std::fs::set_permissions(
            token_path(dir.path()),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        assert_eq!(load_or_create(dir.path()).expect("read"), a);
        let mode = std::fs::metadata(token_path(dir.path()))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
