-- tables.lua: tables growing and shrinking through the array and hash parts,
-- the length operator on proper sequences, next/pairs after deletions.

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function check(cond, what)
  if not cond then error("tables: " .. what, 2) end
end

-- array part grows by doubling; # is exact for proper sequences
do
  local t = {}
  for i = 1, 10000 do
    t[i] = i
    if i % 997 == 0 then check(#t == i, "# while growing") end
  end
  check(#t == 10000, "# after growth")
  for i = 10000, 1, -1 do
    t[i] = nil
    if i % 1013 == 0 then check(#t == i - 1, "# while shrinking") end
  end
  check(#t == 0 and next(t) == nil, "empty after shrinking")
  -- regrow after shrinking (reuses or reallocates the array)
  for i = 1, 5000 do t[#t + 1] = i * 2 end
  check(#t == 5000 and t[5000] == 10000, "regrow")
end

-- table.insert / table.remove at both ends
do
  local t = {}
  for i = 1, 2000 do table.insert(t, i) end
  for i = 1, 500 do table.insert(t, 1, -i) end
  check(#t == 2500 and t[1] == -500 and t[501] == 1, "insert")
  for _ = 1, 1000 do table.remove(t, 1) end
  for _ = 1, 1000 do table.remove(t) end
  check(#t == 500 and t[1] == 501 and t[500] == 1000, "remove")
end

-- hash part: many keys of several types, rehash on growth
do
  local t = {}
  local N = 5000
  for i = 1, N do
    t["s" .. i] = i
    t[i + 0.5] = -i
    t[-i] = i
  end
  t[true] = "yes"; t[false] = "no"
  local key_fn = function() end
  t[key_fn] = "fn"
  check(count(t) == 3 * N + 3, "hash count")
  check(t.s1234 == 1234 and t[10.5] == -10 and t[-77] == 77 and t[key_fn] == "fn", "hash lookup")
  -- delete two thirds, then check traversal sees exactly the rest
  for i = 1, N do
    t["s" .. i] = nil
    if i % 2 == 0 then t[i + 0.5] = nil end
  end
  check(count(t) == N + N / 2 + 3, "count after deletions")
  -- clear fields during traversal (allowed by next's contract)
  local seen = 0
  for k in pairs(t) do
    t[k] = nil
    seen = seen + 1
  end
  check(seen == N + N / 2 + 3, "traversal while clearing")
  check(next(t) == nil, "empty after clearing")
  -- reinsert after deletion: reuses dead slots / rehashes
  for i = 1, 100 do t["r" .. i] = i end
  check(count(t) == 100, "reinsert")
end

-- next() continues correctly after deleting the current key
do
  local t = {}
  for i = 1, 300 do t["k" .. i] = i end
  local k, v = next(t)
  local total, n = 0, 0
  while k do
    total = total + v
    n = n + 1
    local nk, nv = next(t, k)
    t[k] = nil
    k, v = nk, nv
  end
  check(n == 300 and total == 300 * 301 / 2 and next(t) == nil, "next after delete")
end

-- mixed constructor, holes, and array-to-hash migration
do
  local t = { 1, 2, 3, x = 1, y = 2, [10] = 10 }
  check(t[10] == 10 and t.x == 1 and t[3] == 3, "constructor")
  local u = {}
  for i = 1, 64 do u[i * 2] = i end             -- sparse: lives in the hash part
  for i = 1, 128, 2 do u[i] = -i end            -- fill holes: rehash moves to array
  local border = #u
  check(border == 128, "border after fill " .. border)
  for i = 1, 128 do check(u[i] ~= nil, "filled slot") end
end

-- many small tables created and discarded
do
  local keep = {}
  for i = 1, 20000 do
    local r = { i, tostring(i), { i } }
    if i % 100 == 0 then keep[#keep + 1] = r end
  end
  check(#keep == 200 and keep[200][1] == 20000 and keep[200][3][1] == 20000, "small tables")
  collectgarbage()
  check(keep[1][2] == "100", "survivor after collect")
end

-- table.concat and table.sort on grown tables
do
  local t = {}
  for i = 1, 3000 do t[i] = (i * 7919) % 3001 end
  table.sort(t)
  for i = 2, #t do check(t[i - 1] <= t[i], "sorted") end
  local s = {}
  for i = 1, 100 do s[i] = i end
  check(#table.concat(s, ",") == 291, "concat length")
end

print("ok tables")
