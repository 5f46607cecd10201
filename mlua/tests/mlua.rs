//! mlua code on every lmem backend: a state from `lua_newstate` over an lmem `Allocator`, used
//! through `mlua::Lua::get_or_init_from_ptr`, then closed with nothing left live.

use lmem_mlua::MluaState;

#[test]
fn mlua_runs_on_every_backend() {
    for name in lmem::backends::names() {
        let state = MluaState::new(name).unwrap().unwrap();
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
            assert!(
                s.live > 100000 && s.by_tag[lmem::Tag::String.index()].count > 0,
                "{name}"
            );
        }
        let after = state.close();
        assert_eq!(after.live, 0, "{name}: bytes live after lua_close");
    }
}

#[test]
fn mlua_sees_not_enough_memory_under_a_limit() {
    let state = MluaState::new("system").unwrap().unwrap();
    let lua = state.lua();
    let live = state.stats().live;
    // The limit goes on the layer through the allocator, from Rust (not inside a Lua call).
    set_limit(&state, Some(live + 256 * 1024));
    let err = lua
        .load("return string.rep('x', 4 * 1024 * 1024)")
        .exec()
        .unwrap_err();
    assert!(matches!(err, mlua::Error::MemoryError(_)), "{err:?}");
    set_limit(&state, None);
    let n: i64 = lua
        .load("return #string.rep('x', 4 * 1024 * 1024)")
        .eval()
        .unwrap();
    assert_eq!(n, 4 << 20);
    assert_eq!(state.close().live, 0);
}

fn set_limit(state: &MluaState, limit: Option<usize>) {
    state.set_limit(limit);
}
