-- objects.lua: object simulation with metatables and __index inheritance.
-- Bank accounts of three classes (Account <- Savings <- Premium) make
-- transfers; accounts are closed and replaced by new objects; every
-- transfer records a small transaction object kept in a bounded log.
-- Invariant: total money is conserved (plus interest minted, which is
-- tracked separately). Many small objects updated and replaced.
-- Usage: lua objects.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor

local STEPS = floor(800000 * scale)
if STEPS < 2000 then STEPS = 2000 end

-- deterministic Park-Miller generator: products stay below 2^53, so 5.1
-- doubles and 5.4 integers produce the same sequence
local seed = 12345
local function rand(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

local function class(parent)
  local c = {}
  c.__index = c
  if parent then setmetatable(c, { __index = parent }) end
  c.new = function(...)
    local o = setmetatable({}, c)
    o:init(...)
    return o
  end
  return c
end

local Account = class()
function Account:init(id, balance)
  self.id = id
  self.balance = balance
  self.history = 0
end
function Account:deposit(v) self.balance = self.balance + v; self.history = self.history + 1 end
function Account:withdraw(v)
  if v > self:limit() then return false end
  self.balance = self.balance - v
  self.history = self.history + 1
  return true
end
function Account:limit() return self.balance end
function Account:kind() return "basic" end
function Account:interest() return 0 end

local Savings = class(Account)
function Savings:init(id, balance, rate)
  Account.init(self, id, balance)
  self.rate = rate
end
function Savings:kind() return "savings" end
function Savings:interest() return floor(self.balance * self.rate / 1000) end

local Premium = class(Savings)
function Premium:init(id, balance, rate, overdraft)
  Savings.init(self, id, balance, rate)
  self.overdraft = overdraft
end
function Premium:kind() return "premium" end
function Premium:limit() return self.balance + self.overdraft end

local Tx = class()
function Tx:init(from, to, amount) self.from = from; self.to = to; self.amount = amount end

local NACC = 500
local accounts = {}
local next_id = 0
local function open(balance)
  next_id = next_id + 1
  local k = next_id % 3
  if balance < 0 then k = 2 end     -- an overdrawn balance can only move to a premium account
  if k == 0 then return Account.new(next_id, balance)
  elseif k == 1 then return Savings.new(next_id, balance, 2)
  else return Premium.new(next_id, balance, 3, 500) end
end

local total = 0
for i = 1, NACC do
  local b = 1000 + rand(9000)
  accounts[i] = open(b)
  total = total + b
end
local initial = total
local minted = 0

local LOG = 256
local log, logpos = {}, 0
local ok_tx, failed_tx, replaced = 0, 0, 0
local kinds = { basic = 0, savings = 0, premium = 0 }

for step = 1, STEPS do
  local a = accounts[rand(NACC)]
  local b = accounts[rand(NACC)]
  local amt = rand(700)
  if a ~= b then
    if a:withdraw(amt) then
      b:deposit(amt)
      ok_tx = ok_tx + 1
      logpos = logpos % LOG + 1
      log[logpos] = Tx.new(a.id, b.id, amt)      -- old record becomes garbage
    else
      failed_tx = failed_tx + 1
    end
  end
  if step % 1000 == 0 then
    -- pay interest on every account
    for i = 1, NACC do
      local acc = accounts[i]
      local it = acc:interest()
      if it > 0 then acc:deposit(it); minted = minted + it end
    end
  end
  if step % 7 == 0 then
    -- close an account and open a fresh object carrying its balance
    local i = rand(NACC)
    local old = accounts[i]
    local new = open(old.balance)
    new.history = old.history
    accounts[i] = new
    kinds[new:kind()] = kinds[new:kind()] + 1
    replaced = replaced + 1
  end
end

local sum = 0
for i = 1, NACC do
  local acc = accounts[i]
  sum = sum + acc.balance
  if acc.balance < -500 then error("objects: overdraft exceeded on " .. acc.id) end
  if acc.balance < 0 and acc:kind() ~= "premium" then error("objects: negative basic balance") end
end
if sum ~= initial + minted then
  error(string.format("objects: money not conserved: %d ~= %d + %d", sum, initial, minted))
end
if kinds.basic + kinds.savings + kinds.premium ~= replaced then error("objects: kind count") end
for i = 1, #log do
  local t = log[i]
  if getmetatable(t) ~= Tx or t.amount < 1 or t.amount > 700 then error("objects: log damaged") end
end
print(string.format("objects ok: %d steps, %d transfers, %d refused, %d replaced, money %d",
  STEPS, ok_tx, failed_tx, replaced, sum))
