#!/usr/bin/env bash
# Deploys contracts/build/*.json on a fresh, throwaway anvil and checks over JSON-RPC (curl) that each test
# contract behaves as contracts/README.md says. Needs bash, curl, node and anvil; compiles nothing.
#
#   contracts/verify.sh                 # anvil from $ANVIL_BIN or .tools/npm/.../bin/anvil
#   PORT=18545 contracts/verify.sh      # first loopback port to try (default 18545; the next free one is used)
#
# Exits 0 only if every check passed. anvil is killed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$here/build
ANVIL=${ANVIL_BIN:-$root/.tools/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}
[ -x "$ANVIL" ] || { echo "anvil not found at $ANVIL (npm install --no-save --no-audit --no-fund --prefix $root/.tools/npm @foundry-rs/anvil-linux-amd64@1.7.1)" >&2; exit 2; }

tmp=$(mktemp -d)
ANVIL_PID=
cleanup() {
  if [ -n "$ANVIL_PID" ]; then kill "$ANVIL_PID" 2>/dev/null || true; wait "$ANVIL_PID" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------------------
# A small node helper: JSON field access and ABI encoding/decoding of the few types used here.
cat >"$tmp/h.js" <<'JS'
'use strict';
const fs = require('fs');
const [cmd, ...args] = process.argv.slice(2);
const word = (hex) => {
  const h = hex.replace(/^0x/, '').toLowerCase();
  if (h.length > 64 || /[^0-9a-f]/.test(h)) throw new Error('bad word ' + hex);
  return h.padStart(64, '0');
};
function encode(types, values) {
  if (types.length !== values.length) throw new Error(`${types.length} types, ${values.length} values`);
  const heads = [];
  let tail = '';
  types.forEach((t, i) => {
    const v = values[i];
    if (t === 'string') {
      const b = Buffer.from(v, 'utf8');
      heads.push(word((32 * types.length + tail.length / 2).toString(16)));
      tail += word(b.length.toString(16)) + b.toString('hex').padEnd(Math.ceil(b.length / 32) * 64, '0');
    } else if (t === 'address') {
      if (!/^0x[0-9a-fA-F]{40}$/.test(v)) throw new Error('bad address ' + v);
      heads.push(word(v));
    } else if (t === 'bool') {
      heads.push(word(v === 'true' ? '1' : v === 'false' ? '0' : (() => { throw new Error('bad bool ' + v); })()));
    } else if (/^uint\d*$/.test(t)) {
      heads.push(word(BigInt(v).toString(16)));
    } else {
      throw new Error('unsupported type ' + t);
    }
  });
  return heads.join('') + tail;
}
function decode(type, hex) {
  const h = hex.replace(/^0x/, '');
  if (type === 'uint') return BigInt('0x' + (h || '0')).toString();
  if (type === 'bool') {
    if (h.length !== 64) throw new Error('not one word: 0x' + h);
    const n = BigInt('0x' + h);
    if (n > 1n) throw new Error('not a bool: 0x' + h);
    return n === 1n ? 'true' : 'false';
  }
  if (type === 'address') return '0x' + h.slice(24, 64);
  if (type === 'string') {
    const off = Number(BigInt('0x' + h.slice(0, 64))) * 2;
    const len = Number(BigInt('0x' + h.slice(off, off + 64)));
    return Buffer.from(h.slice(off + 64, off + 64 + len * 2), 'hex').toString('utf8');
  }
  throw new Error('unsupported type ' + type);
}
const out = (v) => process.stdout.write((typeof v === 'string' ? v : JSON.stringify(v)) + '\n');
switch (cmd) {
  case 'result': { // stdin: JSON-RPC response; prints result, or "ERROR: <message> <data>" and exits 1
    const r = JSON.parse(fs.readFileSync(0, 'utf8'));
    if (r.error) { out('ERROR: ' + r.error.message + (r.error.data ? ' ' + JSON.stringify(r.error.data) : '')); process.exit(1); }
    out(r.result === null ? 'null' : r.result);
    break;
  }
  case 'get': { // get PATH (dot-separated; "length" works on arrays); stdin: JSON
    let v = JSON.parse(fs.readFileSync(0, 'utf8'));
    for (const k of args[0].split('.')) v = v == null ? undefined : v[k];
    out(v === undefined ? 'undefined' : v);
    break;
  }
  case 'enc': // enc TYPES(comma-separated, may be empty) VALUES...
    out(encode(args[0] ? args[0].split(',') : [], args.slice(1)));
    break;
  case 'deploydata': { // deploydata NAME: creation bytecode + ABI-encoded constructor args
    const a = JSON.parse(fs.readFileSync(process.env.BUILD + '/' + args[0] + '.json', 'utf8'));
    const ctor = a.abi.find((e) => e.type === 'constructor');
    const types = ctor ? ctor.inputs.map((i) => i.type) : [];
    out(a.bytecode + encode(types, args.slice(1)));
    break;
  }
  case 'dec': out(decode(args[0], args[1])); break;
  case 'hex': out('0x' + BigInt(args[0]).toString(16)); break;
  case 'word': out('0x' + word(args[0])); break;
  default: throw new Error('unknown command ' + cmd);
}
JS
h() { BUILD=$build node "$tmp/h.js" "$@"; }

# ---------------------------------------------------------------------------------------------------------
# anvil on the first free loopback port from $PORT.
port=${PORT:-18545}
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
URL=http://127.0.0.1:$port
"$ANVIL" --host 127.0.0.1 --port "$port" >"$tmp/anvil.log" 2>&1 &
ANVIL_PID=$!
for _ in $(seq 100); do
  curl -sf -H 'content-type: application/json' --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$URL" >/dev/null 2>&1 && break
  kill -0 "$ANVIL_PID" 2>/dev/null || { cat "$tmp/anvil.log" >&2; exit 2; }
  sleep 0.1
done

# rpc METHOD PARAMS_JSON: prints the result; on a JSON-RPC error prints "ERROR: ..." and returns 1.
rpc() {
  curl -sS -H 'content-type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$URL" | h result
}

failures=0
checks=0
expect() { # expect WHAT ACTUAL EXPECTED
  checks=$((checks + 1))
  if [ "$2" = "$3" ]; then echo "  ok    $1 = $2"; else echo "  FAIL  $1: got $2, want $3"; failures=$((failures + 1)); fi
}
expect_true() { # expect_true WHAT NODE-EXPRESSION-OVER-BIGINTS DISPLAY
  checks=$((checks + 1))
  if node -e "process.exit(($2) ? 0 : 1)"; then echo "  ok    $1 ($3)"; else echo "  FAIL  $1 ($3)"; failures=$((failures + 1)); fi
}

lower() { tr 'A-F' 'a-f'; }
hexstr() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
keccak() { rpc web3_sha3 "[\"0x$(hexstr "$1")\"]"; }
sel() { keccak "$1" | cut -c1-10; }
# calldata SIGNATURE ARGS...: selector + ABI-encoded arguments (types taken from the signature)
calldata() {
  local sig=$1; shift
  local types=${sig#*(}; types=${types%)}
  echo "$(sel "$sig")$(h enc "$types" "$@")"
}
# send FROM TO DATA [VALUE_HEX] [GAS_HEX]: eth_sendTransaction, prints the hash (or ERROR: ...)
send() {
  local tx="{\"from\":\"$1\""
  [ -n "$2" ] && tx+=",\"to\":\"$2\""
  [ -n "$3" ] && tx+=",\"data\":\"$3\""
  [ -n "${4:-}" ] && tx+=",\"value\":\"$4\""
  [ -n "${5:-}" ] && tx+=",\"gas\":\"$5\""
  rpc eth_sendTransaction "[$tx}]"
}
receipt() { # receipt HASH: waits for and prints the receipt JSON
  local r
  for _ in $(seq 50); do
    r=$(rpc eth_getTransactionReceipt "[\"$1\"]")
    [ "$r" != null ] && { echo "$r"; return; }
    sleep 0.1
  done
  echo "no receipt for $1" >&2; return 1
}
field() { h get "$2" <<<"$1"; }
call() { # call FROM TO DATA: eth_call at latest, prints the return data (or ERROR: ...)
  rpc eth_call "[{\"from\":\"$1\",\"to\":\"$2\",\"data\":\"$3\"},\"latest\"]"
}
view_uint() { h dec uint "$(call "$A0" "$1" "$(calldata "$2" "${@:3}")")"; }
deploy() { # deploy NAME CTOR_ARGS...: prints the contract address
  local hash r
  hash=$(send "$A0" "" "$(h deploydata "$@")")
  r=$(receipt "$hash")
  [ "$(field "$r" status)" = 0x1 ] || { echo "deploying $1 failed: $r" >&2; return 1; }
  field "$r" contractAddress
}
pad() { h word "$1"; }

echo "anvil $("$ANVIL" --version | head -1 | cut -d' ' -f3) at $URL, chain id $(h dec uint "$(rpc eth_chainId '[]')")"
mapfile -t accounts < <(rpc eth_accounts '[]' | node -e 'for (const a of JSON.parse(require("fs").readFileSync(0,"utf8"))) console.log(a.toLowerCase())')
A0=${accounts[0]} A1=${accounts[1]} A2=${accounts[2]} A3=${accounts[3]}
echo "treasury A0=$A0, destination A1=$A1, fee collector/spender target A2=$A2"

TRANSFER=$(keccak 'Transfer(address,address,uint256)')
echo
echo "== selectors and topic"
expect 'keccak("Transfer(address,address,uint256)")' "$TRANSFER" 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef
expect 'transfer(address,uint256)' "$(sel 'transfer(address,uint256)')" 0xa9059cbb
expect 'balanceOf(address)' "$(sel 'balanceOf(address)')" 0x70a08231
expect 'transferFrom(address,address,uint256)' "$(sel 'transferFrom(address,address,uint256)')" 0x23b872dd
expect 'approve(address,uint256)' "$(sel 'approve(address,uint256)')" 0x095ea7b3
expect 'setRefuse(bool)' "$(sel 'setRefuse(bool)')" 0x6072b1d0

# ---------------------------------------------------------------------------------------------------------
echo
echo "== StandardToken"
SUPPLY=1000000000000000000000000
T=$(deploy StandardToken "Standard Token" STD 18 $SUPPLY)
echo "  deployed at $T ($(( ($(rpc eth_getCode "[\"$T\",\"latest\"]" | wc -c) - 3) / 2 )) bytes of runtime code)"
expect 'name()' "$(h dec string "$(call "$A0" "$T" "$(sel 'name()')")")" "Standard Token"
expect 'symbol()' "$(h dec string "$(call "$A0" "$T" "$(sel 'symbol()')")")" STD
expect 'decimals()' "$(view_uint "$T" 'decimals()')" 18
expect 'totalSupply()' "$(view_uint "$T" 'totalSupply()')" $SUPPLY
expect 'balanceOf(A0)' "$(view_uint "$T" 'balanceOf(address)' "$A0")" $SUPPLY
AMOUNT=1234567
data=$(calldata 'transfer(address,uint256)' "$A1" $AMOUNT)
expect 'eth_call transfer(A1, 1234567) returns' "$(h dec bool "$(call "$A0" "$T" "$data")")" true
r=$(receipt "$(send "$A0" "$T" "$data")")
expect 'transfer: status' "$(field "$r" status)" 0x1
expect 'transfer: number of logs' "$(field "$r" logs.length)" 1
expect 'transfer: log address' "$(field "$r" logs.0.address)" "$T"
expect 'transfer: number of topics' "$(field "$r" logs.0.topics.length)" 3
expect 'transfer: topic 0' "$(field "$r" logs.0.topics.0)" "$TRANSFER"
expect 'transfer: topic 1 (from)' "$(field "$r" logs.0.topics.1)" "$(pad "$A0")"
expect 'transfer: topic 2 (to)' "$(field "$r" logs.0.topics.2)" "$(pad "$A1")"
expect 'transfer: data (amount)' "$(field "$r" logs.0.data)" "$(pad "$(h hex $AMOUNT)")"
echo "  (gas used by transfer: $(h dec uint "$(field "$r" gasUsed)"))"
expect 'balanceOf(A1)' "$(view_uint "$T" 'balanceOf(address)' "$A1")" $AMOUNT
expect 'balanceOf(A0)' "$(view_uint "$T" 'balanceOf(address)' "$A0")" "$(node -e "console.log((BigInt('$SUPPLY') - BigInt($AMOUNT)).toString())")"
# More than the balance: reverts.
data=$(calldata 'transfer(address,uint256)' "$A0" $((AMOUNT + 1)))
out=$(call "$A1" "$T" "$data" || true)
expect 'eth_call transfer over balance reverts' "$(case "$out" in ERROR:*revert*) echo reverted;; *) echo "$out";; esac)" reverted
echo "  ($out)"
r=$(receipt "$(send "$A1" "$T" "$data" "" 0x186a0)")
expect 'transfer over balance (gas 100000): status' "$(field "$r" status)" 0x0
expect 'transfer over balance: number of logs' "$(field "$r" logs.length)" 0
expect 'balanceOf(A1) unchanged' "$(view_uint "$T" 'balanceOf(address)' "$A1")" $AMOUNT
# approve + transferFrom
r=$(receipt "$(send "$A0" "$T" "$(calldata 'approve(address,uint256)' "$A1" 500)")")
expect 'approve: status, logs' "$(field "$r" status) $(field "$r" logs.length)" "0x1 1"
expect 'approve: Approval topic' "$(field "$r" logs.0.topics.0)" "$(keccak 'Approval(address,address,uint256)')"
r=$(receipt "$(send "$A1" "$T" "$(calldata 'transferFrom(address,address,uint256)' "$A0" "$A2" 300)")")
expect 'transferFrom(A0, A2, 300) by A1: status, logs' "$(field "$r" status) $(field "$r" logs.length)" "0x1 1"
expect 'transferFrom: topics' "$(field "$r" logs.0.topics)" "[\"$TRANSFER\",\"$(pad "$A0")\",\"$(pad "$A2")\"]"
expect 'transferFrom: data' "$(field "$r" logs.0.data)" "$(pad "$(h hex 300)")"
expect 'allowance(A0, A1)' "$(view_uint "$T" 'allowance(address,address)' "$A0" "$A1")" 200

