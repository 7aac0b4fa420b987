//! Compiling in a child process, `taskhost compile`, where a compile can be stopped and its
//! memory returned.
//!
//! The parent writes the component to a scratch file and runs the compiler binary on it. The
//! child first limits itself (`setrlimit`: its address space to the compile's memory, its CPU
//! time to the deadline, the size of any file it writes to the artifact cap, no core dumps),
//! then compiles with an engine of exactly the parent's code settings (passed as flags) and
//! writes the serialized artifact to a second scratch file. The parent waits for it up to the
//! deadline (on a pidfd, so a timeout kills exactly this child) and kills it past that. What
//! the child's exit means:
//!
//! | exit | means |
//! | --- | --- |
//! | 0 | the artifact is written |
//! | 1 | the component does not compile; stdout says why |
//! | 3 | the compile ran out of memory |
//! | killed by the parent, `SIGXCPU` or `SIGKILL` | past the deadline |
//! | `SIGXFSZ` | the artifact outgrew its cap |
//! | `SIGABRT` saying `memory allocation ... failed` | out of memory |
//! | 4 | it could not limit itself, and compiled nothing |
//! | anything else | the compiler crashed: the server is untouched, the upload fails |
//!
//! The parent then checks the artifact's size and loads it through the disk cache's checks.
//! An artifact runs as machine code once loaded, so it is trusted as much as a compile in the
//! server's own process would be: it comes from this host's own binary, fed the same bytes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::builder::BoolishValueParser;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{
    Pid, PidfdFlags, Resource, Rlimit, Signal, pidfd_open, set_parent_process_death_signal,
    setrlimit,
};

use crate::engine::{CodeSettings, CompileError, compiling_engine};

/// The child's exit code when the component does not compile.
const EXIT_INVALID: i32 = 1;
/// The child's exit code when compiling ran out of memory.
const EXIT_OUT_OF_MEMORY: i32 = 3;
/// The child's exit code when it could not limit itself (it then compiles nothing).
const EXIT_SETUP: u8 = 4;
/// How much of what the child printed is kept for an error message.
const MAX_MESSAGE_BYTES: u64 = 4 << 10;

/// `taskhost compile`: compiles one component in this process, for a server that runs it
/// as a child (never by hand).
#[derive(Clone, Debug, clap::Args)]
pub struct CompileArgs {
    /// The component.
    #[arg(long)]
    input: PathBuf,
    /// Where the serialized artifact goes.
    #[arg(long)]
    output: PathBuf,
    /// The engine's fuel metering.
    #[arg(long, action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    fuel_metering: bool,
    /// The engine's largest wasm stack, in bytes.
    #[arg(long)]
    max_wasm_stack: usize,
    /// Address space this process may use, in bytes.
    #[arg(long)]
    memory_bytes: u64,
    /// CPU time this process may use, in seconds.
    #[arg(long)]
    cpu_seconds: u64,
    /// Largest file this process may write, in bytes.
    #[arg(long)]
    max_output_bytes: u64,
}

/// Runs `taskhost compile`: the exit code says how it went (see the module docs).
pub fn run(args: CompileArgs) -> ExitCode {
    // A compile outlives no server: the kernel kills it when the thread that started it
    // (which waits for it) is gone.
    if let Err(error) = set_parent_process_death_signal(Some(Signal::KILL)) {
        println!("cannot tie itself to the server: {error}");
        return ExitCode::from(EXIT_SETUP);
    }
    let limits = [
        (Resource::Core, 0),
        (Resource::As, args.memory_bytes),
        (Resource::Fsize, args.max_output_bytes),
    ];
    for (resource, limit) in limits {
        if let Err(error) = limit_self(resource, limit, limit) {
            println!("cannot set {resource:?} to {limit}: {error}");
            return ExitCode::from(EXIT_SETUP);
        }
    }
    // SIGXCPU at the soft limit; SIGKILL a second later if that is caught.
    if let Err(error) = limit_self(Resource::Cpu, args.cpu_seconds, args.cpu_seconds + 1) {
        println!("cannot limit its CPU time: {error}");
        return ExitCode::from(EXIT_SETUP);
    }
    let code = CodeSettings {
        fuel_metering: args.fuel_metering,
        max_wasm_stack: args.max_wasm_stack,
    };
    let compiled = fs::read(&args.input)
        .map_err(wasmtime::Error::from)
        .and_then(|bytes| {
            let engine = compiling_engine(code).map_err(wasmtime::Error::new)?;
            engine.precompile_component(&bytes)
        })
        .and_then(|artifact| Ok(fs::write(&args.output, artifact)?));
    match compiled {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            println!("{error:#}");
            let out_of_memory = error.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|error| error.kind() == io::ErrorKind::OutOfMemory)
            });
            ExitCode::from(if out_of_memory {
                EXIT_OUT_OF_MEMORY
            } else {
                EXIT_INVALID
            } as u8)
        }
    }
}

