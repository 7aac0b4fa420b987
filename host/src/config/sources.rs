//! Where settings come from: flags beat environment variables, which beat the config file,
//! which beats the defaults.
//!
//! Every source gives a setting as the text clap parses: the flag's values, the variable's,
//! or the file's value written out. Layering is then one rule: each setting's text from its
//! strongest source becomes its argument's default, and clap parses an empty command line into
//! [`ServeArgs`], so values from any source are parsed the same way, by the same parsers.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};

use super::resolved::Resolved;
use super::{ServeArgs, file, setting};

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A flag on the command line.
    Flag,
    /// An environment variable.
    Env,
    /// The config file, at this line.
    File {
        /// 1-based.
        line: usize,
    },
    /// The setting's default.
    Default,
}

/// A setting's value as the text clap parses (each value of a repeated flag), and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Given {
    /// Where it came from.
    pub origin: Origin,
    /// The text.
    pub values: Vec<OsString>,
}

/// The settings one source gives, by key.
pub(super) type Layer = BTreeMap<String, Given>;

/// Settings layered over their defaults.
#[derive(Clone, Debug)]
pub(super) struct Merged {
    /// The settings.
    pub args: ServeArgs,
    /// What clap parsed them from: every setting with a value.
    pub matches: ArgMatches,
    /// Where each setting not at its default came from.
    pub origins: BTreeMap<String, Origin>,
}

/// Layers `layers` (strongest first) over the defaults; the process environment is not read.
pub(super) fn merge(layers: &[&Layer]) -> Merged {
    let mut origins = BTreeMap::new();
    let mut command = setting::command().clone().mut_args(|arg| arg.env(None));
    for arg in setting::all() {
        let key = arg.get_id().as_str();
        if let Some(given) = layers.iter().find_map(|layer| layer.get(key)) {
            command = command.mut_arg(key, |arg| arg.default_values(&given.values));
            origins.insert(key.to_owned(), given.origin.clone());
        }
    }
    // Every value was parsed once already, by clap (flags, environment) or by `file`, with
    // the same parser.
    let matches = command
        .try_get_matches_from(["taskhost serve"])
        .expect("values clap parsed before parse again");
    let args = ServeArgs::from_arg_matches(&matches).expect("every field has its argument");
    Merged {
        args,
        matches,
        origins,
    }
}

/// The options of `taskhost serve` as given: a config file, and the settings' flags and
/// environment variables. [`resolve`](ServeOptions::resolve) reads the file and layers them.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The config file, and whether `--config` or `TASKHOST_CONFIG` named it.
    file: Option<(PathBuf, Origin)>,
    /// Settings given by flags and environment variables.
    given: Layer,
}

/// The environment variable that names the config file.
const CONFIG_ENV: &str = "TASKHOST_CONFIG";

