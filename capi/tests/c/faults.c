/* The fault sweep: the host wraps lmem's allocation function in its own lua_Alloc that fails the
 * N-th allocation (a new block or a growth; frees and shrinks pass), for N = 1, 2, ... until a
 * run in which the fault never fired, on every backend. In "once" mode only the N-th fails (Lua
 * collects and retries); in "from" mode every allocation from the N-th on fails (a run may still
 * complete: Lua does without some growths). Every run ends
 * with the script's result or "not enough memory" (never another error, never a crash), and
 * with 0 bytes live after lua_close. */
#include "common.h"

typedef struct {
    lmem_alloc_fn f; /* lmem's pair */
    void *ud;
    long count;      /* allocations seen */
    long fail_at;    /* the first one to fail */
    int from;        /* fail every one from fail_at on */
    long fired;      /* failures injected */
} fault;

static void *fault_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    fault *ft = ud;
    if (nsize > 0 && (ptr == NULL || nsize > osize)) {
        ft->count++;
        if (ft->count == ft->fail_at || (ft->from && ft->count > ft->fail_at)) {
            ft->fired++;
            return NULL;
        }
    }
    return ft->f(ft->ud, ptr, osize, nsize);
}

static const char *SCRIPT =
    "local t = {}\n"
    "for i = 1, 40 do t[#t + 1] = ('item' .. i):rep(2) end\n"
    "local s = table.concat(t, ',')\n"
    "local m = {}\n"
    "for w in s:gmatch('[^,]+') do m[w] = (m[w] or 0) + 1 end\n"
    "local f = assert(load('return 2 * ...'))\n"
    "local co = coroutine.wrap(function(x) coroutine.yield(f(x)) end)\n"
    "assert(co(21) == 42)\n"
    "return #s .. ' ' .. m.item1item1\n";

static const char *EXPECTED = "501 1";

/* The whole run in protected mode, so that a failure anywhere (openlibs too) is an error. */
static int run(lua_State *L) {
    luaL_openlibs(L);
    if (luaL_loadstring(L, SCRIPT) != LUA_OK) return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

/* One run; returns whether the fault fired. */
static int one(const char *b, long n, int from, long *errors) {
    lmem_allocator *a = lmem_new(b);
    CHECK_ON(b, a != NULL);
    fault ft = {lmem_function(a), lmem_ud(a), 0, n, from, 0};
    lua_State *L = lua_newstate(fault_alloc, &ft);
    if (L == NULL) {
        CHECK_ON(b, ft.fired > 0);
        (*errors)++;
    } else {
        lua_pushcfunction(L, run);
        int status = lua_pcall(L, 0, 1, 0);
        const char *msg = lua_tostring(L, -1);
        if (status == LUA_OK) {
            if (msg == NULL || strcmp(msg, EXPECTED) != 0) {
                fprintf(stderr, "[%s] N=%ld from=%d: wrong result %s\n", b, n, from,
                        msg ? msg : "(not a string)");
                exit(1);
            }
        } else {
            /* LUA_ERRMEM, or a memory error re-raised with a position (coroutine.wrap). */
            if (msg == NULL || strstr(msg, "not enough memory") == NULL) {
                fprintf(stderr, "[%s] N=%ld from=%d: status %d, error %s\n", b, n, from, status,
                        msg ? msg : "(not a string)");
                exit(1);
            }
            CHECK_ON(b, ft.fired > 0);
            (*errors)++;
        }
        lua_close(L);
    }
    if (lmem_live(a) != 0) {
        fprintf(stderr, "[%s] N=%ld from=%d: %zu bytes live after lua_close\n", b, n, from,
                lmem_live(a));
        exit(1);
    }
    lmem_free(a);
    return ft.fired > 0;
}

int main(int argc, char **argv) {
    const char *backends[MAX_BACKENDS];
    int n = test_backends(argc, argv, backends, MAX_BACKENDS);
    long total = 0;
    for (int i = 0; i < n; i++) {
        for (int from = 0; from <= 1; from++) {
            long errors = 0, runs = 0;
            for (long k = 1;; k++) {
                CHECK_ON(backends[i], k < 100000);
                runs++;
                if (!one(backends[i], k, from, &errors)) break;
            }
            /* Some runs end with the error; others get over a failure (Lua collects and
             * retries, or does without: a string table that could not grow stays as it is). */
            CHECK_ON(backends[i], errors > 0 && errors < runs);
            printf("faults: %s %s: %ld runs, %ld ended with not enough memory\n", backends[i],
                   from ? "from" : "once", runs, errors);
            total += runs;
        }
    }
    printf("faults: %ld passed, 0 failed\n", total);
    return 0;
}
