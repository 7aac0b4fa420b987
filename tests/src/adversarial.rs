//! Hostile tasks, written as component text and assembled here: what no SDK would build, but
//! any client may upload (a second linear memory, many core instances, outputs and errors of
//! hundreds of MiB, outputs that are not JSON, tables and globals by the hundred thousand,
//! imports no host provides).
//!
//! Each is a real component implementing the `taskhost:task` world: its `run` export takes the
//! input and returns `ok("null")` unless told to misbehave.

/// What a hostile task does when it runs; the default does nothing and returns `null`.
#[derive(Clone, Debug, Default)]
pub struct Hostile {
    /// Return a JSON array of this many bytes (`[`, spaces, `]`).
    pub output_bytes: Option<u32>,
    /// Fail with a `task_error` message of this many bytes.
    pub error_bytes: Option<u32>,
    /// Grow the main memory by this many 64 KiB pages (and the second memory too, if any),
    /// trapping if a growth is refused.
    pub grow_pages: Option<u32>,
    /// Give the component a second core instance with a linear memory of its own.
    pub second_memory: bool,
    /// Core instances without memory added to the component.
    pub extra_instances: usize,
    /// Spin this many loop iterations before returning.
    pub spin: Option<u32>,
    /// Ask `wasi:random` for this many random bytes in one call.
    pub random_bytes: Option<u64>,
    /// Hold this many pollables (`wasi:clocks/monotonic-clock.subscribe-duration`), each a
    /// resource in the job's table, none dropped.
    pub pollables: Option<u32>,
    /// Return exactly these bytes as the output (JSON or not, UTF-8 or not).
    pub output_text: Option<Vec<u8>>,
    /// The main memory's initial size in 64 KiB pages, when more than the text needs.
    pub initial_pages: Option<u32>,
    /// A function table of this many elements from the start.
    pub initial_table: u32,
    /// Grow the function table by this many elements, trapping if the growth is refused.
    pub table_grow: Option<u32>,
    /// Mutable globals defined in the main module.
    pub globals: u32,
    /// Recurse this many levels deep, calling the host at every level (`wasi:random`, which
    /// calls back into the guest's `realloc`).
    pub recurse_with_host_calls: Option<u32>,
    /// Report progress (`taskhost:task/host.progress`) this many times.
    pub progress_calls: Option<u32>,
    /// Import a function `call` from this interface, which the host does not provide.
    pub unknown_import: Option<String>,
}

/// A host function `run` may call, as every part of the component that brings it there:
/// the component's import, its lowering to a core function, the core module's import and the
/// host instance's export of it. A component imports it only when a knob uses it (importing
/// the clock would make every hostile task IO-bound by default).
struct HostCall {
    import: &'static str,
    lower: &'static str,
    core_import: &'static str,
    export: &'static str,
}

/// `wasi:clocks/monotonic-clock`'s `subscribe-duration`, with the `pollable` resource it
/// returns: `$subscribe (param i64) (result i32)`.
const SUBSCRIBE: HostCall = HostCall {
    import: r#"(import "wasi:io/poll@0.2.0" (instance $poll (export "pollable" (type (sub resource)))))
  (alias export $poll "pollable" (type $pollable))
  (type $clock (instance
    (alias outer $hostile $pollable (type $outer-pollable))
    (export "pollable" (type $exported-pollable (eq $outer-pollable)))
    (type $own-pollable (own $exported-pollable))
    (export "subscribe-duration" (func (param "when" u64) (result $own-pollable)))))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock (type $clock)))"#,
    lower: r#"(core func $subscribe (canon lower (func $clock "subscribe-duration")))"#,
    core_import: r#"(import "host" "subscribe" (func $subscribe (param i64) (result i32)))"#,
    export: r#"(export "subscribe" (func $subscribe))"#,
};

