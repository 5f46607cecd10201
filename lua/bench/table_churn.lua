-- table_churn.lua: tables created, grown through both the array part and the
-- hash part (forcing repeated rehashes), shrunk by setting fields to nil,
-- regrown, and discarded; a ring of survivors keeps some tables alive longer.
-- Usage: lua table_churn.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local M = 1000003

local ROUNDS = floor(5000 * scale)
if ROUNDS < 40 then ROUNDS = 40 end

-- string keys are made once so the churn is about tables, not strings
local skeys = {}
for i = 1, 512 do skeys[i] = "k" .. i end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- One round: its result depends only on (n), so it is checked against a
-- closed form computed independently below.
local function round(n)
  local t = {}
  -- array part grows by doubling
  for i = 1, n do t[i] = i end
  -- hash part: string keys, float keys, negative integer keys
  for i = 1, n do t[skeys[i]] = i * 2 end
  for i = 1, n do t[i + 0.5] = i end
  for i = 1, n do t[-i] = i end
  if #t ~= n then error("table_churn: bad border " .. #t .. " want " .. n) end
  -- shrink: remove odd array slots from the top down, all float keys,
  -- and half the string keys
  for i = n, 1, -1 do
    if i % 2 == 1 then t[i] = nil end
  end
  for i = 1, n do t[i + 0.5] = nil end
  for i = 1, n, 2 do t[skeys[i]] = nil end
  -- regrow with new keys: fills free nodes, then rehash shrinks the table
  for i = 1, n do t[n + i] = i end
  local sum = 0
  for k, v in pairs(t) do
    if type(k) == "number" then sum = (sum + v * 3) % M else sum = (sum + v) % M end
  end
  return t, sum, count(t)
end

-- closed-form expectation for round(n)
local function expect(n)
  local sum = 0
  local cnt = 0
  for i = 2, n, 2 do sum = sum + i * 3; cnt = cnt + 1 end       -- even array slots
  for i = 2, n, 2 do sum = sum + i * 2; cnt = cnt + 1 end       -- even string keys
  for i = 1, n do sum = sum + i * 3; cnt = cnt + 1 end          -- negative keys
  for i = 1, n do sum = sum + i * 3; cnt = cnt + 1 end          -- regrown keys
  return sum % M, cnt
end

local sizes = { 7, 33, 64, 100, 129, 200, 257, 400, 500 }
local want = {}
for i, n in ipairs(sizes) do
  local s, c = expect(n)
  want[i] = { s, c }
end

local ring = {}
local RING = 64
local total = 0
for r = 1, ROUNDS do
  local which = r % #sizes + 1
  local n = sizes[which]
  local t, s, c = round(n)
  if s ~= want[which][1] or c ~= want[which][2] then
    error(string.format("table_churn: round %d n=%d sum %d/%d count %d/%d",
      r, n, s, want[which][1], c, want[which][2]))
  end
  total = (total + s) % M
  -- some survive for a while in the ring
  if r % 3 == 0 then
    ring[r % RING + 1] = t
  end
  -- many tiny tables: records created and dropped
  local recs = {}
  for i = 1, 64 do
    recs[i] = { id = i, name = skeys[i], pos = { i, i + 1 } }
  end
  for i = 64, 1, -1 do
    if recs[i].pos[2] ~= i + 1 then error("table_churn: record damaged") end
    recs[i] = nil
  end
  if next(recs) ~= nil then error("table_churn: records not emptied") end
end

-- ring tables must still hold their shapes
for _, t in pairs(ring) do
  for k, v in pairs(t) do
    if type(k) == "number" and k < 0 and v ~= -k then error("table_churn: ring damaged") end
  end
end

print(string.format("table_churn ok: %d rounds, checksum %d", ROUNDS, total))
