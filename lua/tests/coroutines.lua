-- coroutines.lua: create/resume/yield/wrap/status, values passed both ways,
-- errors inside coroutines, many live coroutines, deep stacks in coroutines.

local function check(cond, what)
  if not cond then error("coroutines: " .. what, 2) end
end

local create, resume, yield, wrap, status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.wrap, coroutine.status

-- values flow in both directions; status transitions
do
  local co = create(function(a, b)
    check(a == 1 and b == 2, "start args")
    local c = yield(a + b)
    local d, e = yield(c * 2)
    return d + e, "done"
  end)
  check(status(co) == "suspended", "initial status")
  local ok, v = resume(co, 1, 2)
  check(ok and v == 3, "first yield")
  ok, v = resume(co, 10)
  check(ok and v == 20, "second yield")
  local ok2, r1, r2 = resume(co, 4, 5)
  check(ok2 and r1 == 9 and r2 == "done", "return values")
  check(status(co) == "dead", "dead status")
  local ok3, msg = resume(co)
  check(not ok3 and tostring(msg):find("dead"), "resume dead coroutine")
end

-- wrap as a generator
do
  local gen = wrap(function() for i = 1, 5 do yield(i) end end)
  local s = 0
  for _ = 1, 5 do s = s + gen() end
  check(s == 15, "wrap generator")
end

-- errors inside coroutines: resume returns false + message; wrap rethrows
do
  local co = create(function() local x = nil; yield(1); return x.field end)
  check(select(2, resume(co)) == 1, "yield before error")
  local ok, msg = resume(co)
  check(not ok and tostring(msg):find("index"), "runtime error message")
  check(status(co) == "dead", "dead after error")

  local co2 = create(function() error({ code = 42 }) end)
  local ok2, e = resume(co2)
  check(not ok2 and type(e) == "table" and e.code == 42, "error object")

  local w = wrap(function() error("wrapped failure") end)
  local ok3, e3 = pcall(w)
  check(not ok3 and tostring(e3):find("wrapped failure"), "wrap rethrows")

  -- pcall inside a coroutine catches without killing it
  local co4 = create(function()
    local ok4 = pcall(error, "inner")
    yield(ok4)
    return "alive"
  end)
  local _, first = resume(co4)
  local _, second = resume(co4)
  check(first == false and second == "alive", "pcall inside coroutine")
end

-- nested coroutines: a coroutine resuming another
do
  local inner = create(function() yield("a"); yield("b") end)
  local outer = create(function()
    local _, x = resume(inner)
    yield(x)
    local _, y = resume(inner)
    yield(y)
  end)
  local _, a = resume(outer)
  local _, b = resume(outer)
  check(a == "a" and b == "b" and status(inner) == "suspended", "nested resume")
end

-- many live coroutines at once, round-robin
do
  local N = 2000
  local cos = {}
  for i = 1, N do
    cos[i] = create(function(x)
      local acc = x
      for _ = 1, 3 do acc = acc + yield(acc) end
      return acc
    end)
  end
  local total = 0
  for round = 1, 4 do
    for i = 1, N do
      local ok, v = resume(cos[i], round == 1 and i or 1)
      check(ok, "many: resume")
      if round == 4 then total = total + v end
    end
  end
  check(total == N * (N + 1) / 2 + 3 * N, "many: total")
  for i = 1, N do check(status(cos[i]) == "dead", "many: dead") end
  cos = nil
  collectgarbage()
end

-- a deep Lua stack inside a coroutine (stack reallocation while suspended)
do
  local function depth(n) if n == 0 then return yield("bottom") end return depth(n - 1) + 1 end
  local co = create(function() return depth(5000) end)
  local _, v = resume(co)
  check(v == "bottom", "deep yield")
  local ok, d = resume(co, 0)
  check(ok and d == 5000, "deep return")
end

-- coroutine garbage: abandoned suspended coroutines are collected
do
  local before
  collectgarbage()
  before = collectgarbage("count")
  for _ = 1, 3000 do
    local co = create(function() local t = {} for i = 1, 20 do t[i] = i end yield(t) end)
    resume(co)
  end
  collectgarbage()
  collectgarbage()
  check(collectgarbage("count") < before + 200, "suspended coroutines collected")
end

-- 5.4+: coroutine.close on a suspended coroutine
if coroutine.close then
  local co = create(function() yield() end)
  resume(co)
  check(coroutine.close(co) == true and status(co) == "dead", "close")
end

print("ok coroutines")
