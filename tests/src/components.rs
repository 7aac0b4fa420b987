//! Components made here rather than built from a task crate: adversarial shapes (a million
//! functions, too many memories, ...) for the tests of what the host agrees to compile.
//!
//! They wrap core modules into components as directly as the format allows; they are valid
//! WebAssembly, but not tasks (they export no `run`).

use wasm_encoder::{
    CodeSection, Component, ComponentInstanceSection, ConstExpr, DataSection, EntityType, Function,
    FunctionSection, ImportSection, InstanceSection, Instruction, MemorySection, MemoryType,
    Module, ModuleSection, NestedComponentSection, RefType, TableSection, TableType, TypeSection,
    ValType,
};

/// The shape of a core module.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoreModule {
    /// Functions defined, each `() -> ()`.
    pub functions: u32,
    /// Additions in each function's body: the work it gives the compiler.
    pub additions: u32,
    /// Linear memories defined (one page each).
    pub memories: u32,
    /// Tables defined (one element each).
    pub tables: u32,
    /// Bytes of one data segment (into the first memory, which it then needs).
    pub data_bytes: usize,
    /// Functions imported (from module `env`); a module with imports is not instantiated.
    pub imports: u32,
}

impl CoreModule {
    /// `functions` functions of `additions` additions each, and nothing else.
    pub fn functions(functions: u32, additions: u32) -> Self {
        Self {
            functions,
            additions,
            ..Self::default()
        }
    }

    /// The module's bytes.
    pub fn encode(&self) -> Module {
        let mut module = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], []);
        module.section(&types);
        if self.imports > 0 {
            let mut imports = ImportSection::new();
            for index in 0..self.imports {
                imports.import("env", &format!("f{index}"), EntityType::Function(0));
            }
            module.section(&imports);
        }
        let mut functions = FunctionSection::new();
        (0..self.functions).for_each(|_| {
            functions.function(0);
        });
        module.section(&functions);
        let mut tables = TableSection::new();
        (0..self.tables).for_each(|_| {
            tables.table(TableType {
                element_type: RefType::FUNCREF,
                table64: false,
                minimum: 1,
                maximum: None,
                shared: false,
            });
        });
        module.section(&tables);
        let mut memories = MemorySection::new();
        (0..self.memories).for_each(|_| {
            memories.memory(MemoryType {
                minimum: 1,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        });
        module.section(&memories);
        let mut code = CodeSection::new();
        let body = self.body();
        (0..self.functions).for_each(|_| {
            code.function(&body);
        });
        module.section(&code);
        if self.data_bytes > 0 {
            let mut data = DataSection::new();
            data.active(0, &ConstExpr::i32_const(0), vec![7; self.data_bytes]);
            module.section(&data);
        }
        module
    }

    /// A function body: a local, `additions` times incremented.
    fn body(&self) -> Function {
        let mut body = Function::new([(1, ValType::I32)]);
        for step in 0..self.additions {
            body.instruction(&Instruction::LocalGet(0))
                .instruction(&Instruction::I32Const(step as i32))
                .instruction(&Instruction::I32Add)
                .instruction(&Instruction::LocalSet(0));
        }
        body.instruction(&Instruction::End);
        body
    }

    /// A component holding this module once, instantiated once (unless it has imports).
    pub fn component(&self) -> Vec<u8> {
        Self::component_of(&[*self], 1)
    }

    /// A component holding `modules`, each instantiated `instances` times (those without
    /// imports).
    pub fn component_of(modules: &[CoreModule], instances: u32) -> Vec<u8> {
        Self::build(modules, instances).finish()
    }

    fn build(modules: &[CoreModule], instances: u32) -> Component {
        let mut component = Component::new();
        for module in modules {
            component.section(&ModuleSection(&module.encode()));
        }
        let mut instantiations = InstanceSection::new();
        for (index, module) in modules.iter().enumerate() {
            if module.imports == 0 {
                for _ in 0..instances {
                    instantiations.instantiate(index as u32, Vec::<(&str, _)>::new());
                }
            }
        }
        component.section(&instantiations);
        component
    }
}

/// A component that instantiates, `outer` times, a nested component that instantiates an
/// empty module `inner` times: `outer * inner` core instances from a few bytes.
pub fn nested_instances(outer: u32, inner: u32) -> Vec<u8> {
    let nested = CoreModule::build(&[CoreModule::default()], inner);
    let mut component = Component::new();
    component.section(&NestedComponentSection(&nested));
    let mut instances = ComponentInstanceSection::new();
    for _ in 0..outer {
        instances.instantiate(0, Vec::<(&str, _, _)>::new());
    }
    component.section(&instances);
    component.finish()
}
