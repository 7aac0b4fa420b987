//! The taskhost checkout a command runs in: where its tasks and SDK are, and building its
//! tasks with `tasks/build.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow, ensure};

/// The script that builds tasks, relative to a checkout's root.
const BUILD_SCRIPT: &str = "tasks/build.sh";

/// A taskhost checkout: a directory with `tasks/build.sh`.
pub struct Checkout {
    root: PathBuf,
}

impl Checkout {
    /// The checkout holding the current directory.
    pub fn find() -> anyhow::Result<Self> {
        let here = std::env::current_dir().context("cannot read the current directory")?;
        Self::around(&here).ok_or_else(|| {
            anyhow!(
                "no {BUILD_SCRIPT} in {} or any directory above it: run this inside a taskhost \
                 checkout",
                here.display()
            )
        })
    }

    /// The checkout holding `dir` (an absolute path), if any.
    pub fn around(dir: &Path) -> Option<Self> {
        dir.ancestors()
            .find(|dir| dir.join(BUILD_SCRIPT).is_file())
            .map(|root| Self {
                root: root.to_owned(),
            })
    }

    /// The checkout's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tasks workspace: every directory in it is a task crate.
    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }

    /// The SDK crate tasks are written with.
    pub fn sdk_dir(&self) -> PathBuf {
        self.root.join("guest-sdk")
    }
}

/// Builds the named tasks (all when none are named) to `target/tasks/NAME.wasm` in the
/// checkout holding the current directory.
pub fn build(names: &[String]) -> anyhow::Result<()> {
    let script = Checkout::find()?.root().join(BUILD_SCRIPT);
    let status = Command::new(&script)
        .args(names)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    ensure!(
        status.success(),
        "{} failed ({status}); its output above says why",
        script.display()
    );
    Ok(())
}