# ---------------------------------------------------------------------------------------------------------
echo
echo "== FalseToken"
F=$(deploy FalseToken "False Token" FLS 6 1000000000000)
echo "  deployed at $F"
expect 'refuse()' "$(h dec bool "$(call "$A0" "$F" "$(sel 'refuse()')")")" false
r=$(receipt "$(send "$A0" "$F" "$(calldata 'setRefuse(bool)' true)")")
expect 'setRefuse(true): status' "$(field "$r" status)" 0x1
expect 'refuse()' "$(h dec bool "$(call "$A0" "$F" "$(sel 'refuse()')")")" true
before0=$(view_uint "$F" 'balanceOf(address)' "$A0")
data=$(calldata 'transfer(address,uint256)' "$A1" 1000)
ret=$(call "$A0" "$F" "$data")
expect 'eth_call transfer(A1, 1000) with refuse returns' "$ret" "0x$(printf '0%.0s' {1..64})"
expect '  decoded' "$(h dec bool "$ret")" false
r=$(receipt "$(send "$A0" "$F" "$data")")
expect 'transfer with refuse: status' "$(field "$r" status)" 0x1
expect 'transfer with refuse: logs' "$(field "$r" logs)" "[]"
expect 'balanceOf(A0) unchanged' "$(view_uint "$F" 'balanceOf(address)' "$A0")" "$before0"
expect 'balanceOf(A1) unchanged' "$(view_uint "$F" 'balanceOf(address)' "$A1")" 0
r=$(receipt "$(send "$A0" "$F" "$(calldata 'approve(address,uint256)' "$A1" 1000)")")
expect 'eth_call transferFrom with refuse returns' "$(h dec bool "$(call "$A1" "$F" "$(calldata 'transferFrom(address,address,uint256)' "$A0" "$A1" 10)")")" false
receipt "$(send "$A0" "$F" "$(calldata 'setRefuse(bool)' false)")" >/dev/null
data=$(calldata 'transfer(address,uint256)' "$A0" 1)
expect 'refuse=false, A1 (balance 0) transfer(A0, 1) returns' "$(h dec bool "$(call "$A1" "$F" "$data")")" false
r=$(receipt "$(send "$A1" "$F" "$data")")
expect '  tx status, logs' "$(field "$r" status) $(field "$r" logs)" "0x1 []"
data=$(calldata 'transfer(address,uint256)' "$A1" 1000)
expect 'refuse=false, transfer(A1, 1000) returns' "$(h dec bool "$(call "$A0" "$F" "$data")")" true
r=$(receipt "$(send "$A0" "$F" "$data")")
expect '  tx status, logs' "$(field "$r" status) $(field "$r" logs.length)" "0x1 1"
expect '  topics' "$(field "$r" logs.0.topics)" "[\"$TRANSFER\",\"$(pad "$A0")\",\"$(pad "$A1")\"]"
expect '  balanceOf(A1)' "$(view_uint "$F" 'balanceOf(address)' "$A1")" 1000

