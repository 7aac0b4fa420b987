//! Compiling components within bounds, so that no upload or file can take the host down by
//! being expensive to compile.
//!
//! Three bounds, in order:
//! - **Validation** ([`ComponentLimits::check`]): a cheap look at the component's structure
//!   refuses, in milliseconds, what would be too large or slow to compile (a million
//!   functions, say), naming the limit passed. The cache runs it before it loads or compiles
//!   anything.
//! - **Lanes** (`lanes`): at most `jobs` compiles at once (one per core by default), in two
//!   lanes by size, so a small component never waits behind a big one. Uploads and file
//!   reloads alike go through them, on their own blocking threads, never on an async worker or
//!   an engine thread.
//! - **A child process per compile** (`child`): Cranelift cannot be interrupted, so each
//!   compile runs in `taskhost compile`, a process of its own with its address space, CPU time
//!   and output size limited, killed at its deadline. A compile stopped or crashed returns all
//!   its memory and leaves the server untouched; the artifact it writes is checked (size,
//!   then wasmtime's compatibility check) before it loads.
//!
//! The child is the `taskhost` binary itself: `taskhost serve` uses its own executable. A
//! program embedding the [`Host`](crate::Host) is not that binary, so it compiles in its own
//! process unless [`CompileSettings::compiler`] names a `taskhost` binary: validation, the
//! lanes and the artifact cap still hold there, but a compile's deadline and memory limit
//! cannot (nothing stops Cranelift inside a process).

mod child;
mod lanes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Component;

use crate::engine::{CompileError, ComponentLimits, Metering, TaskEngine};
use child::ChildLimits;
use lanes::Lanes;

pub use child::{CompileArgs, run as run_child};
pub use lanes::SMALL_COMPONENT_BYTES;

/// How components are compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileSettings {
    /// The `taskhost` binary that compiles each component in a child process, or `None` to
    /// compile in this process (see the module docs).
    pub compiler: Option<PathBuf>,
    /// Most compiles at once.
    pub jobs: usize,
    /// Longest a compile may take (wall-clock and CPU time) before it is stopped.
    pub timeout: Duration,
    /// Address space a compile's process may use, in bytes.
    pub memory_bytes: u64,
    /// Largest compiled artifact kept, in bytes.
    pub max_artifact_bytes: u64,
    /// What components the engine agrees to compile.
    pub limits: ComponentLimits,
}

impl Default for CompileSettings {
    /// In this process, one compile per core; limits that every example task and an 18 MB
    /// Python component pass with room to spare (it compiles in 19 s of CPU on one core,
    /// within 512 MiB of address space, to a 40 MB artifact).
    fn default() -> Self {
        Self {
            compiler: None,
            jobs: crate::scheduler::default_workers(),
            timeout: Duration::from_secs(120),
            memory_bytes: 2 << 30,
            max_artifact_bytes: 256 << 20,
            limits: ComponentLimits::default(),
        }
    }
}

/// A component's compiled code.
pub struct Artifact {
    /// Serialized, as the disk cache keeps it.
    pub serialized: Vec<u8>,
    /// Already loaded, when it was compiled in this process; else it is to be loaded from
    /// `serialized`.
    pub loaded: Option<Component>,
}

/// Compiles components within the bounds of its settings.
pub struct Compiler {
    engine: Arc<TaskEngine>,
    settings: CompileSettings,
    /// Where compiles in a child process keep their files.
    scratch: PathBuf,
    lanes: Lanes,
}

/// Compiles running and waiting, for `/v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileStatus {
    /// Compiles running.
    pub running: usize,
    /// Compiles waiting for a slot.
    pub waiting: usize,
}

impl Compiler {
    /// A compiler for `engine`, keeping the files of child compiles in `scratch` (a
    /// directory of the host's own: the cache's).
    pub fn new(engine: Arc<TaskEngine>, settings: CompileSettings, scratch: PathBuf) -> Self {
        child::remove_stale_scratch(&scratch);
        Self {
            engine,
            lanes: Lanes::new(settings.jobs),
            settings,
            scratch,
        }
    }

    /// What components this compiler agrees to compile.
    pub fn limits(&self) -> &ComponentLimits {
        &self.settings.limits
    }

    /// Most compiles at once.
    pub fn jobs(&self) -> usize {
        self.lanes.jobs()
    }

    /// Compiles `bytes`, which passed [`ComponentLimits::check`], to code of `metering`, once
    /// a lane has a slot.
    pub fn compile(&self, bytes: &[u8], metering: Metering) -> Result<Artifact, CompileError> {
        let _slot = self.lanes.acquire(bytes.len());
        let settings = &self.settings;
        let artifact = match &settings.compiler {
            Some(binary) => {
                let limits = ChildLimits {
                    timeout: settings.timeout,
                    memory_bytes: settings.memory_bytes,
                    max_artifact_bytes: settings.max_artifact_bytes,
                };
                let code = self.engine.settings().code(metering);
                Artifact {
                    serialized: child::compile(binary, &self.scratch, code, &limits, bytes)?,
                    loaded: None,
                }
            }
            None => {
                let component = self.engine.compile_here(bytes, metering)?;
                Artifact {
                    serialized: component
                        .serialize()
                        .map_err(|error| CompileError::CompilerFailed(format!("{error:#}")))?,
                    loaded: Some(component),
                }
            }
        };
        if artifact.serialized.len() as u64 > settings.max_artifact_bytes {
            return Err(CompileError::ArtifactTooLarge(settings.max_artifact_bytes));
        }
        Ok(artifact)
    }

    /// Compiles running and waiting.
    pub fn status(&self) -> CompileStatus {
        self.lanes.status()
    }
}