/// The flag that names the config file.
#[derive(clap::Args)]
struct ConfigFlag {
    /// A TOML file of settings, keyed by the flags' names in snake_case (`max_queued = 100`,
    /// `allow_http_hosts = ["localhost:8080"]`); flags and environment variables override it.
    /// None by default: the defaults run on one machine.
    #[arg(long = "config", env = CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Args for ServeOptions {
    fn augment_args(command: Command) -> Command {
        ServeArgs::augment_args(ConfigFlag::augment_args(command))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for ServeOptions {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let file = ConfigFlag::from_arg_matches(matches)?
            .config
            .map(|path| (path, origin(matches, "config")));
        let given = setting::all()
            .filter_map(|arg| {
                let key = arg.get_id().as_str();
                let origin = match origin(matches, key) {
                    Origin::Default => return None,
                    origin => origin,
                };
                let values = matches.get_raw(key)?.map(OsStr::to_owned).collect();
                Some((key.to_owned(), Given { origin, values }))
            })
            .collect();
        Ok(Self { file, given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// Where the argument `id` got its value: `Default` for no value too.
fn origin(matches: &ArgMatches, id: &str) -> Origin {
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Origin::Flag,
        Some(ValueSource::EnvVariable) => Origin::Env,
        _ => Origin::Default,
    }
}

impl ServeOptions {
    /// Reads the config file, if any, and layers flags, environment, file and defaults: the
    /// settings `serve` would run with, and what is wrong with the file.
    pub fn resolve(&self) -> Resolved {
        let Some((path, origin)) = &self.file else {
            return Resolved::new(merge(&[&self.given]), None, Ok(Vec::new()));
        };
        let named_by = match origin {
            Origin::Env => CONFIG_ENV,
            _ => "--config",
        };
        match file::read(path, named_by) {
            Ok(file) => Resolved::new(
                merge(&[&self.given, &file.layer]),
                Some(path.clone()),
                Ok(file.problems),
            )
            .with_tenants(file.tenants),
            Err(problem) => Resolved::new(merge(&[&self.given]), Some(path.clone()), Err(problem)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InstanceAllocation;

    /// A layer of `settings` (key, value) from `origin`.
    fn layer(origin: Origin, settings: &[(&str, &str)]) -> Layer {
        let mut layer = Layer::new();
        for (key, value) in settings {
            let given = layer.entry(key.to_string()).or_insert_with(|| Given {
                origin: origin.clone(),
                values: Vec::new(),
            });
            given.values.push(value.into());
        }
        layer
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file_which_beats_the_defaults() {
        let flags = layer(Origin::Flag, &[("max_queued", "1")]);
        let env = layer(Origin::Env, &[("max_queued", "2"), ("max_wait_ms", "2")]);
        let file = layer(
            Origin::File { line: 7 },
            &[
                ("max_queued", "3"),
                ("max_wait_ms", "3"),
                ("io_threads", "3"),
            ],
        );
        let merged = merge(&[&flags, &env, &file]);
        assert_eq!(merged.args.max_queued, 1);
        assert_eq!(merged.args.max_wait_ms, 2);
        assert_eq!(merged.args.io_threads, 3);
        assert_eq!(merged.args.max_upload_mib, 64, "the default");
        let origins: Vec<_> = merged.origins.iter().collect();
        assert_eq!(
            origins,
            [
                (&"io_threads".to_owned(), &Origin::File { line: 7 }),
                (&"max_queued".to_owned(), &Origin::Flag),
                (&"max_wait_ms".to_owned(), &Origin::Env),
            ]
        );
    }

    #[test]
    fn a_file_value_replaces_a_default_of_any_kind() {
        let file = layer(
            Origin::File { line: 1 },
            &[
                ("wait_for_tasks", "true"),
                ("watch_tasks", "false"),
                ("workers", "3"),
                ("instance_allocation", "on-demand"),
                ("allow_http_hosts", "a.example"),
                ("allow_http_hosts", "b.example"),
            ],
        );
        let args = merge(&[&file]).args;
        assert!(args.wait_for_tasks, "a switch");
        assert!(!args.watch_tasks);
        assert_eq!(args.workers, Some(3), "a setting without a default");
        assert_eq!(args.instance_allocation, InstanceAllocation::OnDemand);
        assert_eq!(args.allow_http_hosts, ["a.example", "b.example"]);
    }

    #[test]
    fn options_keep_the_flags_given_with_their_values() {
        // Variables are not stripped from the real command; here they are, so that this test
        // does not depend on the process environment (the end-to-end tests set variables).
        let command =
            ServeOptions::augment_args(Command::new("serve")).mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from([
                "serve",
                "--config",
                "taskhost.toml",
                "--allow-http-host",
                "a.example",
                "--allow-http-host",
                "b.example",
                "--wait-for-tasks",
                "--workers",
                "3",
            ])
            .unwrap();
        let options = ServeOptions::from_arg_matches(&matches).unwrap();
        assert_eq!(
            options.file,
            Some((PathBuf::from("taskhost.toml"), Origin::Flag))
        );
        let expected = layer(
            Origin::Flag,
            &[
                ("allow_http_hosts", "a.example"),
                ("allow_http_hosts", "b.example"),
                ("wait_for_tasks", "true"),
                ("workers", "3"),
            ],
        );
        assert_eq!(options.given, expected);
    }
}
