/* A real state on every backend: a script runs, the figures agree with Lua's own count and with
 * what the script made, details turned on mid-run count from then, trim keeps every live byte,
 * and nothing is live after lua_close. */
#include "common.h"

static const char *SCRIPT =
    "local t = {}\n"
    "for i = 1, 2000 do t[i] = string.rep('x', i % 100) .. i end\n"
    "local function mk(n) return function() return n end end\n"
    "local fs = {}\n"
    "for i = 1, 200 do fs[i] = mk(i) end\n"
    "local co = coroutine.create(function(a) coroutine.yield(a + 1) return a * 2 end)\n"
    "assert(select(2, coroutine.resume(co, 20)) == 21)\n"
    "local s = 0\n"
    "for i = 1, 200 do s = s + fs[i]() end\n"
    "assert(load('return 1 + ...')(1) == 2)\n"
    "keep = t\n"
    "return table.concat({'ok', #t, s}, ' ')\n";

static uint64_t sum_types(const lmem_statistics *s, int bytes) {
    uint64_t n = 0;
    for (int i = 0; i < LMEM_TYPES; i++) n += bytes ? s->by_type[i].bytes : s->by_type[i].count;
    return n;
}

static uint64_t sum_sizes(const lmem_statistics *s) {
    uint64_t n = 0;
    for (int i = 0; i < LMEM_SIZE_BUCKETS; i++) n += s->sizes[i];
    return n;
}

/* Counted from the start: every figure adds up. */
static void detailed(const char *b) {
    lmem_allocator *a = lmem_new_detailed(b);
    CHECK_ON(b, a != NULL);
    CHECK_ON(b, strcmp(lmem_backend_name(a), b) == 0);
    lua_State *L = lua_newstate(lmem_function(a), lmem_ud(a));
    CHECK_ON(b, L != NULL);
    luaL_openlibs(L);
    run_ok(b, L, SCRIPT);
    CHECK_ON(b, strcmp(lua_tostring(L, -1), "ok 2000 20100") == 0);
    lua_pop(L, 1);

    lmem_statistics s;
    CHECK_ON(b, lmem_stats(a, &s) == 0);
    CHECK_ON(b, s.live == lua_bytes(L) && s.live == lmem_live(a) && s.live > 0);
    CHECK_ON(b, s.detailed && s.uncounted == 0 && !s.routing && s.swaps == 0);
    CHECK_ON(b, s.limit == 0 && s.failures == 0);
    CHECK_ON(b, s.peak >= s.live);
    CHECK_ON(b, s.by_type[LMEM_TYPE_STRING].count >= 2000);
    CHECK_ON(b, s.by_type[LMEM_TYPE_STRING].bytes >= 2000 * 24);
    CHECK_ON(b, s.by_type[LMEM_TYPE_FUNCTION].count >= 200);
    CHECK_ON(b, s.by_type[LMEM_TYPE_UPVALUE].count >= 200);
    CHECK_ON(b, s.by_type[LMEM_TYPE_TABLE].count > 2);
    CHECK_ON(b, s.by_type[LMEM_TYPE_THREAD].count >= 2); /* the main thread and the coroutine */
    CHECK_ON(b, s.by_type[LMEM_TYPE_PROTO].count >= 3);
    CHECK_ON(b, s.by_type[LMEM_TYPE_OTHER].count > 0);
    CHECK_ON(b, s.by_type[LMEM_TYPE_USERDATA].count > 0); /* io's standard files */
    CHECK_ON(b, s.allocations == sum_types(&s, 0) && s.allocations == sum_sizes(&s));
    CHECK_ON(b, s.allocations > s.frees && s.frees > 0 && s.resizes > 0);
    if (s.backend_reserved != LMEM_UNKNOWN && strcmp(b, "jemalloc") != 0) {
        CHECK_ON(b, s.backend_reserved >= s.live);
    }
    if (s.backend_allocated != LMEM_UNKNOWN && strcmp(b, "jemalloc") != 0) {
        CHECK_ON(b, s.backend_allocated >= s.live);
    }

    /* Trim after a full collection: every live byte stays, the reserve does not grow. */
    run_ok(b, L, "keep = nil; collectgarbage(); collectgarbage(); return 0");
    lua_pop(L, 1);
    lmem_statistics before, after;
    CHECK_ON(b, lmem_stats(a, &before) == 0);
    CHECK_ON(b, lmem_trim(a) == 0);
    CHECK_ON(b, lmem_stats(a, &after) == 0);
    CHECK_ON(b, after.live == before.live && after.live == lua_bytes(L));
    if (before.backend_reserved != LMEM_UNKNOWN && strcmp(b, "jemalloc") != 0) {
        CHECK_ON(b, after.backend_reserved <= before.backend_reserved);
    }
    run_ok(b, L, "local t = {} for i = 1, 100 do t[i] = {i} end return #t");
    CHECK_ON(b, lua_tointeger(L, -1) == 100);

    lua_close(L);
    CHECK_ON(b, lmem_stats(a, &s) == 0);
    CHECK_ON(b, s.live == 0 && lmem_live(a) == 0);
    CHECK_ON(b, s.frees == s.allocations); /* every block made was freed */
    lmem_free(a);
    CHECK_ON(b, strcmp(lmem_last_error(), "") == 0);
}

