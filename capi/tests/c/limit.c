/* The limit on every backend: a script runs into it, pcall catches "not enough memory", the
 * state recovers and allocates again; lifting the limit lets a large block through; a limit
 * too small for a state makes lua_newstate fail cleanly. */
#include "common.h"

static const char *SCRIPT =
    "local ok, err = pcall(function()\n"
    "  local t = {}\n"
    "  for i = 1, 1e7 do t[i] = string.rep('x', 100) .. i end\n"
    "end)\n"
    "assert(not ok and err == 'not enough memory', tostring(err))\n"
    "collectgarbage()\n"
    "local t = {}\n"
    "for i = 1, 100 do t[i] = string.rep('y', 100) .. i end\n"
    "assert(#t == 100 and t[100] == string.rep('y', 100) .. 100)\n"
    "local ok2, err2 = pcall(string.rep, 'x', 1 << 20)\n"
    "assert(not ok2 and err2 == 'not enough memory', tostring(err2))\n"
    "return 'ok'\n";

static void limited(const char *b) {
    lmem_allocator *a = lmem_new(b);
    CHECK_ON(b, a != NULL);
    lua_State *L = lua_newstate(lmem_function(a), lmem_ud(a));
    CHECK_ON(b, L != NULL);
    luaL_openlibs(L);
    size_t limit = lmem_live(a) + 256 * 1024;
    CHECK_ON(b, lmem_set_limit(a, limit) == 0);
    run_ok(b, L, SCRIPT);
    CHECK_ON(b, strcmp(lua_tostring(L, -1), "ok") == 0);
    lua_pop(L, 1);

    lmem_statistics s;
    CHECK_ON(b, lmem_stats(a, &s) == 0);
    CHECK_ON(b, s.limit == limit && s.failures > 0 && s.live <= limit);
    CHECK_ON(b, s.live == lua_bytes(L));

    /* Lifted: a block of 1 MiB goes through now. */
    CHECK_ON(b, lmem_set_limit(a, 0) == 0);
    CHECK_ON(b, lmem_stats(a, &s) == 0 && s.limit == 0);
    run_ok(b, L, "return #string.rep('x', 1 << 20)");
    CHECK_ON(b, lua_tointeger(L, -1) == 1 << 20);
    lua_pop(L, 1);
    lua_close(L);
    CHECK_ON(b, lmem_live(a) == 0);
    lmem_free(a);

    /* A limit no state fits in. */
    a = lmem_new(b);
    CHECK_ON(b, a != NULL);
    CHECK_ON(b, lmem_set_limit(a, 100) == 0);
    L = lua_newstate(lmem_function(a), lmem_ud(a));
    CHECK_ON(b, L == NULL);
    CHECK_ON(b, lmem_live(a) == 0);
    CHECK_ON(b, lmem_stats(a, &s) == 0 && s.failures > 0);
    lmem_free(a);
}

int main(int argc, char **argv) {
    const char *backends[MAX_BACKENDS];
    int n = test_backends(argc, argv, backends, MAX_BACKENDS);
    for (int i = 0; i < n; i++) {
        limited(backends[i]);
        printf("limit: %s ok\n", backends[i]);
    }
    printf("limit: %d passed, 0 failed\n", n);
    return 0;
}
