-- closures.lua: closures and upvalues. Counters sharing upvalues, function
-- factories, composition chains and higher-order map/filter/fold that create
-- a fresh closure per call: many small closure + upvalue allocations.
-- Usage: lua closures.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local M = 1000003

local ROUNDS = floor(8000 * scale)
if ROUNDS < 30 then ROUNDS = 30 end

local function map(f, t)
  local r = {}
  for i = 1, #t do r[i] = f(t[i]) end
  return r
end

local function filter(p, t)
  local r = {}
  for i = 1, #t do
    local v = t[i]
    if p(v) then r[#r + 1] = v end
  end
  return r
end

local function fold(f, acc, t)
  for i = 1, #t do acc = f(acc, t[i]) end
  return acc
end

local function compose(f, g) return function(x) return f(g(x)) end end
local function adder(n) return function(x) return x + n end end
local function multiplier(n) return function(x) return x * n end end

-- a counter pair sharing one upvalue; the upvalue is closed when make returns
local function make_counter(start)
  local n = start
  local function inc(d) n = n + (d or 1); return n end
  local function get() return n end
  return inc, get
end

-- an accumulator object built purely from closures
local function make_stack()
  local items, top = {}, 0
  return {
    push = function(v) top = top + 1; items[top] = v end,
    pop = function() local v = items[top]; items[top] = nil; top = top - 1; return v end,
    size = function() return top end,
  }
end

local function one_round(seed)
  local data = {}
  for i = 1, 200 do data[i] = (i * 37 + seed) % 101 end

  -- map with a freshly composed pipeline
  local f = compose(adder(seed % 7), multiplier(3))
  local mapped = map(f, data)
  local evens = filter(function(v) return v % 2 == 0 end, mapped)
  local sum = fold(function(a, b) return (a + b) % M end, 0, evens)

  -- counters: closures created in a loop, each capturing its own fresh local
  local incs, gets = {}, {}
  for i = 1, 50 do incs[i], gets[i] = make_counter(i) end
  for k = 1, 3 do
    for i = 1, 50 do incs[i](k) end
  end
  local csum = 0
  for i = 1, 50 do csum = csum + gets[i]() end

  -- loop closures capturing the loop variable (one upvalue per iteration)
  local fns = {}
  for i = 1, 100 do fns[i] = function() return i * i end end
  local lsum = 0
  for i = 1, 100 do lsum = lsum + fns[i]() end

  -- deep composition chain
  local chain = function(x) return x end
  for i = 1, 40 do chain = compose(adder(i), chain) end
  local csum2 = chain(seed)

  -- closure-based stack
  local st = make_stack()
  for i = 1, 100 do st.push(function() return i + seed end) end
  local ssum = 0
  while st.size() > 0 do ssum = ssum + st.pop()() end

  return sum, csum, lsum, csum2, ssum
end

-- independent expectations for a given seed, computed without closures
local function expect(seed)
  local sum = 0
  for i = 1, 200 do
    local v = ((i * 37 + seed) % 101) * 3 + seed % 7
    if v % 2 == 0 then sum = (sum + v) % M end
  end
  local csum = 0
  for i = 1, 50 do csum = csum + i + 6 end
  local lsum = 0
  for i = 1, 100 do lsum = lsum + i * i end
  local csum2 = seed + 40 * 41 / 2
  local ssum = 100 * 101 / 2 + 100 * seed
  return sum, csum, lsum, csum2, ssum
end

local NSEEDS = 16
local want = {}
for s = 1, NSEEDS do want[s] = { expect(s) } end

local total = 0
for r = 1, ROUNDS do
  local seed = r % NSEEDS + 1
  local got = { one_round(seed) }
  local w = want[seed]
  for j = 1, 5 do
    if got[j] ~= w[j] then
      error(string.format("closures: round %d seed %d value %d: got %d want %d",
        r, seed, j, got[j], w[j]))
    end
  end
  total = (total + got[1]) % M
end
print(string.format("closures ok: %d rounds, checksum %d", ROUNDS, total))
