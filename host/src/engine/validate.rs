//! What the engine agrees to compile: a cheap look at a component's structure, before any
//! code is compiled, against limits on what makes compiling slow or large.
//!
//! Cranelift's time and memory grow with the code it is given (a 6 MB component of a million
//! tiny functions took minutes and gigabytes), and nothing can interrupt it once it runs. So
//! every component is read first, with wasmparser and without validating function bodies, which
//! takes milliseconds even for a 20 MB one: its size, how many functions it defines and how
//! large each body is, its core modules and the core instances it creates once nested
//! components are counted out, its memories, tables, data segments and imports. The first
//! limit passed refuses it, naming the limit and what was found. What passes still compiles
//! within the compile limits (`compile`), which catch whatever this look cannot.
//!
//! Core modules, core instances, memories and tables are held to what one instance of the
//! engine may have (the instance pool's slot and every store's limiter): a component with more
//! could compile, but could never run a job.

use std::collections::HashMap;
use std::fmt;

use wasmparser::{ComponentInstance, Encoding, Imports, Instance, Parser, Payload};

use super::CompileError;
use super::limiter::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES};

/// The limits of validation (`validate`) that a host chooses (the rest are the engine's own).
///
/// The defaults pass every example task and a Python component built by componentize-py
/// (18 MB: 13,357 functions, the largest body 417 KiB, 11 MB of data segments, 2,285
/// imports, 14 core modules, 1 memory, 2 tables) with room to spare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentLimits {
    /// Largest component, in bytes.
    pub max_bytes: usize,
    /// Most functions defined, over all its core modules.
    pub max_functions: u64,
    /// Largest function body, in bytes.
    pub max_function_bytes: usize,
    /// Most bytes of data segments (initial memory contents), over all its core modules.
    pub max_data_bytes: usize,
    /// Most imports, of the component and of its core modules together.
    pub max_imports: u64,
}

impl Default for ComponentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_functions: 100_000,
            max_function_bytes: 1 << 20,
            max_data_bytes: 32 << 20,
            max_imports: 20_000,
        }
    }
}

/// One of the limits a component can pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Its size in bytes (`--max-upload-mib`).
    Size,
    /// Functions defined (`--max-functions`).
    Functions,
    /// The size of a function body in bytes (`--max-function-kib`).
    FunctionSize,
    /// Bytes of data segments (`--max-data-mib`).
    DataBytes,
    /// Imports (`--max-imports`).
    Imports,
    /// Core modules defined (the engine's).
    CoreModules,
    /// Core instances created by instantiating it (the engine's).
    CoreInstances,
    /// Linear memories defined (the engine's).
    Memories,
    /// Tables defined (the engine's).
    Tables,
}

impl Limit {
    /// What is counted, and the setting that bounds it.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::Size => ("bytes", "--max-upload-mib"),
            Self::Functions => ("functions", "--max-functions"),
            Self::FunctionSize => ("bytes in one function body", "--max-function-kib"),
            Self::DataBytes => ("bytes of data segments", "--max-data-mib"),
            Self::Imports => ("imports", "--max-imports"),
            Self::CoreModules => ("core modules", "what one task instance may hold"),
            Self::CoreInstances => (
                "core instances once instantiated",
                "what one task instance may hold",
            ),
            Self::Memories => ("linear memories", "what one job's store may hold"),
            Self::Tables => ("tables", "what one job's store may hold"),
        }
    }
}

/// A component over one of the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct OverLimit {
    /// Which limit.
    pub limit: Limit,
    /// What the component has (at least: counting stops at the first limit passed).
    pub found: u64,
    /// The most allowed.
    pub max: u64,
}

impl fmt::Display for OverLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, setting) = self.limit.describe();
        write!(
            f,
            "the component has {} {what}, more than the {} this host compiles ({setting})",
            self.found, self.max
        )
    }
}

impl ComponentLimits {
    /// Checks that `bytes` look like a binary component and stay within these limits and
    /// the engine's own; reads the structure only (function bodies are the compiler's to
    /// check).
    pub fn check(&self, bytes: &[u8]) -> Result<(), CompileError> {
        check_preamble(bytes)?;
        self.check_size(bytes.len() as u64)?;
        let mut count = Counter {
            limits: self,
            totals: HashMap::new(),
            frames: Vec::new(),
            largest_component: 0,
        };
        for payload in Parser::new(0).parse_all(bytes) {
            count.payload(payload.map_err(invalid)?)?;
        }
        Ok(())
    }

    /// Refuses a component of `size` bytes if it is too large: before reading a file of
    /// that size, say.
    pub fn check_size(&self, size: u64) -> Result<(), CompileError> {
        let max = self.max_bytes as u64;
        if size > max {
            return Err(CompileError::OverLimit(OverLimit {
                limit: Limit::Size,
                found: size,
                max,
            }));
        }
        Ok(())
    }
}

