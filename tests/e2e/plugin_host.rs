//! The plugin host on its own: containment of hostile guests, the compile cache, warm reuse.

use std::time::{Duration, Instant};

use pipewright::plugins::{Limits, LoadedPlugin, Pipeline, PluginError, PluginHost, PolicyContext};

fn candidate(name: &str, version: &str) -> Pipeline {
    Pipeline {
        namespace: "alice".into(),
        name: name.into(),
        version: Some(version.into()),
        type_: "jupyter".into(),
        description: None,
        inputs: vec![],
        outputs: vec![],
        properties: vec![],
    }
}

fn context() -> PolicyContext {
    PolicyContext {
        surface: "test".into(),
        account: "alice".into(),
        user: "alice".into(),
        config: vec![],
    }
}

fn hostile_host(
    limits: Limits,
) -> (
    PluginHost,
    std::sync::Arc<pipewright::plugins::PolicyPlugin>,
    tempfile::TempDir,
) {
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(cache.path(), limits).unwrap();
    let bytes = crate::guests::read("hostile_policy.wasm");
    let LoadedPlugin::Policy(policy) = host.load("hostile", "6.6.6", &bytes).unwrap() else {
        panic!("a policy")
    };
    (host, policy, cache)
}

/// Each hostile behaviour becomes an error naming plugin, version and export; the next call on
/// the same plugin works.
#[test]
fn a_trap_is_the_plugins_failure_named_and_contained() {
    let (_host, policy, _dir) = hostile_host(Limits::default());
    let error = policy
        .check(&candidate("trap", "1.0.0"), &[], &context())
        .unwrap_err();
    assert!(matches!(error, PluginError::Trap { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("hostile@6.6.6") && message.contains("`check`"),
        "{message}"
    );
    assert!(
        message.contains("traps on purpose"),
        "the guest's panic message is kept: {message}"
    );
    assert!(policy
        .check(&candidate("fine", "1.0.0"), &[], &context())
        .unwrap()
        .is_ok());
}

#[test]
fn an_infinite_loop_is_stopped_at_its_deadline() {
    let limits = Limits {
        call_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (_host, policy, _dir) = hostile_host(limits);
    let started = Instant::now();
    let error = policy
        .check(&candidate("loop", "1.0.0"), &[], &context())
        .unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    assert!(
        error.to_string().contains("hostile@6.6.6") && error.to_string().contains("`check`"),
        "{error}"
    );
    // Generous bound: it must stop, not merely eventually; exact timing is not asserted.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(policy
        .check(&candidate("fine", "1.0.0"), &[], &context())
        .unwrap()
        .is_ok());
}

#[test]
fn a_4_gib_allocation_hits_the_memory_cap() {
    let (_host, policy, _dir) = hostile_host(Limits::default());
    let error = policy
        .check(&candidate("alloc", "1.0.0"), &[], &context())
        .unwrap_err();
    match &error {
        PluginError::MemoryLimit { limit, asked, .. } => {
            assert_eq!(*limit, 64 << 20);
            assert!(*asked > *limit);
        }
        other => panic!("expected a memory-limit error, got {other}"),
    }
    assert!(
        error.to_string().contains("hostile@6.6.6") && error.to_string().contains("`check`"),
        "{error}"
    );
    assert!(policy
        .check(&candidate("fine", "1.0.0"), &[], &context())
        .unwrap()
        .is_ok());
}

#[test]
fn a_component_of_no_known_world_is_refused_by_name() {
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(cache.path(), Limits::default()).unwrap();
    let error = host
        .load("garbage", "0.0.1", b"\0asm not really")
        .err()
        .expect("refused");
    assert!(matches!(error, PluginError::Load { .. }), "{error}");
    assert!(error.to_string().contains("garbage@0.0.1"));
}

/// Compiled once per digest and engine: Winch's code first, serving at once, Cranelift's in the
/// background; a restarted host maps Cranelift's artifact and compiles nothing.
#[test]
fn compile_cache_survives_a_restart() {
    let cache = tempfile::tempdir().unwrap();
    let builtins = pipewright::plugins::builtin::BUILTIN_PLUGINS.len() as u64;
    assert!(builtins >= 6, "the built-ins are counted: {builtins}");
    {
        let host = PluginHost::new(cache.path(), Limits::default()).unwrap();
        host.load_builtins().unwrap();
        assert_eq!(
            host.baseline_cache_stats().compiled,
            builtins,
            "Winch first"
        );
        // Served by Winch's code while Cranelift compiles.
        let semver = host.policy("policy-semver").unwrap();
        assert!(semver
            .check(&candidate("x", "1.0.0"), &["0.9.0".into()], &context())
            .unwrap()
            .is_ok());
        host.wait_for_optimizing();
        // And by Cranelift's once it is in place.
        assert!(semver
            .check(&candidate("x", "0.1.0"), &["0.9.0".into()], &context())
            .unwrap()
            .is_err());
        let stats = host.cache_stats();
        assert_eq!((stats.compiled, stats.loaded_from_cache), (builtins, 0));
        // Loading the same bytes again in the same host does not compile again.
        let (name, version, bytes) = pipewright::plugins::builtin::BUILTIN_PLUGINS[0];
        host.load(name, version, bytes).unwrap();
        assert_eq!(host.cache_stats().compiled, builtins);
    }
    let restarted = PluginHost::new(cache.path(), Limits::default()).unwrap();
    restarted.load_builtins().unwrap();
    assert_eq!(restarted.cache_stats().compiled, 0);
    assert_eq!(
        restarted.baseline_cache_stats().compiled,
        0,
        "no Winch once Cranelift's is there"
    );
    assert_eq!(restarted.cache_stats().loaded_from_cache, builtins);
    let semver = restarted.policy("policy-semver").unwrap();
    assert!(semver
        .check(&candidate("x", "1.0.0"), &["0.9.0".into()], &context())
        .unwrap()
        .is_ok());
}

/// The built-in policies through the host, with their machine codes.
#[test]
fn builtin_policies_report_machine_codes() {
    let cache = crate::harness::shared_cache_dir();
    let host = PluginHost::new(&cache, Limits::default()).unwrap();
    host.load_builtins().unwrap();
    let codes = |policy: &str, name: &str, version: &str, existing: &[&str]| -> Vec<String> {
        let existing: Vec<String> = existing.iter().map(|s| s.to_string()).collect();
        match host
            .policy(policy)
            .unwrap()
            .check(&candidate(name, version), &existing, &context())
            .unwrap()
        {
            Ok(_) => vec![],
            Err(violations) => violations.into_iter().map(|v| v.code).collect(),
        }
    };
    assert_eq!(
        codes("policy-semver", "x", "0.0.2", &["0.0.1"]),
        Vec::<String>::new()
    );
    assert_eq!(
        codes("policy-semver", "x", "0.0.1", &["0.0.1"]),
        ["version-not-incremented"]
    );
    assert_eq!(
        codes("policy-semver", "x", "0.0.1", &["0.0.2"]),
        ["version-lower-than-latest"]
    );
    assert_eq!(codes("policy-semver", "x", "one", &[]), ["invalid-version"]);
    assert_eq!(
        codes("policy-lowercase", "Hello", "1", &[]),
        ["name-not-lowercase"]
    );
    assert_eq!(
        codes("policy-lowercase", "hello", "1", &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        codes("policy-acumos", "churn_2", "1.0", &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        codes("policy-acumos", "2churn", "1.0", &[]),
        ["invalid-name"]
    );
    assert_eq!(
        codes("policy-acumos", "churn", "v1", &[]),
        ["invalid-version"]
    );
    let jupyter = host
        .type_handler("JUPYTER")
        .expect("case-insensitive type lookup");
    assert_eq!(jupyter.info.display_name, "Jupyter");
    assert_eq!(jupyter.info.default_files, ["notebook.ipynb"]);
    let launch = pipewright::plugins::LaunchContext {
        pipeline: candidate("x", "1.0.0"),
        pipeline_id: "id".into(),
        user: "alice".into(),
        repository_url: "/pipelines/id".into(),
        properties: vec![],
    };
    let refused = jupyter.launch(&launch).unwrap().unwrap_err();
    assert_eq!(refused.code, "launch-unavailable");
}

/// A policy built against `pipewright:plugin@0.2.0` is still a complete 0.1.0 policy: a host
/// that knows only 0.1.0 (its bindings and linker, nothing of `about`) instantiates and calls it.
#[test]
fn a_0_2_0_policy_loads_in_a_host_that_knows_only_0_1_0() {
    use pipewright::plugins::bindings::v0_1_0::policy::ValidationPolicy;
    use pipewright::plugins::limits::PluginState;
    use pipewright::plugins::PluginId;
    use wasmtime::component::{Component, HasSelf, Linker};

    let bytes = crate::guests::read("described_policy.wasm");
    let engine = wasmtime::Engine::default();
    let component = Component::new(&engine, &bytes).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    ValidationPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).unwrap();
    let id = std::sync::Arc::new(PluginId {
        name: "short-names".into(),
        version: "2.0.0".into(),
    });
    let mut store = wasmtime::Store::new(&engine, PluginState::new(id, &Limits::default()));
    let policy = ValidationPolicy::instantiate(&mut store, &component, &linker).unwrap();
    let check = |store: &mut wasmtime::Store<PluginState>, name: &str| {
        policy
            .pipewright_plugin_policy()
            .call_check(store, &candidate(name, "1.0.0"), &[], &context())
            .unwrap()
    };
    assert!(check(&mut store, "churn").is_ok());
    let refused = check(&mut store, "a-much-too-long-name").unwrap_err();
    assert_eq!(refused[0].code, "name-too-long");
}

/// The built-in type handlers are on `pipewright:plugin@0.3.0` and say which surfaces offer
/// their types: Jupyter and Zeppelin the Workbench (`acumos`), GBDX's task and Mystic's
/// runnable none (their surfaces name the type themselves); a handler of 0.1.0 declares none.
#[test]
fn type_handlers_declare_the_surfaces_they_serve() {
    let host = PluginHost::new(&crate::harness::shared_cache_dir(), Limits::default()).unwrap();
    host.load_builtins().unwrap();
    for (type_id, surfaces) in [
        ("jupyter", vec!["acumos"]),
        ("zeppelin", vec!["acumos"]),
        ("task", vec![]),
        ("runnable", vec![]),
    ] {
        let handler = host.type_handler(type_id).unwrap();
        assert_eq!(handler.wit, "pipewright:plugin@0.3.0", "{type_id}");
        assert_eq!(handler.surfaces, surfaces, "{type_id}");
    }
    let LoadedPlugin::TypeHandler(csv) = host
        .load("csv-type", "1.0.0", &crate::guests::read("csv_type.wasm"))
        .unwrap()
    else {
        panic!("a type handler")
    };
    assert_eq!(csv.wit, "pipewright:plugin@0.1.0");
    assert!(csv.surfaces.is_empty());
}

/// A type handler built against `pipewright:plugin@0.3.0` is still a complete 0.1.0 handler: a
/// host that knows only 0.1.0 (its bindings and linker, nothing of `surfaces`) instantiates it
/// and calls `describe`.
#[test]
fn a_0_3_0_type_handler_loads_in_a_host_that_knows_only_0_1_0() {
    use pipewright::plugins::bindings::v0_1_0::{policy::ValidationPolicy, type_handler};
    use pipewright::plugins::limits::PluginState;
    use pipewright::plugins::PluginId;
    use wasmtime::component::{Component, HasSelf, Linker};

    let bytes = crate::guests::read("workbench_type.wasm");
    let engine = wasmtime::Engine::default();
    let component = Component::new(&engine, &bytes).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    // The `host` import, linked as the 0.1.0 host links it (through the policy world).
    ValidationPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).unwrap();
    let id = std::sync::Arc::new(PluginId {
        name: "workbench-type".into(),
        version: "1.0.0".into(),
    });
    let mut store = wasmtime::Store::new(&engine, PluginState::new(id, &Limits::default()));
    let handler = type_handler::TypeHandler::instantiate(&mut store, &component, &linker).unwrap();
    let info = handler
        .pipewright_plugin_pipeline_type()
        .call_describe(&mut store)
        .unwrap();
    assert_eq!(
        (info.id.as_str(), info.display_name.as_str()),
        ("rmarkdown", "R Markdown")
    );
}

/// `hello` through a runnable pipeline of `host`: its greeting for `text`.
async fn greet(pipeline: &pipewright::plugins::runnable::RunnablePipeline, text: &str) -> String {
    use pipewright::plugins::runnable::{NamedValue, Value};
    let output = pipewright::plugins::output::CapturedOutput::new(4096);
    let inputs = [NamedValue {
        name: "text".into(),
        value: Value::String(text.into()),
    }];
    let outputs = pipeline
        .run(&[], &inputs, Duration::from_secs(10), &output)
        .await
        .expect("no trap")
        .expect("no pipeline error");
    match &outputs[..] {
        [NamedValue {
            value: Value::String(greeting),
            ..
        }] => greeting.clone(),
        _ => panic!("one string output"),
    }
}

fn runnable_id(name: &str) -> pipewright::plugins::PluginId {
    pipewright::plugins::PluginId {
        name: name.into(),
        version: "0.1.0".into(),
    }
}

/// A pushed runnable pipeline runs on Winch's code as soon as Winch has compiled it, and on
/// Cranelift's once that is in place; a restarted host starts on Cranelift's, compiling nothing.
#[tokio::test]
async fn a_runnable_runs_on_winch_code_until_cranelifts_replaces_it() {
    use pipewright::plugins::tiers::Level;
    let cache = tempfile::tempdir().unwrap();
    let bytes = crate::guests::read("example_hello.wasm");
    {
        let host = PluginHost::new(cache.path(), Limits::default()).unwrap();
        let hello = host.load_runnable(runnable_id("hello"), &bytes).unwrap();
        assert_eq!(hello.compiled_by(), Level::Baseline);
        assert_eq!(host.runnable_cache_stats(Level::Baseline).compiled, 1);
        assert_eq!(greet(&hello, "winch").await, "Hello, winch!");
        host.wait_for_optimizing();
        assert_eq!(hello.compiled_by(), Level::Optimized);
        assert_eq!(greet(&hello, "cranelift").await, "Hello, cranelift!");
        assert_eq!(host.runnable_cache_stats(Level::Optimized).compiled, 1);
    }
    let restarted = PluginHost::new(cache.path(), Limits::default()).unwrap();
    let hello = restarted
        .load_runnable(runnable_id("hello"), &bytes)
        .unwrap();
    assert_eq!(hello.compiled_by(), Level::Optimized);
    let compiled = |level| restarted.runnable_cache_stats(level).compiled;
    assert_eq!(
        (compiled(Level::Optimized), compiled(Level::Baseline)),
        (0, 0)
    );
    assert_eq!(
        restarted
            .runnable_cache_stats(Level::Optimized)
            .loaded_from_cache,
        1
    );
    assert_eq!(greet(&hello, "again").await, "Hello, again!");
}

/// A component Winch cannot compile (it uses tail calls) is compiled by Cranelift at once, and
/// the precompile says so; it runs.
#[tokio::test]
async fn a_component_winch_cannot_compile_falls_back_to_cranelift_and_says_so() {
    use pipewright::plugins::tiers::Level;
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(cache.path(), Limits::default()).unwrap();
    let bytes = crate::guests::read("tail_call_runnable.wasm");
    let precompiled = host.precompile(&bytes).unwrap();
    let note = precompiled.note.expect("a note");
    assert!(
        note.contains("Winch could not compile it") && note.contains("tail call"),
        "{note}"
    );
    let pipeline = host
        .load_runnable(runnable_id("tail-call"), &bytes)
        .unwrap();
    assert_eq!(pipeline.compiled_by(), Level::Optimized);
    assert_eq!(greet(&pipeline, "tail").await, "Hello, tail!");
}
