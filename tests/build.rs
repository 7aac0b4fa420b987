//! Builds the example tasks (the guest fixtures) with `tasks/build.sh` into `OUT_DIR/tasks`
//! and generates a path constant for each, so tests never depend on a hand-run build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_owned();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let tasks_out = out.join("tasks");
    for watched in ["tasks", "guest-sdk", "wit"] {
        println!("cargo::rerun-if-changed={}", root.join(watched).display());
    }

    // build.sh clears the variables this build set (RUSTFLAGS and friends) before it builds.
    let status = Command::new(root.join("tasks/build.sh"))
        .env("TASKHOST_TASKS_OUT", &tasks_out)
        .status()
        .expect("running tasks/build.sh");
    assert!(
        status.success(),
        "tasks/build.sh failed: see its output above"
    );

    let mut constants = format!(
        "/// Directory holding every example task as NAME.wasm.\npub const TASKS_DIR: &str = {:?};\n",
        tasks_out.display().to_string()
    );
    for name in task_names(&root.join("tasks")) {
        let path = tasks_out.join(format!("{name}.wasm"));
        assert!(path.is_file(), "{} was not built", path.display());
        writeln!(
            constants,
            "/// The `{name}` example task.\npub const {}: &str = {:?};",
            name.to_uppercase().replace('-', "_"),
            path.display().to_string()
        )
        .unwrap();
    }
    std::fs::write(out.join("fixtures.rs"), constants).unwrap();
}

/// The example tasks: every directory under `tasks/` with a Cargo.toml.
fn task_names(tasks: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tasks)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
