-- bigchunk.lua: generate and load one large chunk (thousands of lines, nested
-- functions three levels deep, big nested table constructors, long strings),
-- run it and check every result against values computed while generating.
-- Then load it again from a reader function in small pieces.

local loadsrc = loadstring or load
local concat, format = table.concat, string.format

local function check(cond, what)
  if not cond then error("bigchunk: " .. what, 2) end
end

local NF = 300            -- generated functions
local out = {}
local function emit(s) out[#out + 1] = s end
local expected = {}

emit("local M = {}\n")
emit("local data = {}\n")
for i = 1, NF do
  -- level 1: a function with locals and a nested factory
  emit(format("M.f%d = function(x)\n", i))
  emit(format("  local base = %d\n", i * 3))
  emit(format("  local name = \"fn_%d\"\n", i))
  emit("  local function level2(y)\n")
  emit(format("    local k = %d\n", i % 17))
  emit("    local function level3(z)\n")
  emit("      return z + k + base\n")
  emit("    end\n")
  emit("    return level3(y * 2)\n")
  emit("  end\n")
  emit("  local acc = 0\n")
  emit(format("  for j = 1, %d do acc = acc + level2(j) end\n", i % 5 + 1))
  emit("  return acc + x + #name\n")
  emit("end\n")
  local acc = 0
  for j = 1, i % 5 + 1 do acc = acc + j * 2 + i % 17 + i * 3 end
  expected[i] = acc + #("fn_" .. i)          -- plus x, added at call time
  -- a record table constructor with nested tables and a long string
  emit(format("data[%d] = {\n", i))
  emit(format("  id = %d, tag = \"t%d\", ratio = %d.25,\n", i, i % 10, i))
  emit(format("  list = { %d, %d, %d, { %d, %d } },\n", i, i + 1, i + 2, i * 10, i * 20))
  emit(format("  flags = { on = %s, off = %s },\n", i % 2 == 0 and "true" or "false", i % 2 == 0 and "false" or "true"))
  if i % 50 == 0 then
    emit("  text = [[\n" .. string.rep("long string line " .. i .. "\n", 40) .. "]],\n")
  end
  emit("}\n")
end
-- a big flat array constructor
local vals = {}
for i = 1, 5000 do vals[i] = tostring((i * 37) % 1001) end
emit("M.values = { " .. concat(vals, ", ") .. " }\n")
emit("M.data = data\n")
emit("return M\n")

local src = concat(out)
local nlines = select(2, src:gsub("\n", "\n"))
check(nlines > 5000, "generated only " .. nlines .. " lines")

local function verify(M)
  for i = 1, NF do
    local got = M["f" .. i](i)
    check(got == expected[i] + i, format("f%d returned %s, expected %d", i, tostring(got), expected[i] + i))
    local d = M.data[i]
    check(d.id == i and d.tag == "t" .. (i % 10) and d.ratio == i + 0.25, "record " .. i)
    check(d.list[3] == i + 2 and d.list[4][2] == i * 20, "nested list " .. i)
    check(d.flags.on == (i % 2 == 0) and d.flags.off == (i % 2 ~= 0), "flags " .. i)
    if i % 50 == 0 then
      check(#d.text == 40 * #("long string line " .. i .. "\n"), "long string " .. i)
    end
  end
  local s = 0
  for i = 1, #M.values do s = s + M.values[i] end
  local want = 0
  for i = 1, 5000 do want = want + (i * 37) % 1001 end
  check(#M.values == 5000 and s == want, "values")
end

-- 1. load from one string
local f, err = loadsrc(src, "=bigchunk")
check(f, "load failed: " .. tostring(err))
verify(f())

-- 2. load from a reader returning small pieces (lexer buffer growth at
--    piece boundaries); load accepts a function in 5.1 and 5.2+
local pos = 0
local piece = 97
local reader = function()
  if pos >= #src then return nil end
  local s = src:sub(pos + 1, pos + piece)
  pos = pos + piece
  return s
end
local f2, err2 = load(reader, "=bigchunk-pieces")
check(f2, "load from reader failed: " .. tostring(err2))
verify(f2())

-- 3. string.dump round trip of the big chunk (binary chunk loader), 5.1 and 5.2+
if string.dump then
  local bin = string.dump(f)
  local f3, err3 = loadsrc(bin, "=bigchunk-binary")
  check(f3, "binary load failed: " .. tostring(err3))
  verify(f3())
end

print("ok bigchunk")
