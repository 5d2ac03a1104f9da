//! Reading a CTranslate2 `model.bin`: its header, the variable index and the data of one variable.
//!
//! The format (little-endian, binary versions 4 to 6): `u32` version, a string spec name, `u32`
//! spec revision, `u32` variable count, then per variable a string name, `u8` rank, rank × `u32`
//! dims, `u8` dtype, `u32` byte count and the raw bytes; then `u32` alias count and (alias,
//! target) string pairs. A string is a `u16` length counting a trailing NUL, the bytes and the
//! NUL. Only the index is held in memory; data is read one variable at a time, so converting a
//! 3 GB model does not need 3 GB of RAM.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use super::ModelError;

/// The newest WhisperSpec revision whose variable layout this reader knows.
const MAX_WHISPER_REVISION: u32 = 3;

/// How a variable's elements are stored (CTranslate2's `DataType` numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    /// The name CTranslate2 uses for the type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }
}

/// One variable's place in the file.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    /// Row-major shape, outermost first; empty for a scalar.
    pub(crate) shape: Vec<usize>,
    /// Storage type.
    pub(crate) dtype: DType,
    /// Where the data starts in the file.
    offset: u64,
    /// Data length in bytes.
    len: usize,
}

impl Variable {
    /// Number of elements.
    pub(crate) fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The index of a CTranslate2 model file, with the file open for reading data.
pub(crate) struct Ct2Model {
    path: PathBuf,
    file: BufReader<File>,
    variables: BTreeMap<String, Variable>,
    aliases: BTreeMap<String, String>,
}

/// Reads little-endian values while counting the position, for error messages.
struct Cursor<'a> {
    reader: &'a mut BufReader<File>,
    path: &'a Path,
    pos: u64,
}

impl Cursor<'_> {
    /// Reads and checks the header: a binary version this converter knows and a WhisperSpec
    /// of a revision it knows.
    fn whisper_header(&mut self) -> Result<(), ModelError> {
        let version = self.u32("the binary version")?;
        if !(4..=6).contains(&version) {
            return Err(ModelError::UnsupportedVersion {
                path: self.path.to_owned(),
                version,
            });
        }
        let spec = self.string("the spec name")?;
        if spec != "WhisperSpec" {
            return Err(ModelError::NotWhisper {
                path: self.path.to_owned(),
                spec,
            });
        }
        let revision = self.u32("the spec revision")?;
        if revision > MAX_WHISPER_REVISION {
            return Err(ModelError::malformed(
                self.path,
                format!(
                    "WhisperSpec revision {revision} is newer than this converter knows \
                     ({MAX_WHISPER_REVISION}); convert the model with an older CTranslate2 or \
                     update Atlas"
                ),
            ));
        }
        Ok(())
    }

    /// Reads the index entry of variable `index` (name, shape, type, where its data is) and
    /// skips its data, which must fit in a file of `file_len` bytes.
    fn variable(&mut self, index: u32, file_len: u64) -> Result<(String, Variable), ModelError> {
        let name = self.string(&format!("the name of variable {index}"))?;
        let rank = self.u8(&name)?;
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(self.u32(&name)? as usize);
        }
        let dtype_id = self.u8(&name)?;
        let dtype = DType::from_id(dtype_id).ok_or_else(|| {
            ModelError::malformed(
                self.path,
                format!("{name} has unknown data type {dtype_id}"),
            )
        })?;
        let len = self.u32(&name)? as usize;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(len) {
            return Err(ModelError::malformed(
                self.path,
                format!(
                    "{name} has shape {shape:?} of {} but {len} bytes of data",
                    dtype.name()
                ),
            ));
        }
        let offset = self.pos;
        if offset + len as u64 > file_len {
            return Err(ModelError::malformed(
                self.path,
                format!("{name} runs past the end of the file (truncated download?)"),
            ));
        }
        self.skip(len as u64, &name)?;
        Ok((
            name,
            Variable {
                shape,
                dtype,
                offset,
                len,
            },
        ))
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>, ModelError> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).map_err(|e| {
            ModelError::malformed(
                self.path,
                format!(
                    "file ends early while reading {what} at byte {}: {e}",
                    self.pos
                ),
            )
        })?;
        self.pos += n as u64;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ModelError> {
        let bytes = self.bytes(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let len = usize::from(self.u16(what)?);
        let mut bytes = self.bytes(len, what)?;
        if bytes.pop() != Some(0) {
            return Err(ModelError::malformed(
                self.path,
                format!("{what} at byte {} is not NUL-terminated", self.pos),
            ));
        }
        String::from_utf8(bytes)
            .map_err(|_| ModelError::malformed(self.path, format!("{what} is not UTF-8")))
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), ModelError> {
        let n_signed = i64::try_from(n)
            .map_err(|_| ModelError::malformed(self.path, format!("{what} is too large")))?;
        self.reader
            .seek_relative(n_signed)
            .map_err(|e| ModelError::io("read", self.path, e))?;
        self.pos += n;
        Ok(())
    }
}

