//! The OpenAPI document's frame (info, tags) and `GET /openapi.json`, which serves the document
//! the router collected from its routes.

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::OpenApi;

/// The document's frame; the paths and schemas come from the routes (`super::routes`). Title,
/// version, description and license are the crate's.
#[derive(OpenApi)]
#[openapi(
    info(title = "taskhost"),
    tags(
        (name = "server", description = "The server's own state"),
        (name = "tasks", description = "The tasks served: WebAssembly components"),
        (name = "jobs", description = "Jobs: one run of a task on one input"),
        (name = "batches", description = "Many jobs submitted at once"),
        (name = "admin", description = "Tenants and their keys, with the admin key"),
    )
)]
pub(super) struct ApiDoc;

/// The document as JSON, serialized once when the router is built.
#[derive(Clone)]
pub(super) struct Document(Bytes);

impl Document {
    /// `document` serialized, its integers' formats and the batch body made exact, and every
    /// route but the public ones marked as taking an API key.
    pub(super) fn new(document: &utoipa::openapi::OpenApi) -> Self {
        let mut json = serde_json::to_value(document).expect("an OpenAPI document is JSON");
        unsigned_formats(&mut json);
        require_keys(&mut json);
        json["components"]["schemas"]["BatchBody"]["oneOf"] =
            super::batches::batch_body_alternatives();
        let json = serde_json::to_vec(&json).expect("an OpenAPI document serializes to JSON");
        Self(json.into())
    }
}

/// The routes that take no API key.
const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// Declares the bearer scheme, and that every operation outside [`PUBLIC_PATHS`] takes it and
/// may answer `401 unauthorized` (what `super::auth` does; utoipa has no per-router
/// security).
fn require_keys(document: &mut serde_json::Value) {
    document["components"]["securitySchemes"]["bearer"] = serde_json::json!({
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, `th_...`: a tenant's, or the admin key",
    });
    let unauthorized = serde_json::json!({
        "description": "No API key, or one nobody holds (`unauthorized`); the answer has \
                        `WWW-Authenticate: Bearer`",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    });
    let paths = document["paths"]
        .as_object_mut()
        .expect("a document has paths");
    for (path, item) in paths {
        if PUBLIC_PATHS.contains(&path.as_str()) {
            continue;
        }
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|item| item.values_mut())
        {
            operation["security"] = serde_json::json!([{"bearer": []}]);
            operation["responses"]["401"] = unauthorized.clone();
        }
    }
}

/// Every integer the API reads or writes is unsigned (utoipa gives each `minimum: 0`), but
/// utoipa declares a `u64` as `int64` (at most 2^63 - 1) and a `usize` with no format: say
/// `uint64` (and `uint32` for `u32`), from the OpenAPI format registry, with the type's
/// `maximum` where none is stated (a larger number is refused). The host runs on 64-bit
/// targets only, where a `usize` is a `u64`.
fn unsigned_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            let integer = |t: &serde_json::Value| t == "integer";
            let is_integer = match object.get("type") {
                Some(serde_json::Value::Array(types)) => types.iter().any(integer),
                Some(t) => integer(t),
                None => false,
            };
            let unsigned = object.get("minimum").and_then(|m| m.as_f64()) >= Some(0.0);
            if is_integer && unsigned {
                let (format, max) = match object.get("format").and_then(|f| f.as_str()) {
                    Some("int32") => ("uint32", u64::from(u32::MAX)),
                    _ => ("uint64", u64::MAX),
                };
                object.insert("format".into(), format.into());
                object.entry("maximum").or_insert(max.into());
            }
            object.values_mut().for_each(unsigned_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unsigned_formats),
        _ => {}
    }
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "server",
    responses((status = OK, description = "This document (OpenAPI 3.1)", body = Object, content_type = "application/json")),
)]
pub(super) async fn openapi_json(
    Extension(Document(json)): Extension<Document>,
) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `METHOD /path` of every operation in the document the router collects.
    fn documented() -> BTreeSet<String> {
        let document = serde_json::to_value(super::super::routes().into_openapi()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().unwrap().keys();
                methods.map(move |method| format!("{} {path}", method.to_uppercase()))
            })
            .collect()
    }

    #[test]
    fn the_route_table_in_the_module_doc_lists_exactly_the_documented_routes() {
        let table: BTreeSet<String> = include_str!("mod.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `"))
            .filter_map(|row| row.split_once('`'))
            .map(|(route, _)| route.to_owned())
            .collect();
        assert_eq!(table, documented());
    }
}
