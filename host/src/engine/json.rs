//! A task's JSON output kept as the text the task wrote: checked to be one JSON document, never
//! parsed into a tree, so a record costs the size of its output, and shared, so copies of a
//! record (every `GET`, every waiter) cost nothing more.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// One JSON document, as text.
#[derive(Clone)]
pub struct RawJson(Arc<RawValue>);

/// Most arrays and objects a document may nest. A listing of records holding it adds three
/// levels (`{"jobs": [{"output": …}]}`), which makes 127: the most serde_json, and so most
/// JSON clients (this host's CLI among them), read by default. Deeper, the records holding it
/// could not be read back.
pub(crate) const MAX_DEPTH: usize = 124;

/// Why text is not an output the host keeps.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InvalidJson {
    /// It is not one JSON document.
    #[error("malformed JSON: {0}")]
    Malformed(#[from] serde_json::Error),
    /// It nests deeper than [`MAX_DEPTH`].
    #[error(
        "JSON nested more than {MAX_DEPTH} arrays and objects deep (JSON clients read no \
         deeper once it is in a record)"
    )]
    TooDeep,
}

impl RawJson {
    /// `text`, if it is one JSON document (surrounding whitespace allowed) no deeper than
    /// [`MAX_DEPTH`].
    pub(crate) fn parse(text: String) -> Result<Self, InvalidJson> {
        let raw = RawValue::from_string(text)?;
        if nests_deeper_than(raw.get(), MAX_DEPTH) {
            return Err(InvalidJson::TooDeep);
        }
        Ok(Self(raw.into()))
    }

    /// `value` as JSON text.
    pub fn from_value(value: &serde_json::Value) -> Self {
        let text = serde_json::to_string(value).expect("a JSON value always serializes");
        Self::parse(text).expect("serde_json writes valid JSON")
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.get().len()
    }

    /// Whether the text is empty (never: a JSON document has at least one character).
    pub fn is_empty(&self) -> bool {
        self.get().is_empty()
    }

    /// The document parsed into a tree: for clients and tests, never on the host's job path.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.get()).expect("RawJson holds valid JSON")
    }
}

/// Whether the arrays and objects of `json`, a valid JSON document, nest deeper than `max`.
fn nests_deeper_than(json: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth -= 1,
            _ => {}
        }
    }
    false
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Self(raw.into()))
    }
}

impl utoipa::PartialSchema for RawJson {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .into()
    }
}

impl utoipa::ToSchema for RawJson {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_json_document_is_accepted_and_it_is_written_out_as_it_came() {
        let json = RawJson::parse(r#" {"b": 1,  "a": [true]} "#.into()).unwrap();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"b": 1,  "a": [true]}"#,
            "as written, but for the whitespace around it"
        );
        assert_eq!(json.to_value(), serde_json::json!({"a": [true], "b": 1}));
        for bad in ["", "{", "1 2", "nul", "\"unterminated"] {
            assert!(RawJson::parse(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_document_nests_at_most_as_deep_as_a_listing_of_it_can_be_read() {
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        let deepest = RawJson::parse(nested(MAX_DEPTH)).unwrap();
        let listing = serde_json::json!({"jobs": [{"output": deepest.to_value()}]}).to_string();
        assert!(serde_json::from_str::<serde_json::Value>(&listing).is_ok());
        assert!(matches!(
            RawJson::parse(nested(MAX_DEPTH + 1)),
            Err(InvalidJson::TooDeep)
        ));
        // Brackets in strings, escaped quotes included, are text, not nesting.
        let text = format!(r#"[{{"a": "{}\"]]"}}]"#, "[".repeat(1000));
        assert!(RawJson::parse(text).is_ok());
        let depth = serde_json::json!({"a": [{"b": [1]}], "c": "}}}"}).to_string();
        assert!(!nests_deeper_than(&depth, 4));
        assert!(nests_deeper_than(&depth, 3));
    }

    #[test]
    fn it_reads_back_from_a_record_and_into_a_tree() {
        #[derive(Serialize, Deserialize)]
        struct Record {
            output: RawJson,
        }
        let record: Record = serde_json::from_str(r#"{"output": [1, {"x": null}]}"#).unwrap();
        assert_eq!(record.output.get(), r#"[1, {"x": null}]"#);
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({"output": [1, {"x": null}]})
        );
    }
}
