//! Modules host-runner must refuse at load, and hostile modules it must survive.

use portico_host_runner::{HostError, Runtime};

const BASE: &str = r#"
  (memory (export "memory") 1)
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
"#;

fn compile(wat: &str) -> Result<portico_host_runner::Module, HostError> {
    Runtime::new().unwrap().compile(wat.as_bytes())
}

#[test]
fn refuses_what_is_not_a_proxy_wasm_module() {
    let err = compile("(module)").unwrap_err().to_string();
    assert_eq!(err, "module declares no supported proxy-wasm ABI (exports proxy_abi_version_0_2_1 or _0_2_0); found: nothing");
    let err = compile(&format!(
        "(module {BASE} (func (export \"proxy_abi_version_0_1_0\")))"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with("found: [\"proxy_abi_version_0_1_0\"]"),
        "{err}"
    );
    let err = compile("(module (func (export \"proxy_abi_version_0_2_1\")))")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "module does not export memory, which proxy-wasm requires"
    );
    let err = compile(
        "(module (memory (export \"memory\") 1) (func (export \"proxy_abi_version_0_2_1\")))",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "module does not export proxy_on_context_create, which proxy-wasm requires"
    );
    let err = Runtime::new()
        .unwrap()
        .compile(b"\0asm\x01\0\0\0\x99")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot compile module:"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn detects_abi_0_2_0() {
    let m = compile(&format!(
        "(module {BASE} (func (export \"proxy_abi_version_0_2_0\")))"
    ))
    .unwrap();
    assert_eq!(m.abi, portico_host_runner::AbiVersion::V0_2_0);
}

#[test]
fn an_unknown_import_names_itself() {
    let runtime = Runtime::new().unwrap();
    let m = runtime
        .compile(format!("(module (import \"env\" \"proxy_teleport\" (func)) {BASE} (func (export \"proxy_abi_version_0_2_1\")))").as_bytes())
        .unwrap();
    let err = runtime.start_vm(&m, "vm", b"").unwrap_err().to_string();
    assert!(err.contains("proxy_teleport"), "{err}");
}

/// Out-of-bounds pointers get BadArgument, not a host crash; a trap poisons only its VM.
#[test]
fn hostile_pointers_are_bad_arguments() {
    let runtime = Runtime::new().unwrap();
    let wat = format!(
        r#"(module
          (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
          (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
          {BASE}
          (global $status (mut i32) (i32.const -1))
          (func (export "proxy_abi_version_0_2_1"))
          (func (export "proxy_on_configure") (param i32 i32) (result i32)
            (global.set $status (call $log (i32.const 2) (i32.const 0xfffffff0) (i32.const 64)))
            (i32.const 1))
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (drop (call $get (i32.const 0) (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 4)))
            (unreachable))
          (func (export "status") (result i32) (global.get $status)))"#
    );
    let m = runtime.compile(wat.as_bytes()).unwrap();
    let mut vm = runtime.start_vm(&m, "hostile", b"").unwrap();
    let root = vm.start_plugin("r", b"").unwrap();
    assert!(vm.state().logs.is_empty());
    let ctx = vm.create_http_context(root).unwrap();
    let err = vm.on_request_headers(ctx, vec![], true).unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Trap {
                callback: "proxy_on_request_headers",
                ..
            }
        ),
        "{err}"
    );
    let err = vm.create_http_context(root).unwrap_err();
    assert!(matches!(err, HostError::Poisoned { .. }), "{err}");
    // Another VM of the same runtime is unaffected.
    let mut other = runtime.start_vm(&m, "other", b"").unwrap();
    other.start_plugin("r", b"").unwrap();
}

#[test]
fn bytes_that_are_neither_binary_nor_text_wasm_say_so() {
    let err = Runtime::new()
        .unwrap()
        .compile(&[0xde, 0xad, 0xbe, 0xef, 0xff, 0x00])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a wasm module: no \\0asm magic, and not the wasm text format"),
        "{err}"
    );
}
