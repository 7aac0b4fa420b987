//! Settings resolved from their sources: checked as `serve` checks them, and written out as a
//! config file that says where each value came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgMatches};
use toml::Value;

use super::check::create_data_dir;
use super::setting::{self, Kind, Scalar};
use super::sources::{Merged, Origin};
use super::{Config, ConfigError, ServeArgs};
use crate::tenants::TenantsConfig;

/// The settings `serve` would run with, resolved from flags, environment, config file and
/// defaults, but not yet checked.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The settings.
    pub args: ServeArgs,
    /// What clap parsed the settings from.
    matches: ArgMatches,
    /// Where each setting not at its default came from.
    origins: BTreeMap<String, Origin>,
    /// The config file.
    file: Option<PathBuf>,
    /// What is wrong in the config file; an error when it could not be used at all.
    file_problems: Result<Vec<String>, String>,
    /// The tenants the config file declares.
    tenants: TenantsConfig,
}

impl Resolved {
    pub(super) fn new(
        merged: Merged,
        file: Option<PathBuf>,
        file_problems: Result<Vec<String>, String>,
    ) -> Self {
        Self {
            args: merged.args,
            matches: merged.matches,
            origins: merged.origins,
            file,
            file_problems,
            tenants: TenantsConfig::default(),
        }
    }

    /// These settings, with the tenants of the config file.
    pub(super) fn with_tenants(self, tenants: TenantsConfig) -> Self {
        Self { tenants, ..self }
    }

    /// Where the setting `key` (a field of [`ServeArgs`]) got its value.
    pub fn origin(&self, key: &str) -> &Origin {
        self.origins.get(key).unwrap_or(&Origin::Default)
    }

    /// The configuration, or every problem with the file and the values together, each
    /// naming the setting where it was set. Changes nothing: a data directory that does not
    /// exist yet is only checked to be creatable. A config file that cannot be read or parsed
    /// is the one problem reported, since what it would set is unknown.
    pub fn check(&self) -> Result<Config, ConfigError> {
        let mut problems = match &self.file_problems {
            Ok(problems) => problems.clone(),
            Err(problem) => {
                return Err(ConfigError {
                    problems: vec![problem.clone()],
                });
            }
        };
        problems.extend(self.tenants.problems());
        match self.args.clone().check(&|key| self.name(key)) {
            Ok(config) if problems.is_empty() => Ok(Config {
                tenants: self.tenants.clone(),
                ..config
            }),
            Ok(_) => Err(ConfigError { problems }),
            Err(more) => {
                problems.extend(more);
                Err(ConfigError { problems })
            }
        }
    }

