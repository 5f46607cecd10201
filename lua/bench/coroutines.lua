-- coroutines.lua: coroutine pipelines. A producer feeds a chain of filter
-- coroutines into a consumer; a sieve grows one filter coroutine per prime;
-- a round-robin scheduler keeps hundreds of coroutines alive at once.
-- Each coroutine owns a Lua thread with its own stack: thread + stack churn.
-- Usage: lua coroutines.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local create, resume, yield, wrap, status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.wrap, coroutine.status
local M = 1000003

local ROUNDS = floor(400 * scale)
if ROUNDS < 3 then ROUNDS = 3 end

-- 1. producer -> map -> filter -> batcher -> consumer
local function producer(n)
  return wrap(function()
    for i = 1, n do yield(i) end
  end)
end

local function mapper(src, f)
  return wrap(function()
    for v in src do yield(f(v)) end
  end)
end

local function filterer(src, p)
  return wrap(function()
    for v in src do
      if p(v) then yield(v) end
    end
  end)
end

-- groups values into small tables of k (allocates per batch)
local function batcher(src, k)
  return wrap(function()
    local b = {}
    for v in src do
      b[#b + 1] = v
      if #b == k then yield(b); b = {} end
    end
    if #b > 0 then yield(b) end
  end)
end

local function pipeline(n)
  local src = producer(n)
  src = mapper(src, function(v) return v * 3 + 1 end)
  src = filterer(src, function(v) return v % 2 == 0 end)
  src = mapper(src, function(v) return v % 1000 end)
  local sum, count = 0, 0
  for b in batcher(src, 7) do
    for i = 1, #b do sum = (sum + b[i]) % M; count = count + 1 end
  end
  return sum, count
end

local function pipeline_expect(n)
  local sum, count = 0, 0
  for i = 1, n do
    local v = i * 3 + 1
    if v % 2 == 0 then sum = (sum + v % 1000) % M; count = count + 1 end
  end
  return sum, count
end

-- 2. prime sieve: one filter coroutine per prime found
local function sieve(limit)
  local function gen()
    return create(function()
      for i = 2, limit do yield(i) end
      yield(nil)
    end)
  end
  local function filt(src, p)
    return create(function()
      while true do
        local _, v = resume(src)
        if v == nil then yield(nil); return end
        if v % p ~= 0 then yield(v) end
      end
    end)
  end
  local src = gen()
  local count, last = 0, 0
  while true do
    local ok, p = resume(src)
    if not ok then error(p) end
    if p == nil then break end
    count = count + 1
    last = p
    src = filt(src, p)
  end
  return count, last
end

-- 3. scheduler: many coroutines alive at once, each yielding a few times
local function scheduler(ntasks, steps)
  local tasks = {}
  for t = 1, ntasks do
    tasks[t] = create(function(a)
      local acc = a
      for s = 1, steps do
        acc = acc + yield(acc) * s
      end
      return acc
    end)
  end
  local finished, total = 0, 0
  local live = ntasks
  local arg = {}
  for t = 1, ntasks do arg[t] = t end
  while live > 0 do
    for t = 1, ntasks do
      local co = tasks[t]
      if co then
        local ok, v = resume(co, arg[t])
        if not ok then error(v) end
        if status(co) == "dead" then
          total = (total + v) % M
          finished = finished + 1
          tasks[t] = nil
          live = live - 1
        else
          arg[t] = 1
        end
      end
    end
  end
  return finished, total
end

local function scheduler_expect(ntasks, steps)
  local total = 0
  for t = 1, ntasks do
    total = (total + t + steps * (steps + 1) / 2) % M
  end
  return ntasks, total
end

local PN = 1500
local want_ps, want_pc = pipeline_expect(PN)
local NT, ST = 400, 10
local want_f, want_t = scheduler_expect(NT, ST)

local primes = 0
for r = 1, ROUNDS do
  local s, c = pipeline(PN)
  if s ~= want_ps or c ~= want_pc then
    error(string.format("coroutines: pipeline %d/%d want %d/%d", s, c, want_ps, want_pc))
  end
  local pc, last = sieve(1000)
  if pc ~= 168 or last ~= 997 then
    error(string.format("coroutines: sieve found %d primes, last %d", pc, last))
  end
  primes = primes + pc
  local f, t = scheduler(NT, ST)
  if f ~= want_f or t ~= want_t then
    error(string.format("coroutines: scheduler %d/%d want %d/%d", f, t, want_f, want_t))
  end
end
print(string.format("coroutines ok: %d rounds, %d primes sieved", ROUNDS, primes))
