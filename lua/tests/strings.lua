-- strings.lua: concatenation, rep, gsub, many short strings, long strings,
-- string.format.

local function check(cond, what)
  if not cond then error("strings: " .. what, 2) end
end

local rep, format, gsub, sub, byte = string.rep, string.format, string.gsub, string.sub, string.byte

-- concat in a loop, and with numbers
do
  local s = ""
  for i = 1, 1000 do s = s .. "x" end
  check(#s == 1000, "loop concat")
  check("a" .. 1 .. "b" .. 22 == "a1b22", "number concat")
  local parts = {}
  for i = 1, 1000 do parts[i] = "p" .. i end
  local j = table.concat(parts, "|")
  check(#j == 2893 + 999 + 1000, "table.concat length " .. #j)
  check(sub(j, 1, 8) == "p1|p2|p3", "table.concat head")
  check(table.concat({}, ",") == "" and table.concat({ "a" }, ",") == "a", "concat edge")
  check(table.concat({ 1, 2, 3 }, ", ", 2, 3) == "2, 3", "concat range")
end

-- rep: small, large, zero, and (5.2+) with separator
do
  check(rep("ab", 3) == "ababab", "rep")
  check(rep("x", 0) == "" and rep("", 100) == "", "rep empty")
  local big = rep("0123456789", 100000)              -- 1 MB long string
  check(#big == 1000000 and sub(big, 999991) == "0123456789", "rep long")
  if rep("a", 2, "-") == "a-a" then
    check(rep("ab", 3, ",") == "ab,ab,ab", "rep sep")
  end
end

-- gsub variants
do
  local s, n = gsub("hello world", "o", "0")
  check(s == "hell0 w0rld" and n == 2, "gsub plain")
  check(gsub("abc", "%w", "%0%0") == "aabbcc", "gsub %0")
  check(gsub("key=val", "(%w+)=(%w+)", "%2=%1") == "val=key", "gsub captures")
  check(gsub("a b c", "%a", { a = "1", b = true and "2" }) == "1 2 c", "gsub table")
  check(gsub("x y", "%a", function(c) return c:upper() end) == "X Y", "gsub function")
  local s2, n2 = gsub(rep("ab", 1000), "a", "xyz", 10)
  check(n2 == 10 and #s2 == 2000 + 20, "gsub max n")
  local long = gsub(rep("a", 50000), "a", "bb")
  check(#long == 100000, "gsub growing")
end

-- many short strings (interned in the string table) and equality
do
  local t = {}
  for i = 1, 30000 do t[i] = "s" .. (i % 5000) end
  local set = {}
  local distinct = 0
  for i = 1, #t do
    if not set[t[i]] then set[t[i]] = true; distinct = distinct + 1 end
  end
  check(distinct == 5000, "distinct short strings")
  check(t[1] == t[5001] and t[1] == "s1", "interned equality")
  t = nil
  set = nil
  collectgarbage()
  local a = "s" .. 42
  check(a == "s42", "short string after collect")
end

-- long strings: building, comparing, substrings, reversal
do
  local a = rep("x", 100000) .. "y"
  local b = rep("x", 100000) .. "y"
  check(a == b and a ~= rep("x", 100001), "long equality")
  check(a:find("y", 1, true) == 100001, "find in long")
  check(a:reverse():sub(1, 2) == "yx", "reverse")
  check(#(a .. a) == 200002, "long concat")
  local doubling = "ab"
  for _ = 1, 16 do doubling = doubling .. doubling end
  check(#doubling == 2 * 65536, "doubling")
  local up = doubling:upper()
  check(byte(up, 1) == 65 and #up == #doubling, "upper")
end

-- string.format
do
  check(format("%d %5d %-3d|", 1, 22, 3) == "1    22 3  |", "format %d")
  check(format("%s %q", "a", "b\n\"c\"") == 'a "b\\\n\\"c\\""', "format %s %q")
  check(format("%x %X %o", 255, 255, 8) == "ff FF 10", "format hex/oct")
  check(format("%.3f %e", 1.5, 1000) == "1.500 1.000000e+03", "format float")
  check(format("%5.1s|", "abc") == "    a|", "format precision")
  check(format("%c%c%c", 76, 117, 97) == "Lua", "format %c")
  local long = format("%s-%s", rep("a", 5000), rep("b", 5000))
  check(#long == 10001, "format long")
  local parts = {}
  for i = 1, 2000 do parts[i] = format("%04d", i) end
  check(parts[7] == "0007" and parts[2000] == "2000", "format many")
end

-- byte/char round trip, tostring/tonumber
do
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  local all = table.concat(bytes)
  check(#all == 256, "all bytes")
  for i = 0, 255 do check(byte(all, i + 1) == i, "byte " .. i) end
  check(tonumber("0x10") == 16 and tonumber("  12  ") == 12 and tonumber("1e2") == 100, "tonumber")
  check(tostring(12) == "12" and tostring(nil) == "nil", "tostring")
end

print("ok strings")
