//! A config file: TOML whose top-level keys are settings, spelled as the fields of
//! [`ServeArgs`](super::ServeArgs) (snake_case), besides the tenants' tables
//! (`[[tenants]]`, `[default_quotas]`), which have no flags. Each value is checked against its
//! setting's type and parsed as its flag would be; every problem is reported with the file and
//! line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::{Arg, Command};
use toml::{Spanned, Value};

use super::setting::{self, Kind, Scalar};
use super::sources::{Given, Layer, Origin};
use crate::tenants::TenantsConfig;

/// The keys of [`TenantsConfig`], which are tables rather than settings.
const TENANT_KEYS: [&str; 2] = ["tenants", "default_quotas"];

/// What a config file gives: the settings it sets, and a problem for each key or value that
/// is wrong (those settings are left out).
#[derive(Debug, Default)]
pub(super) struct FileSettings {
    /// The settings whose values are right.
    pub layer: Layer,
    /// The tenants it declares, and their default quotas.
    pub tenants: TenantsConfig,
    /// `FILE:LINE: what is wrong`, in the file's order.
    pub problems: Vec<String>,
}

/// Reads the config file at `path`, which `named_by` (a flag or variable) named. An error (the
/// one problem to report) when it cannot be read or is not TOML: then none of it is used.
pub(super) fn read(path: &Path, named_by: &str) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        format!(
            "cannot read the config file {} ({named_by}): {error}",
            path.display()
        )
    })?;
    parse(path, &text)
}

/// Reads `text`, the contents of the config file `path`.
pub(super) fn parse(path: &Path, text: &str) -> Result<FileSettings, String> {
    let table: BTreeMap<String, Spanned<Value>> = toml::from_str(text).map_err(|error| {
        let at = match error.span() {
            Some(span) => {
                let (line, column) = position(text, span.start);
                format!("{}:{line}:{column}", path.display())
            }
            None => path.display().to_string(),
        };
        format!(
            "{at}: {} (the config file is not valid TOML)",
            error.message().trim_end()
        )
    })?;
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(_, value)| value.span().start);
    let mut settings = FileSettings::default();
    match toml::from_str::<TenantsConfig>(text) {
        Ok(tenants) => settings.tenants = tenants,
        Err(error) => {
            let (line, _) = position(text, error.span().map_or(0, |span| span.start));
            let message = error.message().trim_end();
            settings.problems.push(format!(
                "{}:{line}: {message} (tenants are [[tenants]] tables of id, key_hashes and \
                 quotas; [default_quotas] is a table of quotas)",
                path.display()
            ));
        }
    }
    for (key, value) in entries {
        if TENANT_KEYS.contains(&key.as_str()) {
            continue;
        }
        let (line, _) = position(text, value.span().start);
        match values(&key, value.get_ref()) {
            Ok(values) => {
                let origin = Origin::File { line };
                settings.layer.insert(key, Given { origin, values });
            }
            Err(problem) => settings
                .problems
                .push(format!("{}:{line}: {problem}", path.display())),
        }
    }
    Ok(settings)
}

/// The text clap parses for setting `key` set to `value` (one per item of an array), or what
/// is wrong with it.
fn values(key: &str, value: &Value) -> Result<Vec<OsString>, String> {
    let arg = setting::find(key).ok_or_else(|| unknown(key))?;
    let kind = Kind::of(arg);
    let items = match value {
        Value::Array(items) if kind.many => items.as_slice(),
        value if !kind.many => std::slice::from_ref(value),
        value => return Err(format!("{key} must be {kind}, not {}", a(value))),
    };
    items
        .iter()
        .map(|item| {
            let choices = !arg.get_possible_values().is_empty();
            let text = text(item, kind.scalar, choices).ok_or_else(|| match kind.many {
                true => format!("{key} must be {kind}, but {item} is {}", a(item)),
                false => format!("{key} must be {kind}, not {}", a(item)),
            })?;
            // Parsed as the argument's default, which clap parses as it would the flag's value.
            Command::new("taskhost serve")
                .arg(arg.clone().env(None).default_value(&text))
                .try_get_matches_from(["taskhost serve"])
                .map_err(|error| format!("{key} = {item} is not valid: {}", why(arg, &error)))?;
            Ok(OsString::from(text))
        })
        .collect()
}