    /// [`check`](Resolved::check)s, then creates the data directory: the configuration
    /// `serve` starts with.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let config = self.check()?;
        create_data_dir(&config, &self.name("data_dir"))?;
        Ok(config)
    }

    /// The settings as a config file: every setting with its value and, in a comment, where
    /// the value came from; settings without a value are commented out.
    pub fn to_toml(&self) -> String {
        let lines: Vec<_> = setting::all().map(|arg| self.line(arg)).collect();
        let width = lines.iter().map(|(setting, _)| setting.len()).max();
        let mut toml = String::from("# The settings of `taskhost serve`, each with its source.\n");
        for (setting, source) in lines {
            let width = width.unwrap_or_default();
            toml.push_str(&format!("{setting:<width$}  # {source}\n"));
        }
        if self.tenants != TenantsConfig::default() {
            let tenants = toml::to_string(&self.tenants).expect("tenants serialize");
            toml.push_str(&format!("\n# Tenants, from the config file.\n{tenants}"));
        }
        toml
    }

    /// The line of `arg`'s setting in [`to_toml`](Resolved::to_toml), and its comment.
    fn line(&self, arg: &Arg) -> (String, String) {
        let key = arg.get_id().as_str();
        let Some(raw) = self.matches.get_raw(key) else {
            let default = help_default(arg).unwrap_or_else(|| "none".into());
            return (format!("# {key} (not set)"), format!("default: {default}"));
        };
        let kind = Kind::of(arg);
        let mut items = match kind.scalar {
            Scalar::Boolean => {
                let values = self.matches.get_many::<bool>(key).into_iter().flatten();
                values.map(|value| Value::Boolean(*value)).collect()
            }
            Scalar::Integer => raw
                .map(|text| {
                    let text = text.to_string_lossy();
                    text.parse()
                        .map_or(Value::String(text.into()), Value::Integer)
                })
                .collect(),
            Scalar::String => raw
                .map(|text| Value::String(text.to_string_lossy().into()))
                .collect::<Vec<_>>(),
        };
        let value = match kind.many {
            true => Value::Array(items),
            false => items.swap_remove(0),
        };
        let source = match self.origin(key) {
            Origin::Flag => format!("flag {}", setting::flag(key)),
            Origin::Env => format!("env {}", setting::env(key)),
            Origin::File { line } => format!("file {}:{line}", self.file_name()),
            Origin::Default => "default".into(),
        };
        (format!("{key} = {value}"), source)
    }

    /// The setting `key` as it was given: `--flag`, `TASKHOST_VAR` or `key (FILE:LINE)`; a
    /// setting at its default by its flag.
    fn name(&self, key: &str) -> String {
        match self.origin(key) {
            Origin::Env => setting::env(key),
            Origin::File { line } => format!("{key} ({}:{line})", self.file_name()),
            Origin::Flag | Origin::Default => setting::flag(key),
        }
    }

    fn file_name(&self) -> String {
        self.file
            .as_ref()
            .map_or_else(String::new, |file| file.display().to_string())
    }
}

