//! The `file` action: read, write, append, exists and list, confined to allow-listed roots.
//!
//! **Invariant**: a path reaches the file system only after [`resolve_in_root`] has proved it lies
//! inside its root: absolute paths, `..` components and symlinks that lead out are refused. (A
//! symlink swapped in between the check and the open is not defended against; the roots are the
//! user's own folders.)

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::body::{ByteLimit, read_file};
use super::{ActionCtx, ActionError, ActionKind, FileError, LeafKind};
use crate::template::Tmpl;

/// The `file` kind.
pub struct File;

impl ActionKind for File {
    const NAME: &'static str = "file";
    const DOC: &'static str = "Sandboxed file access.";
    type Config = FileConfig;
}

impl LeafKind for File {
    async fn execute(c: &FileConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let (root_name, root) = pick_root(&ctx.services.file_roots, c.root.as_deref())?;
        let rel = c.path.render(ctx.scope)?;
        let path = resolve_in_root(root, &rel)?;
        let mut out = match c.op {
            FileOp::Read => {
                let text = read_file(&path, c.max_bytes, &rel).await?;
                json!({ "path": rel, "content": text, "bytes": text.len() })
            }
            FileOp::Write | FileOp::Append => {
                let content = match &c.content {
                    Some(t) => t.render(ctx.scope)?,
                    None => return Err(FileError::NoContent.into()),
                };
                write(&path, &content, c.op == FileOp::Append).await?;
                json!({ "path": rel, "bytes": content.len() })
            }
            FileOp::Exists => {
                json!({ "path": rel, "exists": tokio::fs::try_exists(&path).await.unwrap_or(false) })
            }
            FileOp::List => json!({ "path": rel, "entries": list(&path).await? }),
        };
        out["root"] = Value::String(root_name.clone());
        Ok(out)
    }
}

/// What a `file` action does.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileOp {
    /// Read a text file.
    Read,
    /// Replace a file's contents (creating folders as needed).
    Write,
    /// Add to the end of a file.
    Append,
    /// Whether a path exists.
    Exists,
    /// The entries of a folder.
    List,
}

/// Config of `file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The operation.
    pub op: FileOp,
    /// Path relative to the root.
    pub path: Tmpl,
    /// Text for `write` and `append`.
    #[serde(default)]
    pub content: Option<Tmpl>,
    /// Name of an allow-listed root (`file_roots` in config.toml); default the first.
    #[serde(default)]
    pub root: Option<String>,
    /// Cap on the size of a file `read` (default 10 MiB, at most 256 MiB).
    #[serde(default)]
    pub max_bytes: ByteLimit,
}

/// The root named `name`, or the first one.
fn pick_root<'r>(
    roots: &'r [(String, PathBuf)],
    name: Option<&str>,
) -> Result<&'r (String, PathBuf), FileError> {
    match name {
        Some(name) => roots
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| FileError::UnknownRoot {
                name: name.to_owned(),
                known: roots.iter().map(|(n, _)| n.clone()).collect(),
            }),
        None => roots.first().ok_or(FileError::NoRoots),
    }
}

/// Resolves `rel` inside `root`, refusing anything that would leave it.
pub fn resolve_in_root(root: &Path, rel: &str) -> Result<PathBuf, FileError> {
    let root = root
        .canonicalize()
        .map_err(|source| FileError::RootUnusable {
            root: root.to_path_buf(),
            source,
        })?;
    let mut rel_path = PathBuf::new();
    for comp in Path::new(rel).components() {
        match comp {
            Component::Normal(c) => rel_path.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err(FileError::ParentDir { path: rel.into() }),
            Component::RootDir | Component::Prefix(_) => {
                return Err(FileError::Absolute {
                    path: rel.into(),
                    root,
                });
            }
        }
    }
    let joined = root.join(&rel_path);
    // Resolve symlinks in the part that exists; the rest is created inside it.
    let mut existing = joined.clone();
    let mut rest = Vec::new();
    while existing.symlink_metadata().is_err() {
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let resolved = existing
        .canonicalize()
        .map_err(|source| FileError::Unresolvable {
            path: rel.into(),
            source,
        })?;
    if !resolved.starts_with(&root) {
        return Err(FileError::OutsideRoot {
            path: rel.into(),
            root,
        });
    }
    let mut out = resolved;
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    Ok(out)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ActionError + '_ {
    move |source| ActionError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces (or appends to) the file at `path`, creating its folders.
async fn write(path: &Path, content: &str, append: bool) -> Result<(), ActionError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io(path))?;
    }
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .await
        .map_err(io(path))?;
    f.write_all(content.as_bytes()).await.map_err(io(path))?;
    f.flush().await.map_err(io(path))
}

/// The entries of the folder at `path`, sorted by name.
async fn list(path: &Path) -> Result<Vec<Value>, ActionError> {
    let mut dir = tokio::fs::read_dir(path).await.map_err(io(path))?;
    let mut entries = Vec::new();
    while let Some(e) = dir.next_entry().await.map_err(io(path))? {
        let is_dir = e.file_type().await.map(|t| t.is_dir()).unwrap_or(false);
        entries.push(json!({ "name": e.file_name().to_string_lossy(), "dir": is_dir }));
    }
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_picked_by_name_or_first_and_a_wrong_name_lists_the_others() {
        let roots = vec![
            ("notes".to_owned(), PathBuf::from("/n")),
            ("inbox".to_owned(), PathBuf::from("/i")),
        ];
        assert_eq!(pick_root(&roots, None).unwrap().0, "notes");
        assert_eq!(pick_root(&roots, Some("inbox")).unwrap().0, "inbox");
        let err = pick_root(&roots, Some("music")).unwrap_err().to_string();
        assert_eq!(
            err,
            "no file root named `music`; configured roots: notes, inbox"
        );
        let err = pick_root(&[], None).unwrap_err();
        assert!(matches!(err, FileError::NoRoots), "{err}");
        assert!(err.to_string().contains("`file_roots` in config.toml"));
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let canon = root.canonicalize().unwrap();
        assert_eq!(
            resolve_in_root(&root, "sub/new.txt").unwrap(),
            canon.join("sub/new.txt")
        );
        assert_eq!(
            resolve_in_root(&root, "a/b/c.txt").unwrap(),
            canon.join("a/b/c.txt")
        );
        assert!(
            resolve_in_root(&root, "../x")
                .unwrap_err()
                .to_string()
                .contains("`..`")
        );
        assert!(
            resolve_in_root(&root, "sub/../../x")
                .unwrap_err()
                .to_string()
                .contains("`..`")
        );
        assert!(
            resolve_in_root(&root, "/etc/passwd")
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
        std::os::unix::fs::symlink(dir.path(), root.join("escape")).unwrap();
        let err = resolve_in_root(&root, "escape/secret.txt").unwrap_err();
        assert!(matches!(err, FileError::OutsideRoot { .. }), "{err}");
        assert!(err.to_string().contains("outside the root"), "{err}");
        std::os::unix::fs::symlink(root.join("sub"), root.join("inside")).unwrap();
        assert!(resolve_in_root(&root, "inside/ok.txt").is_ok());
    }
}