# ---------------------------------------------------------------------------------------------------------
echo
echo "== FeeToken (100 bps to A2)"
E=$(deploy FeeToken "Fee Token" FEE 18 $SUPPLY 100 "$A2")
echo "  deployed at $E"
expect 'feeBps()' "$(view_uint "$E" 'feeBps()')" 100
expect 'feeCollector()' "$(h dec address "$(call "$A0" "$E" "$(sel 'feeCollector()')")")" "$A2"
r=$(receipt "$(send "$A0" "$E" "$(calldata 'transfer(address,uint256)' "$A1" 10000)")")
expect 'transfer(A1, 10000): status, logs' "$(field "$r" status) $(field "$r" logs.length)" "0x1 2"
expect '  log 0 topics' "$(field "$r" logs.0.topics)" "[\"$TRANSFER\",\"$(pad "$A0")\",\"$(pad "$A1")\"]"
expect '  log 0 data (amount - fee = 9900)' "$(h dec uint "$(field "$r" logs.0.data)")" 9900
expect '  log 1 topics' "$(field "$r" logs.1.topics)" "[\"$TRANSFER\",\"$(pad "$A0")\",\"$(pad "$A2")\"]"
expect '  log 1 data (fee = 100)' "$(h dec uint "$(field "$r" logs.1.data)")" 100
expect '  balanceOf(A1)' "$(view_uint "$E" 'balanceOf(address)' "$A1")" 9900
expect '  balanceOf(A2)' "$(view_uint "$E" 'balanceOf(address)' "$A2")" 100
r=$(receipt "$(send "$A0" "$E" "$(calldata 'transfer(address,uint256)' "$A1" 99)")")
expect 'transfer(A1, 99) (fee rounds to 0): status, logs, amount' "$(field "$r" status) $(field "$r" logs.length) $(h dec uint "$(field "$r" logs.0.data)")" "0x1 1 99"

