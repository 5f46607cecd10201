-- interp.lua: a small toy language, end to end. Each round generates, in a
-- coroutine that yields source pieces, a program (a prelude of known
-- functions, global scalars and arrays, a few hundred random functions whose
-- cost is bounded, and a main), tokenizes it with a coroutine, parses it into AST tables with resolved
-- symbol tables, and runs it three ways:
--   1. a tree-walking interpreter over the AST,
--   2. a closure compiler (every AST node becomes a Lua closure), run inside
--      a coroutine whose `emit` yields to the driver,
--   3. a translator to Lua source, loaded with load/loadstring.
-- Checks: the AST printed back is byte-for-byte the generated source; the
-- three runs emit the same values and leave the same globals and arrays;
-- the prelude's results match closed forms (Fibonacci, gcd, sums of squares,
-- prime counts, Fermat's little theorem mod the prime 1000003); a checksum
-- over all rounds matches fixed values for the default scales.
-- Allocation: long source strings (table.concat of generator pieces), big
-- token arrays, AST and symbol tables, many closures, frames per call,
-- generated Lua chunks; the last few rounds' programs stay live (a module
-- cache), so the heap is large. Rounds alternate generational and
-- incremental GC on Lua 5.4/5.5 (Lua 5.1/LuaJIT: no modes, only
-- collect/step).
-- Usage: lua interp.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local format, concat, sub, find, byte = string.format, table.concat, string.sub, string.find, string.byte
local loadsrc = loadstring or load
local wrap, yield, create, resume, status =
  coroutine.wrap, coroutine.yield, coroutine.create, coroutine.resume, coroutine.status

local has_modes = (_VERSION == "Lua 5.4" or _VERSION == "Lua 5.5")   -- LuaJIT says "Lua 5.1"

local M = 1000003        -- all toy arithmetic is mod this prime; products stay below 2^53

-- work: ROUNDS programs of NFUNC generated functions each
local ROUNDS = floor(11 * scale + 0.5)
if ROUNDS < 2 then ROUNDS = 2 end
local NFUNC = floor(260 * scale * 11 / ROUNDS)
if NFUNC < 12 then NFUNC = 12 end
local KEEP = 3           -- rounds whose programs stay live

