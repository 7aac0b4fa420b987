//! `taskhost new`: a task crate that builds as it is, holding a small example task.
//!
//! In the checkout's `tasks/` the crate joins the tasks workspace (which lists `*`), so
//! `tasks/build.sh` builds it; anywhere else it is a workspace of its own with a path to the
//! checkout's SDK.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use taskhost::host::is_valid_task_name;

use super::NewArgs;
use super::checkout::Checkout;

/// `src/lib.rs`: the example of the README's "Write your first task".
const LIB_RS: &str = r#"//! `{name}`: greets someone by name. A starting point: change `In`, `Out` and `run` to what
//! the task should do.

use serde::{Deserialize, Serialize};
use taskhost_sdk::TaskError;

/// The job's input; input of another shape fails the job with `invalid_input`.
#[derive(Deserialize)]
struct In {
    name: String,
}

/// The job's output.
#[derive(Serialize)]
struct Out {
    greeting: String,
}

#[taskhost_sdk::task]
fn run(input: In) -> Result<Out, TaskError> {
    if input.name.is_empty() {
        return Err(TaskError::invalid_input("name must not be empty"));
    }
    taskhost_sdk::info!("greeting {}", input.name);
    Ok(Out {
        greeting: format!("Hello, {}!", input.name),
    })
}
"#;

/// `Cargo.toml` of a member of the tasks workspace, like the example tasks'.
const WORKSPACE_MANIFEST: &str = r#"[package]
name = "{name}"
version.workspace = true
edition.workspace = true
publish.workspace = true

[lib]
crate-type = ["cdylib"]

[dependencies]
serde.workspace = true
taskhost-sdk.workspace = true
"#;

/// `Cargo.toml` of a crate outside the tasks workspace.
const STANDALONE_MANIFEST: &str = r#"# Build with `cargo build --release --target wasm32-wasip2`: the component is
# target/wasm32-wasip2/release/{lib}.wasm.
[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
serde = { version = "1", features = ["derive"] }
taskhost-sdk = { path = "{sdk}" }

# A workspace of its own, not a member of one around it.
[workspace]

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
# Keep function names: a trap's backtrace then names the task's own functions.
strip = "debuginfo"
"#;

/// Words Rust reserves, which cannot name a crate.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Creates the task crate.
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    check_name(name)?;
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let (dir, checkout) = match &args.dir {
        Some(dir) => {
            let dir = here.join(dir);
            let checkout = dir.parent().and_then(Checkout::around);
            (dir, checkout.or_else(|| Checkout::around(&here)))
        }
        None => {
            let checkout = Checkout::find()?;
            (checkout.tasks_dir().join(name), Some(checkout))
        }
    };
    let Some(checkout) = checkout else {
        bail!(
            "cannot find the taskhost SDK (guest-sdk/): create the task inside a taskhost \
             checkout, or with --dir in one"
        );
    };
    ensure!(
        !dir.exists(),
        "{} already exists: pick another name or --dir",
        dir.display()
    );
    let tasks_dir = checkout.tasks_dir().canonicalize()?;
    let parent = dir.parent().context("--dir needs a parent directory")?;
    let in_workspace = parent
        .canonicalize()
        .is_ok_and(|parent| parent == tasks_dir);
    if in_workspace {
        check_workspace_fit(&tasks_dir, &dir, name)?;
    }

    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = if in_workspace {
        WORKSPACE_MANIFEST.replace("{name}", name)
    } else {
        let sdk = sdk_path(&dir.canonicalize()?, &checkout)?;
        STANDALONE_MANIFEST
            .replace("{name}", name)
            .replace("{lib}", &name.replace('-', "_"))
            .replace("{sdk}", &sdk.display().to_string())
    };
    write(&dir.join("Cargo.toml"), &manifest)?;
    write(&dir.join("src/lib.rs"), &LIB_RS.replace("{name}", name))?;

    let shown = dir.strip_prefix(&here).unwrap_or(&dir).display();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "created task {name} in {shown}")?;
    if in_workspace {
        writeln!(stdout, "  build it:  taskhost build {name}")?;
    } else {
        writeln!(
            stdout,
            "  build it:  cd {shown} && cargo build --release --target wasm32-wasip2"
        )?;
        writeln!(
            stdout,
            "  upload it: taskhost task push {name} {shown}/target/wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        )?;
    }
    writeln!(
        stdout,
        "  run it:    taskhost job submit {name} '{{\"name\": \"Ada\"}}' --wait"
    )?;
    Ok(())
}

/// Refuses a name that cannot name both a task and a crate.
fn check_name(name: &str) -> anyhow::Result<()> {
    ensure!(
        is_valid_task_name(name) && name.starts_with(|c: char| c.is_ascii_alphabetic()),
        "{name:?} cannot name a task: use a letter, then letters, digits, `_` or `-` (64 at most)"
    );
    ensure!(
        !KEYWORDS.contains(&name),
        "{name:?} is a Rust keyword, which cannot name a crate: pick another name"
    );
    Ok(())
}

/// Refuses a crate the tasks workspace cannot build as task `name`: tasks/build.sh names a
/// task after its directory and finds it by its library name (`-` as `_`).
fn check_workspace_fit(tasks_dir: &Path, dir: &Path, name: &str) -> anyhow::Result<()> {
    ensure!(
        dir.file_name().is_some_and(|file| file == name),
        "a task in {} is named after its directory: use --dir {}",
        tasks_dir.display(),
        tasks_dir.join(name).display()
    );
    let library = name.replace('-', "_");
    for entry in std::fs::read_dir(tasks_dir)? {
        let other = entry?.file_name().to_string_lossy().into_owned();
        ensure!(
            other.replace('-', "_") != library,
            "task {other} already builds a library named {library}: pick another name"
        );
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The path to the SDK from crate directory `dir` (canonical): relative inside the checkout,
/// so the checkout can move; absolute outside it.
fn sdk_path(dir: &Path, checkout: &Checkout) -> anyhow::Result<PathBuf> {
    let sdk = checkout.sdk_dir().canonicalize()?;
    let root = checkout.root().canonicalize()?;
    Ok(if dir.starts_with(&root) {
        relative(dir, &sdk)
    } else {
        sdk
    })
}

/// The path from directory `from` to `to`, both absolute and canonical.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = PathBuf::new();
    for _ in from.components().skip(common) {
        path.push("..");
    }
    path.extend(to.components().skip(common));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_a_crate() {
        assert!(check_name("greet").is_ok());
        assert!(check_name("word-count_2").is_ok());
        for bad in ["", "2fast", "-x", "a.b", "a b", "fn", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        let path = relative(Path::new("/w/tasks/greet"), Path::new("/w/guest-sdk"));
        assert_eq!(path, Path::new("../../guest-sdk"));
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/sdk")),
            Path::new("sdk")
        );
    }
}