fn limit_self(resource: Resource, current: u64, maximum: u64) -> io::Result<()> {
    setrlimit(
        resource,
        Rlimit {
            current: Some(current),
            maximum: Some(maximum),
        },
    )
    .map_err(io::Error::from)
}

/// How a compile in a child process is bounded.
#[derive(Clone, Debug)]
pub(super) struct ChildLimits {
    /// Wall-clock time; its CPU time is bounded by the same (rounded up to the second).
    pub timeout: Duration,
    /// Address space, in bytes.
    pub memory_bytes: u64,
    /// Largest artifact, in bytes.
    pub max_artifact_bytes: u64,
}

/// Names of scratch files, unique in this process.
static SCRATCH: AtomicU64 = AtomicU64::new(0);
/// How scratch files are named: then the process id, a dash, a number and an extension.
const SCRATCH_PREFIX: &str = ".compile-";

/// Compiles `bytes` by running `binary compile` within `limits`, for an engine of `code`'s
/// settings, with its files in `scratch`; returns the serialized artifact.
pub(super) fn compile(
    binary: &Path,
    scratch: &Path,
    code: CodeSettings,
    limits: &ChildLimits,
    bytes: &[u8],
) -> Result<Vec<u8>, CompileError> {
    let files = ScratchFiles::new(scratch);
    let unavailable = CompileError::CompilerUnavailable;
    fs::write(&files.input, bytes).map_err(unavailable)?;
    let log = File::create(&files.log).map_err(unavailable)?;
    let cpu_seconds = limits.timeout.as_secs() + 1;
    let mut child = Command::new(binary)
        .arg("compile")
        .arg("--input")
        .arg(&files.input)
        .arg("--output")
        .arg(&files.output)
        .arg(format!("--fuel-metering={}", code.fuel_metering))
        .arg(format!("--max-wasm-stack={}", code.max_wasm_stack))
        .arg(format!("--memory-bytes={}", limits.memory_bytes))
        .arg(format!("--cpu-seconds={cpu_seconds}"))
        .arg(format!("--max-output-bytes={}", limits.max_artifact_bytes))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(unavailable)?)
        .stderr(log)
        .spawn()
        .map_err(unavailable)?;
    let (status, timed_out) = wait(&mut child, limits.timeout).map_err(unavailable)?;
    if timed_out {
        return Err(CompileError::TimedOut(limits.timeout));
    }
    let said = || files.message();
    match (status.code(), status.signal()) {
        (Some(0), _) => {}
        (Some(EXIT_INVALID), _) => {
            return Err(CompileError::Invalid(wasmtime::Error::msg(said())));
        }
        (Some(EXIT_OUT_OF_MEMORY), _) => {
            return Err(CompileError::OutOfMemory(limits.memory_bytes));
        }
        (_, Some(signal)) if signal == Signal::XCPU.as_raw() || signal == Signal::KILL.as_raw() => {
            return Err(CompileError::TimedOut(limits.timeout));
        }
        (_, Some(signal)) if signal == Signal::XFSZ.as_raw() => {
            return Err(CompileError::ArtifactTooLarge(limits.max_artifact_bytes));
        }
        (_, Some(signal))
            if signal == Signal::ABORT.as_raw() && said().contains("memory allocation of") =>
        {
            return Err(CompileError::OutOfMemory(limits.memory_bytes));
        }
        _ => {
            return Err(CompileError::CompilerFailed(format!(
                "{status}: {}",
                said()
            )));
        }
    }
    let size = fs::metadata(&files.output).map_err(unavailable)?.len();
    if size > limits.max_artifact_bytes {
        return Err(CompileError::ArtifactTooLarge(limits.max_artifact_bytes));
    }
    fs::read(&files.output).map_err(unavailable)
}

