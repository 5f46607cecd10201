-- gc.lua: memory accounting visible through collectgarbage("count") goes
-- down after releasing data; __gc finalizers run (tables in 5.2+, newproxy
-- userdata in 5.1); weak-keyed and weak-valued tables are cleared.

local function check(cond, what)
  if not cond then error("gc: " .. what, 2) end
end

local is51 = _VERSION == "Lua 5.1"
local isjit = type(jit) == "table"

-- makes an object whose finalizer calls fn(tag)
local function finalizable(tag, fn)
  if not is51 then
    return setmetatable({ tag = tag }, { __gc = function(o) fn(o.tag) end })
  elseif newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = function() fn(tag) end
    return p
  end
  return nil
end

-- count goes up while holding data and down after releasing it
do
  collectgarbage()
  collectgarbage()
  local base = collectgarbage("count")
  local hold = {}
  for i = 1, 20000 do hold[i] = { i, tostring(i) } end
  hold.big = string.rep("z", 2000000)
  local peak = collectgarbage("count")
  check(peak > base + 2000, "count grows (" .. base .. " -> " .. peak .. ")")
  hold = nil
  collectgarbage()
  collectgarbage()
  local after = collectgarbage("count")
  check(after < peak - 2000, "count drops after release (" .. peak .. " -> " .. after .. ")")
  -- LuaJIT keeps the buffer string.rep built its result in (2 MB here) and
  -- halves it at each collection
  for _ = 1, isjit and 20 or 0 do
    if after < base + 200 then break end
    collectgarbage()
    after = collectgarbage("count")
  end
  check(after < base + 200, "count back near base (" .. base .. " -> " .. after .. ")")
end

-- incremental steps alone (no full collection) reclaim released garbage.
-- Only basic steps ("step", 0) are used: the unit of a non-zero step is KiB
-- up to 5.4 but bytes in 5.5, and whether "step" returns true at the end of
-- a cycle varies between releases, so only the effect is checked.
do
  collectgarbage()
  local junk = {}
  for i = 1, 20000 do junk[i] = { i } end
  local peak = collectgarbage("count")
  junk = nil
  local after = peak
  for i = 1, 100000 do
    collectgarbage("step", 0)
    if i % 16 == 0 then
      after = collectgarbage("count")
      if after < peak - 500 then break end
    end
  end
  check(after < peak - 500, "steps reclaim garbage (" .. peak .. " -> " .. after .. ")")
end

-- finalizers
do
  local ran = {}
  local objs = {}
  local made = 0
  for i = 1, 50 do
    local o = finalizable(i, function(tag) ran[#ran + 1] = tag end)
    if o then objs[i] = o; made = made + 1 end
  end
  if made > 0 then
    objs = nil
    collectgarbage()
    collectgarbage()
    check(#ran == made, "finalizers ran: " .. #ran .. " of " .. made)
    -- finalizers run in reverse order of marking (creation) within a cycle
    local seen = {}
    for _, t in ipairs(ran) do seen[t] = true end
    for i = 1, 50 do check(seen[i], "finalizer " .. i) end
  end
  -- an object kept alive is not finalized
  local kept_ran = false
  local kept = finalizable("kept", function() kept_ran = true end)
  collectgarbage()
  check(not kept_ran, "live object not finalized")
  if kept then kept = nil end
  collectgarbage()
  collectgarbage()
  check(made == 0 or kept_ran, "finalized after release")
end

-- resurrection: a finalizer storing its object keeps it usable (5.2+ tables)
if not is51 then
  local saved
  do
    setmetatable({ v = 99 }, { __gc = function(o) saved = o end })
  end
  collectgarbage()
  collectgarbage()
  check(saved and saved.v == 99, "resurrected object readable")
  saved = nil
  collectgarbage()
end

-- weak tables
do
  local wk = setmetatable({}, { __mode = "k" })
  local wv = setmetatable({}, { __mode = "v" })
  local wkv = setmetatable({}, { __mode = "kv" })
  local anchors = {}
  for i = 1, 100 do
    local key, val = {}, {}
    wk[key] = i
    wv[i] = val
    wkv[key] = val
    if i % 10 == 0 then anchors[#anchors + 1] = key; anchors[#anchors + 1] = val end
  end
  -- strings and numbers are values, never collected from weak tables
  wv[1000] = "a string value"
  wv[1001] = 3.5
  collectgarbage()
  collectgarbage()
  local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
  check(count(wk) == 10, "weak keys cleared: " .. count(wk))
  check(count(wv) == 12, "weak values cleared: " .. count(wv))     -- 10 anchored + 2 non-collectable
  check(count(wkv) == 10, "weak kv cleared: " .. count(wkv))
  check(wv[1000] == "a string value" and wv[1001] == 3.5, "weak values kept non-collectables")
  for i = 1, #anchors, 2 do
    check(wk[anchors[i]] ~= nil and wkv[anchors[i]] == anchors[i + 1], "anchored entries survive")
  end
  anchors = nil
  collectgarbage()
  collectgarbage()
  check(next(wk) == nil and next(wkv) == nil, "weak tables empty after releasing anchors")
end

-- 5.2+: ephemeron table: value refers to its own key, still collected
if not is51 then
  local eph = setmetatable({}, { __mode = "k" })
  for _ = 1, 50 do
    local k = {}
    eph[k] = { ref = k }
  end
  collectgarbage()
  collectgarbage()
  check(next(eph) == nil, "ephemerons collected")
end

-- 5.4+: generational mode collects too; switch back afterwards
do
  local ok = pcall(collectgarbage, "generational")
  if ok and collectgarbage("count") then
    local wv = setmetatable({}, { __mode = "v" })
    for i = 1, 1000 do wv[i] = {} end
    collectgarbage()
    check(next(wv) == nil, "generational full collection clears weak values")
    collectgarbage("incremental")
  end
end

-- stop/restart and isrunning (5.2+)
do
  collectgarbage("stop")
  local junk = {}
  for i = 1, 1000 do junk[i] = { i } end
  junk = nil
  collectgarbage("restart")
  if not is51 then check(collectgarbage("isrunning") == true, "isrunning") end
  collectgarbage()
end

print("ok gc")
