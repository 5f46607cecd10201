-- codegen.lua: generate Lua source (functions with many constants, locals,
-- nested functions and table constructors), load it, run it and check the
-- results against values computed while generating. Exercises the parser and
-- code generator: growing and shrinking code/constant/local/upvalue arrays,
-- prototypes and the lexer's buffers, then lots of garbage functions.
-- Usage: lua codegen.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local format, concat = string.format, table.concat
local loadsrc = loadstring or load

local ROUNDS = floor(300 * scale)
if ROUNDS < 5 then ROUNDS = 5 end

local seed = 777
local function rand(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

-- Generates one function body; returns its source and the value f(p) - p.
local function gen_function(out, idx, round)
  local nlocals = 10 + rand(150)             -- stays under the 200-local limit
  local expect = 0
  out[#out + 1] = format("F[%d] = function(p)\n", idx)
  -- a chain of locals, each with its own numeric constant
  local c = round * 100000 + idx * 1000 + 1
  out[#out + 1] = format("  local a1 = %d\n", c)
  expect = c
  for k = 2, nlocals do
    c = round * 100000 + idx * 1000 + k
    if k % 5 == 0 then
      out[#out + 1] = format("  local a%d = a%d - %d\n", k, k - 1, c)
      expect = expect - c
    else
      out[#out + 1] = format("  local a%d = a%d + %d\n", k, k - 1, c)
      expect = expect + c
    end
  end
  -- a table constructor mixing array items, string keys and nested tables
  local nitems = rand(120)
  local items = {}
  local tsum = 0
  for k = 1, nitems do
    local v = rand(1000)
    tsum = tsum + v
    items[#items + 1] = format("%d", v)
    if k % 10 == 0 then
      items[#items + 1] = format("k_%d_%d = \"s%d_%d_%d\"", round, k, round, idx, k)
    end
  end
  items[#items + 1] = format("nested = { %d, { %d }, deep = { x = %d } }", idx, idx * 2, idx * 3)
  out[#out + 1] = "  local t = { " .. concat(items, ", ") .. " }\n"
  expect = expect + tsum + idx + idx * 2 + idx * 3
  -- a nested closure over some of the locals (upvalues)
  local nup = rand(20)
  if nup > nlocals then nup = nlocals end
  local ups = {}
  for k = 1, nup do
    local which = nlocals - k + 1
    ups[k] = "a" .. which
  end
  out[#out + 1] = "  local function inner(q)\n    return q"
  for k = 1, nup do out[#out + 1] = " + " .. ups[k] end
  out[#out + 1] = "\n  end\n"
  out[#out + 1] = "  local s = 0\n  for i = 1, #t do s = s + t[i] end\n"
  out[#out + 1] = format("  return a%d + s + t.nested[1] + t.nested[2][1] + t.nested.deep.x + p + inner(0) - inner(0)\n", nlocals)
  out[#out + 1] = "end\n"
  return expect
end

local function one_round(round)
  local out = { "local F = {}\n" }
  local nf = 10 + rand(20)
  local expects = {}
  for j = 1, nf do expects[j] = gen_function(out, j, round) end
  -- a big flat constructor of distinct string and float constants
  local big = {}
  local n = 200 + rand(800)
  for k = 1, n do big[k] = format("\"c%d_%d\"", round, k) end
  out[#out + 1] = "F.big = { " .. concat(big, ", ") .. " }\n"
  local fl = {}
  for k = 1, 300 do fl[k] = format("%d.25", round * 1000 + k) end
  out[#out + 1] = "F.fl = { " .. concat(fl, ", ") .. " }\n"
  out[#out + 1] = "return F\n"
  local src = concat(out)
  local chunk, err = loadsrc(src, "=codegen" .. round)
  if not chunk then error("codegen: load failed: " .. tostring(err)) end
  local F = chunk()
  for j = 1, nf do
    local got = F[j](j)
    if got ~= expects[j] + j then
      error(format("codegen: round %d function %d returned %d, expected %d", round, j, got, expects[j] + j))
    end
  end
  if #F.big ~= n or F.big[n] ~= format("c%d_%d", round, n) then error("codegen: big table mismatch") end
  local fsum = 0
  for k = 1, 300 do fsum = fsum + F.fl[k] end
  if fsum ~= 300 * round * 1000 + 300 * 301 / 2 + 300 * 0.25 then error("codegen: float table mismatch") end
  return #src
end

local bytes = 0
for r = 1, ROUNDS do bytes = bytes + one_round(r) end
print(format("codegen ok: %d chunks, %d bytes of source compiled", ROUNDS, bytes))