impl Ct2Model {
    /// Opens `path` and reads its header, variable index and aliases.
    pub(crate) fn open(path: &Path) -> Result<Self, ModelError> {
        let file = File::open(path).map_err(|e| ModelError::io("open", path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| ModelError::io("inspect", path, e))?
            .len();
        let mut reader = BufReader::new(file);
        let mut cur = Cursor {
            reader: &mut reader,
            path,
            pos: 0,
        };
        cur.whisper_header()?;
        let count = cur.u32("the variable count")?;
        let mut variables = BTreeMap::new();
        for index in 0..count {
            let (name, variable) = cur.variable(index, file_len)?;
            variables.insert(name, variable);
        }
        let mut aliases = BTreeMap::new();
        let alias_count = cur.u32("the alias count")?;
        for _ in 0..alias_count {
            let alias = cur.string("an alias name")?;
            let target = cur.string("an alias target")?;
            aliases.insert(alias, target);
        }
        Ok(Ct2Model {
            path: path.to_owned(),
            file: reader,
            variables,
            aliases,
        })
    }

    /// The file this index was read from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Looks a variable up by name, following an alias (such as the tied output projection).
    pub(crate) fn get(&self, name: &str) -> Option<&Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }

    /// Looks a variable up, failing with a message that names it.
    pub(crate) fn require(&self, name: &str) -> Result<&Variable, ModelError> {
        self.get(name).ok_or_else(|| {
            ModelError::malformed(&self.path, format!("the variable {name} is missing"))
        })
    }

    /// Names of all stored variables, in file order (sorted).
    pub(crate) fn names(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.variables.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Reads a scalar integer such as `encoder/num_heads`, if present.
    pub(crate) fn scalar_int(&mut self, name: &str) -> Result<Option<i64>, ModelError> {
        let Some(var) = self.get(name).cloned() else {
            return Ok(None);
        };
        if var.elements() != 1 {
            return Err(ModelError::malformed(
                &self.path,
                format!("{name} should be a scalar but has shape {:?}", var.shape),
            ));
        }
        let raw = self.raw(&var)?;
        let value = match var.dtype {
            DType::I8 => i64::from(raw[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([raw[0], raw[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
            other => {
                return Err(ModelError::malformed(
                    &self.path,
                    format!("{name} should be an integer but is {}", other.name()),
                ));
            }
        };
        Ok(Some(value))
    }

    /// Reads a floating-point variable as f32 values (f16 and bf16 widen exactly).
    /// Integer storage means a quantized model, which is refused.
    pub(crate) fn read_f32(&mut self, name: &str) -> Result<Vec<f32>, ModelError> {
        let var = self.require(name)?.clone();
        let raw = self.raw(&var)?;
        let values = match var.dtype {
            DType::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => raw
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => raw
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 | DType::I16 | DType::I32 => {
                return Err(ModelError::Quantized {
                    path: self.path.clone(),
                    variable: name.to_owned(),
                    dtype: var.dtype.name(),
                });
            }
        };
        Ok(values)
    }

    fn raw(&mut self, var: &Variable) -> Result<Vec<u8>, ModelError> {
        let mut buf = vec![0; var.len];
        self.file
            .seek(SeekFrom::Start(var.offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| ModelError::io("read", &self.path, e))?;
        Ok(buf)
    }
}