/// Refuses what is no binary component, with a message that says what it is instead.
fn check_preamble(bytes: &[u8]) -> Result<(), CompileError> {
    const MAGIC: &[u8] = b"\0asm";
    // The preamble: magic, then version 1 and layer 0 for a core module.
    const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";
    if bytes.is_empty() {
        return Err(CompileError::NotWasm("it is empty (0 bytes)"));
    }
    if bytes.starts_with(CORE_MODULE) {
        return Err(CompileError::CoreModule);
    }
    if bytes.starts_with(MAGIC) {
        return Ok(());
    }
    let text = bytes.trim_ascii_start();
    if text.starts_with(b"(") || text.starts_with(b";;") {
        return Err(CompileError::NotWasm(
            "it looks like the WebAssembly text format; send the binary (`wasm-tools parse` \
             converts it)",
        ));
    }
    Err(CompileError::NotWasm(
        "it does not start with the \\0asm magic bytes of a WebAssembly binary",
    ))
}

/// A component or core module being read (they nest).
enum Frame {
    Module,
    /// A component, and the core instances instantiating it creates so far.
    Component {
        core_instances: u64,
    },
}

struct Counter<'a> {
    limits: &'a ComponentLimits,
    /// The totals over the whole component, by limit.
    totals: HashMap<Limit, u64>,
    frames: Vec<Frame>,
    /// The most core instances instantiating any nested component read so far creates: what
    /// instantiating a nested component is counted as (an upper bound: which component an
    /// instantiation names is not followed).
    largest_component: u64,
}

