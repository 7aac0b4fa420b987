//! The settings as clap describes them: each argument of [`ServeArgs`] is a setting, and its id
//! (the field's name) is the setting's key in a config file. File keys, value types and the
//! names used in messages are all read from here, so a new field of `ServeArgs` is a new
//! setting everywhere without a second list.

use std::any::TypeId;
use std::sync::LazyLock;

use clap::{Arg, ArgAction, Args, Command};

use super::ServeArgs;

/// The command whose arguments are exactly the settings (built, so every argument has its
/// value parser; no help flag).
pub(super) fn command() -> &'static Command {
    static COMMAND: LazyLock<Command> = LazyLock::new(|| {
        let mut command =
            ServeArgs::augment_args(Command::new("taskhost serve").disable_help_flag(true));
        command.build();
        command
    });
    &COMMAND
}

/// Every setting's argument, in the order of `ServeArgs`.
pub(super) fn all() -> impl Iterator<Item = &'static Arg> {
    command().get_arguments()
}

/// The argument of the setting `key`.
pub(super) fn find(key: &str) -> Option<&'static Arg> {
    all().find(|arg| arg.get_id() == key)
}

/// The argument of the setting `key`, which the caller knows exists.
fn get(key: &str) -> &'static Arg {
    find(key).unwrap_or_else(|| panic!("`{key}` is not a field of ServeArgs"))
}

/// The setting's flag, `--name`.
pub(super) fn flag(key: &str) -> String {
    let arg = get(key);
    format!("--{}", arg.get_long().unwrap_or(key))
}

/// The setting's environment variable, `TASKHOST_NAME`.
pub(super) fn env(key: &str) -> String {
    get(key)
        .get_env()
        .map_or_else(|| flag(key), |name| name.to_string_lossy().into_owned())
}

/// The kind of TOML value a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Kind {
    /// The value, or each item of the array.
    pub scalar: Scalar,
    /// An array: the flag may be repeated.
    pub many: bool,
}

/// A single TOML value's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scalar {
    /// `true` or `false`.
    Boolean,
    /// A whole number.
    Integer,
    /// Anything else clap parses from text: paths, addresses, names.
    String,
}

impl Kind {
    /// The kind of value `arg` takes, from its action and the type its value parser makes.
    pub(super) fn of(arg: &Arg) -> Self {
        let made = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<isize>(),
        ];
        let scalar = if made == TypeId::of::<bool>() {
            Scalar::Boolean
        } else if integers.iter().any(|integer| made == *integer) {
            Scalar::Integer
        } else {
            Scalar::String
        };
        Self {
            scalar,
            many: matches!(arg.get_action(), ArgAction::Append),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.many, self.scalar) {
            (false, Scalar::Boolean) => f.write_str("a boolean (true or false)"),
            (false, Scalar::Integer) => f.write_str("an integer"),
            (false, Scalar::String) => f.write_str("a string"),
            (true, Scalar::Boolean) => f.write_str("an array of booleans"),
            (true, Scalar::Integer) => f.write_str("an array of integers"),
            (true, Scalar::String) => f.write_str("an array of strings"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_fields_types() {
        let kind = |key| Kind::of(find(key).unwrap());
        let one = |scalar| Kind {
            scalar,
            many: false,
        };
        assert_eq!(kind("max_queued"), one(Scalar::Integer));
        assert_eq!(kind("max_fuel"), one(Scalar::Integer), "Option<u64>");
        assert_eq!(kind("watch_tasks"), one(Scalar::Boolean), "ArgAction::Set");
        assert_eq!(kind("wait_for_tasks"), one(Scalar::Boolean), "a switch");
        assert_eq!(kind("listen"), one(Scalar::String));
        assert_eq!(kind("instance_allocation"), one(Scalar::String));
        assert_eq!(
            kind("allow_http_hosts"),
            Kind {
                scalar: Scalar::String,
                many: true
            }
        );
    }

    #[test]
    fn settings_are_named_by_their_flag_and_variable() {
        assert_eq!(flag("allow_http_hosts"), "--allow-http-host");
        assert_eq!(env("allow_http_hosts"), "TASKHOST_ALLOW_HTTP_HOSTS");
        assert!(find("help").is_none(), "help is no setting");
    }
}
