//! mlua code running on an lmem backend.
//!
//! ```text
//! cargo run -p lmem-mlua --example mlua_interop -- slab
//! ```

use lmem_mlua::MluaState;

fn main() -> mlua::Result<()> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "system".to_owned());
    let state = match MluaState::with_options(
        &name,
        lmem_mlua::Options {
            limit: None,
            detailed: true,
        },
    ) {
        Ok(state) => state,
        Err(e @ lmem_mlua::Error::NotEnoughMemory) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    {
        let lua = state.lua();
        let double = lua.create_function(|_, x: i64| Ok(x * 2))?;
        lua.globals().set("double", double)?;
        let words: Vec<String> = lua
            .load(r#"local t = {} for w in ("mlua on lmem"):gmatch("%a+") do t[#t+1] = w:upper() end return t"#)
            .eval()?;
        let sum: i64 = lua
            .load("local s = 0 for i = 1, 1000 do s = s + double(i) end return s")
            .eval()?;
        println!("{} | sum = {sum}", words.join(" "));
        let s = state.stats();
        println!(
            "backend {name}: {} bytes live, {} allocations so far",
            s.live,
            s.allocations()
        );
    }
    let after = state.close();
    println!(
        "after lua_close: {} bytes live (peak {})",
        after.live, after.peak
    );
    assert_eq!(after.live, 0);
    Ok(())
}
