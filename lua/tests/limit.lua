-- limit.lua: meant to run under a memory limit (e.g. `lmem-lua --limit 8M`).
-- Inside pcall it grows a table, a list of 1 MiB strings and a doubling
-- string until an allocation fails; the error must say "not enough memory".
-- After each failure the data is released and the script shows allocation
-- works again. Without a limit each phase stops at its cap (128 MiB of
-- attempted data in total) and the script prints "ok limit (no limit hit)".

local function check(cond, what)
  if not cond then error("limit: " .. what, 2) end
end

local MIB = 1024 * 1024
local hits = 0

-- runs grow() in pcall; returns true if it stopped on a memory error
local function phase(name, grow)
  local ok, err = pcall(grow)
  if ok then return false end
  local msg = tostring(err)
  if not msg:find("not enough memory", 1, true) then
    error("limit: phase " .. name .. " failed with an unexpected error: " .. msg, 0)
  end
  hits = hits + 1
  if os.getenv("LIMIT_VERBOSE") then print("  phase " .. name .. ": " .. msg) end
  return true
end

-- after a failure: release everything, then allocate again
local function recover(name)
  collectgarbage()
  collectgarbage()
  local t = {}
  for i = 1, 5000 do t[i] = i end
  local s = string.rep("r", MIB / 4)
  local parts = {}
  for i = 1, 200 do parts[i] = "p" .. i end
  check(#t == 5000 and #s == MIB / 4 and table.concat(parts):sub(1, 4) == "p1p2",
    "allocation after " .. name .. " failure")
  t, s, parts = nil, nil, nil
  collectgarbage()
end

-- phase 1: a table's array part doubling (up to 2^22 entries ≈ 64 MiB)
if phase("table", function()
  local t = {}
  for i = 1, 4 * MIB do t[i] = i end
end) then recover("table") end

-- phase 2: many 1 MiB strings held in a table (up to 48 MiB)
local unit = string.rep("0123456789abcdef", 64)          -- 1 KiB
if phase("strings", function()
  local held = {}
  -- distinct contents: 5.1 interns every string, so equal ones would be shared
  for i = 1, 48 do held[i] = i .. string.rep(unit, 1024) end
end) then recover("strings") end

-- phase 3: a string doubling by concatenation (up to 16 MiB)
if phase("concat", function()
  local s = unit
  while #s < 16 * MIB do s = s .. s end
end) then recover("concat") end

-- the script continues normally after any failures
local sum = 0
for i = 1, 1000 do sum = sum + i end
check(sum == 500500, "arithmetic after recovery")

if hits > 0 then
  print("ok limit (" .. hits .. " of 3 phases hit the limit and recovered)")
else
  print("ok limit (no limit hit)")
end