local seed = 20240601
local function rand(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

local CHK_MOD = 1000000007
local checksum = 0
local function mix(x)
  checksum = (checksum * 31 + x % CHK_MOD) % CHK_MOD
end

---------------------------------------------------------------- the prelude
-- hand-written toy functions whose results main emits first and the driver
-- checks against closed forms
local PRELUDE = [[
fn fib(n) {
  if (n < 2) {
    return n;
  }
  return fib(n - 1) + fib(n - 2);
}
fn gcd(a, b) {
  while (b != 0) {
    var t = a % b;
    a = b;
    b = t;
  }
  return a;
}
fn sumsq(n) {
  var s = 0;
  for i = 1 to n {
    s = s + i * i;
  }
  return s;
}
fn powmod(b, e) {
  var r = 1;
  while (e > 0) {
    if (e % 2 == 1) {
      r = r * b;
    }
    b = b * b;
    e = e / 2;
  }
  return r;
}
array sieve[5000];
fn primes(n) {
  var c = 0;
  for i = 2 to n {
    sieve[i] = 0;
  }
  for i = 2 to n {
    if (sieve[i] == 0) {
      c = c + 1;
      var j = i * i;
      while (j <= n) {
        sieve[j] = 1;
        j = j + i;
      }
    }
  }
  return c;
}
]]

-- the calls main makes first, with their expected values
local function prelude_calls(round)
  local calls, want = {}, {}
  local n = 12 + round % 6
  local a, b = 0, 1
  for _ = 1, n do a, b = b, (a + b) % M end
  calls[#calls + 1] = format("fib(%d)", n); want[#want + 1] = a
  local x, y = 1000 + rand(90000), 1000 + rand(90000)
  local g = 6 * (1 + rand(50))
  local gx, gy = x * g % M, y * g % M
  local p, q = gx, gy
  while q ~= 0 do p, q = q, p % q end
  calls[#calls + 1] = format("gcd(%d, %d)", gx, gy); want[#want + 1] = p
  local s = 200 + rand(800)
  calls[#calls + 1] = format("sumsq(%d)", s); want[#want + 1] = s * (s + 1) * (2 * s + 1) / 6 % M
  local base = 2 + rand(1000)
  calls[#calls + 1] = format("powmod(%d, %d)", base, M - 1); want[#want + 1] = 1
  local e = rand(5000)
  local r, bb, ee = 1, base, e
  while ee > 0 do
    if ee % 2 == 1 then r = r * bb % M end
    bb = bb * bb % M
    ee = floor(ee / 2)
  end
  calls[#calls + 1] = format("powmod(%d, %d)", base, e); want[#want + 1] = r
  local lim = ({ 100, 1000, 2000, 4999 })[round % 4 + 1]
  local pi = ({ [100] = 25, [1000] = 168, [2000] = 303, [4999] = 669 })[lim]
  calls[#calls + 1] = format("primes(%d)", lim); want[#want + 1] = pi
  return calls, want
end

---------------------------------------------------------------- generator
-- Writes canonical source text (2-space indents, minimal parentheses) so the
-- printer must reproduce it exactly. Every function's worst-case cost is
-- bounded; functions only call earlier ones (and gcd/powmod).
local PREC = { ["||"] = 1, ["&&"] = 2, ["=="] = 3, ["!="] = 3, ["<"] = 4, ["<="] = 4,
               [">"] = 4, [">="] = 4, ["+"] = 5, ["-"] = 5, ["*"] = 6, ["/"] = 6, ["%"] = 6 }
local GEN_OPS = { "+", "-", "*", "+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=",
                  "&&", "||", "+", "*" }
local NGLOB, NARR = 24, 6

local function program_source(nfunc, round)
  return wrap(function()
    local calls, want = prelude_calls(round)
    yield(PRELUDE)
    local gl = {}
    for g = 1, NGLOB do gl[#gl + 1] = format("var g%d = %d;\n", g, rand(M) - 1) end
    yield(concat(gl))
    local asize = {}
    for a = 1, NARR do
      asize[a] = 50 + rand(a * 3000)
      yield(format("array a%d[%d];\n", a, asize[a]))
    end
    -- callable functions: name, arity, cost
    local fns = { { "gcd", 2, 200 }, { "powmod", 2, 300 } }
    local ctx                              -- per function being generated
    local gen_expr
    local function leaf()
      local r = rand(10)
      if r <= 3 then
        if rand(3) == 1 then return tostring(rand(M) - 1), 8, 1 end
        return tostring(rand(20) - 1), 8, 1
      elseif r <= 7 and #ctx.vars > 0 then
        return ctx.vars[rand(#ctx.vars)], 8, 1
      elseif r <= 9 then
        return "g" .. rand(NGLOB), 8, 1
      else
        local a = rand(NARR)
        return format("a%d[%s]", a, ctx.vars[1] or tostring(rand(100))), 8, 2
      end
    end
    local function call(d)
      -- pick a callee we can afford under the current loop multiplier
      local room = (ctx.limit - ctx.cost) / ctx.mult
      for _ = 1, 4 do
        local f = fns[rand(#fns)]
        if f[3] + 10 <= room then
          local args, c = {}, f[3] + 1
          for i = 1, f[2] do
            local t, _, ac = gen_expr(d - 1)
            args[i] = t
            c = c + ac
          end
          return f[1] .. "(" .. concat(args, ", ") .. ")", 8, c
        end
      end
      return leaf()
    end
    gen_expr = function(d)
      if d <= 0 then return leaf() end
      local r = rand(20)
      if r <= 3 then return leaf()
      elseif r <= 15 then
        local op = GEN_OPS[rand(#GEN_OPS)]
        local p = PREC[op]
        local lt, lp, lc = gen_expr(d - 1)
        local rt, rp, rc = gen_expr(d - 1)
        if lp < p then lt = "(" .. lt .. ")" end
        if rp <= p then rt = "(" .. rt .. ")" end
        return lt .. " " .. op .. " " .. rt, p, lc + rc + 1
      elseif r <= 17 then
        local t, p, c = gen_expr(d - 1)
        if p < 7 then t = "(" .. t .. ")" end
        return (rand(3) == 1 and "!" or "-") .. t, 7, c + 1
      elseif r <= 18 then
        local t, _, c = gen_expr(d - 1)
        local a = rand(NARR)
        return format("a%d[%s]", a, t), 8, c + 1
      else
        return call(d)
      end
    end
    local function expr(d)
      local t, _, c = gen_expr(d)
      ctx.cost = ctx.cost + c * ctx.mult
      return t
    end

    local gen_block
    local function stmt(out, ind, depth, last)
      local r = rand(20)
      local v = ctx.vars
      if last then
        out[#out + 1] = ind .. "return " .. expr(3) .. ";\n"
      elseif r <= 5 then
        ctx.nlocal = ctx.nlocal + 1
        local name = "x" .. ctx.nlocal
        out[#out + 1] = ind .. "var " .. name .. " = " .. expr(3) .. ";\n"
        v[#v + 1] = name
        ctx.assignable[#ctx.assignable + 1] = name
      elseif r <= 8 then
        local target
        if #ctx.assignable > 0 and rand(3) > 1 then
          target = ctx.assignable[rand(#ctx.assignable)]
        else
          target = "g" .. rand(NGLOB)
        end
        out[#out + 1] = ind .. target .. " = " .. expr(3) .. ";\n"
      elseif r <= 10 then
        local a = rand(NARR)
        local i = expr(2)
        out[#out + 1] = ind .. format("a%d[%s] = %s;\n", a, i, expr(3))
      elseif r <= 12 and depth < 3 then
        out[#out + 1] = ind .. "if (" .. expr(3) .. ") {\n"
        gen_block(out, ind .. "  ", depth + 1, 1 + rand(3), rand(5) == 1)
        if rand(2) == 1 then
          out[#out + 1] = ind .. "} else {\n"
          gen_block(out, ind .. "  ", depth + 1, 1 + rand(3), rand(5) == 1)
        end
        out[#out + 1] = ind .. "}\n"
      elseif r <= 14 and depth < 3 then
        -- counted loop: for i = lo to (e % k + lo)  (at most k iterations)
        ctx.nloop = ctx.nloop + 1
        local name = "i" .. ctx.nloop
        local lo, k = rand(4) - 1, 1 + rand(6)
        local hi, hp, hc = gen_expr(2)
        ctx.cost = ctx.cost + hc * ctx.mult
        if hp < 6 then hi = "(" .. hi .. ")" end
        out[#out + 1] = ind .. format("for %s = %d to %s %% %d + %d {\n", name, lo, hi, k, lo)
        local saved = ctx.mult
        ctx.mult = ctx.mult * k
        v[#v + 1] = name                      -- readable, never assigned
        gen_block(out, ind .. "  ", depth + 1, 1 + rand(3), false)
        v[#v] = nil
        ctx.mult = saved
        out[#out + 1] = ind .. "}\n"
      elseif r <= 15 and depth < 3 then
        ctx.nloop = ctx.nloop + 1
        local name = "w" .. ctx.nloop
        local k = 1 + rand(5)
        out[#out + 1] = ind .. "var " .. name .. " = 0;\n"
        out[#out + 1] = ind .. format("while (%s < %d) {\n", name, k)
        local saved = ctx.mult
        ctx.mult = ctx.mult * k
        v[#v + 1] = name
        gen_block(out, ind .. "  ", depth + 1, 1 + rand(3), false)
        out[#out + 1] = ind .. "  " .. name .. " = " .. name .. " + 1;\n"
        ctx.mult = saved
        out[#out + 1] = ind .. "}\n"
      elseif r <= 18 then
        out[#out + 1] = ind .. "emit " .. expr(3) .. ";\n"
      else
        local t, _, c = call(2)
        ctx.cost = ctx.cost + c * ctx.mult
        if find(t, "(", 1, true) then
          out[#out + 1] = ind .. t .. ";\n"
        else
          out[#out + 1] = ind .. "emit " .. t .. ";\n"
        end
      end
    end
    gen_block = function(out, ind, depth, n, ret)
      local v, a = ctx.vars, ctx.assignable
      local nv, na = #v, #a
      for i = 1, n do stmt(out, ind, depth, ret and i == n) end
      for i = #v, nv + 1, -1 do v[i] = nil end
      for i = #a, na + 1, -1 do a[i] = nil end
    end

    for k = 1, nfunc do
      local np = rand(4) - 1
      local params = {}
      for i = 1, np do params[i] = "p" .. i end
      ctx = { vars = {}, assignable = {}, nlocal = 0, nloop = 0, mult = 1, cost = 0,
              limit = 150 + rand(k < 20 and 300 or 6000) }
      for i = 1, np do ctx.vars[i] = params[i]; ctx.assignable[i] = params[i] end
      local out = { format("fn f%d(%s) {\n", k, concat(params, ", ")) }
      gen_block(out, "  ", 1, 2 + rand(8), true)
      out[#out + 1] = "}\n"
      fns[#fns + 1] = { "f" .. k, np, ctx.cost + 1 }
      yield(concat(out))
    end

    -- main: the prelude calls, then every generated function twice
    local out = { "fn main() {\n" }
    for i = 1, #calls do out[#out + 1] = "  emit " .. calls[i] .. ";\n" end
    ctx = { vars = {}, assignable = {}, nlocal = 0, nloop = 0, mult = 1, cost = 0, limit = 0 }
    for k = 3, #fns do
      local f = fns[k]
      for _ = 1, 2 do
        local args = {}
        for i = 1, f[2] do args[i] = gen_expr(1) end
        out[#out + 1] = "  emit " .. f[1] .. "(" .. concat(args, ", ") .. ");\n"
      end
    end
    out[#out + 1] = "  return 0;\n}\n"
    yield(concat(out))
    yield(nil, want)
  end)
end

---------------------------------------------------------------- tokenizer
-- a coroutine yields (kind, value) pairs; kind is the keyword/operator text,
-- "N" for names, "#" for numbers
local KEYWORDS = { var = true, array = true, fn = true, ["if"] = true, ["else"] = true,
                   ["while"] = true, ["for"] = true, to = true, ["return"] = true, emit = true }
local TWO = { ["=="] = true, ["!="] = true, ["<="] = true, [">="] = true, ["&&"] = true, ["||"] = true }

local function tokens(src)
  return wrap(function()
    local pos, n = 1, #src
    while true do
      local s, e = find(src, "^[ \n]+", pos)
      if s then pos = e + 1 end
      if pos > n then break end
      local c = byte(src, pos)
      if (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or c == 95 then
        s, e = find(src, "^[%w_]+", pos)
        local word = sub(src, s, e)
        if KEYWORDS[word] then yield(word, word) else yield("N", word) end
        pos = e + 1
      elseif c >= 48 and c <= 57 then
        s, e = find(src, "^%d+", pos)
        yield("#", tonumber(sub(src, s, e)))
        pos = e + 1
      else
        local two = sub(src, pos, pos + 1)
        if TWO[two] then
          yield(two, two)
          pos = pos + 2
        else
          local one = sub(src, pos, pos)
          if not find("+-*/%<>=!(){}[];,", one, 1, true) then
            error("interp: bad character " .. one)
          end
          yield(one, one)
          pos = pos + 1
        end
      end
    end
    yield(nil)
  end)
end

---------------------------------------------------------------- parser
-- AST nodes are tables with a `tag` (the operator text for operators).
-- Names are resolved while parsing: locals to frame slots (block-scoped),
-- globals to indices, arrays to indices with their size, functions to ids.
local function parse(tk, tv)
  local pos = 1
  local globals, garr, gfun = {}, {}, {}      -- symbol tables: name -> record
  local prog = { globals = {}, arrays = {}, funcs = {}, nglob = 0 }
  local scopes, nslots                         -- per function
  local function perr(msg)
    error(format("interp: parse error at token %d (%s): %s", pos, tostring(tv[pos]), msg))
  end
  local function expect(k)
    if tk[pos] ~= k then perr("expected " .. k) end
    pos = pos + 1
    return tv[pos - 1]
  end
  local function lookup(name)
    for i = #scopes, 1, -1 do
      local slot = scopes[i][name]
      if slot then return slot end
    end
    return nil
  end
  local function declare(name)
    nslots = nslots + 1
    scopes[#scopes][name] = nslots
    return nslots
  end

  local parse_expr
  local function primary()
    local k = tk[pos]
    if k == "#" then
      pos = pos + 1
      return { tag = "num", v = tv[pos - 1] }
    elseif k == "N" then
      local name = tv[pos]
      pos = pos + 1
      if tk[pos] == "(" then
        pos = pos + 1
        local f = gfun[name] or perr("unknown function " .. name)
        local args = {}
        if tk[pos] ~= ")" then
          args[1] = parse_expr(1)
          while tk[pos] == "," do
            pos = pos + 1
            args[#args + 1] = parse_expr(1)
          end
        end
        expect(")")
        if #args ~= f.np then perr("wrong argument count for " .. name) end
        return { tag = "call", fn = f.id, args = args, name = name }
      elseif tk[pos] == "[" then
        pos = pos + 1
        local a = garr[name] or perr("unknown array " .. name)
        local i = parse_expr(1)
        expect("]")
        return { tag = "index", arr = a.id, size = a.size, i = i, name = name }
      end
      local slot = lookup(name)
      if slot then return { tag = "local", slot = slot, name = name } end
      local g = globals[name] or perr("unknown variable " .. name)
      return { tag = "global", idx = g.id, name = name }
    elseif k == "(" then
      pos = pos + 1
      local e = parse_expr(1)
      expect(")")
      return e                       -- the printer recomputes parentheses
    end
    perr("unexpected token")
  end
  local function unary()
    local k = tk[pos]
    if k == "-" or k == "!" then
      pos = pos + 1
      return { tag = k == "-" and "neg" or "not", a = unary() }
    end
    return primary()
  end
  parse_expr = function(minp)
    local left = unary()
    while true do
      local op = tk[pos]
      local p = PREC[op]
      if p == nil or p < minp then return left end
      pos = pos + 1
      left = { tag = op, a = left, b = parse_expr(p + 1) }
    end
  end

  local parse_block
  local function statement()
    local k = tk[pos]
    if k == "var" then
      pos = pos + 1
      local name = expect("N")
      expect("=")
      local e = parse_expr(1)
      expect(";")
      return { tag = "decl", slot = declare(name), e = e, name = name }
    elseif k == "if" then
      pos = pos + 1
      expect("(")
      local c = parse_expr(1)
      expect(")")
      local t = parse_block()
      local f
      if tk[pos] == "else" then
        pos = pos + 1
        f = parse_block()
      end
      return { tag = "if", c = c, t = t, f = f }
    elseif k == "while" then
      pos = pos + 1
      expect("(")
      local c = parse_expr(1)
      expect(")")
      return { tag = "while", c = c, body = parse_block() }
    elseif k == "for" then
      pos = pos + 1
      local name = expect("N")
      expect("=")
      local lo = parse_expr(1)
      expect("to")
      local hi = parse_expr(1)
      scopes[#scopes + 1] = {}
      local slot = declare(name)
      local body = parse_block()
      scopes[#scopes] = nil
      return { tag = "for", slot = slot, lo = lo, hi = hi, body = body, name = name }
    elseif k == "return" then
      pos = pos + 1
      local e = parse_expr(1)
      expect(";")
      return { tag = "return", e = e }
    elseif k == "emit" then
      pos = pos + 1
      local e = parse_expr(1)
      expect(";")
      return { tag = "emit", e = e }
    elseif k == "N" then
      local name = tv[pos]
      local nk = tk[pos + 1]
      if nk == "=" then
        pos = pos + 2
        local e = parse_expr(1)
        expect(";")
        local slot = lookup(name)
        if slot then return { tag = "set", slot = slot, e = e, name = name } end
        local g = globals[name] or perr("unknown variable " .. name)
        return { tag = "gset", idx = g.id, e = e, name = name }
      elseif nk == "[" then
        pos = pos + 2
        local a = garr[name] or perr("unknown array " .. name)
        local i = parse_expr(1)
        expect("]")
        expect("=")
        local e = parse_expr(1)
        expect(";")
        return { tag = "aset", arr = a.id, size = a.size, i = i, e = e, name = name }
      elseif nk == "(" then
        local e = primary()
        expect(";")
        return { tag = "call", e = e }
      end
    end
    perr("bad statement")
  end
  parse_block = function()
    expect("{")
    scopes[#scopes + 1] = {}
    local list = {}
    while tk[pos] ~= "}" do list[#list + 1] = statement() end
    pos = pos + 1
    scopes[#scopes] = nil
    return list
  end

  while tk[pos] ~= nil do
    local k = tk[pos]
    if k == "var" then
      pos = pos + 1
      local name = expect("N")
      expect("=")
      local v = expect("#")
      expect(";")
      prog.nglob = prog.nglob + 1
      globals[name] = { id = prog.nglob }
      prog.globals[prog.nglob] = { name = name, init = v }
    elseif k == "array" then
      pos = pos + 1
      local name = expect("N")
      expect("[")
      local size = expect("#")
      expect("]")
      expect(";")
      local id = #prog.arrays + 1
      garr[name] = { id = id, size = size }
      prog.arrays[id] = { name = name, size = size }
    elseif k == "fn" then
      pos = pos + 1
      local name = expect("N")
      local id = #prog.funcs + 1
      local f = { name = name, id = id, np = 0 }
      gfun[name] = f                 -- visible in its own body: recursion
      prog.funcs[id] = f
      expect("(")
      scopes, nslots = { {} }, 0
      if tk[pos] ~= ")" then
        declare(expect("N"))
        while tk[pos] == "," do
          pos = pos + 1
          declare(expect("N"))
        end
      end
      expect(")")
      f.np = nslots
      local params = {}
      for name2, slot in pairs(scopes[1]) do params[slot] = name2 end
      f.params = params
      f.body = parse_block()
      f.nslots = nslots
    else
      perr("bad top-level item")
    end
  end
  prog.main = gfun.main and gfun.main.id or perr("no main")
  return prog
end

---------------------------------------------------------------- printer
-- prints the AST back in the generator's canonical form
local function print_program(prog, src_order)
  local out = {}
  local pexpr
  local function operand(e, p, right)
    local t, ep = pexpr(e)
    if ep < p or (right and ep == p) then return "(" .. t .. ")" end
    return t
  end
  pexpr = function(e)
    local t = e.tag
    if t == "num" then return tostring(e.v), 8
    elseif t == "local" or t == "global" then return e.name, 8
    elseif t == "index" then return e.name .. "[" .. (pexpr(e.i)) .. "]", 8
    elseif t == "call" then
      local args = {}
      for i = 1, #e.args do args[i] = (pexpr(e.args[i])) end
      return e.name .. "(" .. concat(args, ", ") .. ")", 8
    elseif t == "neg" or t == "not" then
      return (t == "neg" and "-" or "!") .. operand(e.a, 7, false), 7
    end
    local p = PREC[t]
    return operand(e.a, p, false) .. " " .. t .. " " .. operand(e.b, p, true), p
  end
  local pblock
  local function pstmt(s, ind)
    local t = s.tag
    if t == "decl" then out[#out + 1] = ind .. "var " .. s.name .. " = " .. (pexpr(s.e)) .. ";\n"
    elseif t == "set" or t == "gset" then out[#out + 1] = ind .. s.name .. " = " .. (pexpr(s.e)) .. ";\n"
    elseif t == "aset" then
      out[#out + 1] = ind .. s.name .. "[" .. (pexpr(s.i)) .. "] = " .. (pexpr(s.e)) .. ";\n"
    elseif t == "if" then
      out[#out + 1] = ind .. "if (" .. (pexpr(s.c)) .. ") {\n"
      pblock(s.t, ind .. "  ")
      if s.f then
        out[#out + 1] = ind .. "} else {\n"
        pblock(s.f, ind .. "  ")
      end
      out[#out + 1] = ind .. "}\n"
    elseif t == "while" then
      out[#out + 1] = ind .. "while (" .. (pexpr(s.c)) .. ") {\n"
      pblock(s.body, ind .. "  ")
      out[#out + 1] = ind .. "}\n"
    elseif t == "for" then
      out[#out + 1] = ind .. "for " .. s.name .. " = " .. (pexpr(s.lo)) .. " to " .. (pexpr(s.hi)) .. " {\n"
      pblock(s.body, ind .. "  ")
      out[#out + 1] = ind .. "}\n"
    elseif t == "return" then out[#out + 1] = ind .. "return " .. (pexpr(s.e)) .. ";\n"
    elseif t == "emit" then out[#out + 1] = ind .. "emit " .. (pexpr(s.e)) .. ";\n"
    elseif t == "call" then out[#out + 1] = ind .. (pexpr(s.e)) .. ";\n"
    end
  end
  pblock = function(list, ind)
    for i = 1, #list do pstmt(list[i], ind) end
  end
  -- top-level items in source order
  for i = 1, #src_order do
    local item = src_order[i]
    if item.kind == "fn" then
      local f = prog.funcs[item.id]
      out[#out + 1] = "fn " .. f.name .. "(" .. concat(f.params, ", ") .. ") {\n"
      pblock(f.body, "  ")
      out[#out + 1] = "}\n"
    elseif item.kind == "var" then
      local g = prog.globals[item.id]
      out[#out + 1] = "var " .. g.name .. " = " .. tostring(g.init) .. ";\n"
    else
      local a = prog.arrays[item.id]
      out[#out + 1] = "array " .. a.name .. "[" .. tostring(a.size) .. "];\n"
    end
  end
  return concat(out)
end

---------------------------------------------------------------- runtime state
local function fresh_state(prog)
  local G, AR = {}, {}
  for i = 1, prog.nglob do G[i] = prog.globals[i].init end
  for i = 1, #prog.arrays do
    local a = {}
    for j = 1, prog.arrays[i].size do a[j] = 0 end
    AR[i] = a
  end
  return G, AR
end

local function div(a, b) if b == 0 then return 0 end return floor(a / b) end
local function mod(a, b) if b == 0 then return 0 end return a % b end

---------------------------------------------------------------- 1. tree walker
local function run_tree(prog)
  local G, AR = fresh_state(prog)
  local funcs = prog.funcs
  local log = {}
  local eval, exec
  eval = function(e, fr)
    local t = e.tag
    if t == "local" then return fr[e.slot]
    elseif t == "num" then return e.v
    elseif t == "+" then return (eval(e.a, fr) + eval(e.b, fr)) % M
    elseif t == "-" then return (eval(e.a, fr) - eval(e.b, fr)) % M
    elseif t == "*" then return (eval(e.a, fr) * eval(e.b, fr)) % M
    elseif t == "global" then return G[e.idx]
    elseif t == "index" then return AR[e.arr][eval(e.i, fr) % e.size + 1]
    elseif t == "<" then return eval(e.a, fr) < eval(e.b, fr) and 1 or 0
    elseif t == "<=" then return eval(e.a, fr) <= eval(e.b, fr) and 1 or 0
    elseif t == ">" then return eval(e.a, fr) > eval(e.b, fr) and 1 or 0
    elseif t == ">=" then return eval(e.a, fr) >= eval(e.b, fr) and 1 or 0
    elseif t == "==" then return eval(e.a, fr) == eval(e.b, fr) and 1 or 0
    elseif t == "!=" then return eval(e.a, fr) ~= eval(e.b, fr) and 1 or 0
    elseif t == "/" then return div(eval(e.a, fr), eval(e.b, fr))
    elseif t == "%" then return mod(eval(e.a, fr), eval(e.b, fr))
    elseif t == "&&" then
      if eval(e.a, fr) == 0 then return 0 end
      return eval(e.b, fr) ~= 0 and 1 or 0
    elseif t == "||" then
      if eval(e.a, fr) ~= 0 then return 1 end
      return eval(e.b, fr) ~= 0 and 1 or 0
    elseif t == "neg" then return (0 - eval(e.a, fr)) % M
    elseif t == "not" then return eval(e.a, fr) == 0 and 1 or 0
    elseif t == "call" then
      local f = funcs[e.fn]
      local args, nf = e.args, {}
      for i = 1, #args do nf[i] = eval(args[i], fr) end
      return exec(f.body, nf) or 0
    end
    error("interp: bad expression " .. tostring(t))
  end
  -- returns the value of a `return`, or nil to continue
  exec = function(list, fr)
    for i = 1, #list do
      local s = list[i]
      local t = s.tag
      if t == "decl" or t == "set" then fr[s.slot] = eval(s.e, fr)
      elseif t == "gset" then G[s.idx] = eval(s.e, fr)
      elseif t == "aset" then
        local k = eval(s.i, fr) % s.size + 1
        AR[s.arr][k] = eval(s.e, fr)
      elseif t == "if" then
        local r
        if eval(s.c, fr) ~= 0 then r = exec(s.t, fr)
        elseif s.f then r = exec(s.f, fr) end
        if r then return r end
      elseif t == "while" then
        while eval(s.c, fr) ~= 0 do
          local r = exec(s.body, fr)
          if r then return r end
        end
      elseif t == "for" then
        local lo, hi = eval(s.lo, fr), eval(s.hi, fr)
        local slot, body = s.slot, s.body
        for v = lo, hi do
          fr[slot] = v
          local r = exec(body, fr)
          if r then return r end
        end
      elseif t == "return" then return eval(s.e, fr)
      elseif t == "emit" then
        local v = eval(s.e, fr)      -- first: the call may emit too
        log[#log + 1] = v
      elseif t == "call" then eval(s.e, fr)
      else error("interp: bad statement " .. tostring(t)) end
    end
    return nil
  end
  local r = exec(funcs[prog.main].body, {})
  return log, G, AR, r
end

---------------------------------------------------------------- 2. closure compiler
local function compile_closures(prog)
  local CF = {}                          -- function id -> callable(frame)
  local G, AR                            -- bound at run time
  local cexpr, cblock
  local BIN = {
    ["+"] = function(a, b) return function(fr) return (a(fr) + b(fr)) % M end end,
    ["-"] = function(a, b) return function(fr) return (a(fr) - b(fr)) % M end end,
    ["*"] = function(a, b) return function(fr) return (a(fr) * b(fr)) % M end end,
    ["/"] = function(a, b) return function(fr) return div(a(fr), b(fr)) end end,
    ["%"] = function(a, b) return function(fr) return mod(a(fr), b(fr)) end end,
    ["<"] = function(a, b) return function(fr) return a(fr) < b(fr) and 1 or 0 end end,
    ["<="] = function(a, b) return function(fr) return a(fr) <= b(fr) and 1 or 0 end end,
    [">"] = function(a, b) return function(fr) return a(fr) > b(fr) and 1 or 0 end end,
    [">="] = function(a, b) return function(fr) return a(fr) >= b(fr) and 1 or 0 end end,
    ["=="] = function(a, b) return function(fr) return a(fr) == b(fr) and 1 or 0 end end,
    ["!="] = function(a, b) return function(fr) return a(fr) ~= b(fr) and 1 or 0 end end,
    ["&&"] = function(a, b) return function(fr)
      if a(fr) == 0 then return 0 end
      return b(fr) ~= 0 and 1 or 0
    end end,
    ["||"] = function(a, b) return function(fr)
      if a(fr) ~= 0 then return 1 end
      return b(fr) ~= 0 and 1 or 0
    end end,
  }
  cexpr = function(e)
    local t = e.tag
    local mk = BIN[t]
    if mk then return mk(cexpr(e.a), cexpr(e.b)) end
    if t == "num" then
      local v = e.v
      return function() return v end
    elseif t == "local" then
      local slot = e.slot
      return function(fr) return fr[slot] end
    elseif t == "global" then
      local idx = e.idx
      return function() return G[idx] end
    elseif t == "index" then
      local arr, size, i = e.arr, e.size, cexpr(e.i)
      return function(fr) return AR[arr][i(fr) % size + 1] end
    elseif t == "neg" then
      local a = cexpr(e.a)
      return function(fr) return (0 - a(fr)) % M end
    elseif t == "not" then
      local a = cexpr(e.a)
      return function(fr) return a(fr) == 0 and 1 or 0 end
    elseif t == "call" then
      local id, n = e.fn, #e.args
      local args = {}
      for i = 1, n do args[i] = cexpr(e.args[i]) end
      if n == 0 then return function() return CF[id]({}) end
      elseif n == 1 then
        local a1 = args[1]
        return function(fr) return CF[id]({ a1(fr) }) end
      elseif n == 2 then
        local a1, a2 = args[1], args[2]
        return function(fr)
          local v1 = a1(fr)
          return CF[id]({ v1, a2(fr) })
        end
      end
      return function(fr)
        local nf = {}
        for i = 1, n do nf[i] = args[i](fr) end
        return CF[id](nf)
      end
    end
    error("interp: cannot compile expression " .. tostring(t))
  end
  -- statement closures return nil to continue or the returned value
  local function cstmt(s)
    local t = s.tag
    if t == "decl" or t == "set" then
      local slot, e = s.slot, cexpr(s.e)
      return function(fr) fr[slot] = e(fr) end
    elseif t == "gset" then
      local idx, e = s.idx, cexpr(s.e)
      return function(fr) G[idx] = e(fr) end
    elseif t == "aset" then
      local arr, size, i, e = s.arr, s.size, cexpr(s.i), cexpr(s.e)
      return function(fr)
        local k = i(fr) % size + 1
        AR[arr][k] = e(fr)
      end
    elseif t == "if" then
      local c, tb = cexpr(s.c), cblock(s.t)
      local fb = s.f and cblock(s.f)
      if fb then
        return function(fr)
          if c(fr) ~= 0 then return tb(fr) end
          return fb(fr)
        end
      end
      return function(fr) if c(fr) ~= 0 then return tb(fr) end end
    elseif t == "while" then
      local c, body = cexpr(s.c), cblock(s.body)
      return function(fr)
        while c(fr) ~= 0 do
          local r = body(fr)
          if r then return r end
        end
      end
    elseif t == "for" then
      local slot, lo, hi, body = s.slot, cexpr(s.lo), cexpr(s.hi), cblock(s.body)
      return function(fr)
        local a = lo(fr)
        for v = a, hi(fr) do
          fr[slot] = v
          local r = body(fr)
          if r then return r end
        end
      end
    elseif t == "return" then
      local e = cexpr(s.e)
      return function(fr) return e(fr) end
    elseif t == "emit" then
      local e = cexpr(s.e)
      return function(fr) yield(e(fr)) end
    elseif t == "call" then
      local e = cexpr(s.e)
      return function(fr) e(fr) end
    end
    error("interp: cannot compile statement " .. tostring(t))
  end
  cblock = function(list)
    local n = #list
    local c = {}
    for i = 1, n do c[i] = cstmt(list[i]) end
    if n == 1 then return c[1] end
    return function(fr)
      for i = 1, n do
        local r = c[i](fr)
        if r then return r end
      end
    end
  end
  for id = 1, #prog.funcs do
    local body = cblock(prog.funcs[id].body)
    CF[id] = function(fr) return body(fr) or 0 end
  end
  -- run inside a coroutine; every emit yields its value to this driver
  return function()
    G, AR = fresh_state(prog)
    local log = {}
    local co = create(function() return CF[prog.main]({}) end)
    local result
    while true do
      local ok, v = resume(co)
      if not ok then error(v, 0) end
      if status(co) == "dead" then result = v; break end
      log[#log + 1] = v
    end
    return log, G, AR, result
  end
end

---------------------------------------------------------------- 3. translator to Lua
local function translate(prog)
  local out = { "local M, D, Mo, G, AR, F, EMIT = ...\n" }
  local lexpr
  local CMP = { ["<"] = "<", ["<="] = "<=", [">"] = ">", [">="] = ">=", ["=="] = "==", ["!="] = "~=" }
  lexpr = function(e)
    local t = e.tag
    if t == "num" then return tostring(e.v)
    elseif t == "local" then return "l" .. e.slot
    elseif t == "global" then return "G[" .. e.idx .. "]"
    elseif t == "index" then
      return "AR[" .. e.arr .. "][(" .. lexpr(e.i) .. ") % " .. e.size .. " + 1]"
    elseif t == "+" or t == "-" or t == "*" then
      return "((" .. lexpr(e.a) .. ") " .. t .. " (" .. lexpr(e.b) .. ")) % M"
    elseif t == "/" then return "D(" .. lexpr(e.a) .. ", " .. lexpr(e.b) .. ")"
    elseif t == "%" then return "Mo(" .. lexpr(e.a) .. ", " .. lexpr(e.b) .. ")"
    elseif CMP[t] then
      return "((" .. lexpr(e.a) .. ") " .. CMP[t] .. " (" .. lexpr(e.b) .. ") and 1 or 0)"
    elseif t == "&&" then
      return "(((" .. lexpr(e.a) .. ") ~= 0 and (" .. lexpr(e.b) .. ") ~= 0) and 1 or 0)"
    elseif t == "||" then
      return "(((" .. lexpr(e.a) .. ") ~= 0 or (" .. lexpr(e.b) .. ") ~= 0) and 1 or 0)"
    elseif t == "neg" then return "(0 - (" .. lexpr(e.a) .. ")) % M"
    elseif t == "not" then return "((" .. lexpr(e.a) .. ") == 0 and 1 or 0)"
    elseif t == "call" then
      local args = {}
      for i = 1, #e.args do args[i] = lexpr(e.args[i]) end
      return "F[" .. e.fn .. "](" .. concat(args, ", ") .. ")"
    end
    error("interp: cannot translate " .. tostring(t))
  end
  local lblock
  local function lstmt(s, ind)
    local t = s.tag
    if t == "decl" then out[#out + 1] = ind .. "local l" .. s.slot .. " = " .. lexpr(s.e) .. "\n"
    elseif t == "set" then out[#out + 1] = ind .. "l" .. s.slot .. " = " .. lexpr(s.e) .. "\n"
    elseif t == "gset" then out[#out + 1] = ind .. "G[" .. s.idx .. "] = " .. lexpr(s.e) .. "\n"
    elseif t == "aset" then
      out[#out + 1] = ind .. "do local k = (" .. lexpr(s.i) .. ") % " .. s.size .. " + 1; AR["
        .. s.arr .. "][k] = " .. lexpr(s.e) .. " end\n"
    elseif t == "if" then
      out[#out + 1] = ind .. "if (" .. lexpr(s.c) .. ") ~= 0 then\n"
      lblock(s.t, ind .. " ")
      if s.f then
        out[#out + 1] = ind .. "else\n"
        lblock(s.f, ind .. " ")
      end
      out[#out + 1] = ind .. "end\n"
    elseif t == "while" then
      out[#out + 1] = ind .. "while (" .. lexpr(s.c) .. ") ~= 0 do\n"
      lblock(s.body, ind .. " ")
      out[#out + 1] = ind .. "end\n"
    elseif t == "for" then
      out[#out + 1] = ind .. "for l" .. s.slot .. " = " .. lexpr(s.lo) .. ", " .. lexpr(s.hi) .. " do\n"
      lblock(s.body, ind .. " ")
      out[#out + 1] = ind .. "end\n"
    elseif t == "return" then out[#out + 1] = ind .. "do return " .. lexpr(s.e) .. " end\n"
    elseif t == "emit" then out[#out + 1] = ind .. "EMIT(" .. lexpr(s.e) .. ")\n"
    elseif t == "call" then out[#out + 1] = ind .. lexpr(s.e) .. "\n"
    end
  end
  lblock = function(list, ind)
    for i = 1, #list do lstmt(list[i], ind) end
  end
  for id = 1, #prog.funcs do
    local f = prog.funcs[id]
    local params = {}
    for i = 1, f.np do params[i] = "l" .. i end
    out[#out + 1] = "F[" .. id .. "] = function(" .. concat(params, ", ") .. ")\n"
    lblock(f.body, " ")
    out[#out + 1] = " return 0\nend\n"
  end
  local code = concat(out)
  local chunk, err = loadsrc(code, "=toy")
  if not chunk then error("interp: generated Lua does not load: " .. tostring(err)) end
  return function()
    local G, AR = fresh_state(prog)
    local F, log = {}, {}
    chunk(M, div, mod, G, AR, F, function(v) log[#log + 1] = v end)
    local r = F[prog.main]()
    return log, G, AR, r
  end, code
end

---------------------------------------------------------------- driver
local function same_state(G1, AR1, G2, AR2, who)
  for i = 1, #G1 do
    if G1[i] ~= G2[i] then error(format("interp: %s: global %d differs", who, i)) end
  end
  for a = 1, #AR1 do
    local x, y = AR1[a], AR2[a]
    if #x ~= #y then error(format("interp: %s: array %d size differs", who, a)) end
    for j = 1, #x do
      if x[j] ~= y[j] then error(format("interp: %s: array %d slot %d differs", who, a, j)) end
    end
  end
end

local function same_log(l1, l2, who)
  if #l1 ~= #l2 then error(format("interp: %s: %d values emitted, expected %d", who, #l2, #l1)) end
  for i = 1, #l1 do
    if l1[i] ~= l2[i] then error(format("interp: %s: emit %d is %s, expected %s", who, i,
      tostring(l2[i]), tostring(l1[i]))) end
  end
end

local function joined(log)
  local strs = {}
  for i = 1, #log do strs[i] = format("%.0f", log[i]) end
  return concat(strs, ",")
end

local cache = {}              -- the last KEEP rounds' programs stay live
local total_src, total_emits, total_tokens = 0, 0, 0

for round = 1, ROUNDS do
  -- alternate the collector's mode per round (5.4/5.5 only)
  if has_modes then
    collectgarbage(round % 2 == 1 and "generational" or "incremental")
  end

  -- generate: the generator coroutine yields source pieces
  local pieces, want = {}, nil
  local gen = program_source(NFUNC, round)
  while true do
    local piece, w = gen()
    if piece == nil then want = w; break end
    pieces[#pieces + 1] = piece
  end
  local src = concat(pieces)
  pieces = nil
  total_src = total_src + #src

  -- tokenize into big parallel arrays (kind, value)
  local tk, tv, nt = {}, {}, 0
  local nexttok = tokens(src)
  while true do
    local k, v = nexttok()
    if k == nil then break end
    nt = nt + 1
    tk[nt], tv[nt] = k, v
  end
  total_tokens = total_tokens + nt

  local prog = parse(tk, tv)
  -- the order of top-level items (for the printer): scan at brace depth 0
  local order = {}
  do
    local depth, nf, ng, na = 0, 0, 0, 0
    for i = 1, nt do
      local k = tk[i]
      if k == "{" then depth = depth + 1
      elseif k == "}" then depth = depth - 1
      elseif depth == 0 then
        if k == "fn" then nf = nf + 1; order[#order + 1] = { kind = "fn", id = nf }
        elseif k == "array" then na = na + 1; order[#order + 1] = { kind = "array", id = na }
        elseif k == "var" then ng = ng + 1; order[#order + 1] = { kind = "var", id = ng }
        end
      end
    end
  end
  tk, tv = nil, nil
  collectgarbage("step")

  -- 0. the printed AST must be the generated source
  local printed = print_program(prog, order)
  if printed ~= src then
    local i = 1
    while byte(printed, i) == byte(src, i) do i = i + 1 end
    error(format("interp: printed program differs at byte %d: %q vs %q", i,
      sub(printed, i - 20, i + 20), sub(src, i - 20, i + 20)))
  end
  printed = nil

  -- 1. tree walker
  local log1, G1, AR1, r1 = run_tree(prog)
  collectgarbage("step")
  -- 2. closures in a coroutine
  local run2 = compile_closures(prog)
  local log2, G2, AR2, r2 = run2()
  same_log(log1, log2, "closures")
  same_state(G1, AR1, G2, AR2, "closures")
  log2, G2, AR2 = nil, nil, nil
  collectgarbage("step")
  -- 3. translated to Lua
  local run3, lua_code = translate(prog)
  local log3, G3, AR3, r3 = run3()
  same_log(log1, log3, "translated")
  same_state(G1, AR1, G3, AR3, "translated")
  log3, G3, AR3 = nil, nil, nil
  if r1 ~= 0 or r2 ~= 0 or r3 ~= 0 then error("interp: main returned nonzero") end

  -- the prelude's results against closed forms
  for i = 1, #want do
    if log1[i] ~= want[i] then
      error(format("interp: prelude call %d gave %s, expected %s", i, tostring(log1[i]), tostring(want[i])))
    end
  end
  -- the emitted values as one long string, hashed into the checksum
  local text = joined(log1)
  local h = 0
  for i = 1, #log1 do h = (h * 131 + log1[i]) % CHK_MOD end
  mix(h); mix(#text); mix(#log1); mix(#src); mix(nt)
  for i = 1, #G1 do mix(G1[i]) end
  total_emits = total_emits + #log1

  -- keep this round's program (AST, closures, Lua chunk and source) live
  cache[#cache + 1] = { prog = prog, run2 = run2, run3 = run3, src = src, lua = lua_code, log = text }
  if #cache > KEEP then table.remove(cache, 1) end
  if not has_modes then collectgarbage("step") end
end

-- the cached programs still run and reproduce their logs: the oldest one
-- through its closures, the newest through its Lua chunk
if joined((cache[1].run2())) ~= cache[1].log or joined((cache[#cache].run3())) ~= cache[#cache].log then
  error("interp: a cached program changed its output")
end
collectgarbage("collect")

-- fixed checksums for scales 1, 0.1, 0.05, 0.02 and 0.01 (key: rounds, functions)
local KNOWN = { [1100260] = 466502062, [200143] = 477691011, [200071] = 856283714,
                [200028] = 697429927, [200014] = 611407983 }
local key = ROUNDS * 100000 + NFUNC
if KNOWN[key] and KNOWN[key] ~= checksum then
  error(format("interp: checksum %.0f, expected %.0f", checksum, KNOWN[key]))
end

print(format("interp ok: %d rounds, %d functions each, %d bytes of source, %d tokens, %d values emitted, checksum %.0f",
  ROUNDS, NFUNC, total_src, total_tokens, total_emits, checksum))
