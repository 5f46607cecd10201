/* Helpers shared by the C tests of lmem's C API: checks that exit with a message, the backends
 * to run on, and making a state the way a host does. */
#ifndef LMEM_TEST_COMMON_H
#define LMEM_TEST_COMMON_H

#include <lauxlib.h>
#include <lmem.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fails the program, saying where, what and the thread's last lmem error. */
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s (lmem_last_error: \"%s\")\n", __FILE__,   \
                    __LINE__, #cond, lmem_last_error());                                       \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* As CHECK, with the backend named. */
#define CHECK_ON(backend, cond)                                                                \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: [%s] check failed: %s (lmem_last_error: \"%s\")\n",         \
                    __FILE__, __LINE__, (backend), #cond, lmem_last_error());                  \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* The backends to run on: argv[1] alone when given (it must be compiled in), else every backend
 * compiled into the library. */
static inline int test_backends(int argc, char **argv, const char **out, int max) {
    const char *const *all = lmem_backends();
    int n = 0;
    CHECK(all != NULL && all[0] != NULL && strcmp(all[0], "system") == 0);
    for (int i = 0; all[i] != NULL && n < max; i++) {
        if (argc < 2 || strcmp(argv[1], all[i]) == 0) out[n++] = all[i];
    }
    if (n == 0) {
        fprintf(stderr, "backend '%s' is not compiled in\n", argc > 1 ? argv[1] : "?");
        exit(1);
    }
    return n;
}

#define MAX_BACKENDS 16

/* Lua's own count of its memory, in bytes. */
static inline size_t lua_bytes(lua_State *L) {
    return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

/* Runs `code` in L; fails the program with Lua's message if it raises. Leaves its first result
 * on the stack. */
static inline void run_ok(const char *backend, lua_State *L, const char *code) {
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "[%s] script failed: %s\n", backend, lua_tostring(L, -1));
        exit(1);
    }
}

#endif
