-- The `lmem` Lua C module, built with cargo. From this directory:
--   luarocks --lua-version 5.4 make --local      (or 5.1; --tree DIR to install elsewhere)
-- LMEM_CARGO_PROFILE picks the cargo profile (default: release); CARGO_TARGET_DIR is honoured.
rockspec_format = "3.0"
package = "lmem"
version = "scm-1"
source = {
   -- `luarocks make` builds the checkout it runs in; nothing is fetched.
   url = "git+file://.",
}
description = {
   summary = "Lua's memory manager on lmem's allocator backends, for stock interpreters",
   detailed = [[
`require "lmem"` takes over the memory of the running state: its blocks go on being freed by
the interpreter's own allocator, and `lmem.swap(name)` moves new blocks to mimalloc, bump or
slab. `lmem.stats()`, `lmem.limit(bytes)`, `lmem.trim()` and `lmem.backend()` report on and
steer the state's memory. Lua 5.4 and 5.1; needs a Rust toolchain (cargo) to build.
]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1, < 5.5",
}
build = {
   type = "command",
   -- One build per Lua version (their ABIs differ); the object links no Lua.
   build_command = [[
set -e
v=`"$(LUA)" -e 'io.write((_VERSION:gsub("Lua ", "")))'`
case "$v" in
   5.4) f=lua54 ;;
   5.1) f=lua51 ;;
   *) echo "lmem: Lua $v is not supported (5.4 and 5.1 are)" >&2; exit 1 ;;
esac
p="${LMEM_CARGO_PROFILE:-release}"
d="$p"
if [ "$p" = dev ]; then d=debug; fi
cargo build --profile "$p" --no-default-features --features "$f,all-backends"
mkdir -p target/luarocks
cp "${CARGO_TARGET_DIR:-target}/$d/liblmem.so" target/luarocks/lmem.so
]],
   install = {
      lib = {
         lmem = "target/luarocks/lmem.so",
      },
   },
}