/// Why clap refused a value of `arg`: the values it takes, or its parser's error.
fn why(arg: &Arg, error: &clap::Error) -> String {
    let possible = arg.get_possible_values();
    if !possible.is_empty() {
        let names: Vec<_> = possible.iter().map(|value| value.get_name()).collect();
        return format!("use one of {}", names.join(", "));
    }
    match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => error.kind().to_string(),
    }
}

/// `value` as the text of a flag taking `scalar`, if it is of that type. A flag with a
/// choice of values (`choices`) takes `true` and `false` too, as text: its choices may
/// include them (`fuel_metering = false`, from when that setting was a boolean).
fn text(value: &Value, scalar: Scalar, choices: bool) -> Option<String> {
    match (value, scalar) {
        (Value::Boolean(value), Scalar::Boolean) => Some(value.to_string()),
        (Value::Boolean(value), Scalar::String) if choices => Some(value.to_string()),
        (Value::Integer(value), Scalar::Integer) => Some(value.to_string()),
        (Value::String(value), Scalar::String) => Some(value.clone()),
        _ => None,
    }
}

/// "a string", "an integer"...: the type of `value`, for messages.
fn a(value: &Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// The problem with a key that is not a setting, suggesting the closest one.
fn unknown(key: &str) -> String {
    // Compared in snake_case, to the key and to the flag, so `allow-http-host` finds
    // `allow_http_hosts`.
    let wanted = key.to_lowercase().replace('-', "_");
    let closest = setting::all()
        .map(|arg| {
            let id = arg.get_id().as_str();
            let flag = arg.get_long().unwrap_or(id).replace('-', "_");
            let score = strsim::jaro_winkler(&wanted, id).max(strsim::jaro_winkler(&wanted, &flag));
            (score, id)
        })
        .max_by(|(a, _), (b, _)| a.total_cmp(b));
    match closest {
        Some((score, id)) if score >= 0.8 => {
            format!("unknown setting `{key}`: did you mean `{id}`?")
        }
        _ => format!(
            "unknown setting `{key}`: settings are the flags of `taskhost serve --help`, \
             in snake_case (`max_queued = 100`)"
        ),
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileSettings, String> {
        super::parse(Path::new("taskhost.toml"), text)
    }

    fn values_of(settings: &FileSettings, key: &str) -> Vec<String> {
        let given = &settings.layer[key];
        given
            .values
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn values_of_every_type_become_the_text_of_their_flag() {
        let settings = parse(
            "max_queued = 5\n\
             watch_tasks = false\n\
             wait_for_tasks = true\n\
             tasks_dir = \"/srv/tasks\"\n\
             instance_allocation = \"on-demand\"\n\
             allow_http_hosts = [\"localhost:8080\", \"*.example.com\"]\n",
        )
        .unwrap();
        assert!(settings.problems.is_empty(), "{:?}", settings.problems);
        assert_eq!(values_of(&settings, "max_queued"), ["5"]);
        assert_eq!(values_of(&settings, "watch_tasks"), ["false"]);
        assert_eq!(values_of(&settings, "wait_for_tasks"), ["true"]);
        assert_eq!(values_of(&settings, "tasks_dir"), ["/srv/tasks"]);
        assert_eq!(values_of(&settings, "instance_allocation"), ["on-demand"]);
        assert_eq!(
            values_of(&settings, "allow_http_hosts"),
            ["localhost:8080", "*.example.com"]
        );
        assert_eq!(
            settings.layer["tasks_dir"].origin,
            Origin::File { line: 4 },
            "the line of the value"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_the_closest_setting() {
        let settings = parse("\nmax_queue = 5\ntasks-dir = \"x\"\nallow-http-host = []\n").unwrap();
        assert_eq!(
            settings.problems,
            [
                "taskhost.toml:2: unknown setting `max_queue`: did you mean `max_queued`?",
                "taskhost.toml:3: unknown setting `tasks-dir`: did you mean `tasks_dir`?",
                "taskhost.toml:4: unknown setting `allow-http-host`: did you mean \
                 `allow_http_hosts`?",
            ]
        );
        assert!(settings.layer.is_empty());
        let far = parse("colour = \"blue\"").unwrap();
        assert!(
            far.problems[0].contains("unknown setting `colour`: settings are the flags"),
            "{:?}",
            far.problems
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_the_type_expected() {
        let settings = parse(
            "max_queued = \"lots\"\n\
             watch_tasks = 1\n\
             listen = 7070\n\
             allow_http_hosts = \"localhost\"\n\
             [workers]\n\
             count = 2\n",
        )
        .unwrap();
        assert_eq!(
            settings.problems,
            [
                "taskhost.toml:1: max_queued must be an integer, not a string",
                "taskhost.toml:2: watch_tasks must be a boolean (true or false), not an integer",
                "taskhost.toml:3: listen must be a string, not an integer",
                "taskhost.toml:4: allow_http_hosts must be an array of strings, not a string",
                "taskhost.toml:5: workers must be an integer, not a table",
            ]
        );
        let item = parse("allow_http_hosts = [\"a.example\", 8080]").unwrap();
        assert_eq!(
            item.problems,
            [
                "taskhost.toml:1: allow_http_hosts must be an array of strings, but 8080 is an \
              integer"
            ]
        );
    }

    #[test]
    fn values_are_parsed_as_their_flag_would_be() {
        let settings = parse(
            "instance_allocation = \"pool\"\n\
             max_queued = -1\n\
             listen = \"localhost\"\n",
        )
        .unwrap();
        let [allocation, queued, listen] = settings.problems.as_slice() else {
            panic!("{:?}", settings.problems);
        };
        assert_eq!(
            allocation,
            "taskhost.toml:1: instance_allocation = \"pool\" is not valid: use one of pooling, \
             on-demand"
        );
        assert!(
            queued.starts_with("taskhost.toml:2: max_queued = -1 is not valid: "),
            "{queued}"
        );
        assert!(
            listen.starts_with("taskhost.toml:3: listen = \"localhost\" is not valid: "),
            "{listen}"
        );
    }

    #[test]
    fn tenants_and_default_quotas_are_tables_beside_the_settings() {
        let hash = "ab".repeat(32);
        let settings = parse(&format!(
            "max_queued = 5\n\
             [default_quotas]\n\
             max_queued_jobs = 100\n\
             [[tenants]]\n\
             id = \"acme\"\n\
             key_hashes = [\"{hash}\"]\n\
             quotas = {{ weight = 3 }}\n\
             [[tenants]]\n\
             id = \"beta\"\n"
        ))
        .unwrap();
        assert!(settings.problems.is_empty(), "{:?}", settings.problems);
        assert_eq!(values_of(&settings, "max_queued"), ["5"]);
        let tenants = &settings.tenants;
        assert_eq!(tenants.default_quotas.max_queued_jobs, Some(100));
        let ids: Vec<_> = tenants.declared.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["acme", "beta"]);
        assert_eq!(tenants.declared[0].quotas.weight, Some(3));
        assert_eq!(tenants.declared[0].key_hashes.len(), 1);

        let wrong = parse("max_queued = 5\n[[tenants]]\nid = \"Acme\"\n").unwrap();
        let [problem] = wrong.problems.as_slice() else {
            panic!("{:?}", wrong.problems);
        };
        assert!(
            problem.starts_with("taskhost.toml:3: ")
                && problem.contains("\"Acme\" is not a tenant id"),
            "{problem}"
        );
        assert_eq!(
            values_of(&wrong, "max_queued"),
            ["5"],
            "the settings still count"
        );
        let unknown = parse("[default_quotas]\nmax_queue = 1\n").unwrap();
        assert!(
            unknown.problems[0].contains("unknown field `max_queue`"),
            "{:?}",
            unknown.problems
        );
    }

    #[test]
    fn a_file_that_is_not_toml_says_where() {
        let error = parse("max_queued = 5\nworkers = = 2\n").unwrap_err();
        assert!(
            error.starts_with("taskhost.toml:2:11: "),
            "line and column: {error}"
        );
        let error = read(Path::new("/no/such/taskhost.toml"), "--config").unwrap_err();
        assert!(
            error.starts_with("cannot read the config file /no/such/taskhost.toml (--config): "),
            "{error}"
        );
    }
}
