//! The `[data]` table of the run spec: where the text comes from, how it is read and tokenized,
//! and how much of it is held out for evaluation. It is plain serde with defaults; `validate`
//! turns bad values into errors that name the field.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// The `[data]` table of the run spec (TOML).
///
/// ```toml
/// [data]
/// sources = ["/data/shakespeare", "file:///data/extra.jsonl"]
/// format = "auto"        # auto | text | jsonl | parquet
/// text_field = "text"    # JSONL key or Parquet column
/// tokenizer = "gpt2"     # byte | gpt2
/// eval_fraction = 0.05   # share held out for evaluation, in (0, 0.5]
/// # Prepared token shards (`btvalidator data prepare` prints these two lines): read by
/// # ranged GETs instead of loading the sources.
/// # shards = "s3://bucket/corpus?endpoint=https%3A%2F%2Fs3.example.com&key=RK&secret=RS"
/// # manifest_blake3 = "<64 hex digits>"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSpec {
    /// Files, directories (walked recursively in sorted order) or object_store URLs
    /// (`file:///abs/path`, `memory://`, `s3://bucket/prefix` where the build supports it).
    pub sources: Vec<String>,
    /// How files are parsed; `auto` decides by extension.
    pub format: Format,
    /// The JSONL key or Parquet column that holds the text.
    pub text_field: String,
    /// Which tokenizer turns text into token ids.
    pub tokenizer: TokenizerKind,
    /// Share of the corpus held out for evaluation, in (0, 0.5].
    pub eval_fraction: f64,
    /// Where the corpus's prepared token shards are (a storage location, as a neuron publishes
    /// one: a directory, `file://` URL or `s3://bucket/prefix` with its read-only key). When
    /// set, participants read samples from the shards by ranged GETs and never load `sources`;
    /// `sources` then only say what the shards were prepared from.
    pub shards: Option<String>,
    /// The BLAKE3 of the shards' `manifest.json` (64 hex digits), required with `shards`: the
    /// manifest pins every shard's hash, so the spec pins every token.
    pub manifest_blake3: Option<String>,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            format: Format::Auto,
            text_field: "text".to_owned(),
            tokenizer: TokenizerKind::Byte,
            eval_fraction: 0.05,
            shards: None,
            manifest_blake3: None,
        }
    }
}

impl DataSpec {
    /// Checks every field; the first bad one is reported.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the field, e.g.
    /// `data.eval_fraction must be in (0, 0.5], got 0.9`.
    pub fn validate(&self) -> Result<(), Error> {
        let Self {
            sources,
            format: _,
            text_field,
            tokenizer: _,
            eval_fraction,
            shards,
            manifest_blake3,
        } = self;
        match (shards, manifest_blake3) {
            (Some(location), Some(hash)) => {
                crate::storage::StoreConfig::from_location(location)
                    .map_err(|e| invalid("data.shards", format!("is not a location: {e}")))?;
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "data.manifest_blake3",
                        format!("must be 64 hex digits, got {hash:?}"),
                    ));
                }
            }
            (Some(_), None) => {
                return Err(invalid(
                    "data.manifest_blake3",
                    "must be set with data.shards (`btvalidator data prepare` prints it)"
                        .to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "data.manifest_blake3",
                    "is set but data.shards is not".to_owned(),
                ));
            }
            (None, None) => {}
        }
        if sources.is_empty() && shards.is_none() {
            return Err(invalid(
                "data.sources",
                "must name at least one file, directory or URL (or set data.shards)".to_owned(),
            ));
        }
        if let Some(i) = sources.iter().position(|s| s.trim().is_empty()) {
            return Err(invalid("data.sources", format!("entry {i} is empty")));
        }
        if text_field.trim().is_empty() {
            return Err(invalid("data.text_field", "must not be empty".to_owned()));
        }
        // Written so that NaN fails too.
        if !(*eval_fraction > 0.0 && *eval_fraction <= 0.5) {
            return Err(invalid(
                "data.eval_fraction",
                format!("must be in (0, 0.5], got {eval_fraction}"),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, message: String) -> Error {
    Error::InvalidSpec { field, message }
}

/// How source files are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// By extension: `.txt`, `.md`, `.text` are text; `.jsonl`, `.ndjson`, `.json` are JSON
    /// Lines; `.parquet`, `.pq` are Parquet. Other files inside a directory are skipped.
    #[default]
    Auto,
    /// Each file is one UTF-8 document.
    Text,
    /// One JSON object per line; the text is under `text_field`.
    Jsonl,
    /// A Parquet file; the text is the string column `text_field`, one document per row.
    Parquet,
}

impl Format {
    /// The concrete format of `path`: `self` unless `self` is `Auto`, in which case the extension
    /// decides. `None` when `Auto` and the extension is unknown.
    pub(crate) fn resolve(self, path: &str) -> Option<Format> {
        if self != Format::Auto {
            return Some(self);
        }
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "md" | "text" => Some(Format::Text),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Text => "text",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        })
    }
}

