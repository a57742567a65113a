//! File contents to documents: a text file is one document, a JSON Lines file one per line (the
//! string under the text field), a Parquet file one per row of a string column. Empty and null
//! texts are dropped; anything malformed is an error naming the file, and the line or column.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Error, Format};

/// One file's bytes, where they came from and how to parse them.
#[derive(Debug, Clone)]
pub(crate) struct RawFile {
    /// The path or URL, for errors and logs.
    pub(crate) location: String,
    /// A concrete format (never `Auto`).
    pub(crate) format: Format,
    pub(crate) bytes: Bytes,
}

/// The non-empty documents in `file`.
pub(crate) fn parse(file: &RawFile, text_field: &str) -> Result<Vec<String>, Error> {
    match file.format {
        Format::Text | Format::Auto => parse_text(file),
        Format::Jsonl => parse_jsonl(file, text_field),
        Format::Parquet => parse_parquet(file, text_field),
    }
}

fn parse_text(file: &RawFile) -> Result<Vec<String>, Error> {
    let text = std::str::from_utf8(&file.bytes).map_err(|source| Error::NotUtf8 {
        location: file.location.clone(),
        source,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(if text.trim().is_empty() {
        Vec::new()
    } else {
        vec![text.to_owned()]
    })
}

fn parse_jsonl(file: &RawFile, field: &str) -> Result<Vec<String>, Error> {
    let text = std::str::from_utf8(&file.bytes).map_err(|source| Error::NotUtf8 {
        location: file.location.clone(),
        source,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|source| Error::BadJson {
                location: file.location.clone(),
                line: line_no,
                source,
            })?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(Error::NotAnObject {
                location: file.location.clone(),
                line: line_no,
            });
        };
        match object.remove(field) {
            None => {
                return Err(Error::MissingField {
                    location: file.location.clone(),
                    line: line_no,
                    field: field.to_owned(),
                });
            }
            Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => {
                if !s.is_empty() {
                    docs.push(s);
                }
            }
            Some(other) => {
                return Err(Error::WrongFieldType {
                    location: file.location.clone(),
                    line: line_no,
                    field: field.to_owned(),
                    found: json_kind(&other),
                });
            }
        }
    }
    Ok(docs)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn parse_parquet(file: &RawFile, column: &str) -> Result<Vec<String>, Error> {
    let parquet_err = |source| Error::Parquet {
        location: file.location.clone(),
        source,
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file.bytes.clone()).map_err(parquet_err)?;
    let schema = builder.schema().clone();
    let Some((index, arrow_field)) = schema.column_with_name(column) else {
        let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(Error::MissingColumn {
            location: file.location.clone(),
            column: column.to_owned(),
            available: available.join(", "),
        });
    };
    if !matches!(
        arrow_field.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return Err(Error::WrongColumnType {
            location: file.location.clone(),
            column: column.to_owned(),
            found: arrow_field.data_type().to_string(),
        });
    }
    // Read only the text column; top-level arrow fields are the Parquet schema's roots.
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
    let mut docs = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| Error::Parquet {
            location: file.location.clone(),
            source: parquet::errors::ParquetError::from(e),
        })?;
        let array = batch.column(0);
        let mut push = |s: Option<&str>| {
            if let Some(s) = s.filter(|s| !s.is_empty()) {
                docs.push(s.to_owned());
            }
        };
        match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().iter().for_each(&mut push),
            DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut push),
            DataType::Utf8View => array.as_string_view().iter().for_each(&mut push),
            other => {
                return Err(Error::WrongColumnType {
                    location: file.location.clone(),
                    column: column.to_owned(),
                    found: other.to_string(),
                });
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, LargeStringArray, StringArray};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;

    fn raw(format: Format, bytes: impl Into<Bytes>) -> RawFile {
        RawFile {
            location: "/data/f".into(),
            format,
            bytes: bytes.into(),
        }
    }

    /// A Parquet file with an `id` (Int64) and a `text` column of the given arrow type.
    pub(crate) fn parquet_bytes(texts: &[Option<&str>], large: bool) -> Vec<u8> {
        let text_type = if large {
            DataType::LargeUtf8
        } else {
            DataType::Utf8
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("text", text_type, true),
        ]));
        let ids = Arc::new(Int64Array::from_iter_values(0..texts.len() as i64));
        let col: Arc<dyn Array> = if large {
            Arc::new(LargeStringArray::from(texts.to_vec()))
        } else {
            Arc::new(StringArray::from(texts.to_vec()))
        };
        let batch = RecordBatch::try_new(schema.clone(), vec![ids, col]).unwrap();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    }

    #[test]
    fn text_is_one_document() {
        let docs = parse(&raw(Format::Text, "\u{feff}line one\nline two\n"), "text").unwrap();
        assert_eq!(docs, vec!["line one\nline two\n"]);
        assert!(
            parse(&raw(Format::Text, " \n\t"), "text")
                .unwrap()
                .is_empty()
        );
        let err = parse(&raw(Format::Text, vec![b'a', 0xff, b'b']), "text").unwrap_err();
        assert!(matches!(err, Error::NotUtf8 { .. }));
        assert_eq!(err.to_string(), "/data/f is not valid UTF-8 text");
    }

    #[test]
    fn jsonl_reads_the_field_and_names_bad_lines() {
        let body = "{\"text\": \"first\", \"id\": 1}\n\n{\"text\": \"second\\nline\"}\r\n{\"text\": null}\n{\"text\": \"\"}\n";
        let docs = parse(&raw(Format::Jsonl, body), "text").unwrap();
        assert_eq!(docs, vec!["first", "second\nline"]);

        let err = parse(
            &raw(
                Format::Jsonl,
                "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"text\": oops}\n",
            ),
            "text",
        )
        .unwrap_err();
        assert!(matches!(err, Error::BadJson { line: 3, .. }), "{err:?}");
        assert_eq!(err.to_string(), "/data/f: bad JSON on line 3");

        let err = parse(
            &raw(Format::Jsonl, "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n"),
            "text",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "/data/f: line 2 has no field \"text\"");

        let err = parse(&raw(Format::Jsonl, "{\"text\": 5}\n"), "text").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/data/f: field \"text\" on line 1 is a number, not a string"
        );

        let err = parse(&raw(Format::Jsonl, "[1, 2]\n"), "text").unwrap_err();
        assert_eq!(err.to_string(), "/data/f: line 1 is not a JSON object");
    }

    #[test]
    fn parquet_reads_a_string_column() {
        for large in [false, true] {
            let bytes = parquet_bytes(&[Some("alpha"), None, Some(""), Some("beta")], large);
            let docs = parse(&raw(Format::Parquet, bytes), "text").unwrap();
            assert_eq!(docs, vec!["alpha", "beta"]);
        }
    }

    #[test]
    fn parquet_errors_name_file_and_column() {
        let bytes = Bytes::from(parquet_bytes(&[Some("alpha")], false));
        let err = parse(&raw(Format::Parquet, bytes.clone()), "content").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/data/f: no column \"content\" (columns: id, text)"
        );
        let err = parse(&raw(Format::Parquet, bytes), "id").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/data/f: column \"id\" has type Int64, not a string type (Utf8, LargeUtf8 or Utf8View)"
        );
        let err = parse(&raw(Format::Parquet, "not parquet at all"), "text").unwrap_err();
        assert!(matches!(err, Error::Parquet { .. }), "{err:?}");
        assert!(err.to_string().starts_with("/data/f: "), "{err}");
    }
}
