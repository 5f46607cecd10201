/* The API without a script: bad input gets -1, NULL or SIZE_MAX and a message naming the
 * function; the message is per thread and cleared by the next call; the allocation function
 * keeps lua_Alloc's contract when called directly; a swap, then freeing the old blocks, then
 * lmem_settle goes back to the direct path; the limit fails growth but never a free or shrink;
 * an allocator is refused on another thread. */
#include "common.h"

#include <pthread.h>
#include <stdint.h>

static int contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

static void bad_input(void) {
    CHECK(strcmp(lmem_last_error(), "") == 0);
    CHECK(lmem_new(NULL) == NULL);
    CHECK(contains(lmem_last_error(), "lmem_new: the backend name is NULL"));
    CHECK(lmem_new("no-such") == NULL);
    CHECK(contains(lmem_last_error(), "lmem_new: unknown backend 'no-such' (compiled in: system"));
    CHECK(lmem_new_detailed("\xff\xfe") == NULL);
    CHECK(contains(lmem_last_error(), "lmem_new_detailed: the backend name is not UTF-8"));
    CHECK(lmem_new("") == NULL);
    CHECK(contains(lmem_last_error(), "unknown backend ''"));

    /* The next call clears the message. */
    CHECK(lmem_backends() != NULL);
    CHECK(strcmp(lmem_last_error(), "") == 0);

    CHECK(lmem_function(NULL) == NULL);
    CHECK(contains(lmem_last_error(), "lmem_function: the allocator is NULL"));
    CHECK(lmem_ud(NULL) == NULL);
    CHECK(contains(lmem_last_error(), "lmem_ud: the allocator is NULL"));
    CHECK(lmem_set_limit(NULL, 1) == -1);
    CHECK(contains(lmem_last_error(), "lmem_set_limit: the allocator is NULL"));
    CHECK(lmem_live(NULL) == SIZE_MAX);
    CHECK(contains(lmem_last_error(), "lmem_live: the allocator is NULL"));
    lmem_statistics s;
    CHECK(lmem_stats(NULL, &s) == -1);
    CHECK(lmem_trim(NULL) == -1);
    CHECK(lmem_backend_name(NULL) == NULL);
    lmem_alloc_fn f = NULL;
    void *ud = NULL;
    CHECK(lmem_swap(NULL, "system", &f, &ud) == -1);
    CHECK(contains(lmem_last_error(), "lmem_swap: the allocator is NULL"));
    CHECK(lmem_settle(NULL, &f, &ud) == -1);
    CHECK(lmem_count_details(NULL, &f, &ud) == -1);
    lmem_free(NULL); /* allowed, like free(NULL) */
    CHECK(strcmp(lmem_last_error(), "") == 0);

    CHECK(strcmp(lmem_type_name(LMEM_TYPE_STRING), "string") == 0);
    CHECK(strcmp(lmem_type_name(LMEM_TYPE_PROTO), "proto") == 0);
    CHECK(strcmp(lmem_type_name(LMEM_TYPE_OTHER), "other") == 0);
    CHECK(lmem_type_name(LMEM_TYPES) == NULL);
    CHECK(contains(lmem_last_error(), "lmem_type_name: 8 is not a Lua type index"));
    CHECK(lmem_type_name(-1) == NULL);

    lmem_allocator *a = lmem_new("system");
    CHECK(a != NULL);
    CHECK(lmem_stats(a, NULL) == -1);
    CHECK(contains(lmem_last_error(), "lmem_stats: out is NULL"));
    CHECK(lmem_swap(a, "system", NULL, &ud) == -1);
    CHECK(contains(lmem_last_error(), "lmem_swap: f and ud must point"));
    CHECK(lmem_settle(a, &f, NULL) == -1);
    CHECK(lmem_count_details(a, NULL, NULL) == -1);

    /* A failed swap changes nothing and still writes the current pair. */
    lmem_alloc_fn f0 = lmem_function(a);
    void *ud0 = lmem_ud(a);
    f = NULL;
    ud = NULL;
    CHECK(lmem_swap(a, "nope", &f, &ud) == -1);
    CHECK(contains(lmem_last_error(), "lmem_swap: unknown backend 'nope'"));
    CHECK(f == f0 && ud == ud0);
    CHECK(lmem_swap(a, NULL, &f, &ud) == -1);
    CHECK(contains(lmem_last_error(), "lmem_swap: the backend name is NULL"));
    CHECK(lmem_swap(a, "sys\xc0tem", &f, &ud) == -1);
    CHECK(contains(lmem_last_error(), "not UTF-8"));
    CHECK(f == f0 && ud == ud0 && lmem_function(a) == f0);
    CHECK(lmem_stats(a, &s) == 0 && s.swaps == 0 && !s.routing);
    lmem_free(a);
}

