//! The catalog of official whisper.cpp ggml models, and what is installed in a models directory.
//!
//! Names, file names and SHA-1 sums are those whisper.cpp publishes in `models/README.md`
//! (ggml-org/whisper.cpp, checked at commit 233fe1f); the files are served from the Hugging Face
//! repository `ggerganov/whisper.cpp`. Sizes are the exact byte counts of those files. Of the
//! quantized variants only the ones whose SHA-1 whisper.cpp publishes are listed (`large-v3-q5_0`,
//! `large-v3-turbo-q5_0`): a download without a published sum could not be verified.

use std::path::{Path, PathBuf};

use tracing::warn;

use super::ModelError;

/// Which languages a model transcribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English only (`.en` models): better and faster on English.
    English,
    /// Ninety-nine languages, English included.
    Multilingual,
}

impl Language {
    /// `"en"` or `"multilingual"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Multilingual => "multilingual",
        }
    }
}

/// One downloadable ggml model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CatalogEntry {
    /// The model's name, e.g. `"tiny.en"`.
    pub name: &'static str,
    /// The file name, always `ggml-<name>.bin`.
    pub file_name: &'static str,
    /// The file's size in bytes.
    pub size: u64,
    /// True when [`size`](Self::size) is the exact byte count (all entries today).
    pub size_exact: bool,
    /// Which languages the model transcribes.
    pub language: Language,
    /// The SHA-1 sum whisper.cpp publishes, lowercase hex.
    pub sha1: &'static str,
    /// Quantized (`-q5_0`): smaller and faster, slightly less accurate.
    pub quantized: bool,
}

const fn entry(
    name: &'static str,
    file_name: &'static str,
    size: u64,
    language: Language,
    sha1: &'static str,
) -> CatalogEntry {
    CatalogEntry {
        name,
        file_name,
        size,
        size_exact: true,
        language,
        sha1,
        quantized: false,
    }
}

const fn quantized(mut e: CatalogEntry) -> CatalogEntry {
    e.quantized = true;
    e
}

use Language::{English as EN, Multilingual as ML};

/// Every model Atlas knows how to download, smallest first.
pub static CATALOG: &[CatalogEntry] = &[
    entry(
        "tiny",
        "ggml-tiny.bin",
        77_691_713,
        ML,
        "bd577a113a864445d4c299885e0cb97d4ba92b5f",
    ),
    entry(
        "tiny.en",
        "ggml-tiny.en.bin",
        77_704_715,
        EN,
        "c78c86eb1a8faa21b369bcd33207cc90d64ae9df",
    ),
    entry(
        "base",
        "ggml-base.bin",
        147_951_465,
        ML,
        "465707469ff3a37a2b9b8d8f89f2f99de7299dac",
    ),
    entry(
        "base.en",
        "ggml-base.en.bin",
        147_964_211,
        EN,
        "137c40403d78fd54d454da0f9bd998f78703390c",
    ),
    entry(
        "small",
        "ggml-small.bin",
        487_601_967,
        ML,
        "55356645c2b361a969dfd0ef2c5a50d530afd8d5",
    ),
    entry(
        "small.en",
        "ggml-small.en.bin",
        487_614_201,
        EN,
        "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022",
    ),
    entry(
        "medium",
        "ggml-medium.bin",
        1_533_763_059,
        ML,
        "fd9727b6e1217c2f614f9b698455c4ffd82463b4",
    ),
    entry(
        "medium.en",
        "ggml-medium.en.bin",
        1_533_774_781,
        EN,
        "8c30f0e44ce9560643ebd10bbe50cd20eafd3723",
    ),
    entry(
        "large-v3",
        "ggml-large-v3.bin",
        3_095_033_483,
        ML,
        "ad82bf6a9043ceed055076d0fd39f5f186ff8062",
    ),
    quantized(entry(
        "large-v3-q5_0",
        "ggml-large-v3-q5_0.bin",
        1_081_140_203,
        ML,
        "e6e2ed78495d403bef4b7cff42ef4aaadcfea8de",
    )),
    entry(
        "large-v3-turbo",
        "ggml-large-v3-turbo.bin",
        1_624_555_275,
        ML,
        "4af2b29d7ec73d781377bfd1758ca957a807e941",
    ),
    quantized(entry(
        "large-v3-turbo-q5_0",
        "ggml-large-v3-turbo-q5_0.bin",
        574_041_195,
        ML,
        "e050f7970618a659205450ad97eb95a18d69c9ee",
    )),
];

