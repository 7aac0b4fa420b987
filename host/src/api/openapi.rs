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
    )
)]
pub(super) struct ApiDoc;

/// The document as JSON, serialized once when the router is built.
#[derive(Clone)]
pub(super) struct Document(Bytes);

impl Document {
    /// `document` serialized.
    pub(super) fn new(document: &utoipa::openapi::OpenApi) -> Self {
        let json = serde_json::to_vec(document).expect("an OpenAPI document serializes to JSON");
        Self(json.into())
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
