/* Hot swap mid-run, from a C function the script calls (lmem_swap, then lua_setallocf), for
 * every pair of backends: old data stays intact and is freed and resized by the backend that made
 * it, a second swap makes a chain of three, a bad name is an error the script can catch, and once
 * the state is closed lmem_settle goes back to the direct path. */
#include "common.h"

static lmem_allocator *current; /* the allocator of the state that is running */

/* swap(name): swaps the backend and returns the name of the one in use. */
static int l_swap(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lmem_alloc_fn f = NULL;
    void *ud = NULL;
    int rc = lmem_swap(current, name, &f, &ud);
    /* Success or not, f and ud hold the pair Lua must have. */
    if (f == NULL || ud == NULL) return luaL_error(L, "lmem_swap wrote no pair");
    lua_setallocf(L, f, ud);
    if (rc != 0) return luaL_error(L, "%s", lmem_last_error());
    lua_pushstring(L, lmem_backend_name(current));
    return 1;
}

static const char *SCRIPT =
    "local old = {}\n"
    "for i = 1, 500 do old[i] = ('old' .. i):rep(3) end\n"
    "local meta = setmetatable({}, {__index = function(_, k) return k * 2 end})\n"
    "local buf = {}\n"
    "for i = 1, 100 do buf[i] = i end\n"
    "assert(swap(TO) == TO)\n"
    "for i = 1, 500 do assert(old[i] == ('old' .. i):rep(3)) end\n"
    "assert(meta[21] == 42)\n"
    /* grow tables made by the old backend: resizes of its blocks */
    "for i = 101, 5000 do buf[i] = i end\n"
    "for i = 1, 5000 do assert(buf[i] == i) end\n"
    "local new = {}\n"
    "for i = 1, 500 do new[i] = {i, tostring(i)} end\n"
    "local ok, err = pcall(swap, 'no-such-backend')\n"
    "assert(not ok and err:find(\"unknown backend 'no%-such%-backend'\"), err)\n"
    "old, buf = nil, nil\n"
    "collectgarbage()\n"
    "for i = 1, 500 do assert(new[i][2] == tostring(i)) end\n"
    "assert(swap(FROM) == FROM)\n"
    "for i = 1, 500 do assert(new[i][1] == i) end\n"
    "local more = {}\n"
    "for i = 1, 500 do more[i] = string.rep('m', i) end\n"
    "new = nil\n"
    "collectgarbage()\n"
    "for i = 1, 500 do assert(#more[i] == i) end\n"
    "return 'ok'\n";

static void pair(const char *from, const char *to) {
    char label[64];
    snprintf(label, sizeof label, "%s->%s", from, to);
    lmem_allocator *a = lmem_new_detailed(from);
    CHECK_ON(label, a != NULL);
    current = a;
    lua_State *L = lua_newstate(lmem_function(a), lmem_ud(a));
    CHECK_ON(label, L != NULL);
    luaL_openlibs(L);
    lua_register(L, "swap", l_swap);
    lua_pushstring(L, from);
    lua_setglobal(L, "FROM");
    lua_pushstring(L, to);
    lua_setglobal(L, "TO");
    run_ok(label, L, SCRIPT);
    CHECK_ON(label, strcmp(lua_tostring(L, -1), "ok") == 0);
    lua_pop(L, 1);

    lmem_statistics s;
    CHECK_ON(label, lmem_stats(a, &s) == 0);
    CHECK_ON(label, s.swaps == 2 && s.routing && s.detailed);
    CHECK_ON(label, s.live == lua_bytes(L));
    CHECK_ON(label, strcmp(lmem_backend_name(a), from) == 0);

    /* The state's first blocks are still with the first backend: settling changes nothing. */
    lmem_alloc_fn f = NULL;
    void *ud = NULL;
    CHECK_ON(label, lmem_settle(a, &f, &ud) == 0);
    CHECK_ON(label, f == lmem_function(a) && ud == lmem_ud(a));
    CHECK_ON(label, lmem_stats(a, &s) == 0 && s.routing);

    lua_close(L);
    CHECK_ON(label, lmem_stats(a, &s) == 0);
    CHECK_ON(label, s.live == 0 && s.frees == s.allocations);

    /* Nothing old is left: back to the direct path of the backend in use. */
    lmem_alloc_fn routed = lmem_function(a);
    CHECK_ON(label, lmem_settle(a, &f, &ud) == 0);
    CHECK_ON(label, f == lmem_function(a) && ud == lmem_ud(a) && f != routed);
    CHECK_ON(label, lmem_stats(a, &s) == 0 && !s.routing && s.swaps == 2 && s.live == 0);
    CHECK_ON(label, strcmp(lmem_backend_name(a), from) == 0);
    lmem_free(a);
}

int main(int argc, char **argv) {
    const char *backends[MAX_BACKENDS];
    int n = test_backends(argc, argv, backends, MAX_BACKENDS);
    int runs = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            pair(backends[i], backends[j]);
            runs++;
        }
        printf("swap: from %s ok\n", backends[i]);
    }
    printf("swap: %d passed, 0 failed\n", runs);
    return 0;
}
