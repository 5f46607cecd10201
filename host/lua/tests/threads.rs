//! States that move between threads: a worker pool may resume a state on another thread. A state
//! moves together with its allocator, which is `Send` exactly when its backend is (`system`,
//! `jemalloc`, `bump`, `slab`; a per-state `mimalloc` heap is bound to the thread that made it,
//! so `LuaAllocator<Mimalloc>` is not `Send` and cannot be handed over: that is a compile error,
//! not a runtime check). Here live states are handed from thread to thread under the `Checker`,
//! keep their data, and end with 0 bytes live and no complaint.

use lmem::{Checker, Detailed, Layer, LuaAllocator};
use lmem_lua::ffi;
use std::ffi::CString;
use std::sync::mpsc;

/// A Lua state and the allocator it runs on, moved as one.
struct Worker<B: lmem::Backend + Send> {
    // Declared first: the state is closed (in `drop`) before the allocator goes.
    state: *mut ffi::lua_State,
    alloc: LuaAllocator<Checker<B>, Detailed>,
}

// SAFETY: the state is used by one thread at a time (the one holding the `Worker`), and its
// allocator — everything the state's memory depends on — moves with it and is `Send`
// (`LuaAllocator<Checker<B>>` is `Send` because `B` is). Nothing else refers to the state.
unsafe impl<B: lmem::Backend + Send> Send for Worker<B> {}

impl<B: lmem::Backend + Send> Worker<B> {
    fn new(backend: B) -> Self {
        let alloc = LuaAllocator::new(Layer::with_accounting(Checker::new(backend)));
        // SAFETY: the pair comes from `alloc`, which outlives the state (closed in `drop`).
        let state = unsafe { lmem_lua::version::new_state(alloc.function(), alloc.ud()) };
        assert!(!state.is_null());
        // SAFETY: a fresh state; openlibs allocates, a failure would panic the state (none here).
        unsafe { ffi::luaL_openlibs(state) };
        Worker { state, alloc }
    }

    /// Runs `code` and returns the integer it returns.
    fn run(&mut self, code: &str) -> i64 {
        let code = CString::new(code).unwrap();
        // SAFETY: a valid state on this thread; the chunk runs in protected mode.
        unsafe {
            assert_eq!(ffi::luaL_loadstring(self.state, code.as_ptr()), ffi::LUA_OK);
            let status = ffi::lua_pcall(self.state, 0, 1, 0);
            if status != ffi::LUA_OK {
                let msg = std::ffi::CStr::from_ptr(ffi::lua_tolstring(
                    self.state,
                    -1,
                    std::ptr::null_mut(),
                ));
                panic!("Lua error: {}", msg.to_string_lossy());
            }
            let n = ffi::lua_tointeger(self.state, -1);
            ffi::lua_settop(self.state, 0);
            n as i64
        }
    }

    /// Closes the state; the checker's verdict and the bytes left live.
    fn close(mut self) -> (bool, usize) {
        // SAFETY: the state is valid and closed once.
        unsafe { ffi::lua_close(self.state) };
        self.state = std::ptr::null_mut();
        // SAFETY: the state is closed: no allocation runs.
        let layer = unsafe { self.alloc.enter() };
        (layer.backend().is_clean(), layer.live())
    }
}

impl<B: lmem::Backend + Send> Drop for Worker<B> {
    fn drop(&mut self) {
        if !self.state.is_null() {
            // SAFETY: the state is valid and closed once.
            unsafe { ffi::lua_close(self.state) };
        }
    }
}

const STEP: &str = "keep = keep or {} local n = #keep \
    for i = 1, 2000 do keep[n + i] = { n + i, ('x'):rep((n + i) % 40) } end \
    for i = 1, #keep, 7 do local k = keep[i] assert(k == false or k[1] == i) end \
    if #keep > 10000 then for i = 1, 4000 do keep[i] = false end end \
    collectgarbage('step') return #keep";

/// Hands `states` workers round a ring of `threads` threads, each running one step per visit.
fn hand_off<B: lmem::Backend + Send + 'static>(make: fn() -> B, states: usize, threads: usize) {
    let (to_first, mut rx) = mpsc::channel::<Worker<B>>();
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (tx, next_rx) = mpsc::channel::<Worker<B>>();
        let inbox = std::mem::replace(&mut rx, next_rx);
        handles.push(std::thread::spawn(move || {
            let mut visits = 0;
            for mut w in inbox {
                w.run(STEP);
                visits += 1;
                if tx.send(w).is_err() {
                    break;
                }
            }
            visits
        }));
    }
    for _ in 0..states {
        to_first.send(Worker::new(make())).unwrap();
    }
    // Round after round, the workers come back from the last thread and go round again.
    let mut done = Vec::new();
    for round in 0..6 {
        for _ in 0..states {
            let w = rx.recv().unwrap();
            if round < 5 {
                to_first.send(w).unwrap();
            } else {
                done.push(w);
            }
        }
    }
    drop(to_first);
    for h in handles {
        assert!(h.join().unwrap() >= 6 * states);
    }
    for mut w in done {
        // Every state ran 6 * threads steps, on every thread, and its data is intact.
        assert_eq!(w.run("return #keep"), (6 * threads * 2000) as i64);
        let (clean, live) = w.close();
        assert!(clean, "checker complaints");
        assert_eq!(live, 0, "bytes live after lua_close");
    }
}

#[test]
fn live_states_move_between_threads_on_every_send_backend() {
    hand_off(lmem::backends::System::new, 4, 3);
    #[cfg(feature = "jemalloc")]
    hand_off(lmem::backends::Jemalloc::new, 4, 3);
    #[cfg(feature = "bump")]
    hand_off(lmem::backends::Bump::new, 4, 3);
    #[cfg(feature = "slab")]
    hand_off(lmem::backends::Slab::new, 4, 3);
}
