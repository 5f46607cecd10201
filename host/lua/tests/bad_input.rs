//! Bad values on `lmem-lua`'s command line: a clear message naming the option, and exit status 2,
//! before any Lua state exists; a limit too small for a state is Lua's own answer, exit 1.

mod common;
use common::*;

#[test]
fn bad_option_values_exit_2_with_a_message() {
    let bytes = "(expected bytes, optionally with a K, M or G suffix)";
    for (args, message) in [
        (
            &["--limit", "-5"][..],
            format!("lmem-lua: bad value for --limit: '-5' {bytes}"),
        ),
        (
            &["--limit", "12Q"],
            format!("lmem-lua: bad value for --limit: '12Q' {bytes}"),
        ),
        (
            &["--swap", "slab@x"],
            "lmem-lua: bad value for --swap: 'x' (expected a positive integer)".into(),
        ),
        (
            &["--fail-at", "0"],
            "lmem-lua: bad value for --fail-at: '0' (expected a positive integer)".into(),
        ),
        (
            &["--backend", "nope"],
            "lmem-lua: bad value for --backend: unknown backend 'nope'".into(),
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["-e", "print('ran')"]);
        let out = run(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with(&message), "{args:?}: {err}");
        assert!(
            !text(&out.stdout).contains("ran"),
            "{args:?}: no Lua code may run"
        );
    }
}

#[test]
fn a_limit_too_small_for_a_state_is_not_enough_memory() {
    for limit in ["0", "1", "100"] {
        let out = run(&["--limit", limit, "-e", "print('ran')"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--limit {limit}: {err}");
        assert!(
            err.ends_with("cannot create state: not enough memory\n"),
            "--limit {limit}: {err}"
        );
    }
}