/// The catalog entries, smallest first.
pub fn list() -> &'static [CatalogEntry] {
    CATALOG
}

/// Finds a model by name (`"base.en"`) or file name (`"ggml-base.en.bin"`).
pub fn find(name: &str) -> Option<&'static CatalogEntry> {
    CATALOG
        .iter()
        .find(|e| e.name == name || e.file_name == name)
}

/// Like [`find`], but an unknown name is an error that lists the known ones.
pub fn lookup(name: &str) -> Result<&'static CatalogEntry, ModelError> {
    find(name).ok_or_else(|| ModelError::UnknownModel {
        name: name.to_owned(),
        known: CATALOG
            .iter()
            .map(|e| e.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A `ggml-*.bin` file found in a models directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstalledModel {
    /// The name between `ggml-` and `.bin`, e.g. `"base.en"`.
    pub name: String,
    /// Full path of the file.
    pub path: PathBuf,
    /// Size on disk in bytes.
    pub size: u64,
    /// The catalog entry of that name, if there is one.
    pub catalog: Option<&'static CatalogEntry>,
}

impl InstalledModel {
    /// English only, multilingual, or unknown (a file that is not in the catalog).
    pub fn language(&self) -> Option<Language> {
        self.catalog.map(|e| e.language)
    }

    /// True when the file is a catalog model and has the catalog's exact size. (The checksum is
    /// checked when downloading, not here: hashing gigabytes on every listing would be slow.)
    pub fn size_matches_catalog(&self) -> bool {
        self.catalog.is_some_and(|e| e.size == self.size)
    }
}

/// The `ggml-*.bin` files in `models_dir`, sorted by name. A missing directory has none;
/// partial downloads (`.part`) and hidden temporary files are not models and are skipped.
pub fn installed(models_dir: &Path) -> Vec<InstalledModel> {
    let entries = match std::fs::read_dir(models_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!(dir = %models_dir.display(), error = %e, "cannot list the models directory");
            return Vec::new();
        }
    };
    let mut found: Vec<InstalledModel> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().to_str()?.to_owned();
            let name = file_name.strip_prefix("ggml-")?.strip_suffix(".bin")?;
            if name.is_empty() {
                return None;
            }
            let meta = entry.metadata().ok().filter(|m| m.is_file())?;
            Some(InstalledModel {
                name: name.to_owned(),
                path: entry.path(),
                size: meta.len(),
                catalog: find(name),
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The order [`best_installed_english`] prefers: English models that are fast enough for voice
/// commands on a laptop CPU first (small.en is the most accurate of those), then medium.en, then
/// multilingual models from the most to the least accurate of the quick ones.
const ENGLISH_PREFERENCE: &[&str] = &[
    "small.en",
    "base.en",
    "tiny.en",
    "medium.en",
    "large-v3-turbo-q5_0",
    "small",
    "base",
    "tiny",
    "large-v3-turbo",
    "medium",
    "large-v3-q5_0",
    "large-v3",
];

/// The best installed model for English speech: small.en, base.en, tiny.en, medium.en, then the
/// multilingual catalog models (large-v3-turbo-q5_0, small, base, tiny, then the slow large ones),
/// then any other `ggml-*.bin`, taken in name order. Of each model a Q8_0 copy
/// (`ggml-NAME-q8_0.bin`, what `atlas model import --quantize q8_0` writes) comes first: nearly
/// the same accuracy at half the memory and a faster decode. A catalog model whose size is wrong
/// (a damaged copy) is passed over.
pub fn best_installed_english(models_dir: &Path) -> Option<InstalledModel> {
    let all = installed(models_dir);
    let usable = |m: &&InstalledModel| m.catalog.is_none() || m.size_matches_catalog();
    ENGLISH_PREFERENCE
        .iter()
        .flat_map(|want| [format!("{want}-q8_0"), (*want).to_owned()])
        .find_map(|want| all.iter().filter(usable).find(|m| m.name == want))
        .or_else(|| all.iter().find(|m| m.catalog.is_none()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_entries_are_consistent() {
        let mut names = std::collections::HashSet::new();
        for e in CATALOG {
            assert!(names.insert(e.name), "duplicate {}", e.name);
            assert_eq!(e.file_name, format!("ggml-{}.bin", e.name));
            assert_eq!(e.sha1.len(), 40);
            assert!(
                e.sha1
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(e.language == Language::English, e.name.contains(".en"));
            assert_eq!(e.quantized, e.name.contains("-q"));
            assert!(e.size > 70_000_000);
        }
        let wanted = [
            "tiny",
            "tiny.en",
            "base",
            "base.en",
            "small",
            "small.en",
            "medium",
            "medium.en",
            "large-v3",
            "large-v3-turbo",
        ];
        assert!(wanted.iter().all(|n| find(n).is_some()));
        assert!(ENGLISH_PREFERENCE.iter().all(|n| find(n).is_some()));
        assert_eq!(ENGLISH_PREFERENCE.len(), CATALOG.len());
    }

    #[test]
    fn find_accepts_names_and_file_names() {
        let e = find("tiny.en").map(|e| (e.size, e.sha1));
        assert_eq!(
            e,
            Some((77_704_715, "c78c86eb1a8faa21b369bcd33207cc90d64ae9df"))
        );
        assert_eq!(find("ggml-base.en.bin").map(|e| e.name), Some("base.en"));
        assert!(find("huge").is_none());
        let err = lookup("huge")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown whisper model 'huge'") && err.contains("tiny.en"),
            "{err}"
        );
    }

    fn touch(dir: &Path, name: &str, size: u64) -> std::io::Result<()> {
        std::fs::File::create(dir.join(name))?.set_len(size)
    }

    #[test]
    fn installed_lists_ggml_files_and_marks_catalog_ones() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        touch(dir.path(), "ggml-tiny.en.bin", 77_704_715)?;
        touch(dir.path(), "ggml-custom.bin", 10)?;
        touch(dir.path(), "ggml-base.en.bin.part", 5)?;
        touch(dir.path(), "notes.txt", 1)?;
        std::fs::create_dir(dir.path().join("ggml-dir.bin"))?;
        let found = installed(dir.path());
        let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["custom", "tiny.en"]);
        assert!(found[0].catalog.is_none() && found[0].language().is_none());
        assert_eq!(found[1].language(), Some(Language::English));
        assert!(found[1].size_matches_catalog());
        assert!(installed(&dir.path().join("absent")).is_empty());
        Ok(())
    }

    #[test]
    fn best_english_follows_the_preference_order() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let best = |d: &Path| best_installed_english(d).map(|m| m.name);
        assert_eq!(best(dir.path()), None);
        touch(dir.path(), "ggml-mine.bin", 10)?;
        assert_eq!(best(dir.path()).as_deref(), Some("mine"));
        touch(dir.path(), "ggml-base.bin", 147_951_465)?;
        assert_eq!(best(dir.path()).as_deref(), Some("base"));
        touch(dir.path(), "ggml-tiny.en.bin", 77_704_715)?;
        assert_eq!(best(dir.path()).as_deref(), Some("tiny.en"));
        // Its Q8_0 copy comes first; a Q8_0 copy of a less preferred model does not.
        touch(dir.path(), "ggml-tiny.en-q8_0.bin", 43_550_795)?;
        assert_eq!(best(dir.path()).as_deref(), Some("tiny.en-q8_0"));
        touch(dir.path(), "ggml-base-q8_0.bin", 81_768_585)?;
        assert_eq!(best(dir.path()).as_deref(), Some("tiny.en-q8_0"));
        // A truncated small.en is not chosen over a complete tiny.en.
        touch(dir.path(), "ggml-small.en.bin", 1_000)?;
        assert_eq!(best(dir.path()).as_deref(), Some("tiny.en-q8_0"));
        touch(dir.path(), "ggml-small.en.bin", 487_614_201)?;
        assert_eq!(best(dir.path()).as_deref(), Some("small.en"));
        Ok(())
    }
}
