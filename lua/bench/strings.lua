-- strings.lua: string building. Concatenation in loops, table.concat,
-- string.rep, gsub, string.format and many short (interned) strings; lots of
-- short-lived string garbage plus buffers that grow and are thrown away.
-- Usage: lua strings.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local format, rep, gsub, byte, sub = string.format, string.rep, string.gsub, string.byte, string.sub
local concat = table.concat
local M = 1000003

-- string.rep's separator argument is 5.2+; emulate it on 5.1
local rep_sep = rep
if rep("a", 2, "-") ~= "a-a" then
  rep_sep = function(s, n, sep)
    if n <= 0 then return "" end
    return rep(s .. sep, n - 1) .. s
  end
end

local ROUNDS = floor(1500 * scale)
if ROUNDS < 20 then ROUNDS = 20 end

-- polynomial hash over a sample of bytes (every 7th) plus the length
local function shash(s)
  local h = #s
  for i = 1, #s, 7 do h = (h * 31 + byte(s, i)) % M end
  return h
end

local function one_round()
  local h = 0
  -- 1. concat in a loop (quadratic-ish copying of a growing string)
  local s = ""
  for i = 1, 150 do s = s .. i .. "," end
  h = (h + shash(s)) % M
  -- 2. table.concat of formatted pieces
  local parts = {}
  for i = 1, 300 do
    parts[i] = format("%05d:%s:%x", i, (i % 3 == 0) and "fizz" or "n", i * 7)
  end
  local joined = concat(parts, ";")
  h = (h + shash(joined)) % M
  -- 3. string.rep with and without separators
  local r1 = rep("ab", 500)
  local r2 = rep_sep("xyz", 200, "-")
  if #r1 ~= 1000 or #r2 ~= 200 * 3 + 199 then error("strings: rep length") end
  h = (h + shash(r1) + shash(r2)) % M
  -- 4. gsub with string, pattern captures, function and table replacements
  local g1, n1 = gsub(joined, "fizz", "buzz")
  if n1 ~= 100 then error("strings: gsub count " .. n1) end
  local g2 = gsub(g1, "(%d+):(%a+)", "%2=%1")
  local g3 = gsub(g2, "%x%x", function(x) return sub(x, 2, 2) end)
  local map = { a = "1", b = "2" }
  local g4 = gsub(r1, "%a", map)
  h = (h + shash(g2) + shash(g3) + shash(g4)) % M
  -- 5. many short strings: built, interned, compared, used as keys
  local seen = {}
  local distinct = 0
  for i = 1, 400 do
    local k = "id" .. (i % 97) .. "_" .. (i % 5)
    if not seen[k] then seen[k] = true; distinct = distinct + 1 end
  end
  h = (h + distinct) % M
  -- 6. split and rejoin
  local words = {}
  for w in joined:gmatch("[^;]+") do words[#words + 1] = w:upper() end
  local back = concat(words, ";"):lower()
  if back ~= joined then error("strings: split/rejoin mismatch") end
  -- 7. reverse / sub / a long-string rebuild via buffer doubling
  local buf = "seed"
  while #buf < 20000 do buf = buf .. buf:reverse() end
  h = (h + shash(sub(buf, 100, 4000))) % M
  return h
end

local want = one_round()
-- independent spot checks of the first round's pieces against literals
do
  local s = ""
  for i = 1, 3 do s = s .. i .. "," end
  if s ~= "1,2,3," then error("strings: concat literal") end
  if format("%05d:%s:%x", 12, "fizz", 84) ~= "00012:fizz:54" then error("strings: format") end
  if gsub("00003:fizz", "(%d+):(%a+)", "%2=%1") ~= "fizz=00003" then error("strings: gsub capture") end
  if rep_sep("xyz", 3, "-") ~= "xyz-xyz-xyz" then error("strings: rep sep") end
end
local EXPECTED = 635168  -- computed once with lua5.4 and lua5.1; must match both
if want ~= EXPECTED then
  error(format("strings: checksum %d, expected %d", want, EXPECTED))
end
for r = 2, ROUNDS do
  local h = one_round()
  if h ~= want then error(format("strings: round %d checksum %d ~= %d", r, h, want)) end
end
print(format("strings ok: %d rounds, checksum %d", ROUNDS, want))