/* The lean path counts live bytes only; lmem_count_details starts the rest mid-run. */
static void lean(const char *b) {
    lmem_allocator *a = lmem_new(b);
    CHECK_ON(b, a != NULL);
    lua_State *L = lua_newstate(lmem_function(a), lmem_ud(a));
    CHECK_ON(b, L != NULL);
    luaL_openlibs(L);
    run_ok(b, L, SCRIPT);
    lua_pop(L, 1);

    lmem_statistics s;
    CHECK_ON(b, lmem_stats(a, &s) == 0);
    CHECK_ON(b, s.live == lua_bytes(L) && s.live > 0);
    CHECK_ON(b, !s.detailed && s.peak == 0 && s.allocations == 0 && s.frees == 0);
    CHECK_ON(b, s.by_type[LMEM_TYPE_STRING].count == 0 && sum_sizes(&s) == 0);

    size_t live = lmem_live(a);
    lmem_alloc_fn f = NULL;
    void *ud = NULL;
    lmem_alloc_fn old_f = lmem_function(a);
    CHECK_ON(b, lmem_count_details(a, &f, &ud) == 0);
    CHECK_ON(b, f != NULL && f == lmem_function(a) && ud == lmem_ud(a));
    CHECK_ON(b, f != old_f); /* a detailed function now */
    lua_setallocf(L, f, ud);
    CHECK_ON(b, lmem_stats(a, &s) == 0);
    CHECK_ON(b, s.detailed && s.uncounted == live && s.peak == live && s.allocations == 0);

    /* Asking again changes nothing. */
    lmem_alloc_fn f2 = NULL;
    void *ud2 = NULL;
    CHECK_ON(b, lmem_count_details(a, &f2, &ud2) == 0 && f2 == f && ud2 == ud);

    run_ok(b, L, "local t = {} for i = 1, 300 do t[i] = 'v' .. i end return #t");
    lua_pop(L, 1);
    CHECK_ON(b, lmem_stats(a, &s) == 0);
    CHECK_ON(b, s.by_type[LMEM_TYPE_STRING].count >= 300 && s.peak >= s.uncounted);
    CHECK_ON(b, s.live == lua_bytes(L));
    lua_close(L);
    CHECK_ON(b, lmem_live(a) == 0);
    lmem_free(a);
}

int main(int argc, char **argv) {
    const char *backends[MAX_BACKENDS];
    int n = test_backends(argc, argv, backends, MAX_BACKENDS);
    for (int i = 0; i < n; i++) {
        detailed(backends[i]);
        lean(backends[i]);
        printf("script: %s ok\n", backends[i]);
    }
    printf("script: %d passed, 0 failed\n", n);
    return 0;
}