impl Counter<'_> {
    fn payload(&mut self, payload: Payload<'_>) -> Result<(), CompileError> {
        match payload {
            Payload::Version { encoding, .. } => self.frames.push(match encoding {
                Encoding::Module => Frame::Module,
                Encoding::Component => Frame::Component { core_instances: 0 },
            }),
            Payload::End(_) => {
                if let Some(Frame::Component { core_instances }) = self.frames.pop() {
                    self.largest_component = self.largest_component.max(core_instances);
                }
            }
            Payload::ModuleSection { .. } => self.add(Limit::CoreModules, 1)?,
            Payload::CodeSectionStart { count, .. } => {
                self.add(Limit::Functions, count.into())?;
            }
            Payload::CodeSectionEntry(body) => {
                self.check(Limit::FunctionSize, body.range().len() as u64)?;
            }
            Payload::DataSection(section) => {
                for data in section {
                    self.add(Limit::DataBytes, data.map_err(invalid)?.data.len() as u64)?;
                }
            }
            Payload::ImportSection(section) => {
                for group in section {
                    let count = match group.map_err(invalid)? {
                        Imports::Single(..) => 1,
                        Imports::Compact1 { items, .. } => items.count(),
                        Imports::Compact2 { names, .. } => names.count(),
                    };
                    self.add(Limit::Imports, count.into())?;
                }
            }
            Payload::ComponentImportSection(section) => {
                self.add(Limit::Imports, section.count().into())?;
            }
            Payload::MemorySection(section) => self.add(Limit::Memories, section.count().into())?,
            Payload::TableSection(section) => self.add(Limit::Tables, section.count().into())?,
            Payload::InstanceSection(section) => {
                for instance in section {
                    if let Instance::Instantiate { .. } = instance.map_err(invalid)? {
                        self.instantiate(1)?;
                    }
                }
            }
            Payload::ComponentInstanceSection(section) => {
                for instance in section {
                    if let ComponentInstance::Instantiate { .. } = instance.map_err(invalid)? {
                        self.instantiate(self.largest_component)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Counts `core_instances` more for the component being read.
    fn instantiate(&mut self, core_instances: u64) -> Result<(), CompileError> {
        let Some(Frame::Component {
            core_instances: count,
        }) = self.frames.last_mut()
        else {
            return Ok(());
        };
        *count = count.saturating_add(core_instances);
        let found = *count;
        self.check(Limit::CoreInstances, found)
    }

    /// Adds `more` to the total of `limit`; refuses once it is over.
    fn add(&mut self, limit: Limit, more: u64) -> Result<(), CompileError> {
        let total = self.totals.entry(limit).or_default();
        *total = total.saturating_add(more);
        let found = *total;
        self.check(limit, found)
    }

    /// Refuses `found` if it is over `limit`.
    fn check(&self, limit: Limit, found: u64) -> Result<(), CompileError> {
        let max = match limit {
            Limit::Size => return self.limits.check_size(found),
            Limit::Functions => self.limits.max_functions,
            Limit::FunctionSize => self.limits.max_function_bytes as u64,
            Limit::DataBytes => self.limits.max_data_bytes as u64,
            Limit::Imports => self.limits.max_imports,
            Limit::CoreModules | Limit::CoreInstances => MAX_CORE_INSTANCES as u64,
            Limit::Memories => MAX_MEMORIES as u64,
            Limit::Tables => MAX_TABLES as u64,
        };
        if found > max {
            return Err(CompileError::OverLimit(OverLimit { limit, found, max }));
        }
        Ok(())
    }
}

fn invalid(error: wasmparser::BinaryReaderError) -> CompileError {
    CompileError::Invalid(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_tests::components::{CoreModule, nested_instances};
    use taskhost_tests::fixtures;

    /// Small limits, so that components over them stay small.
    const LIMITS: ComponentLimits = ComponentLimits {
        max_bytes: 1 << 20,
        max_functions: 10,
        max_function_bytes: 1000,
        max_data_bytes: 1000,
        max_imports: 4,
    };

    /// The limit `bytes` go over, and the message saying so.
    fn over(bytes: &[u8]) -> (OverLimit, String) {
        match LIMITS.check(bytes) {
            Err(CompileError::OverLimit(over)) => (over, over.to_string()),
            other => panic!("not over a limit: {other:?}"),
        }
    }

    #[test]
    fn every_example_task_passes_the_default_limits() {
        let dir = std::fs::read_dir(fixtures::TASKS_DIR).unwrap();
        let mut checked = 0;
        for path in dir.map(|entry| entry.unwrap().path()) {
            let bytes = std::fs::read(&path).unwrap();
            let checked_ok = ComponentLimits::default().check(&bytes);
            assert!(checked_ok.is_ok(), "{}: {checked_ok:?}", path.display());
            checked += 1;
        }
        assert!(checked >= 14, "only {checked} tasks");
    }

    #[test]
    fn what_a_component_is_within_passes() {
        let module = CoreModule {
            functions: 10,
            additions: 50,
            memories: 1,
            tables: 2,
            data_bytes: 1000,
            imports: 0,
        };
        LIMITS.check(&module.component()).unwrap();
    }

    #[test]
    fn functions_are_counted_over_every_module() {
        let five = CoreModule::functions(5, 0);
        LIMITS
            .check(&CoreModule::component_of(&[five, five], 1))
            .unwrap();
        let (over, message) = over(&CoreModule::component_of(&[five, five, five], 1));
        assert_eq!(
            (over.limit, over.found, over.max),
            (Limit::Functions, 15, 10)
        );
        assert!(message.contains("15 functions"), "{message}");
        assert!(message.contains("--max-functions"), "{message}");
    }

    #[test]
    fn a_function_body_too_large_is_refused() {
        let (over, message) = over(&CoreModule::functions(1, 200).component());
        assert_eq!(over.limit, Limit::FunctionSize);
        assert!(over.found > 1000, "{over:?}");
        assert!(message.contains("--max-function-kib"), "{message}");
    }

    #[test]
    fn data_imports_memories_and_tables_are_bounded() {
        let module = |shape: CoreModule| over(&shape.component()).0;
        let data = module(CoreModule {
            memories: 1,
            data_bytes: 1001,
            ..CoreModule::default()
        });
        assert_eq!((data.limit, data.found), (Limit::DataBytes, 1001));
        let imports = module(CoreModule {
            imports: 5,
            ..CoreModule::default()
        });
        assert_eq!((imports.limit, imports.found), (Limit::Imports, 5));
        let memories = module(CoreModule {
            memories: MAX_MEMORIES as u32 + 1,
            ..CoreModule::default()
        });
        assert_eq!(memories.limit, Limit::Memories);
        let tables = module(CoreModule {
            tables: MAX_TABLES as u32 + 1,
            ..CoreModule::default()
        });
        assert_eq!(tables.limit, Limit::Tables);
    }

    #[test]
    fn core_modules_and_instances_are_bounded_nested_components_included() {
        let many = vec![CoreModule::default(); MAX_CORE_INSTANCES + 1];
        let (modules, _) = over(&CoreModule::component_of(&many, 1));
        assert_eq!(modules.limit, Limit::CoreModules);
        let (instances, message) = over(&CoreModule::component_of(
            &[CoreModule::default()],
            MAX_CORE_INSTANCES as u32 + 1,
        ));
        assert_eq!(instances.limit, Limit::CoreInstances);
        assert!(message.contains("core instances"), "{message}");
        // Four instances of a component of four instances: 16, the most allowed.
        LIMITS.check(&nested_instances(4, 4)).unwrap();
        let (nested, _) = over(&nested_instances(5, 4));
        assert_eq!((nested.limit, nested.found), (Limit::CoreInstances, 20));
    }

    #[test]
    fn what_is_no_binary_component_is_named() {
        let message = |bytes: &[u8]| LIMITS.check(bytes).unwrap_err().to_string();
        assert!(message(b"").contains("empty"));
        assert!(message(b"  (component)").contains("text format"));
        assert!(message(b"\x7fELF\x02\x01").contains("magic"));
        assert!(message(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
        let truncated = &CoreModule::functions(3, 3).component()[..30];
        assert!(matches!(
            LIMITS.check(truncated),
            Err(CompileError::Invalid(_))
        ));
        // Refused from its size before any of it is parsed.
        let mut large = b"\0asm\x0d\0\x01\0".to_vec();
        large.resize((1 << 20) + 1, 0);
        let (size, _) = over(&large);
        assert_eq!((size.limit, size.found), (Limit::Size, (1 << 20) + 1));
    }
}