/* lmem's function called the way Lua calls it, then a swap and lmem_settle. */
static void raw(const char *b) {
    lmem_allocator *a = lmem_new_detailed(b);
    CHECK_ON(b, a != NULL);
    lmem_alloc_fn f = lmem_function(a);
    void *ud = lmem_ud(a);
    CHECK_ON(b, f != NULL && ud != NULL);

    enum { N = 64 };
    unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = f(ud, NULL, LUA_TSTRING, 100);
        CHECK_ON(b, blocks[i] != NULL && (uintptr_t)blocks[i] % 16 == 0);
        memset(blocks[i], i, 100);
    }
    CHECK_ON(b, lmem_live(a) == N * 100);
    CHECK_ON(b, f(ud, NULL, LUA_TTABLE, 0) == NULL); /* 0 bytes: NULL, nothing live */
    CHECK_ON(b, lmem_live(a) == N * 100);

    /* The limit fails growth, never a free or a shrink. */
    CHECK_ON(b, lmem_set_limit(a, N * 100 + 50) == 0);
    CHECK_ON(b, f(ud, NULL, LUA_TSTRING, 100) == NULL);
    CHECK_ON(b, f(ud, blocks[0], 100, 200) == NULL && blocks[0][99] == 0);
    blocks[1] = f(ud, blocks[1], 100, 40);
    CHECK_ON(b, blocks[1] != NULL && blocks[1][39] == 1);
    CHECK_ON(b, lmem_live(a) == N * 100 - 60);
    lmem_statistics s;
    CHECK_ON(b, lmem_stats(a, &s) == 0 && s.failures == 2 && s.limit == N * 100 + 50);
    CHECK_ON(b, lmem_set_limit(a, 0) == 0);
    blocks[1] = f(ud, blocks[1], 40, 100);
    CHECK_ON(b, blocks[1] != NULL && blocks[1][39] == 1);

    /* Swap to the next backend: the old blocks go back to the old one through the new pair. */
    const char *const *all = lmem_backends();
    const char *to = all[1] ? all[1] : all[0];
    lmem_alloc_fn g = NULL;
    void *gud = NULL;
    CHECK_ON(b, lmem_swap(a, to, &g, &gud) == 0);
    CHECK_ON(b, g == lmem_function(a) && gud == lmem_ud(a));
    CHECK_ON(b, g != f || gud != ud);
    CHECK_ON(b, strcmp(lmem_backend_name(a), to) == 0);
    unsigned char *fresh = g(gud, NULL, LUA_TUSERDATA, 300);
    CHECK_ON(b, fresh != NULL);
    memset(fresh, 0xab, 300);
    for (int i = 0; i < N; i++) {
        CHECK_ON(b, blocks[i][i == 1 ? 39 : 99] == i);
        blocks[i] = g(gud, blocks[i], 100, 160); /* an old block grows */
        CHECK_ON(b, blocks[i] != NULL && blocks[i][i == 1 ? 39 : 99] == i);
    }
    CHECK_ON(b, lmem_live(a) == N * 160 + 300);
    CHECK_ON(b, lmem_stats(a, &s) == 0 && s.routing && s.swaps == 1);
    CHECK_ON(b, s.by_type[LMEM_TYPE_STRING].count == N && s.by_type[LMEM_TYPE_USERDATA].count == 1);

    /* A second swap while routing returns the same routing pair. */
    lmem_alloc_fn h = NULL;
    void *hud = NULL;
    CHECK_ON(b, lmem_swap(a, b, &h, &hud) == 0);
    CHECK_ON(b, h == g && hud == gud);
    for (int i = 0; i < N; i++) h(hud, blocks[i], 160, 0);
    /* The first backend's blocks are gone (the resized ones may have moved), but `fresh` is
     * still with the second: still routing. */
    CHECK_ON(b, lmem_settle(a, &f, &ud) == 0);
    CHECK_ON(b, f == h && ud == hud);
    f(ud, fresh, 300, 0);
    CHECK_ON(b, lmem_live(a) == 0);
    CHECK_ON(b, lmem_settle(a, &f, &ud) == 0);
    CHECK_ON(b, f == lmem_function(a) && ud == lmem_ud(a) && f != h);
    CHECK_ON(b, lmem_stats(a, &s) == 0 && !s.routing && s.swaps == 2 && s.detailed);
    CHECK_ON(b, strcmp(lmem_backend_name(a), b) == 0);
    void *p = f(ud, NULL, LUA_TSTRING, 32);
    CHECK_ON(b, p != NULL);
    f(ud, p, 32, 0);
    CHECK_ON(b, lmem_live(a) == 0);
    lmem_free(a);
}

static void *other_thread(void *arg) {
    lmem_allocator *a = arg;
    int ok = lmem_live(a) == SIZE_MAX &&
             contains(lmem_last_error(), "lmem_live: the allocator is used on a thread other");
    ok = ok && lmem_set_limit(a, 1) == -1;
    lmem_free(a); /* refused: the allocator stays alive for its own thread */
    ok = ok && contains(lmem_last_error(), "lmem_free: the allocator is used on a thread other");
    /* This thread's message is its own; lmem_new works on any thread. */
    lmem_allocator *mine = lmem_new("system");
    ok = ok && mine != NULL && lmem_live(mine) == 0;
    lmem_free(mine);
    return ok ? arg : NULL;
}

static void threads(void) {
    lmem_allocator *a = lmem_new("system");
    CHECK(a != NULL);
    CHECK(lmem_new("nope") == NULL);
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, other_thread, a) == 0);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result == a);
    /* The main thread's message is still its own. */
    CHECK(contains(lmem_last_error(), "unknown backend 'nope'"));
    CHECK(lmem_live(a) == 0 && lmem_set_limit(a, 0) == 0);
    lmem_free(a);
}

int main(int argc, char **argv) {
    const char *backends[MAX_BACKENDS];
    int n = test_backends(argc, argv, backends, MAX_BACKENDS);
    bad_input();
    for (int i = 0; i < n; i++) raw(backends[i]);
    threads();
    printf("api: %d passed, 0 failed\n", n + 2);
    return 0;
}
