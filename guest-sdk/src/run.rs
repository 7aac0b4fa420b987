//! One call of a task: JSON in, the user's function, JSON out.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::WireError;
use crate::error::{Kind, TaskError};

/// Decodes `input`, calls `task` and encodes its output; the `#[task]` expansion calls this
/// from the component's `run` export.
pub fn run<I, O>(
    input: &str,
    task: impl FnOnce(I) -> Result<O, TaskError>,
) -> Result<String, WireError>
where
    I: DeserializeOwned,
    O: Serialize,
{
    report_panics_to_host();
    let input = serde_json::from_str(input)
        .map_err(|error| WireError::InvalidInput(format!("input does not match: {error}")))?;
    let output = task(input).map_err(|error| match error.kind() {
        Kind::InvalidInput => WireError::InvalidInput(error.message().to_owned()),
        Kind::Failed => WireError::Failed(error.message().to_owned()),
    })?;
    serde_json::to_string(&output)
        .map_err(|error| WireError::Failed(format!("output is not valid JSON: {error}")))
}

/// Hands a panic's message to the host before the instance traps, so the job says why.
fn report_panics_to_host() {
    #[cfg(target_family = "wasm")]
    std::panic::set_hook(Box::new(|info| {
        crate::__private::bindings::taskhost::task::host::panicked(&info.to_string());
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct In {
        n: u32,
    }

    #[derive(Serialize)]
    struct Out {
        double: u32,
    }

    fn double(input: In) -> Result<Out, TaskError> {
        match input.n.checked_mul(2) {
            Some(double) => Ok(Out { double }),
            None => Err(TaskError::invalid_input("n is too large to double")),
        }
    }

    #[test]
    fn decodes_input_and_encodes_output() {
        assert_eq!(run(r#"{"n": 21}"#, double).unwrap(), r#"{"double":42}"#);
    }

    #[test]
    fn input_of_the_wrong_shape_is_invalid_input_and_the_task_is_not_called() {
        let called = std::cell::Cell::new(false);
        let error = run(r#"{"m": 1}"#, |input: In| {
            called.set(true);
            double(input)
        })
        .unwrap_err();
        match error {
            WireError::InvalidInput(message) => {
                assert!(message.contains("missing field `n`"), "{message}")
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
        assert!(!called.get());
    }

    #[test]
    fn malformed_json_is_invalid_input() {
        assert!(matches!(run("{", double), Err(WireError::InvalidInput(_))));
    }

    #[test]
    fn task_errors_keep_their_kind_and_message() {
        match run(r#"{"n": 4294967295}"#, double) {
            Err(WireError::InvalidInput(message)) => {
                assert_eq!(message, "n is too large to double")
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
        match run(r#"{"n": 1}"#, |_: In| {
            Err::<Out, _>(TaskError::new("no luck"))
        }) {
            Err(WireError::Failed(message)) => assert_eq!(message, "no luck"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn question_mark_keeps_the_cause_chain() {
        let result = run(r#"{"n": 1}"#, |_: In| -> Result<Out, TaskError> {
            let number: u32 = "x".parse()?;
            Ok(Out { double: number })
        });
        match result {
            Err(WireError::Failed(message)) => assert_eq!(message, "invalid digit found in string"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn output_that_cannot_be_json_is_a_task_failure() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "tuple keys are not JSON object keys");
        match run(r#"{"n": 1}"#, |_: In| Ok(map)) {
            Err(WireError::Failed(message)) => {
                assert!(message.starts_with("output is not valid JSON"), "{message}")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