/// `taskhost:task/host`'s `progress`: `$progress (param i64 i32 i64 i32 i32 i32)`.
const PROGRESS: HostCall = HostCall {
    import: r#"(import "taskhost:task/host@0.1.0" (instance $taskhost
    (export "progress" (func (param "done" u64) (param "total" (option u64))
      (param "message" (option string))))))"#,
    lower: r#"(core func $progress (canon lower (func $taskhost "progress") (memory $libc "memory")))"#,
    core_import: r#"(import "host" "progress" (func $progress (param i64 i32 i64 i32 i32 i32)))"#,
    export: r#"(export "progress" (func $progress))"#,
};

/// Where `run` builds its output or message.
const TEXT_AT: u32 = 1024;

impl Hostile {
    /// The component, in the binary format.
    pub fn component(&self) -> Vec<u8> {
        wat::parse_str(self.text()).expect("the hostile component assembles")
    }

    /// The component, as text.
    pub fn text(&self) -> String {
        let text_bytes = (self.output_text.as_ref().map(|text| text.len() as u32))
            .or(self.output_bytes)
            .or(self.error_bytes)
            .unwrap_or(4);
        // The initial memory holds the text after TEXT_AT.
        let pages =
            ((TEXT_AT + text_bytes).div_ceil(65536) + 1).max(self.initial_pages.unwrap_or(0));
        let mut body = String::new();
        if let Some(grow) = self.table_grow {
            body.push_str(&format!(
                "(if (i32.eq (table.grow $table (ref.null func) (i32.const {grow})) (i32.const -1)) (then unreachable))\n"
            ));
        }
        if let Some(depth) = self.recurse_with_host_calls {
            body.push_str(&format!("(call $descend (i32.const {depth}))\n"));
        }
        if let Some(grow) = self.grow_pages {
            body.push_str(&format!(
                "(if (i32.eq (memory.grow (i32.const {grow})) (i32.const -1)) (then unreachable))\n"
            ));
            if self.second_memory {
                body.push_str(&format!(
                    "(if (i32.eq (call $grow_second (i32.const {grow})) (i32.const -1)) (then unreachable))\n"
                ));
            }
        }
        if let Some(bytes) = self.random_bytes {
            body.push_str(&format!(
                "(call $get_random (i64.const {bytes}) (i32.const 16))\n"
            ));
        }
        if let Some(pollables) = self.pollables {
            body.push_str(&format!(
                "(local.set $n (i32.const {pollables}))
                 (loop $hold (drop (call $subscribe (i64.const 1000000000)))
                   (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                   (br_if $hold (i32.gt_s (local.get $n) (i32.const 0))))\n"
            ));
        }
        if let Some(calls) = self.progress_calls {
            body.push_str(&format!(
                "(local.set $n (i32.const {calls}))
                 (loop $report
                   (call $progress (i64.extend_i32_u (local.get $n)) (i32.const 0) (i64.const 0)
                     (i32.const 0) (i32.const 0) (i32.const 0))
                   (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                   (br_if $report (i32.gt_s (local.get $n) (i32.const 0))))\n"
            ));
        }
        if let Some(spin) = self.spin {
            body.push_str(&format!(
                "(local.set $n (i32.const {spin}))
                 (loop $spin (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                   (br_if $spin (i32.gt_s (local.get $n) (i32.const 0))))\n"
            ));
        }
        let result = match (self.output_bytes, self.error_bytes) {
            _ if self.output_text.is_some() => format!(
                "(i32.store8 (i32.const 0) (i32.const 0))
                 (i32.store (i32.const 4) (i32.const {TEXT_AT}))
                 (i32.store (i32.const 8) (i32.const {text_bytes}))"
            ),
            (_, Some(bytes)) => format!(
                "(memory.fill (i32.const {TEXT_AT}) (i32.const 120) (i32.const {bytes}))
                 (i32.store8 (i32.const 0) (i32.const 1))
                 (i32.store8 (i32.const 4) (i32.const 1))
                 (i32.store (i32.const 8) (i32.const {TEXT_AT}))
                 (i32.store (i32.const 12) (i32.const {bytes}))"
            ),
            (Some(bytes), None) => format!(
                "(memory.fill (i32.const {TEXT_AT}) (i32.const 32) (i32.const {bytes}))
                 (i32.store8 (i32.const {TEXT_AT}) (i32.const 91))
                 (i32.store8 (i32.const {}) (i32.const 93))
                 (i32.store8 (i32.const 0) (i32.const 0))
                 (i32.store (i32.const 4) (i32.const {TEXT_AT}))
                 (i32.store (i32.const 8) (i32.const {bytes}))",
                TEXT_AT + bytes - 1
            ),
            (None, None) => format!(
                "(i32.store (i32.const {TEXT_AT}) (i32.const 0x6c6c756e))
                 (i32.store8 (i32.const 0) (i32.const 0))
                 (i32.store (i32.const 4) (i32.const {TEXT_AT}))
                 (i32.store (i32.const 8) (i32.const 4))"
            ),
        };
        let second_import = if self.second_memory {
            r#"(import "second" "grow" (func $grow_second (param i32) (result i32)))"#
        } else {
            ""
        };
        let second_module = if self.second_memory {
            r#"(core module $second
                 (memory 1)
                 (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
               (core instance $second (instantiate $second))"#
        } else {
            ""
        };
        let with_second = if self.second_memory {
            r#"(with "second" (instance $second))"#
        } else {
            ""
        };
        let extra = "(core instance (instantiate $empty))\n".repeat(self.extra_instances);
        let calls: Vec<&HostCall> = [
            (self.pollables.is_some(), &SUBSCRIBE),
            (self.progress_calls.is_some(), &PROGRESS),
        ]
        .into_iter()
        .filter_map(|(used, call)| used.then_some(call))
        .collect();
        let parts = |part: fn(&HostCall) -> &'static str| {
            calls
                .iter()
                .map(|call| part(call))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (call_imports, call_lowers) = (parts(|call| call.import), parts(|call| call.lower));
        let (call_core_imports, call_exports) =
            (parts(|call| call.core_import), parts(|call| call.export));
        let data = self.output_text.as_ref().map_or(String::new(), |text| {
            let escaped: String = text.iter().map(|byte| format!("\\{byte:02x}")).collect();
            format!(r#"(data (i32.const {TEXT_AT}) "{escaped}")"#)
        });
        let globals = "(global (mut i32) (i32.const 0))\n".repeat(self.globals as usize);
        let unknown_import = self.unknown_import.as_ref().map_or(String::new(), |name| {
            format!(r#"(import "{name}" (instance (export "call" (func))))"#)
        });
        format!(
            r#"(component $hostile
  {unknown_import}
  (import "wasi:random/random@0.2.0" (instance $random
    (export "get-random-bytes" (func (param "len" u64) (result (list u8))))))
  {call_imports}
  (core module $empty)
  {extra}
  {second_module}
  (core module $libc
    (memory (export "memory") {pages})
    (global $heap (mut i32) (i32.const {heap}))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $at))
    {data})
  (core instance $libc (instantiate $libc))
  (core func $get-random (canon lower (func $random "get-random-bytes")
    (memory $libc "memory") (realloc (func $libc "realloc"))))
  {call_lowers}
  (core module $main
    {second_import}
    (import "libc" "memory" (memory 1))
    (import "host" "get-random" (func $get_random (param i64 i32)))
    {call_core_imports}
    (table $table {table} funcref)
    {globals}
    (func $descend (param $depth i32)
      (call $get_random (i64.const 1) (i32.const 16))
      (if (local.get $depth)
        (then (call $descend (i32.sub (local.get $depth) (i32.const 1))))))
    (func (export "run") (param i32 i32) (result i32)
      (local $n i32)
      {body}
      {result}
      (i32.const 0)))
  (core instance $main (instantiate $main {with_second}
    (with "libc" (instance $libc))
    (with "host" (instance (export "get-random" (func $get-random)) {call_exports}))))
  (type $task-error (variant (case "invalid-input" string) (case "failed" string)))
  (export $exported-error "task-error" (type $task-error))
  (func (export "run") (param "input" string) (result (result string (error $exported-error)))
    (canon lift (core func $main "run") (memory $libc "memory") (realloc (func $libc "realloc")))))
"#,
            heap = u64::from(pages) * 65536 - 65536 + 1024,
            table = self.initial_table,
        )
    }
}