/// Waits for `child` to exit, killing it once `timeout` has passed; returns how it exited
/// and whether it was killed for the timeout.
fn wait(child: &mut Child, timeout: Duration) -> io::Result<(ExitStatus, bool)> {
    let deadline = Instant::now() + timeout;
    // A pidfd names exactly this child, even once it has exited: killing it past the
    // deadline cannot hit another process.
    let pidfd = match pidfd_open(Pid::from_child(child), PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        // A kernel before 5.3, or a sandbox that forbids the call: look every few
        // milliseconds instead (the child has not been waited for, so its pid stays its own).
        Err(error) => {
            tracing::debug!(%error, "no pidfd for the compiler; polling it");
            return wait_polling(child, deadline);
        }
    };
    loop {
        let left = Timespec::try_from(deadline.saturating_duration_since(Instant::now()))
            .map_err(io::Error::other)?;
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&left)) {
            Ok(0) => {
                child.kill()?;
                return Ok((child.wait()?, true));
            }
            Ok(_) => return Ok((child.wait()?, false)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => {
                child.kill()?;
                child.wait()?;
                return Err(error.into());
            }
        }
    }
}

/// How often [`wait_polling`] looks at the child.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// [`wait`] where there is no pidfd: looks at the child every [`POLL_EVERY`] until it exits
/// or `deadline` passes (then kills it).
fn wait_polling(child: &mut Child, deadline: Instant) -> io::Result<(ExitStatus, bool)> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            child.kill()?;
            return Ok((child.wait()?, true));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Deletes the scratch files in `dir` left by compiles of processes that are gone (a server
/// that crashed while compiling); a live server's are left alone.
pub(super) fn remove_stale_scratch(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|entry| Some(entry.ok()?.path())) {
        let pid = path
            .file_name()
            .and_then(|name| name.to_str()?.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_file(path);
        }
    }
}

/// The files of one compile in the scratch directory, deleted when dropped.
struct ScratchFiles {
    input: PathBuf,
    output: PathBuf,
    log: PathBuf,
}

impl ScratchFiles {
    fn new(dir: &Path) -> Self {
        let stem = format!(
            "{SCRATCH_PREFIX}{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            input: dir.join(format!("{stem}.wasm")),
            output: dir.join(format!("{stem}.cwasm")),
            log: dir.join(format!("{stem}.log")),
        }
    }

    /// The start of what the child printed, trimmed.
    fn message(&self) -> String {
        let mut text = Vec::new();
        let _ = File::open(&self.log)
            .and_then(|file| file.take(MAX_MESSAGE_BYTES).read_to_end(&mut text));
        String::from_utf8_lossy(&text).trim().to_owned()
    }
}

impl Drop for ScratchFiles {
    fn drop(&mut self) {
        for path in [&self.input, &self.output, &self.log] {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_files_of_processes_gone_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = ScratchFiles::new(dir.path());
        fs::write(&live.input, b"in use").unwrap();
        // Process ids stop well below this (the kernel's limit is 2^22).
        let gone = dir.path().join(format!("{SCRATCH_PREFIX}99999999-0.wasm"));
        fs::write(&gone, b"left by a crash").unwrap();
        let other = dir.path().join("mac.key");
        fs::write(&other, b"not scratch").unwrap();
        remove_stale_scratch(dir.path());
        assert!(live.input.exists());
        assert!(!gone.exists());
        assert!(other.exists());
        drop(live);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "only mac.key");
    }

    #[test]
    fn a_child_past_its_deadline_is_killed_with_a_pidfd_or_without() {
        let timeout = Duration::from_millis(100);
        type Wait = fn(&mut Child, Duration) -> io::Result<(ExitStatus, bool)>;
        let waits: [Wait; 2] = [wait, |child, timeout| {
            wait_polling(child, Instant::now() + timeout)
        }];
        for wait in waits {
            let mut slow = Command::new("sleep").arg("60").spawn().unwrap();
            let (status, killed) = wait(&mut slow, timeout).unwrap();
            assert!(killed && !status.success(), "{status}");
            let mut quick = Command::new("true").spawn().unwrap();
            let (status, killed) = wait(&mut quick, Duration::from_secs(60)).unwrap();
            assert!(!killed && status.success(), "{status}");
        }
    }
}
