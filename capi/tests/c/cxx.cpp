// The header from C++: a host that includes lmem.h and Lua's lua.hpp, makes a state on every
// backend, runs a script, swaps from a C function and reads the figures.
#include <lua.hpp>
#include <lmem.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static lmem_allocator *current;

static void check(bool ok, const char *what, const char *backend) {
    if (!ok) {
        std::fprintf(stderr, "[%s] check failed: %s (lmem_last_error: \"%s\")\n", backend, what,
                     lmem_last_error());
        std::exit(1);
    }
}

extern "C" int l_swap(lua_State *L) {
    lmem_alloc_fn f = nullptr;
    void *ud = nullptr;
    if (lmem_swap(current, luaL_checkstring(L, 1), &f, &ud) != 0) {
        return luaL_error(L, "%s", lmem_last_error());
    }
    lua_setallocf(L, f, ud);
    return 0;
}

int main() {
    int n = 0;
    for (const char *const *b = lmem_backends(); *b != nullptr; b++, n++) {
        lmem_allocator *a = lmem_new_detailed(*b);
        check(a != nullptr, "lmem_new_detailed", *b);
        current = a;
        lua_State *L = lua_newstate(lmem_function(a), lmem_ud(a));
        check(L != nullptr, "lua_newstate", *b);
        luaL_openlibs(L);
        lua_register(L, "swap", l_swap);
        const char *script = "local t = {} for i = 1, 100 do t[i] = 'k' .. i end\n"
                             "swap('system')\n"
                             "for i = 101, 200 do t[i] = 'k' .. i end\n"
                             "return #t .. t[1] .. t[200]";
        check(luaL_dostring(L, script) == LUA_OK, "the script runs", *b);
        check(std::string(lua_tostring(L, -1)) == "200k1k200", "the script's result", *b);
        lmem_statistics s{};
        check(lmem_stats(a, &s) == 0 && s.swaps == 1 && s.detailed, "lmem_stats", *b);
        check(s.by_type[LMEM_TYPE_STRING].count >= 200, "strings counted", *b);
        check(std::strcmp(lmem_type_name(LMEM_TYPE_STRING), "string") == 0, "type name", *b);
        lua_close(L);
        check(lmem_live(a) == 0, "0 bytes live after lua_close", *b);
        lmem_free(a);
    }
    std::printf("cxx: %d passed, 0 failed\n", n);
    return 0;
}
