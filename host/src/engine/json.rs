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

impl RawJson {
    /// `text`, if it is one JSON document (surrounding whitespace allowed).
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(|raw| Self(raw.into()))
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
