#!/usr/bin/env node
// Compiles the test contracts in this directory with the pinned solc (the npm `solc` package, i.e. the real
// compiler built to JavaScript) and writes build/<Name>.json = { abi, bytecode, contract, solc } with
// sorted keys, so that the output depends only on the sources and the compiler version.
//
//   npm install --no-save --no-audit --no-fund --prefix .tools/solc solc@0.8.37
//   node contracts/compile.js            # (re)writes contracts/build/*.json
//   node contracts/compile.js --check    # exits 1 if contracts/build/*.json are not what the sources give
//
// solc is looked for in $SOLCJS (a directory holding the solc package), then .tools/solc/node_modules/solc,
// then .tools/npm/node_modules/solc (paths relative to the repository root). No other dependencies.
'use strict';

const fs = require('fs');
const path = require('path');

const SOLC_VERSION = '0.8.37';
const EVM_VERSION = 'paris';
const CONTRACTS = ['StandardToken', 'FalseToken', 'FeeToken', 'Wallet'];

const here = __dirname;
const root = path.resolve(here, '..');
const buildDir = path.join(here, 'build');
const check = process.argv.includes('--check');

function loadSolc() {
  const candidates = [
    process.env.SOLCJS,
    path.join(root, '.tools/solc/node_modules/solc'),
    path.join(root, '.tools/npm/node_modules/solc'),
  ].filter(Boolean);
  for (const dir of candidates) {
    if (!fs.existsSync(path.join(dir, 'package.json'))) continue;
    const solc = require(dir);
    const version = solc.version();
    if (!version.startsWith(SOLC_VERSION + '+')) {
      throw new Error(`${dir} is solc ${version}, not ${SOLC_VERSION}; install solc@${SOLC_VERSION}`);
    }
    return solc;
  }
  throw new Error(
    `solc ${SOLC_VERSION} not found (looked in ${candidates.join(', ')}); install it with\n` +
      `  npm install --no-save --no-audit --no-fund --prefix ${path.join(root, '.tools/solc')} solc@${SOLC_VERSION}`,
  );
}

// Recursively sorts object keys (arrays keep their order) for a stable JSON text.
function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sorted(value[key]);
    return out;
  }
  return value;
}

function main() {
  const solc = loadSolc();
  const sources = {};
  for (const name of CONTRACTS) {
    sources[`${name}.sol`] = { content: fs.readFileSync(path.join(here, `${name}.sol`), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: EVM_VERSION,
      viaIR: false,
      // No metadata hash: the CBOR trailer then holds only the compiler version, so the bytecode depends
      // on nothing but the sources, the settings and the compiler.
      metadata: { bytecodeHash: 'none' },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.methodIdentifiers'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = output.errors || [];
  for (const e of errors) process.stderr.write((e.formattedMessage || e.message) + '\n');
  if (errors.some((e) => e.severity === 'error')) process.exit(1);

  let stale = 0;
  if (!check) fs.mkdirSync(buildDir, { recursive: true });
  for (const name of CONTRACTS) {
    const compiled = output.contracts[`${name}.sol`][name];
    const artifact = sorted({
      contract: name,
      solc: solc.version(),
      abi: compiled.abi,
      bytecode: '0x' + compiled.evm.bytecode.object,
    });
    const text = JSON.stringify(artifact, null, 2) + '\n';
    const file = path.join(buildDir, `${name}.json`);
    const selectors = Object.entries(compiled.evm.methodIdentifiers)
      .map(([signature, id]) => `0x${id} ${signature}`)
      .sort((a, b) => a.split(' ')[1].localeCompare(b.split(' ')[1]));
    if (check) {
      const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
      if (current !== text) {
        stale += 1;
        process.stderr.write(`${path.relative(root, file)} is stale: run node contracts/compile.js\n`);
      }
    } else {
      fs.writeFileSync(file, text);
    }
    console.log(`${name}: ${(compiled.evm.bytecode.object.length / 2) | 0} bytes of creation code`);
    for (const s of selectors) console.log(`  ${s}`);
  }
  console.log(`solc ${solc.version()}, evmVersion ${EVM_VERSION}, optimizer runs 200`);
  if (stale) process.exit(1);
}

main();
