//! mlua code on every lmem backend: a state from `lua_newstate` over an lmem `Allocator`, used
//! through `mlua::Lua::get_or_init_from_ptr`, then closed with nothing left live; mlua's own
//! memory API on such a state; limit, swap and trim.

use lmem_mlua::{Error, MluaState, Options};

fn detailed(name: &str) -> MluaState {
    MluaState::with_options(
        name,
        Options {
            limit: None,
            detailed: true,
        },
    )
    .unwrap()
}

#[test]
fn mlua_runs_on_every_backend() {
    for name in lmem::backends::names() {
        let state = detailed(name);
        {
            let lua = state.lua();
            let f = lua
                .create_function(|_, (a, b): (i64, i64)| Ok(a * b))
                .unwrap();
            lua.globals().set("mul", f).unwrap();
            let v: i64 = lua
                .load("local t = {} for i = 1, 5000 do t[i] = mul(i, 2) end return t[5000]")
                .eval()
                .unwrap();
            assert_eq!(v, 10000);
            let t: mlua::Table = lua
                .load("return { a = string.rep('x', 100000) }")
                .eval()
                .unwrap();
            assert_eq!(t.get::<String>("a").unwrap().len(), 100000);
            let err = lua.load("error('from lua')").exec().unwrap_err();
            assert!(err.to_string().contains("from lua"), "{err}");
            let s = state.stats();
            // Lua 5.1 and LuaJIT give no type with a new block: everything is `Other` there.
            let strings = if cfg!(any(feature = "lua51", feature = "luajit")) {
                lmem::Tag::Other
            } else {
                lmem::Tag::String
            };
            assert!(
                s.live > 100000 && s.by_tag[strings.index()].count > 0,
                "{name}"
            );
        }
        let after = state.close();
        assert_eq!(after.live, 0, "{name}: bytes live after lua_close");
    }
}

#[test]
fn mlua_sees_not_enough_memory_under_a_limit() {
    let state = MluaState::new("system").unwrap();
    let lua = state.lua();
    let live = state.stats().live;
    // The limit goes on the layer through the allocator, from Rust (not inside a Lua call).
    assert_eq!(state.set_limit(Some(live + 256 * 1024)), None);
    let err = lua
        .load("return string.rep('x', 4 * 1024 * 1024)")
        .exec()
        .unwrap_err();
    assert!(matches!(err, mlua::Error::MemoryError(_)), "{err:?}");
    state.set_limit(None);
    let n: i64 = lua
        .load("return #string.rep('x', 4 * 1024 * 1024)")
        .eval()
        .unwrap();
    assert_eq!(n, 4 << 20);
    assert_eq!(state.close().live, 0);
}

#[test]
fn mluas_own_memory_api_on_an_lmem_state() {
    for name in lmem::backends::names() {
        let state = MluaState::new(name).unwrap();
        let lua = state.lua();
        lua.load("keep = {} for i = 1, 1000 do keep[i] = tostring(i) end")
            .exec()
            .unwrap();
        // Lua's own count, which mlua reads, is the layer's live bytes to the byte.
        assert_eq!(lua.used_memory(), state.stats().live, "{name}");
        // mlua controls memory only through its own allocator.
        assert!(
            matches!(
                lua.set_memory_limit(1 << 20),
                Err(mlua::Error::MemoryControlNotAvailable)
            ),
            "{name}"
        );
        assert_eq!(state.close().live, 0, "{name}");
    }
}

#[test]
fn swap_and_trim_from_rust_and_from_a_callback() {
    let names = lmem::backends::names();
    let state = std::rc::Rc::new(detailed("system"));
    let lua = state.lua();
    lua.load("keep = {} for i = 1, 2000 do keep[i] = { i, tostring(i) } end")
        .exec()
        .unwrap();
    for name in &names {
        state.swap(name).unwrap();
        assert_eq!(state.backend(), *name);
        lua.load("for i = 1, 500 do keep[#keep + 1] = { #keep, 'x' .. i } end")
            .exec()
            .unwrap();
    }
    // A swap from inside a Rust function that Lua runs: between allocation calls too.
    let weak = std::rc::Rc::downgrade(&state);
    let swap = lua
        .create_function(move |_, name: String| {
            let s2 = weak.upgrade().expect("the state outlives its functions");
            s2.swap(&name).map_err(mlua::Error::external)?;
            Ok(s2.backend())
        })
        .unwrap();
    lua.globals().set("swap", swap).unwrap();
    let now: String = lua.load("return swap('system')").eval().unwrap();
    assert_eq!(now, "system");
    let bad = lua.load("return swap('no-such')").exec().unwrap_err();
    assert!(
        bad.to_string().contains("unknown backend 'no-such'"),
        "{bad}"
    );
    assert!(matches!(state.swap("nope"), Err(Error::UnknownBackend(_))));
    // Everything made on every backend is intact.
    let n: i64 = lua
        .load("local n = 0 for i = 1, 2000 do assert(keep[i][1] == i and keep[i][2] == tostring(i)) n = n + 1 end return n")
        .eval()
        .unwrap();
    assert_eq!(n, 2000);
    lua.load("keep = nil").exec().unwrap();
    lua.gc_collect().unwrap();
    state.trim();
    assert_eq!(lua.used_memory(), state.stats().live);
    let state = std::rc::Rc::try_unwrap(state).ok().expect("one owner left");
    assert_eq!(state.close().live, 0);
}

#[test]
fn a_state_that_cannot_be_made_is_an_error() {
    assert!(matches!(
        MluaState::new("no-such"),
        Err(Error::UnknownBackend(_))
    ));
    let tiny = MluaState::with_options(
        "system",
        Options {
            limit: Some(512),
            detailed: false,
        },
    );
    assert!(matches!(tiny, Err(Error::NotEnoughMemory)));
}