# ---------------------------------------------------------------------------------------------------------
echo
echo "== Wallet"
W=$(deploy Wallet)
echo "  deployed at $W"
ONE=0xde0b6b3a7640000 # 1 ether
r=$(receipt "$(send "$A0" "$A3" "" $ONE 0x5208)")
expect 'baseline: 1 ether to an EOA with gas 21000: status' "$(field "$r" status)" 0x1
out=$(send "$A0" "$W" "" $ONE 0x5208 || true)
case "$out" in
  ERROR:*) expect 'gas 21000 to Wallet rejected' rejected rejected; echo "  ($out)";;
  *) r=$(receipt "$out")
     expect 'gas 21000 to Wallet: status' "$(field "$r" status)" 0x0
     expect '  gasUsed' "$(h dec uint "$(field "$r" gasUsed)")" 21000;;
esac
out=$(send "$A0" "$W" "" $ONE 0x5b04 || true) # 21000 + the 2300 stipend
case "$out" in
  ERROR:*) expect 'gas 23300 (stipend) to Wallet rejected' rejected rejected; echo "  ($out)";;
  *) expect 'gas 23300 (21000 + stipend) to Wallet: status' "$(field "$(receipt "$out")" status)" 0x0;;
esac
expect 'received() after the failed sends' "$(view_uint "$W" 'received()')" 0
expect 'Wallet balance after the failed sends' "$(h dec uint "$(rpc eth_getBalance "[\"$W\",\"latest\"]")")" 0
est1=$(h dec uint "$(rpc eth_estimateGas "[{\"from\":\"$A0\",\"to\":\"$W\",\"value\":\"$ONE\"}]")")
expect_true "eth_estimateGas for 1 ether to Wallet > 21000" "$est1 > 21000" "estimate $est1"
r=$(receipt "$(send "$A0" "$W" "" $ONE "$(h hex "$est1")")")
expect "send with gas = estimate ($est1): status" "$(field "$r" status)" 0x1
echo "  (gas used: $(h dec uint "$(field "$r" gasUsed)"))"
expect '  logs (Received)' "$(field "$r" logs.length) $(field "$r" logs.0.topics.0)" "1 $(keccak 'Received(address,uint256,uint256)')"
expect '  received()' "$(view_uint "$W" 'received()')" 1000000000000000000
expect '  deposits()' "$(view_uint "$W" 'deposits()')" 1
expect '  senderOf(1)' "$(h dec address "$(call "$A0" "$W" "$(calldata 'senderOf(uint256)' 1)")")" "$A0"
est2=$(h dec uint "$(rpc eth_estimateGas "[{\"from\":\"$A0\",\"to\":\"$W\",\"value\":\"$ONE\"}]")")
expect_true "eth_estimateGas for a second deposit > 21000 + 40000" "$est2 > 61000" "estimate $est2"
r=$(receipt "$(send "$A0" "$W" "" $ONE "$(h hex "$est2")")")
expect "second deposit with gas = estimate ($est2): status" "$(field "$r" status)" 0x1
echo "  (gas used: $(h dec uint "$(field "$r" gasUsed)"))"
expect '  received()' "$(view_uint "$W" 'received()')" 2000000000000000000
expect '  Wallet balance' "$(h dec uint "$(rpc eth_getBalance "[\"$W\",\"latest\"]")")" 2000000000000000000

echo
if [ "$failures" -eq 0 ]; then echo "all $checks checks passed"; else echo "$failures of $checks checks FAILED"; exit 1; fi