/// The default a setting's help describes in words (`[default: one per core]`), for settings
/// whose default is no value.
fn help_default(arg: &Arg) -> Option<String> {
    let help = arg.get_help()?.to_string();
    let start = help.find("[default: ")? + "[default: ".len();
    let end = start + help[start..].find(']')?;
    Some(help[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::file;
    use crate::config::sources::{Given, Layer, merge};

    /// The settings of config file `text` (named `taskhost.toml`) under `over`.
    fn resolve(text: &str, over: &Layer) -> Resolved {
        let file = file::parse(Path::new("taskhost.toml"), text).unwrap();
        Resolved::new(
            merge(&[over, &file.layer]),
            Some("taskhost.toml".into()),
            Ok(file.problems),
        )
    }

    /// A value for `arg`'s setting, as TOML, and whether it differs from the default (the
    /// type of a string setting is not known here, so one with a default keeps it).
    fn sample(arg: &Arg) -> (String, bool) {
        let kind = Kind::of(arg);
        let default = arg.get_default_values().first();
        let default = default.map(|value| value.to_string_lossy().into_owned());
        let (scalar, differs) = match kind.scalar {
            Scalar::Boolean => ((default.as_deref() != Some("true")).to_string(), true),
            Scalar::Integer => {
                let default = default.map(|value| value.parse::<i64>().unwrap());
                (default.map_or(7, |value| value + 1).to_string(), true)
            }
            Scalar::String => {
                let possible = arg.get_possible_values();
                let other = possible
                    .iter()
                    .map(|value| value.get_name().to_owned())
                    .find(|name| Some(name) != default.as_ref());
                let differs = other.is_some() || default.is_none();
                let text = other.or(default).unwrap_or_else(|| "sample".into());
                (Value::String(text).to_string(), differs)
            }
        };
        match kind.many {
            true => (format!("[{scalar}]"), differs),
            false => (scalar, differs),
        }
    }

    #[test]
    fn every_setting_can_be_set_from_the_file() {
        let defaults = format!("{:?}", merge(&[]).args);
        let mut everything = String::new();
        for (line, arg) in setting::all().enumerate() {
            let key = arg.get_id().as_str();
            let (value, differs) = sample(arg);
            let setting = format!("{key} = {value}\n");
            let resolved = resolve(&setting, &Layer::new());
            assert_eq!(resolved.file_problems, Ok(Vec::new()), "{setting}");
            assert_eq!(resolved.origin(key), &Origin::File { line: 1 }, "{setting}");
            if differs {
                assert_ne!(format!("{:?}", resolved.args), defaults, "{setting}");
            }
            everything.push_str(&setting);
            let all = resolve(&everything, &Layer::new());
            assert_eq!(all.origin(key), &Origin::File { line: line + 1 });
        }
    }

    #[test]
    fn the_settings_written_out_are_a_file_that_sets_them_all() {
        let resolved = resolve(
            "workers = 3\nallow_http_hosts = [\"a.example\"]\ninstance_allocation = \"on-demand\"\n",
            &Layer::new(),
        );
        let written = resolved.to_toml();
        assert!(written.contains("workers = 3  "), "{written}");
        assert!(written.contains("# file taskhost.toml:1\n"), "{written}");
        assert!(written.contains("max_queued = 10000  "), "{written}");
        assert!(
            written.contains("# max_fuel (not set)  ") && written.contains("# default: no limit"),
            "{written}"
        );
        let again = resolve(&written, &Layer::new());
        assert_eq!(again.file_problems, Ok(Vec::new()));
        assert_eq!(format!("{:?}", again.args), format!("{:?}", resolved.args));
        for arg in setting::all() {
            let key = arg.get_id().as_str();
            let set = resolved.matches.get_raw(key).is_some();
            assert_eq!(
                matches!(again.origin(key), Origin::File { .. }),
                set,
                "{key}"
            );
        }
    }

    #[test]
    fn every_problem_is_listed_at_once_named_where_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let given = |origin, value: &str| Given {
            origin,
            values: vec![value.into()],
        };
        let over = Layer::from([
            ("max_wasm_stack_kib".into(), given(Origin::Flag, "1")),
            ("max_upload_mib".into(), given(Origin::Env, "0")),
        ]);
        let text = format!(
            "tasks_dir = {:?}\nmax_queue = 5\nworkers = \"four\"\nmax_queued = 0\n",
            dir.path()
        );
        let problems = resolve(&text, &over).check().unwrap_err().problems;
        assert_eq!(
            problems,
            [
                "taskhost.toml:2: unknown setting `max_queue`: did you mean `max_queued`?",
                "taskhost.toml:3: workers must be an integer, not a string",
                "--max-wasm-stack-kib is 1: use 64 to 65536",
                "TASKHOST_MAX_UPLOAD_MIB is 0: use 1 to 1024",
                "max_queued (taskhost.toml:4) is 0: no job could be accepted; use at least 1",
            ]
        );
    }

    #[test]
    fn a_file_that_cannot_be_used_is_the_only_problem() {
        let resolved = Resolved::new(
            merge(&[]),
            Some("taskhost.toml".into()),
            Err("cannot read the config file taskhost.toml".into()),
        );
        let problems = resolved.check().unwrap_err().problems;
        assert_eq!(problems, ["cannot read the config file taskhost.toml"]);
    }

    #[test]
    fn checking_creates_nothing_and_validating_creates_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("state");
        let text = format!("tasks_dir = {:?}\ndata_dir = {data_dir:?}\n", dir.path());
        let resolved = resolve(&text, &Layer::new());
        let config = resolved.check().unwrap();
        assert_eq!(config.data_dir, data_dir);
        assert!(!data_dir.exists(), "check created the data dir");
        resolved.validate().unwrap();
        assert!(data_dir.is_dir());

        let in_the_way = dir.path().join("file");
        std::fs::write(&in_the_way, "").unwrap();
        let text = format!(
            "tasks_dir = {:?}\ndata_dir = {:?}\n",
            dir.path(),
            in_the_way.join("state")
        );
        let problems = resolve(&text, &Layer::new()).check().unwrap_err().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("data_dir (taskhost.toml:2) is "),
            "{problems:?}"
        );
    }
}
