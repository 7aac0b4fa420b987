//! `fetch`: sends an HTTP request and returns the response. IO-bound (it imports
//! `wasi:http`); the host lets it reach only the hosts its operator allows.

use serde::{Deserialize, Serialize};
use taskhost_sdk::TaskError;
use taskhost_sdk::http::Request;

#[derive(Deserialize)]
struct In {
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
}

fn get() -> String {
    "GET".into()
}

#[derive(Serialize)]
struct Out {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

#[taskhost_sdk::task]
fn run(input: In) -> Result<Out, TaskError> {
    let mut request = Request::new(&input.method, &input.url).body(input.body);
    for (name, value) in &input.headers {
        request = request.header(name, value);
    }
    taskhost_sdk::info!("{} {}", input.method, input.url);
    let response = request.send()?;
    Ok(Out {
        status: response.status,
        body: String::from_utf8_lossy(&response.body).into_owned(),
        headers: response.headers,
    })
}
