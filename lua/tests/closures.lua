-- closures.lua: closures, shared upvalues, closing upvalues (when a block,
-- loop iteration or function exits), upvalues surviving collection.

local function check(cond, what)
  if not cond then error("closures: " .. what, 2) end
end

-- two closures share one open upvalue, which stays shared once closed
do
  local function pair()
    local n = 0
    return function() n = n + 1; return n end, function() return n end
  end
  local inc, get = pair()
  inc(); inc()
  check(get() == 2, "shared after close")
  local inc2, get2 = pair()
  inc2()
  check(get2() == 1 and get() == 2, "independent instances")
end

-- sharing while the upvalue is still open (enclosing function still active)
do
  local function run()
    local x = 1
    local function set(v) x = v end
    local function read() return x end
    set(10)
    check(x == 10 and read() == 10, "open upvalue write-through")
    x = 20
    check(read() == 20, "open upvalue read-through")
    return read
  end
  check(run()() == 20, "closed after return")
end

-- each loop iteration gets a fresh local: closures capture distinct values
do
  local fns = {}
  for i = 1, 100 do fns[i] = function() return i end end
  for i = 1, 100 do check(fns[i]() == i, "fresh loop variable") end
  local ws = {}
  local j = 0
  while j < 50 do
    j = j + 1
    local k = j * 2
    ws[j] = function() k = k + 1; return k end
  end
  check(ws[1]() == 3 and ws[1]() == 4 and ws[50]() == 101, "while-loop locals closed per iteration")
end

-- upvalue closed at block exit (do ... end), not at function exit
do
  local f
  do
    local hidden = "inside"
    f = function() return hidden end
    hidden = "changed"
  end
  check(f() == "changed", "block close")
end

-- closing upvalues when an error unwinds the stack
do
  local saved
  local ok = pcall(function()
    local v = 5
    saved = function() v = v + 1; return v end
    error("boom")
  end)
  check(not ok and saved() == 6 and saved() == 7, "close on error")
end

-- nested levels: an upvalue of an upvalue
do
  local function outer()
    local a = 1
    return function()
      local b = 10
      return function()
        a = a + 1; b = b + 1
        return a + b
      end
    end
  end
  local mid = outer()
  local f1, f2 = mid(), mid()
  check(f1() == 13, "nested 1")        -- a=2, b=11
  check(f2() == 14, "nested 2")        -- a=3 (shared), b=11 (fresh)
  check(f1() == 16, "nested 3")        -- a=4, b=12
end

-- recursion through an upvalue, and many closures surviving a collection
do
  local function fib_maker()
    local memo = {}
    local fib
    fib = function(n)
      if n < 2 then return n end
      local m = memo[n]
      if m then return m end
      m = fib(n - 1) + fib(n - 2)
      memo[n] = m
      return m
    end
    return fib
  end
  check(fib_maker()(60) == 1548008755920, "memo fib")
  local keep = {}
  for i = 1, 5000 do
    local v = i
    keep[i] = function() return v end
  end
  collectgarbage()
  collectgarbage()
  local s = 0
  for i = 1, 5000 do s = s + keep[i]() end
  check(s == 5000 * 5001 / 2, "closures after collect")
end

-- higher order: map/filter/fold built from closures
do
  local function map(f, t) local r = {} for i = 1, #t do r[i] = f(t[i]) end return r end
  local function filter(p, t) local r = {} for i = 1, #t do if p(t[i]) then r[#r + 1] = t[i] end end return r end
  local function fold(f, a, t) for i = 1, #t do a = f(a, t[i]) end return a end
  local data = {}
  for i = 1, 1000 do data[i] = i end
  local k = 3
  local r = fold(function(a, b) return a + b end, 0,
    filter(function(x) return x % k == 0 end, map(function(x) return x * 2 end, data)))
  local want = 0
  for i = 1, 1000 do if (i * 2) % 3 == 0 then want = want + i * 2 end end
  check(r == want, "map/filter/fold")
end

-- closures as coroutine bodies keep their upvalues
do
  local total = 0
  local co = coroutine.wrap(function()
    for i = 1, 3 do total = total + i; coroutine.yield(total) end
  end)
  check(co() == 1 and co() == 3 and co() == 6 and total == 6, "upvalue across yields")
end

print("ok closures")