/// Which tokenizer the corpus uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// One token per UTF-8 byte (vocab 256); documents are joined with `"\n\n"`.
    #[default]
    Byte,
    /// GPT-2 BPE (tiktoken `r50k_base`, vocab 50257); documents are joined with `<|endoftext|>`.
    Gpt2,
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenizerKind::Byte => "byte",
            TokenizerKind::Gpt2 => "gpt2",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DataSpec {
        DataSpec {
            sources: vec!["texts".into()],
            ..DataSpec::default()
        }
    }

    #[test]
    fn defaults_from_empty_toml() {
        let parsed: DataSpec = toml::from_str("sources = [\"a\"]").unwrap();
        assert_eq!(
            parsed,
            DataSpec {
                sources: vec!["a".into()],
                ..DataSpec::default()
            }
        );
        assert_eq!(parsed.format, Format::Auto);
        assert_eq!(parsed.text_field, "text");
        assert_eq!(parsed.tokenizer, TokenizerKind::Byte);
        assert_eq!(parsed.eval_fraction, 0.05);
        parsed.validate().unwrap();
    }

    #[test]
    fn full_toml_round_trips() {
        let text = r#"
            sources = ["a", "file:///b"]
            format = "parquet"
            text_field = "content"
            tokenizer = "gpt2"
            eval_fraction = 0.1
        "#;
        let parsed: DataSpec = toml::from_str(text).unwrap();
        assert_eq!(parsed.format, Format::Parquet);
        assert_eq!(parsed.tokenizer, TokenizerKind::Gpt2);
        let again: DataSpec = toml::from_str(&toml::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        let err = toml::from_str::<DataSpec>("sources = [\"a\"]\nshuffle = true").unwrap_err();
        assert!(err.to_string().contains("shuffle"), "{err}");
        let err = toml::from_str::<DataSpec>("tokenizer = \"llama\"").unwrap_err();
        assert!(err.to_string().contains("llama"), "{err}");
        let err = toml::from_str::<DataSpec>("format = \"csv\"").unwrap_err();
        assert!(err.to_string().contains("csv"), "{err}");
    }

    #[test]
    fn validation_messages_name_the_field() {
        let msg = |s: DataSpec| s.validate().unwrap_err().to_string();
        assert_eq!(
            msg(DataSpec {
                eval_fraction: 0.9,
                ..spec()
            }),
            "data.eval_fraction must be in (0, 0.5], got 0.9"
        );
        assert_eq!(
            msg(DataSpec {
                eval_fraction: 0.0,
                ..spec()
            }),
            "data.eval_fraction must be in (0, 0.5], got 0"
        );
        assert!(
            msg(DataSpec {
                eval_fraction: f64::NAN,
                ..spec()
            })
            .starts_with("data.eval_fraction")
        );
        assert_eq!(
            msg(DataSpec::default()),
            "data.sources must name at least one file, directory or URL (or set data.shards)"
        );
        assert_eq!(
            msg(DataSpec {
                sources: vec!["a".into(), " ".into()],
                ..spec()
            }),
            "data.sources entry 1 is empty"
        );
        assert_eq!(
            msg(DataSpec {
                text_field: String::new(),
                ..spec()
            }),
            "data.text_field must not be empty"
        );
        DataSpec {
            eval_fraction: 0.5,
            ..spec()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn shards_need_a_location_and_the_manifest_hash() {
        let msg = |s: DataSpec| s.validate().unwrap_err().to_string();
        let hash = "ab".repeat(32);
        let sharded = DataSpec {
            sources: Vec::new(),
            shards: Some("/data/shards".into()),
            manifest_blake3: Some(hash.clone()),
            ..DataSpec::default()
        };
        sharded.validate().unwrap();
        let parsed: DataSpec = toml::from_str(&format!(
            "shards = \"s3://bkt/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000\"\nmanifest_blake3 = \"{hash}\""
        ))
        .unwrap();
        parsed.validate().unwrap();
        assert_eq!(
            msg(DataSpec {
                manifest_blake3: None,
                ..sharded.clone()
            }),
            "data.manifest_blake3 must be set with data.shards (`btvalidator data prepare` prints it)"
        );
        assert!(
            msg(DataSpec {
                manifest_blake3: Some("xyz".into()),
                ..sharded.clone()
            })
            .starts_with("data.manifest_blake3 must be 64 hex digits")
        );
        assert!(
            msg(DataSpec {
                shards: Some("s3://bkt/p?color=red".into()),
                ..sharded.clone()
            })
            .starts_with("data.shards is not a location")
        );
        assert_eq!(
            msg(DataSpec {
                shards: None,
                ..sharded
            }),
            "data.manifest_blake3 is set but data.shards is not"
        );
    }

    #[test]
    fn auto_format_goes_by_extension() {
        assert_eq!(Format::Auto.resolve("a/b.txt"), Some(Format::Text));
        assert_eq!(Format::Auto.resolve("a/b.MD"), Some(Format::Text));
        assert_eq!(Format::Auto.resolve("b.jsonl"), Some(Format::Jsonl));
        assert_eq!(Format::Auto.resolve("b.json"), Some(Format::Jsonl));
        assert_eq!(Format::Auto.resolve("s3/b.parquet"), Some(Format::Parquet));
        assert_eq!(Format::Auto.resolve("README"), None);
        assert_eq!(Format::Auto.resolve("x.csv"), None);
        assert_eq!(Format::Text.resolve("x.csv"), Some(Format::Text));
    }
}
